// What a process that reads a job's data.path on this machine can tell
// before it reads: chronosctl local run checks it before starting any
// daemon, and the worker before it opens the corpus, with the same words.
#ifndef CHRONOS_CORE_DATA_PATH_H_
#define CHRONOS_CORE_DATA_PATH_H_

#include <string>

#include "absl/status/status.h"

namespace chronos {

// kNotFound when `path` does not exist (an llmc shard pattern with * ? [ is
// left to whoever expands it); kInvalidArgument when a text corpus is a
// directory, or when it is neither a regular file nor (llmc) a directory: a
// FIFO would block its reader, a device like /dev/zero never ends. The
// messages name data.path.
absl::Status CheckDataPath(const std::string& path, bool llmc);

}  // namespace chronos

#endif  // CHRONOS_CORE_DATA_PATH_H_

// Optional allowed roots for the paths a job spec names (data.path,
// training.checkpoint_dir): in a shared cluster an operator can keep jobs
// from reading or writing anywhere else. The coordinator refuses a spec
// outside them at submission (INVALID_ARGUMENT), and each worker checks
// again, on its own file system, before it opens anything.
#ifndef CHRONOS_CORE_PATH_ROOTS_H_
#define CHRONOS_CORE_PATH_ROOTS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace chronos {

// OK when `roots` is empty (no restriction), or when `path`, made absolute
// against `base` (when relative and `base` is not empty) and resolved
// through every existing symlink and "..", lies inside one of `roots`
// (resolved alike). A pattern's part from its first * ? [ on is left out
// (the directory before it must be inside). kInvalidArgument naming `field`
// otherwise, also for a relative path with no `base` to resolve it against.
absl::Status CheckUnderRoots(const std::string& path, const std::string& base,
                             const std::vector<std::string>& roots, const std::string& field);

}  // namespace chronos

#endif  // CHRONOS_CORE_PATH_ROOTS_H_

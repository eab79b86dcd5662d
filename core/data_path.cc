#include "core/data_path.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace chronos {

absl::Status CheckDataPath(const std::string& path, bool llmc) {
  namespace fs = std::filesystem;
  if (llmc && path.find_first_of("*?[") != std::string::npos) return absl::OkStatus();
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat("data.path ", path, " does not exist on this machine"));
  }
  const fs::file_status st = fs::status(path, ec);
  if (fs::is_directory(st)) {
    if (llmc) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("data.path ", path,
                     " is a directory: with format text it must be a file (a directory of *.bin "
                     "shards needs format llmc)"));
  }
  if (!fs::is_regular_file(st)) {
    // A FIFO would block the reader in open() until someone writes; a
    // device such as /dev/zero never ends.
    const char* what = fs::is_fifo(st)             ? "a FIFO"
                       : fs::is_character_file(st) ? "a character device"
                       : fs::is_block_file(st)     ? "a block device"
                       : fs::is_socket(st)         ? "a socket"
                                                   : "not a regular file";
    return absl::InvalidArgumentError(absl::StrCat("data.path ", path, " is ", what,
                                                   ": it must be a regular file",
                                                   llmc ? " or a directory of shards" : ""));
  }
  return absl::OkStatus();
}

}  // namespace chronos

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
  if (!llmc && fs::is_directory(path, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat("data.path ", path,
                     " is a directory: with format text it must be a file (a directory of *.bin "
                     "shards needs format llmc)"));
  }
  return absl::OkStatus();
}

}  // namespace chronos

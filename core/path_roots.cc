#include "core/path_roots.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace chronos {
namespace {

namespace fs = std::filesystem;

// Absolute, with ".." and existing symlinks resolved.
fs::path Resolve(const fs::path& p) {
  std::error_code ec;
  fs::path r = fs::weakly_canonical(p, ec);
  return ec ? p.lexically_normal() : r;
}

bool Inside(const fs::path& path, const fs::path& root) {
  auto r = root.begin();
  auto p = path.begin();
  for (; r != root.end(); ++r, ++p) {
    if (r->empty()) continue;  // a trailing separator
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

}  // namespace

absl::Status CheckUnderRoots(const std::string& path, const std::string& base,
                             const std::vector<std::string>& roots, const std::string& field) {
  if (roots.empty()) return absl::OkStatus();
  std::string fixed = path;
  const size_t glob = fixed.find_first_of("*?[");
  if (glob != std::string::npos) {
    const size_t slash = fixed.rfind('/', glob);
    fixed = slash == std::string::npos ? std::string() : fixed.substr(0, slash + 1);
  }
  fs::path p(fixed.empty() ? "." : fixed);
  if (p.is_relative()) {
    if (base.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, " '", path,
                       "' must be an absolute path: this coordinator only "
                       "allows paths under ",
                       absl::StrJoin(roots, ", ")));
    }
    p = fs::path(base) / p;
  }
  const fs::path resolved = Resolve(p);
  for (const std::string& root : roots) {
    if (Inside(resolved, Resolve(fs::path(root)))) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat(field, " '", path, "' (", resolved.string(),
                   ") is outside the allowed roots: ", absl::StrJoin(roots, ", ")));
}

}  // namespace chronos

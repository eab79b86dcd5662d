// Checks of what callers send the JobController, shared by its files: job
// names, printable strings, and the status a bad request gets.
#ifndef CHRONOS_COORDINATOR_REQUEST_CHECKS_H_
#define CHRONOS_COORDINATOR_REQUEST_CHECKS_H_

#include <algorithm>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace chronos::coordinator {

inline bool Printable(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

inline absl::Status NotFound(const std::string& name) {
  return absl::NotFoundError(
      absl::StrCat("job '", name, "' not found (chronosctl list shows the jobs)"));
}

inline absl::Status CheckName(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("name is required");
  if (name.size() > 253 || !Printable(name)) {
    return absl::InvalidArgumentError("name is not a valid job name");
  }
  return absl::OkStatus();
}

// A spec or plan the caller sent that cannot run is the caller's error
// (kInvalidArgument); the coordinator's own failures keep their code.
inline absl::Status AsInvalidArgument(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnavailable:
      return status;
    default:
      return absl::InvalidArgumentError(status.message());
  }
}

}  // namespace chronos::coordinator

#endif  // CHRONOS_COORDINATOR_REQUEST_CHECKS_H_

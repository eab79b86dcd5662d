// Job-spec files as chronosctl reads them before sending or planning. The
// coordinator and workers may run elsewhere, so everything that refers to
// this machine's file system is resolved here: a device profile given as a
// path is read and inlined into device.custom, and a relative data.path is
// made absolute against the current directory (workers started by
// `local run`, or on the same host, then find the file wherever their own
// working directory is). Pure apart from reading the named files.
#ifndef CHRONOS_CLIENT_JOB_FILE_H_
#define CHRONOS_CLIENT_JOB_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "chronos/v1/job.pb.h"

namespace chronos::client {

// True for the names core/device_profile.h has built in ("cpu", "h100").
bool IsBuiltinProfile(const std::string& name);

// When device.profile is not a built-in name, loads it as a profile file
// and merges it under any custom fields the spec already has (the spec's
// own overrides win). kNotFound / kInvalidArgument naming device.profile.
absl::Status InlineDeviceProfile(v1::DeviceSpec* device);

// Replaces device.profile and device.custom with `profile_flag` (a built-in
// name or a file), as `plan --profile` does. Errors name --profile.
absl::Status OverrideDeviceProfile(const std::string& profile_flag, v1::DeviceSpec* device);

// Makes `path` absolute against `cwd` ("" and absolute paths unchanged).
std::string AbsolutePath(const std::string& path, const std::string& cwd);

// The process's working directory ("." if it cannot be read).
std::string CurrentDirectory();

// Reads, resolves (as above) and checks a job-spec file. The returned spec
// is what the user wrote plus the resolutions: defaults are applied only to
// a copy for ValidateJobSpec, so the coordinator stays the one place where
// defaults are decided. kInvalidArgument lists every problem by field.
absl::StatusOr<v1::JobSpec> LoadJobFileForSubmit(const std::string& path, const std::string& cwd);

// Reads and checks a spec for local planning; the result has defaults
// applied (the planner needs concrete values). A non-empty
// `profile_override` replaces the spec's device (see OverrideDeviceProfile).
absl::StatusOr<v1::JobSpec> LoadJobFileForPlan(const std::string& path, const std::string& cwd,
                                               const std::string& profile_override = "");

}  // namespace chronos::client

#endif  // CHRONOS_CLIENT_JOB_FILE_H_

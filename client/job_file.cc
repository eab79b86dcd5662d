#include "client/job_file.h"

#include <unistd.h>

#include <climits>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "client/exit_codes.h"
#include "core/device_profile.h"
#include "core/job_spec.h"
#include "core/status_macros.h"

namespace chronos::client {
namespace {

absl::Status Prefixed(const absl::Status& s, absl::string_view prefix) {
  return absl::Status(s.code(), absl::StrCat(prefix, s.message()));
}

absl::Status CheckSpec(const v1::JobSpec& spec, const std::string& path) {
  v1::JobSpec defaulted = spec;
  ApplyJobSpecDefaults(&defaulted);
  absl::Status s = ValidateJobSpec(defaulted);
  if (!s.ok()) return Prefixed(s, absl::StrCat(path, ": "));
  return absl::OkStatus();
}

absl::StatusOr<v1::JobSpec> LoadAndResolve(const std::string& path, const std::string& cwd) {
  absl::StatusOr<v1::JobSpec> spec = LoadJobSpecFile(path);
  // LoadJobSpecFile's errors name the file (and parse errors the field).
  if (!spec.ok()) return spec.status();
  if (!spec->data().path().empty()) {
    spec->mutable_data()->set_path(AbsolutePath(spec->data().path(), cwd));
  }
  // Workers run elsewhere (another cwd, another pod): like the data, the
  // checkpoints live where the user meant, and a restarted or re-planned
  // attempt must find the stages' files in one place.
  if (!spec->training().checkpoint_dir().empty()) {
    spec->mutable_training()->set_checkpoint_dir(
        AbsolutePath(spec->training().checkpoint_dir(), cwd));
  }
  CHRONOS_RETURN_IF_ERROR(InlineDeviceProfile(spec->mutable_device()));
  return spec;
}

}  // namespace

bool IsBuiltinProfile(const std::string& name) {
  const std::string lower = absl::AsciiStrToLower(name);
  for (const std::string& b : BuiltinDeviceProfileNames()) {
    if (lower == b) return true;
  }
  return false;
}

absl::Status InlineDeviceProfile(v1::DeviceSpec* device) {
  if (device->profile().empty() || IsBuiltinProfile(device->profile())) return absl::OkStatus();
  absl::StatusOr<v1::DeviceProfile> loaded = LoadDeviceProfileFile(device->profile());
  if (!loaded.ok()) {
    return Prefixed(loaded.status(), absl::StrCat("device.profile '", device->profile(), "': "));
  }
  // The spec's own custom fields override the file, as they would override a
  // built-in profile.
  *device->mutable_custom() =
      device->has_custom() ? MergeDeviceProfile(*loaded, device->custom()) : *loaded;
  return absl::OkStatus();
}

absl::Status OverrideDeviceProfile(const std::string& profile_flag, v1::DeviceSpec* device) {
  device->Clear();
  device->set_profile(profile_flag);
  absl::Status s = InlineDeviceProfile(device);
  if (!s.ok()) {
    return UsageError(absl::StrCat("--profile: ", profile_flag,
                                   " is neither a built-in profile (cpu, h100) nor a readable "
                                   "profile file: ",
                                   s.message()));
  }
  return absl::OkStatus();
}

std::string AbsolutePath(const std::string& path, const std::string& cwd) {
  if (path.empty() || path[0] == '/') return path;
  std::string p = path;
  while (p.rfind("./", 0) == 0) p = p.substr(2);
  if (cwd.empty() || cwd == "/") return absl::StrCat("/", p);
  return absl::StrCat(cwd, "/", p);
}

std::string CurrentDirectory() {
  char buf[PATH_MAX];
  if (getcwd(buf, sizeof(buf)) == nullptr) return ".";
  return buf;
}

absl::StatusOr<v1::JobSpec> LoadJobFileForSubmit(const std::string& path, const std::string& cwd) {
  CHRONOS_ASSIGN_OR_RETURN(v1::JobSpec spec, LoadAndResolve(path, cwd));
  CHRONOS_RETURN_IF_ERROR(CheckSpec(spec, path));
  return spec;
}

absl::StatusOr<v1::JobSpec> LoadJobFileForPlan(const std::string& path, const std::string& cwd,
                                               const std::string& profile_override) {
  CHRONOS_ASSIGN_OR_RETURN(v1::JobSpec spec, LoadAndResolve(path, cwd));
  if (!profile_override.empty()) {
    CHRONOS_RETURN_IF_ERROR(OverrideDeviceProfile(profile_override, spec.mutable_device()));
  }
  ApplyJobSpecDefaults(&spec);
  absl::Status s = ValidateJobSpec(spec);
  if (!s.ok()) return Prefixed(s, absl::StrCat(path, ": "));
  return spec;
}

}  // namespace chronos::client

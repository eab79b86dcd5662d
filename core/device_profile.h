// Device profiles for the cost model: built-in "h100" (from figures measured
// on an H100 80GB HBM3, ../shared/device/README.md) and "cpu" (the 2-core
// CI machine), plus YAML profile files that override any field.
#ifndef CHRONOS_CORE_DEVICE_PROFILE_H_
#define CHRONOS_CORE_DEVICE_PROFILE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "chronos/v1/job.pb.h"
#include "chronos/v1/profile.pb.h"

namespace chronos {

std::vector<std::string> BuiltinDeviceProfileNames();
// kInvalidArgument naming device.profile for unknown names.
absl::StatusOr<v1::DeviceProfile> BuiltinDeviceProfile(absl::string_view name);

// A YAML profile file: `base: h100` (optional) and any DeviceProfile field
// (sizes accept "80GiB", bandwidths plain bytes/s or "55GB/s").
absl::StatusOr<v1::DeviceProfile> ParseDeviceProfileYaml(const std::string& text);
absl::StatusOr<v1::DeviceProfile> LoadDeviceProfileFile(const std::string& path);

// Non-zero fields of `overrides` replace those of `base`.
v1::DeviceProfile MergeDeviceProfile(const v1::DeviceProfile& base,
                                     const v1::DeviceProfile& overrides);

// The profile a job spec asks for: spec.custom (merged over its base or the
// built-in named by spec.profile) if set, else the built-in named profile,
// else, when spec.profile names an existing file, that file.
absl::StatusOr<v1::DeviceProfile> ResolveDeviceProfile(const v1::DeviceSpec& spec);

// HBM a job may use when memory.hbm_budget is auto: capacity minus reserve.
int64_t DefaultHbmBudget(const v1::DeviceProfile& profile);

}  // namespace chronos

#endif  // CHRONOS_CORE_DEVICE_PROFILE_H_

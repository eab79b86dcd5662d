// libFuzzer target: YAML job specs from untrusted users. Whatever the input,
// parsing, defaulting, validation and a YAML round trip must return a
// status, never crash, hang or leak; a spec that validates must survive the
// YAML round trip unchanged and be plannable without crashing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/device_profile.h"
#include "core/job_spec.h"
#include "core/planner.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > chronos::kMaxJobSpecFileBytes) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<chronos::v1::JobSpec> spec = chronos::ParseJobSpecYaml(text);
  if (!spec.ok()) return 0;
  chronos::ApplyJobSpecDefaults(&*spec);
  if (!chronos::ValidateJobSpec(*spec).ok()) return 0;
  // Writing is a fixpoint: what we write reads back to a spec that writes
  // the same text (an absent section and an empty one are the same spec).
  const std::string yaml = chronos::JobSpecToYaml(*spec);
  absl::StatusOr<chronos::v1::JobSpec> again = chronos::ParseJobSpecYaml(yaml);
  if (!again.ok()) std::abort();  // we wrote something we cannot read
  chronos::ApplyJobSpecDefaults(&*again);
  if (chronos::JobSpecToYaml(*again) != yaml) std::abort();
  if (!chronos::ValidateJobSpec(*again).ok()) std::abort();
  // Keep planning cheap: the fuzzer is after crashes, not big models.
  const auto& m = spec->model();
  // (The block generator's search for p = 8, m = 32 takes seconds under
  // ASan; that is cost, not a hang, and would drown the crash search.)
  if (m.layers() > 16 || spec->parallel().pipeline() > 4 || spec->training().microbatches() > 8 ||
      spec->parallel().chunks_per_device() > 3) {
    return 0;
  }
  absl::StatusOr<chronos::v1::DeviceProfile> profile =
      chronos::ResolveDeviceProfile(spec->device());
  if (!profile.ok()) return 0;
  chronos::PlanOptions o;
  o.record_timeline = false;
  (void)chronos::PlanSchedule(*spec, *profile, spec->schedule().kind(), o);
  return 0;
}

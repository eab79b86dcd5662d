#include "worker/stage_emulation.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/device_profile.h"
#include "core/job_spec_validation.h"
#include "core/planner.h"
#include "core/status_macros.h"
#include "worker/comm/loopback_communicator.h"
#include "worker/stage_launcher.h"
#include "worker/stage_runner_impl.h"
#if CHRONOS_WITH_CUDA
#include "worker/cuda/cuda_runtime.h"
#endif

namespace chronos::worker {
namespace {

// Keeps the measured iterations' reports.
class Collect : public ProgressSink {
 public:
  explicit Collect(int64_t skip) : skip_(skip) {}
  absl::Status OnIteration(const v1::ProgressReport& r) override {
    if (r.iteration() > skip_) reports.push_back(r);
    return absl::OkStatus();
  }
  std::vector<v1::ProgressReport> reports;

 private:
  int64_t skip_;
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

absl::StatusOr<std::shared_ptr<DeviceRuntime>> RuntimeFor(const std::string& device) {
  CHRONOS_ASSIGN_OR_RETURN(DeviceDescription d, DescribeDevice(device));
  if (!absl::StartsWith(d.device, "cuda:")) {
    return std::shared_ptr<DeviceRuntime>();
  }
#if CHRONOS_WITH_CUDA
  CudaRuntimeOptions o;
  o.device = std::stoi(device.substr(5));
  return NewCudaRuntime(o);
#else
  return absl::FailedPreconditionError("unreachable: DescribeDevice refused");
#endif
}

}  // namespace

absl::StatusOr<StageEmulationReport> EmulateStages(v1::JobSpec spec,
                                                   const StageEmulationOptions& o) {
  if (o.iterations < 1 || o.warmup_iterations < 0) {
    return absl::InvalidArgumentError("--iterations must be >= 1 and --warmup >= 0");
  }
  spec.mutable_parallel()->set_data(1);
  spec.mutable_training()->set_checkpoint_every(0);
  const int64_t total = o.warmup_iterations + o.iterations;
  spec.mutable_training()->set_iterations(std::max<int64_t>(total, spec.training().iterations()));
  ApplyJobSpecDefaults(&spec);
  CHRONOS_RETURN_IF_ERROR(ValidateJobSpec(spec));
  CHRONOS_ASSIGN_OR_RETURN(v1::DeviceProfile profile, ResolveDeviceProfile(spec.device()));
  PlanOptions po;
  po.hbm_budget_bytes = o.hbm_budget_bytes;
  CHRONOS_ASSIGN_OR_RETURN(PlannedSchedule plan,
                           PlanSchedule(spec, profile, spec.schedule().kind(), po));
  const int p = plan.schedule.num_devices;
  if (o.stage < -1 || o.stage >= p) {
    return absl::InvalidArgumentError(absl::StrCat("--stage ", o.stage, " is not a stage of this ",
                                                   p, "-stage pipeline (0..", p - 1, ", or all)"));
  }
  CHRONOS_ASSIGN_OR_RETURN(std::shared_ptr<DeviceRuntime> runtime, RuntimeFor(o.device));

  StageEmulationReport report;
  report.schedule_kind = plan.schedule.kind;
  report.device = o.device;
  report.device_profile = profile.name();
  report.pipeline = p;
  for (int k = (o.stage < 0 ? 0 : o.stage); k < (o.stage < 0 ? p : o.stage + 1); ++k) {
    StageRunnerOptions ro;
    ro.spec = spec;
    ro.schedule = plan.schedule;
    ro.device = k;
    ro.device_name = o.device;
    ro.threads = o.threads;
    ro.max_iterations = total;
    StageRunnerExtras extras;
    extras.device_runtime = runtime;
    CHRONOS_ASSIGN_OR_RETURN(
        std::unique_ptr<StageRunner> runner,
        CreateStageRunner(std::move(ro), std::make_unique<LoopbackCommunicator>(k, p),
                          std::move(extras)));
    Collect sink(o.warmup_iterations);
    CHRONOS_RETURN_IF_ERROR(runner->Run(&sink));
    StageEmulationRow row;
    row.stage = k;
    std::vector<double> seconds;
    for (const v1::ProgressReport& r : sink.reports) {
      const v1::DeviceIteration& d = r.device();
      seconds.push_back(d.iteration_seconds());
      row.peak_activation_bytes = std::max(row.peak_activation_bytes, d.peak_activation_bytes());
      row.hbm_peak_bytes = std::max(row.hbm_peak_bytes, d.hbm_peak_bytes());
      row.offloaded_bytes = d.offload_copied_bytes();
    }
    row.median_seconds = Median(seconds);
    const DeviceSimResult& sim = plan.sim.devices[k];
    row.predicted_busy_seconds = sim.busy_seconds + sim.copy_wait_seconds;
    row.predicted_peak_activation_bytes = sim.peak_activation_bytes;
    row.predicted_peak_bytes = sim.peak_bytes;
    report.rows.push_back(row);
  }
  return report;
}

}  // namespace chronos::worker

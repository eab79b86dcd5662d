// Runs a whole pipeline-parallel job inside one test process: p x d
// StageRunners on threads, each with its own GlooCommunicator meeting the
// others through a shared InMemoryKeyValueStore. Also the builders the
// executor tests share: tiny job specs, schedules with hand-made memory
// policies, the "cpu" cost model the simulator uses. Tests only.
#ifndef CHRONOS_TESTS_WORKER_PIPELINE_HARNESS_H_
#define CHRONOS_TESTS_WORKER_PIPELINE_HARNESS_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "chronos/v1/job.pb.h"
#include "core/cost_model.h"
#include "core/memory_passes.h"
#include "core/schedule.h"
#include "worker/device_runtime.h"
#include "worker/host_copier.h"
#include "worker/stage_runner.h"

namespace chronos::worker::testing {

// The model and training knobs the tests vary.
struct TinyJob {
  int layers = 4;
  int hidden = 32;
  int heads = 4;
  int ffn = 64;
  int vocab = 256;
  int seq_len = 16;
  int micro_batch = 2;
  int microbatches = 4;
  int pipeline = 2;
  int data = 1;
  int iterations = 5;
  double lr = 1e-3;
  double min_lr = 1e-4;
  int warmup = 2;
  double weight_decay = 0.1;
  double grad_clip = 1.0;
  uint64_t seed = 1234;
  std::string data_path;  // text corpus
};

// A spec with defaults applied (fp32, standard attention, "cpu"); its
// model.layers is the sum of `layers` (job.layers when empty).
v1::JobSpec MakeSpec(const TinyJob& job, const std::string& kind, int chunks_per_device,
                     const std::vector<int>& layers);

// The cost model the simulator and ApplyMemoryPolicy use for `spec` on the
// built-in "cpu" profile.
CostModel CpuCostModel(const v1::JobSpec& spec, const std::vector<int>& layers);

// GenerateSchedule (with `tuning` for the block and list orders) +
// ApplyMemoryPolicy with `policy` (uniform keep when empty); validated.
absl::StatusOr<Schedule> BuildSchedule(const v1::JobSpec& spec, const std::string& kind,
                                       int chunks_per_device, const std::vector<int>& layers,
                                       const PolicyTable& policy, const BlockTuning& tuning = {},
                                       const OrderSearchOptions& search = {});

// Every kind of policy, spread over (chunk, micro-batch): keep, recompute at
// layer / selective / chunk granularity, offload 0.5 and 1.0.
PolicyTable MixedPolicy(int num_chunks, int microbatches);

// ../shared/data/tinyshakespeare.txt when present (tests run from the
// repository root), else "".
std::string ShakespearePath();
// A text corpus for tests that need any text: Shakespeare, or a generated
// file under the test's temp directory.
std::string AnyTextCorpus();

struct PipelineRun {
  v1::JobSpec spec;
  Schedule schedule;
  std::string checkpoint_dir;  // "" = the spec's
  int64_t resume_iteration = 0;
  int checkpoint_num_devices = 0;  // width that wrote it; 0 = this one
  int64_t max_iterations = 0;
  absl::Duration comm_timeout = absl::Seconds(120);
  bool capture_first_grads = false;  // grads of iteration 1 at OPTIM_STEP
  // World ranks that join the communicator but never run (a dead stage).
  std::set<int> idle_ranks;
  // Called on each rank's Run thread after every iteration; a non-OK status
  // stops that rank.
  std::function<absl::Status(int rank, StageRunner& runner, const v1::ProgressReport& report)>
      on_iteration;
  // Each rank's host copier (asynchronous-copy tests); null = synchronous.
  std::function<std::shared_ptr<HostCopier>()> make_copier;
  // Where the stages compute ("cpu", "cuda:0": every rank on that device;
  // device tensors cross Gloo through host memory), and each rank's device
  // runtime (GPU tests); null = none.
  std::string device_name = "cpu";
  std::function<absl::StatusOr<std::shared_ptr<DeviceRuntime>>()> make_runtime;
};

struct RankOutcome {
  int device = 0;
  int data_rank = 0;
  absl::Status status;
  bool ran = false;
  std::vector<v1::ProgressReport> reports;
  std::map<std::string, at::Tensor> first_grads;  // name -> grad (clone)
};

// Runs every rank to completion; outcome index = world rank. The create
// status of a runner, if not OK, is the rank's status.
std::vector<RankOutcome> RunPipeline(const PipelineRun& run);

// Per iteration, the loss averaged over the replicas' last devices.
std::vector<double> ReplicaMeanLosses(const std::vector<RankOutcome>& ranks);

}  // namespace chronos::worker::testing

#endif  // CHRONOS_TESTS_WORKER_PIPELINE_HARNESS_H_

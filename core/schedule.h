// The schedule IR: for each pipeline device, the ordered list of actions it
// runs in one training iteration. Schedules are data: generators are pure
// functions that return a Schedule, the validator and simulator replay it,
// and the worker only interprets it. Safe to share read-only across threads.
#ifndef CHRONOS_CORE_SCHEDULE_H_
#define CHRONOS_CORE_SCHEDULE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace chronos {

enum class ActionType : uint8_t {
  kF,          // forward of (chunk, micro-batch)
  kB,          // full backward
  kBI,         // backward for inputs (gradients of the chunk's input)
  kBW,         // backward for weights
  kSendAct,    // send the chunk's output to `peer`
  kRecvAct,    // receive the chunk's input from `peer`
  kSendGrad,   // send the gradient of the chunk's input to `peer`
  kRecvGrad,   // receive the gradient of the chunk's output from `peer`
  kOffload,    // start copying the saved activations to host memory
  kReload,     // start copying them back
  kRecompute,  // rebuild dropped activations before the backward
  kAllReduce,  // data-parallel all-reduce of the chunk's gradients
  kOptimStep,  // global-norm clip and optimizer step (a collective)
};

enum class PolicyKind : uint8_t { kKeep, kOffload, kRecompute };

enum class Granularity : uint8_t {
  kLayer,      // keep each layer's input; rebuild layer by layer inside B
  kChunk,      // keep the chunk's input; RECOMPUTE rebuilds the whole chunk
  kSelective,  // drop attention internals; rebuilt layer by layer inside B
};

struct MemoryPolicy {
  PolicyKind kind = PolicyKind::kKeep;
  double offload_fraction = 0.0;                  // kOffload: fraction of each saved tensor
  Granularity granularity = Granularity::kLayer;  // kRecompute

  static MemoryPolicy Keep() { return {}; }
  static MemoryPolicy Offload(double fraction) {
    return {PolicyKind::kOffload, fraction, Granularity::kLayer};
  }
  static MemoryPolicy Recompute(Granularity g) { return {PolicyKind::kRecompute, 0.0, g}; }
  bool operator==(const MemoryPolicy& o) const {
    return kind == o.kind && offload_fraction == o.offload_fraction && granularity == o.granularity;
  }
};

struct Action {
  ActionType type = ActionType::kF;
  int32_t chunk = -1;
  int32_t microbatch = -1;
  int32_t peer = -1;    // sends and receives
  MemoryPolicy policy;  // F (and the OFFLOAD/RELOAD/RECOMPUTE it implies)

  static Action Compute(ActionType t, int chunk, int mb) {
    Action a;
    a.type = t;
    a.chunk = chunk;
    a.microbatch = mb;
    return a;
  }
  static Action Comm(ActionType t, int chunk, int mb, int peer) {
    Action a = Compute(t, chunk, mb);
    a.peer = peer;
    return a;
  }
  bool operator==(const Action& o) const {
    return type == o.type && chunk == o.chunk && microbatch == o.microbatch && peer == o.peer &&
           policy == o.policy;
  }
};

struct Schedule {
  std::string kind;                          // "1f1b", "chronos", ...
  int num_devices = 0;                       // p
  int chunks_per_device = 1;                 // v
  int num_microbatches = 0;                  // m
  std::vector<int> chunk_device;             // chunk -> device, size p*v
  std::vector<int> chunk_layers;             // chunk -> transformer layers
  std::vector<std::vector<Action>> devices;  // device -> actions in order
  bool optimizer_offload = false;

  int num_chunks() const { return static_cast<int>(chunk_device.size()); }
  // Chunks of `device`, in increasing chunk order.
  std::vector<int> DeviceChunks(int device) const;
};

bool IsCompute(ActionType t);   // F, B, BI, BW, RECOMPUTE, OPTIM_STEP
bool IsBackward(ActionType t);  // B or BI
const char* ActionTypeName(ActionType t);
// "F", "SEND_ACT", ... as written in schedules; case-insensitive.
bool ParseActionType(absl::string_view name, ActionType* out);
std::string ActionToString(const Action& a);  // e.g. "F(c=2,mb=5)"

}  // namespace chronos

#endif  // CHRONOS_CORE_SCHEDULE_H_

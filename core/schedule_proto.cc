#include "core/schedule_proto.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace chronos {
namespace {

// The wire enums are spelled out value by value rather than cast, so that a
// reordering of either enum is a compile-visible change here instead of a
// silent mistranslation on the worker.
v1::ActionType ToProto(ActionType t) {
  switch (t) {
    case ActionType::kF:
      return v1::ACTION_F;
    case ActionType::kB:
      return v1::ACTION_B;
    case ActionType::kBI:
      return v1::ACTION_BI;
    case ActionType::kBW:
      return v1::ACTION_BW;
    case ActionType::kSendAct:
      return v1::ACTION_SEND_ACT;
    case ActionType::kRecvAct:
      return v1::ACTION_RECV_ACT;
    case ActionType::kSendGrad:
      return v1::ACTION_SEND_GRAD;
    case ActionType::kRecvGrad:
      return v1::ACTION_RECV_GRAD;
    case ActionType::kOffload:
      return v1::ACTION_OFFLOAD;
    case ActionType::kReload:
      return v1::ACTION_RELOAD;
    case ActionType::kRecompute:
      return v1::ACTION_RECOMPUTE;
    case ActionType::kAllReduce:
      return v1::ACTION_ALLREDUCE;
    case ActionType::kOptimStep:
      return v1::ACTION_OPTIM_STEP;
  }
  return v1::ACTION_UNSPECIFIED;
}

bool FromProto(int t, ActionType* out) {
  switch (t) {
    case v1::ACTION_F:
      *out = ActionType::kF;
      return true;
    case v1::ACTION_B:
      *out = ActionType::kB;
      return true;
    case v1::ACTION_BI:
      *out = ActionType::kBI;
      return true;
    case v1::ACTION_BW:
      *out = ActionType::kBW;
      return true;
    case v1::ACTION_SEND_ACT:
      *out = ActionType::kSendAct;
      return true;
    case v1::ACTION_RECV_ACT:
      *out = ActionType::kRecvAct;
      return true;
    case v1::ACTION_SEND_GRAD:
      *out = ActionType::kSendGrad;
      return true;
    case v1::ACTION_RECV_GRAD:
      *out = ActionType::kRecvGrad;
      return true;
    case v1::ACTION_OFFLOAD:
      *out = ActionType::kOffload;
      return true;
    case v1::ACTION_RELOAD:
      *out = ActionType::kReload;
      return true;
    case v1::ACTION_RECOMPUTE:
      *out = ActionType::kRecompute;
      return true;
    case v1::ACTION_ALLREDUCE:
      *out = ActionType::kAllReduce;
      return true;
    case v1::ACTION_OPTIM_STEP:
      *out = ActionType::kOptimStep;
      return true;
    default:
      return false;
  }
}

v1::PolicyKind ToProto(PolicyKind k) {
  switch (k) {
    case PolicyKind::kKeep:
      return v1::POLICY_KEEP;
    case PolicyKind::kOffload:
      return v1::POLICY_OFFLOAD;
    case PolicyKind::kRecompute:
      return v1::POLICY_RECOMPUTE;
  }
  return v1::POLICY_KEEP;
}

bool FromProto(int k, PolicyKind* out) {
  switch (k) {
    case v1::POLICY_KEEP:
      *out = PolicyKind::kKeep;
      return true;
    case v1::POLICY_OFFLOAD:
      *out = PolicyKind::kOffload;
      return true;
    case v1::POLICY_RECOMPUTE:
      *out = PolicyKind::kRecompute;
      return true;
    default:
      return false;
  }
}

v1::Granularity ToProto(Granularity g) {
  switch (g) {
    case Granularity::kLayer:
      return v1::GRANULARITY_LAYER;
    case Granularity::kChunk:
      return v1::GRANULARITY_CHUNK;
    case Granularity::kSelective:
      return v1::GRANULARITY_SELECTIVE;
  }
  return v1::GRANULARITY_LAYER;
}

bool FromProto(int g, Granularity* out) {
  switch (g) {
    case v1::GRANULARITY_LAYER:
      *out = Granularity::kLayer;
      return true;
    case v1::GRANULARITY_CHUNK:
      *out = Granularity::kChunk;
      return true;
    case v1::GRANULARITY_SELECTIVE:
      *out = Granularity::kSelective;
      return true;
    default:
      return false;
  }
}

void AddDevice(const Schedule& s, int device, v1::Schedule* out) {
  v1::DeviceSchedule* ds = out->add_devices();
  ds->set_device(device);
  const std::vector<Action>& actions = s.devices[device];
  ds->mutable_actions()->Reserve(static_cast<int>(actions.size()));
  for (const Action& a : actions) {
    v1::Action* pa = ds->add_actions();
    pa->set_type(ToProto(a.type));
    pa->set_chunk(a.chunk);
    pa->set_microbatch(a.microbatch);
    pa->set_peer(a.peer);
    // Keep is the zero value; leaving the message unset keeps schedules small.
    if (!(a.policy == MemoryPolicy::Keep())) {
      v1::MemoryPolicy* mp = pa->mutable_policy();
      mp->set_kind(ToProto(a.policy.kind));
      mp->set_offload_fraction(a.policy.offload_fraction);
      mp->set_granularity(ToProto(a.policy.granularity));
    }
  }
}

absl::Status Invalid(const std::string& message) {
  return absl::InvalidArgumentError(absl::StrCat("schedule.", message));
}

std::string Range(int lo, int hi) { return absl::StrCat("[", lo, ", ", hi, ")"); }

}  // namespace

v1::Schedule ScheduleToProto(const Schedule& s, int only_device) {
  v1::Schedule out;
  out.set_kind(s.kind);
  out.set_num_devices(s.num_devices);
  out.set_chunks_per_device(s.chunks_per_device);
  out.set_num_microbatches(s.num_microbatches);
  out.mutable_chunk_device()->Add(s.chunk_device.begin(), s.chunk_device.end());
  out.mutable_chunk_layers()->Add(s.chunk_layers.begin(), s.chunk_layers.end());
  out.set_optimizer_offload(s.optimizer_offload);
  const int n = static_cast<int>(s.devices.size());
  if (only_device >= 0) {
    if (only_device < n) AddDevice(s, only_device, &out);
  } else {
    for (int d = 0; d < n; ++d) AddDevice(s, d, &out);
  }
  return out;
}

absl::StatusOr<Schedule> ScheduleFromProto(const v1::Schedule& p) {
  // Bounds before allocation: a hostile or corrupt message must not make the
  // worker reserve billions of entries.
  constexpr int kMaxDevices = 1 << 16;
  constexpr int kMaxChunksPerDevice = 1 << 10;
  constexpr int kMaxMicrobatches = 1 << 20;
  if (p.num_devices() < 1 || p.num_devices() > kMaxDevices) {
    return Invalid(
        absl::StrCat("num_devices must be in [1, ", kMaxDevices, "] (got ", p.num_devices(), ")"));
  }
  if (p.chunks_per_device() < 1 || p.chunks_per_device() > kMaxChunksPerDevice) {
    return Invalid(absl::StrCat("chunks_per_device must be in [1, ", kMaxChunksPerDevice, "] (got ",
                                p.chunks_per_device(), ")"));
  }
  if (p.num_microbatches() < 1 || p.num_microbatches() > kMaxMicrobatches) {
    return Invalid(absl::StrCat("num_microbatches must be in [1, ", kMaxMicrobatches, "] (got ",
                                p.num_microbatches(), ")"));
  }
  Schedule s;
  s.kind = p.kind();
  s.num_devices = p.num_devices();
  s.chunks_per_device = p.chunks_per_device();
  s.num_microbatches = p.num_microbatches();
  s.optimizer_offload = p.optimizer_offload();
  const int num_chunks = s.num_devices * s.chunks_per_device;
  if (p.chunk_device_size() != num_chunks) {
    return Invalid(absl::StrCat("chunk_device has ", p.chunk_device_size(),
                                " entries, expected num_devices * "
                                "chunks_per_device = ",
                                num_chunks));
  }
  for (int c = 0; c < num_chunks; ++c) {
    const int d = p.chunk_device(c);
    if (d < 0 || d >= s.num_devices) {
      return Invalid(
          absl::StrCat("chunk_device[", c, "] ", d, " is outside ", Range(0, s.num_devices)));
    }
  }
  s.chunk_device.assign(p.chunk_device().begin(), p.chunk_device().end());
  if (p.chunk_layers_size() != 0 && p.chunk_layers_size() != num_chunks) {
    return Invalid(absl::StrCat("chunk_layers has ", p.chunk_layers_size(), " entries, expected ",
                                num_chunks));
  }
  for (int c = 0; c < p.chunk_layers_size(); ++c) {
    if (p.chunk_layers(c) < 0) {
      return Invalid(
          absl::StrCat("chunk_layers[", c, "] must be >= 0 (got ", p.chunk_layers(c), ")"));
    }
  }
  s.chunk_layers.assign(p.chunk_layers().begin(), p.chunk_layers().end());

  s.devices.assign(s.num_devices, {});
  std::vector<bool> seen(s.num_devices, false);
  for (int i = 0; i < p.devices_size(); ++i) {
    const v1::DeviceSchedule& ds = p.devices(i);
    const std::string where = absl::StrCat("devices[", i, "]");
    if (ds.device() < 0 || ds.device() >= s.num_devices) {
      return Invalid(
          absl::StrCat(where, ".device ", ds.device(), " is outside ", Range(0, s.num_devices)));
    }
    if (seen[ds.device()]) {
      return Invalid(absl::StrCat(where, ".device ", ds.device(), " appears more than once"));
    }
    seen[ds.device()] = true;
    std::vector<Action>& out = s.devices[ds.device()];
    out.reserve(ds.actions_size());
    for (int j = 0; j < ds.actions_size(); ++j) {
      const v1::Action& pa = ds.actions(j);
      const std::string at = absl::StrCat(where, ".actions[", j, "]");
      Action a;
      if (!FromProto(pa.type(), &a.type)) {
        return Invalid(absl::StrCat(at, ".type has unknown value ", pa.type()));
      }
      // -1 means "not tied to one": OPTIM_STEP has no chunk, ALLREDUCE and
      // OPTIM_STEP no micro-batch, compute actions no peer.
      if (pa.chunk() < -1 || pa.chunk() >= num_chunks) {
        return Invalid(
            absl::StrCat(at, ".chunk ", pa.chunk(), " is outside ", Range(-1, num_chunks)));
      }
      if (pa.microbatch() < -1 || pa.microbatch() >= s.num_microbatches) {
        return Invalid(absl::StrCat(at, ".microbatch ", pa.microbatch(), " is outside ",
                                    Range(-1, s.num_microbatches)));
      }
      if (pa.peer() < -1 || pa.peer() >= s.num_devices) {
        return Invalid(
            absl::StrCat(at, ".peer ", pa.peer(), " is outside ", Range(-1, s.num_devices)));
      }
      a.chunk = pa.chunk();
      a.microbatch = pa.microbatch();
      a.peer = pa.peer();
      if (pa.has_policy()) {
        const v1::MemoryPolicy& mp = pa.policy();
        if (!FromProto(mp.kind(), &a.policy.kind)) {
          return Invalid(absl::StrCat(at, ".policy.kind has unknown value ", mp.kind()));
        }
        if (!FromProto(mp.granularity(), &a.policy.granularity)) {
          return Invalid(
              absl::StrCat(at, ".policy.granularity has unknown value ", mp.granularity()));
        }
        // Written as a negated range check so that NaN fails too.
        if (!(mp.offload_fraction() >= 0.0 && mp.offload_fraction() <= 1.0)) {
          return Invalid(absl::StrCat(at,
                                      ".policy.offload_fraction must be in "
                                      "[0, 1] (got ",
                                      mp.offload_fraction(), ")"));
        }
        a.policy.offload_fraction = mp.offload_fraction();
      }
      out.push_back(a);
    }
  }
  return s;
}

}  // namespace chronos

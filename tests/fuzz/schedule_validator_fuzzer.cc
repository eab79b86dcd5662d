// libFuzzer target: the schedule validator and simulator on hostile
// schedules. The first bytes pick a generated schedule (kind, p, m); the
// rest are edits (swap, delete, duplicate, retarget a peer, change a chunk
// or micro-batch) that produce every kind of broken schedule. The validator
// must return a status without crashing or hanging; a schedule it accepts
// must replay in the simulator.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <utility>
#include <vector>

#include "core/cost_model.h"
#include "core/device_profile.h"
#include "core/generate.h"
#include "core/memory_passes.h"
#include "core/simulator.h"
#include "core/validator.h"

namespace {

class Bytes {
 public:
  Bytes(const uint8_t* d, size_t n) : d_(d), n_(n) {}
  bool empty() const { return i_ >= n_; }
  uint8_t Next() { return i_ < n_ ? d_[i_++] : 0; }

 private:
  const uint8_t* d_;
  size_t n_;
  size_t i_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace chronos;
  Bytes in(data, size);
  const std::vector<std::string>& kinds = ScheduleKinds();
  const std::string kind = kinds[in.Next() % kinds.size()];
  const int p = 1 + in.Next() % 6;
  const int m = 1 + in.Next() % 12;
  const int v = DefaultChunksPerDevice(kind);
  const uint8_t policy_byte = in.Next();

  ModelShape shape;
  shape.layers = p * v;
  shape.hidden = 32;
  shape.heads = 2;
  shape.ffn = 64;
  shape.vocab = 64;
  shape.seq_len = 8;
  std::vector<int> layers(p * v, 1);
  CostModel cm(shape, *BuiltinDeviceProfile("h100"), layers);
  ShapeSpec ss;
  ss.kind = kind;
  ss.num_devices = p;
  ss.chunks_per_device = v;
  ss.num_microbatches = m;
  ss.chunk_layers = layers;
  ss.block.greedy = policy_byte & 0x10;
  ss.block.round_trip_caps = policy_byte & 0x08;
  ss.block.glue_weights = policy_byte & 0x04;
  ss.block.slot_weights = policy_byte & 0x20;  // shares the bit with the offload fraction
  if (!CheckShape(ss).ok()) return 0;
  absl::StatusOr<Schedule> s = GenerateSchedule(ss);
  if (!s.ok()) return 0;
  MemoryPolicy policy = MemoryPolicy::Keep();
  switch (policy_byte % 4) {
    case 1:
      policy = MemoryPolicy::Offload((policy_byte >> 5) / 7.0);
      break;
    case 2:
      policy = MemoryPolicy::Recompute(Granularity::kLayer);
      break;
    case 3:
      policy = MemoryPolicy::Recompute(Granularity::kChunk);
      break;
    default:
      break;
  }
  if (!ApplyMemoryPolicy(&*s, UniformPolicy(*s, policy), cm).ok()) return 0;
  if (!ValidateSchedule(*s).ok()) std::abort();  // generated schedules are valid

  // Edits.
  while (!in.empty()) {
    const uint8_t op = in.Next();
    auto& list = s->devices[in.Next() % p];
    if (list.empty()) continue;
    const size_t i = in.Next() % list.size();
    const size_t j = in.Next() % list.size();
    switch (op % 7) {
      case 0:
        std::swap(list[i], list[j]);
        break;
      case 1:
        list.erase(list.begin() + i);
        break;
      case 2:
        list.insert(list.begin() + j, list[i]);
        break;
      case 3:
        list[i].peer = static_cast<int8_t>(in.Next());
        break;
      case 4:
        list[i].chunk = static_cast<int8_t>(in.Next());
        break;
      case 5:
        list[i].microbatch = static_cast<int8_t>(in.Next());
        break;
      case 6:
        list[i].type = static_cast<ActionType>(in.Next() % 13);
        break;
    }
  }
  (void)FindScheduleErrors(*s);
  if (ValidateSchedule(*s).ok()) {
    SimOptions o;
    o.record_timeline = false;
    if (!Simulate(*s, cm, o).ok()) std::abort();  // validated but cannot replay
  }
  return 0;
}

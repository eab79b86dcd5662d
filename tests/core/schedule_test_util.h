// Shared fixtures for the schedule tests: a small model with hand-picked,
// uniform chunk durations and free communication, so simulated times can be
// compared with closed forms.
#ifndef CHRONOS_TESTS_CORE_SCHEDULE_TEST_UTIL_H_
#define CHRONOS_TESTS_CORE_SCHEDULE_TEST_UTIL_H_

#include <memory>
#include <string>
#include <vector>

#include "core/cost_model.h"
#include "core/device_profile.h"
#include "core/generate.h"
#include "core/memory_passes.h"
#include "core/schedule.h"
#include "gtest/gtest.h"

namespace chronos::testing {

// The LLaMA-like layer of BENCHMARKS.md (h = s = 4096, f = 11008), bf16
// with flash attention, 32 layers.
inline ModelShape Llama7B() {
  ModelShape m;
  m.layers = 32;
  m.hidden = 4096;
  m.heads = 32;
  m.ffn = 11008;
  m.vocab = 32000;
  m.seq_len = 4096;
  m.flash = true;
  m.mixed_precision = true;
  m.act_bytes = 2;
  return m;
}

inline ModelShape SmallShape(int layers) {
  ModelShape m;
  m.layers = layers;
  m.hidden = 64;
  m.heads = 4;
  m.ffn = 172;
  m.vocab = 256;
  m.seq_len = 32;
  return m;
}

// A profile whose links are free, so only compute shows in the timeline.
inline v1::DeviceProfile FreeLinkProfile() {
  v1::DeviceProfile p = *BuiltinDeviceProfile("cpu");
  p.set_p2p_bandwidth(1e30);
  p.set_p2p_latency_seconds(0);
  p.set_kernel_overhead_seconds(0);
  p.set_allreduce_bandwidth(1e30);
  return p;
}

// Chunk durations F = f, BI = bi, BW = bw on every chunk.
inline std::unique_ptr<CostModel> UniformCosts(int chunks, double f, double bi, double bw) {
  std::vector<int> layers(chunks, 1);
  auto cm = std::make_unique<CostModel>(SmallShape(chunks), FreeLinkProfile(), layers);
  for (int c = 0; c < chunks; ++c) cm->SetChunkSeconds(c, f, bi, bw);
  return cm;
}

// Generates, adds keep-everything memory actions and OPTIM_STEP.
inline Schedule Build(const ShapeSpec& shape, const CostModel& cm,
                      const MemoryPolicy& policy = MemoryPolicy::Keep()) {
  absl::StatusOr<Schedule> s = GenerateSchedule(shape);
  EXPECT_TRUE(s.ok()) << s.status();
  if (!s.ok()) return {};
  absl::Status st = ApplyMemoryPolicy(&*s, UniformPolicy(*s, policy), cm);
  EXPECT_TRUE(st.ok()) << st;
  return *std::move(s);
}

}  // namespace chronos::testing

#endif  // CHRONOS_TESTS_CORE_SCHEDULE_TEST_UTIL_H_

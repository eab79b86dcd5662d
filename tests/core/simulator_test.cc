#include "core/simulator.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include "core/validator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/schedule_test_util.h"

namespace chronos {
namespace {

using ::chronos::testing::Build;
using ::chronos::testing::UniformCosts;

SimResult Replay(const Schedule& s, const CostModel& cm) {
  absl::StatusOr<SimResult> r = Simulate(s, cm);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *std::move(r) : SimResult{};
}

class OneFOneBClosedForm : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(OneFOneBClosedForm, BubbleIsPMinusOneOverMPlusPMinusOne) {
  const auto [p, m] = GetParam();
  // F = 1, B = 2 (BI + BW) on every stage, free links.
  auto cm = UniformCosts(p, 1.0, 1.0, 1.0);
  Schedule s = Build(ScheduleShape("1f1b", p, 1, m, *cm), *cm);
  SimResult r = Replay(s, *cm);
  const double expected = static_cast<double>(p - 1) / (m + p - 1);
  EXPECT_NEAR(r.bubble_ratio, expected, 1e-9);
  // (m + p - 1) slots of F + B each on the critical path.
  EXPECT_NEAR(r.pipeline_seconds, 3.0 * (m + p - 1), 1e-9);
}

TEST_P(OneFOneBClosedForm, StageDHoldsMinOfPMinusDAndMActivations) {
  const auto [p, m] = GetParam();
  auto cm = UniformCosts(p, 1.0, 1.0, 1.0);
  Schedule s = Build(ScheduleShape("1f1b", p, 1, m, *cm), *cm);
  SimResult r = Replay(s, *cm);
  for (int d = 0; d < p; ++d) {
    const int inflight = std::min(p - d, m);
    EXPECT_EQ(r.devices[d].max_inflight, inflight) << "device " << d;
    EXPECT_EQ(r.devices[d].peak_activation_bytes, inflight * cm->KeptBytes(d, SaveMode::kAll))
        << "device " << d;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, OneFOneBClosedForm,
                         ::testing::Values(std::make_tuple(2, 2), std::make_tuple(4, 8),
                                           std::make_tuple(4, 5), std::make_tuple(8, 32),
                                           std::make_tuple(3, 7)));

TEST(SimulatorTest, GPipeBubbleMatchesOneFOneBButHoldsEveryMicrobatch) {
  const int p = 4, m = 8;
  auto cm = UniformCosts(p, 1.0, 1.0, 1.0);
  SimResult r = Replay(Build(ScheduleShape("gpipe", p, 1, m, *cm), *cm), *cm);
  EXPECT_NEAR(r.bubble_ratio, 3.0 / 11.0, 1e-9);
  for (int d = 0; d < p; ++d) EXPECT_EQ(r.devices[d].max_inflight, m);
}

TEST(SimulatorTest, InterleavedWarmupFollowsMegatronsRule) {
  // Megatron-LM: warm-up forwards on rank d = (p - d - 1) * 2 + (v - 1) * p
  // when m is a multiple of p, capped by m * v.
  // forwards before the first backward = warm-up + the steady state's first.
  for (int p : {2, 4, 8}) {
    for (int v : {2, 3}) {
      const int m = 2 * p;
      auto cm = UniformCosts(p * v, 1.0, 1.0, 1.0);
      absl::StatusOr<Schedule> s = GenerateSchedule(ScheduleShape("interleaved", p, v, m, *cm));
      ASSERT_TRUE(s.ok()) << s.status();
      for (int d = 0; d < p; ++d) {
        int forwards = 0;
        for (const Action& a : s->devices[d]) {
          if (a.type == ActionType::kB || a.type == ActionType::kBI) break;
          forwards += a.type == ActionType::kF;
        }
        const int warmup = std::min((p - d - 1) * 2 + (v - 1) * p, m * v);
        // The steady state opens with one more forward before its backward.
        const int expected = warmup < m * v ? warmup + 1 : warmup;
        EXPECT_EQ(forwards, expected) << "p=" << p << " v=" << v << " device " << d;
      }
    }
  }
}

TEST(SimulatorTest, InterleavingShrinksTheBubbleByV) {
  // With uniform costs the interleaved bubble is (p-1)/(v*m + p - 1) of the
  // pipeline time (Narayanan et al. 2021), against (p-1)/(m+p-1).
  const int p = 4, m = 8, v = 2;
  auto cm = UniformCosts(p * v, 0.5, 0.5, 0.5);
  SimResult r = Replay(Build(ScheduleShape("interleaved", p, v, m, *cm), *cm), *cm);
  EXPECT_NEAR(r.bubble_ratio, (p - 1.0) / (v * m + p - 1.0), 1e-9);
}

TEST(SimulatorTest, OffloadedBytesLeaveTheDeviceAndComeBack) {
  // GPipe holds every micro-batch at the turn, so offloading shows there.
  const int p = 2, m = 8;
  auto cm = UniformCosts(p, 1.0, 1.0, 1.0);
  Schedule keep = Build(ScheduleShape("gpipe", p, 1, m, *cm), *cm);
  Schedule half = Build(ScheduleShape("gpipe", p, 1, m, *cm), *cm, MemoryPolicy::Offload(0.5));
  ASSERT_TRUE(ValidateSchedule(half).ok()) << ValidateSchedule(half);
  SimResult rk = Replay(keep, *cm);
  SimResult rh = Replay(half, *cm);
  for (int d = 0; d < p; ++d) {
    EXPECT_GT(rh.devices[d].peak_offloaded_bytes, 0);
    EXPECT_LT(rh.devices[d].peak_activation_bytes, rk.devices[d].peak_activation_bytes);
    EXPECT_EQ(rk.devices[d].peak_offloaded_bytes, 0);
  }
}

TEST(MemoryPassTest, OffloadingNothingIsKeepingAndBadFractionsAreRefused) {
  // Found by schedule_validator_fuzzer: Offload(0) produced a schedule the
  // validator (rightly) rejects.
  auto cm = UniformCosts(2, 1.0, 1.0, 1.0);
  Schedule none = Build(ScheduleShape("1f1b", 2, 1, 4, *cm), *cm, MemoryPolicy::Offload(0.0));
  EXPECT_TRUE(ValidateSchedule(none).ok()) << ValidateSchedule(none);
  Schedule keep = Build(ScheduleShape("1f1b", 2, 1, 4, *cm), *cm);
  EXPECT_EQ(none.devices, keep.devices);
  absl::StatusOr<Schedule> s = GenerateSchedule(ScheduleShape("1f1b", 2, 1, 4, *cm));
  ASSERT_TRUE(s.ok());
  for (double bad : {-0.5, 1.5, std::nan("")}) {
    absl::Status st = ApplyMemoryPolicy(&*s, UniformPolicy(*s, MemoryPolicy::Offload(bad)), *cm);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(st.message(), ::testing::HasSubstr("offload fraction")) << bad;
  }
}

TEST(SimulatorTest, RecomputeCostsTimeAndSavesMemory) {
  const int p = 2, m = 8;
  auto cm = UniformCosts(p, 1.0, 1.0, 1.0);
  SimResult rk = Replay(Build(ScheduleShape("gpipe", p, 1, m, *cm), *cm), *cm);
  SimResult rr = Replay(Build(ScheduleShape("gpipe", p, 1, m, *cm), *cm,
                              MemoryPolicy::Recompute(Granularity::kChunk)),
                        *cm);
  for (int d = 0; d < p; ++d) {
    EXPECT_GT(rr.devices[d].recompute_seconds, 0);
    EXPECT_LT(rr.devices[d].peak_activation_bytes, rk.devices[d].peak_activation_bytes);
  }
  EXPECT_GT(rr.pipeline_seconds, rk.pipeline_seconds);
}

TEST(SimulatorTest, PeakIsTheSumOfItsCategories) {
  auto cm = UniformCosts(4, 1.0, 1.0, 1.0);
  SimOptions o;
  o.record_curves = true;
  absl::StatusOr<SimResult> r = Simulate(Build(ScheduleShape("1f1b", 4, 1, 8, *cm), *cm), *cm, o);
  ASSERT_TRUE(r.ok());
  for (const DeviceSimResult& d : r->devices) {
    EXPECT_EQ(d.peak_bytes, d.at_peak.DeviceTotal());
    ASSERT_FALSE(d.curve.empty());
    int64_t max_total = 0;
    for (const MemorySample& s : d.curve) max_total = std::max(max_total, s.bytes.DeviceTotal());
    EXPECT_EQ(max_total, d.peak_bytes);
  }
}

// Optimizer state in host memory: a profile with asynchronous copies and
// round numbers, a 1F1B pipeline whose compute (seconds) dwarfs the state's
// transfer (well under a millisecond).
TEST(SimulatorTest, RoundTripCapsBoundEachDevicesInflight) {
  // Chronos V, p = 4 (chunks 0..7, device d holds d and 7 - d), list-
  // scheduled with round-trip caps: device d's first chunk d waits for the
  // 7 - d chunks after it, there and back, while the device does its two
  // chunks' F + B per micro-batch, so it admits (7 - d + 1) / 2 + 1.
  const int p = 4, m = 16;
  auto cm = UniformCosts(2 * p, 1.0, 1.0, 1.0);
  ShapeSpec shape = ScheduleShape("chronos", p, 2, m, *cm);
  shape.block.greedy = true;
  shape.block.round_trip_caps = true;
  Schedule s = Build(shape, *cm);
  ASSERT_TRUE(ValidateSchedule(s).ok()) << ValidateSchedule(s);
  SimResult r = Replay(s, *cm);
  const int caps[p] = {5, 4, 4, 3};
  for (int d = 0; d < p; ++d) {
    EXPECT_LE(r.devices[d].max_inflight, caps[d]) << "device " << d;
    EXPECT_GE(r.devices[d].max_inflight, 2) << "device " << d;
  }
  EXPECT_LT(r.devices[p - 1].max_inflight, r.devices[0].max_inflight);
}

// weights_first: on every device, each BW whose BI already ran comes
// before the next F of the device's first chunk (a new micro-batch), and
// the weight-gradient stashes it frees early keep the peak from rising.
TEST(SimulatorTest, WeightsFirstRunsReadyWeightGradientsBeforeANewMicroBatch) {
  for (const auto [p, m] : {std::pair{4, 8}, std::pair{4, 16}, std::pair{8, 32}}) {
    auto cm = UniformCosts(2 * p, 1.0, 1.25, 1.0);
    ShapeSpec shape = ScheduleShape("chronos", p, 2, m, *cm);
    shape.block.uniform_costs = true;
    const SimResult plain = Replay(Build(shape, *cm), *cm);
    shape.block.weights_first = true;
    Schedule s = Build(shape, *cm);
    ASSERT_TRUE(ValidateSchedule(s).ok()) << ValidateSchedule(s);
    for (int d = 0; d < p; ++d) {
      std::set<std::pair<int, int>> bi_done, bw_done;
      for (const Action& a : s.devices[d]) {
        if (a.type == ActionType::kBI) bi_done.insert({a.chunk, a.microbatch});
        if (a.type == ActionType::kBW) bw_done.insert({a.chunk, a.microbatch});
        if (a.type == ActionType::kF && a.chunk == d) {
          EXPECT_EQ(bi_done, bw_done) << "p " << p << " device " << d << ": F of micro-batch "
                                      << a.microbatch << " runs while a ready BW waits";
        }
      }
    }
    const SimResult first = Replay(s, *cm);
    for (int d = 0; d < p; ++d) {
      EXPECT_LE(first.devices[d].peak_activation_bytes, plain.devices[d].peak_activation_bytes)
          << "p " << p << " device " << d;
    }
  }
}

class OptimizerStreamTest : public ::testing::Test {
 protected:
  OptimizerStreamTest() {
    v1::DeviceProfile prof = ::chronos::testing::FreeLinkProfile();
    prof.set_async_copies(true);
    prof.set_h2d_bandwidth(1e9);
    prof.set_d2h_bandwidth(1e9);
    prof.set_duplex_bandwidth(1.5e9);
    cm_ = std::make_unique<CostModel>(::chronos::testing::SmallShape(2), prof,
                                      std::vector<int>{1, 1});
    for (int c = 0; c < 2; ++c) cm_->SetChunkSeconds(c, 1.0, 1.0, 1.0);
    schedule_ = Build(ScheduleShape("1f1b", 2, 1, 4, *cm_), *cm_);
  }
  int64_t State(int d) const { return cm_->chunk(d).optimizer_bytes; }
  SimResult Run(int64_t budget) {
    SimOptions o;
    o.optimizer_offload = {1.0, 1.0};
    o.hbm_budget = budget;
    o.record_curves = true;
    absl::StatusOr<SimResult> r = Simulate(schedule_, *cm_, o);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *std::move(r) : SimResult{};
  }
  std::unique_ptr<CostModel> cm_;
  Schedule schedule_;
};

TEST_F(OptimizerStreamTest, WithRoomTheStepHidesBothDirections) {
  SimResult r = Run(0);  // no budget: HBM is never short
  for (int d = 0; d < 2; ++d) {
    const DeviceSimResult& dr = r.devices[d];
    // State came in during the drain and goes out during the next warm-up
    // (the D2H engine is idle from t = 0): nothing is left for the step.
    EXPECT_EQ(dr.optimizer_writeback_bytes, State(d)) << "device " << d;
    EXPECT_NEAR(dr.optimizer_stream_seconds, 0.0, 1e-12) << "device " << d;
    // The previous iteration's write-back holds HBM at t = 0 and has
    // drained once the engine moved it (State / 1 GB/s), up to rounding to
    // the 8 pieces it is released in.
    bool held = false, drained = false;
    const double drain_end = static_cast<double>(State(d)) / 1e9;
    for (const MemorySample& m : dr.curve) {
      if (m.time == 0 && m.bytes.optimizer >= State(d) - 8) held = true;
      if (m.time > 0 && m.time <= drain_end + 1e-12 && m.bytes.optimizer < 8) drained = true;
    }
    EXPECT_TRUE(held) << "device " << d;
    EXPECT_TRUE(drained) << "device " << d;
  }
}

TEST_F(OptimizerStreamTest, WithoutRoomTheStepMovesEverythingBothWays) {
  SimResult r = Run(1);  // a 1-byte budget: no HBM to prefetch into or park in
  for (int d = 0; d < 2; ++d) {
    const DeviceSimResult& dr = r.devices[d];
    const double state = static_cast<double>(State(d));
    EXPECT_EQ(dr.optimizer_writeback_bytes, 0) << "device " << d;
    // In and out both in the step: max(in / h2d, out / d2h, (in + out) / duplex).
    EXPECT_NEAR(dr.optimizer_stream_seconds, 2 * state / 1.5e9, 1e-15) << "device " << d;
  }
}

TEST_F(OptimizerStreamTest, MoreHbmNeverSlowsTheStep) {
  double last_iteration = 1e300;
  int64_t last_writeback = -1;
  // From too little for the weights alone to plenty for everything.
  for (int64_t budget = int64_t{1} << 16; budget <= int64_t{1} << 26; budget *= 2) {
    SimResult r = Run(budget);
    EXPECT_LE(r.iteration_seconds, last_iteration + 1e-12) << "budget " << budget;
    EXPECT_GE(r.devices[0].optimizer_writeback_bytes, last_writeback) << "budget " << budget;
    if (last_writeback < 0) EXPECT_EQ(r.devices[0].optimizer_writeback_bytes, 0);
    last_iteration = r.iteration_seconds;
    last_writeback = r.devices[0].optimizer_writeback_bytes;
  }
  EXPECT_EQ(last_writeback, State(0));
}

// Updated state that waits for the next iteration's write-back is released
// as it drains, so activations that appear mid-drain only need the part
// still waiting to fit beside them, not the whole state.
TEST_F(OptimizerStreamTest, WriteBackOnlyNeedsRoomForWhatHasNotDrained) {
  const int64_t state = State(1);
  // The write-back drains over 4 s; device 1's first activation appears at
  // t = 2 (F on device 0, then on device 1, 1 s each).
  v1::DeviceProfile prof = cm_->profile();
  prof.set_d2h_bandwidth(static_cast<double>(state) / 4.0);
  prof.set_duplex_bandwidth(2 * prof.d2h_bandwidth());
  CostModel slow(cm_->shape(), prof, cm_->chunk_layers());
  for (int c = 0; c < 2; ++c) slow.SetChunkSeconds(c, 1.0, 1.0, 1.0);
  SimOptions o;
  o.optimizer_offload = {1.0, 1.0};
  o.hbm_budget = int64_t{1} << 40;
  absl::StatusOr<SimResult> roomy = Simulate(schedule_, slow, o);
  ASSERT_TRUE(roomy.ok()) << roomy.status();
  const DeviceSimResult& r1 = roomy->devices[1];
  const int64_t activations = r1.peak_activation_bytes + r1.peak_buffer_bytes;
  ASSERT_GT(activations, 0);
  ASSERT_LE(activations, state / 2) << "the shape no longer suits this test";
  // HBM for exactly the state beside the weights, gradients and the step's
  // double buffer (two of the largest unit's state): the whole state can
  // wait at t = 0, and by t = 2 half of it has drained, which leaves room
  // for the activations.
  int64_t largest_unit = 0;
  for (const UnitCost& u : slow.chunk(1).units) largest_unit = std::max(largest_unit, u.params);
  o.hbm_budget = r1.at_peak.weights + r1.at_peak.gradients + state + 2 * largest_unit * 12;
  absl::StatusOr<SimResult> tight = Simulate(schedule_, slow, o);
  ASSERT_TRUE(tight.ok()) << tight.status();
  EXPECT_EQ(tight->devices[1].optimizer_writeback_bytes, state);
  EXPECT_LE(tight->devices[1].peak_bytes, o.hbm_budget);
}

TEST_F(OptimizerStreamTest, StreamingNeverPushesADeviceOverItsBudget) {
  // With no room for streaming the device needs `floor` (weights,
  // gradients, activations, the step's buffers); above that, whatever the
  // prefetch and write-back take must still fit.
  int64_t floor = 0;
  for (const DeviceSimResult& dr : Run(1).devices) floor = std::max(floor, dr.peak_bytes);
  for (int64_t extra = 0; extra <= 3 * State(0); extra += State(0) / 7) {
    SimResult r = Run(floor + extra);
    for (int d = 0; d < 2; ++d) {
      EXPECT_LE(r.devices[d].peak_bytes, floor + extra) << "device " << d << " extra " << extra;
    }
  }
}

}  // namespace
}  // namespace chronos

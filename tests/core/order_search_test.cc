#include "core/order_search.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/cost_model.h"
#include "core/device_profile.h"
#include "core/generate.h"
#include "core/generators_internal.h"
#include "core/memory_passes.h"
#include "core/simulator.h"
#include "core/validator.h"
#include "gtest/gtest.h"
#include "tests/core/schedule_test_util.h"

namespace chronos {
namespace {

using ::chronos::testing::Llama7B;

// The LLaMA-like layer on the H100 profile, `layers` split into p * v
// chunks balanced by cost: real durations, hop times and stash sizes.
struct Fixture {
  std::unique_ptr<CostModel> cm;
  ShapeSpec shape;
};

Fixture Llama(const std::string& kind, int p, int v, int m, int layers) {
  ModelShape ms = Llama7B();
  ms.layers = layers;
  const v1::DeviceProfile prof = *BuiltinDeviceProfile("h100");
  absl::StatusOr<std::vector<int>> split = PartitionLayers(ms, p * v, {});
  EXPECT_TRUE(split.ok()) << split.status();
  Fixture s;
  s.cm = std::make_unique<CostModel>(ms, prof, *split);
  s.shape = ScheduleShape(kind, p, v, m, *s.cm);
  return s;
}

// The project's simulator on the finished schedule (memory actions, all
// kept): the independent reference for the search's own replay.
struct Simulated {
  double pipeline = 0;
  double bubble = 0;
  int64_t worst = 0;
};

Simulated SimulateKept(Schedule s, const CostModel& cm) {
  EXPECT_TRUE(ApplyMemoryPolicy(&s, UniformPolicy(s, MemoryPolicy::Keep()), cm).ok());
  absl::Status valid = ValidateSchedule(s);
  EXPECT_TRUE(valid.ok()) << valid;
  SimOptions so;
  so.record_timeline = false;
  absl::StatusOr<SimResult> r = Simulate(s, cm, so);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return {};
  Simulated out{r->pipeline_seconds, r->bubble_ratio, 0};
  for (const auto& d : r->devices) out.worst = std::max(out.worst, d.peak_activation_bytes);
  return out;
}

TEST(OrderSearchTest, ReplayAgreesWithTheSimulator) {
  struct Case {
    std::string kind;
    int p, v, m;
    bool unit;
  };
  for (const Case& c : {Case{"1f1b", 4, 1, 8, false}, Case{"zbh1", 4, 1, 12, false},
                        Case{"chronos", 4, 2, 8, false}, Case{"chronos", 4, 4, 8, true},
                        Case{"interleaved", 2, 3, 6, false}, Case{"gpipe", 3, 1, 5, false}}) {
    SCOPED_TRACE(c.kind + " v=" + std::to_string(c.v));
    Fixture s = Llama(c.kind, c.p, c.v, c.m, 2 * c.p * c.v);
    s.shape.block.uniform_costs = c.unit;
    absl::StatusOr<Schedule> g = GenerateSchedule(s.shape);
    ASSERT_TRUE(g.ok()) << g.status();
    absl::StatusOr<OrderCost> replay = ReplayOrders(*g, s.shape.costs);
    ASSERT_TRUE(replay.ok()) << replay.status();
    const Simulated sim = SimulateKept(*g, *s.cm);
    EXPECT_NEAR(replay->pipeline_seconds, sim.pipeline, 1e-9 * sim.pipeline);
    EXPECT_EQ(replay->worst_activation_bytes, sim.worst);
    ASSERT_EQ(replay->device_activation_bytes.size(), static_cast<size_t>(c.p));
  }
}

TEST(OrderSearchTest, NeverExceedsTheCapAndNeverSlowsThePipeline) {
  Fixture s = Llama("chronos", 4, 4, 8, 32);
  s.shape.block.uniform_costs = true;
  absl::StatusOr<Schedule> start = GenerateSchedule(s.shape);
  ASSERT_TRUE(start.ok()) << start.status();
  const Simulated before = SimulateKept(*start, *s.cm);
  // 0 = the start's own worst peak; then two tighter and looser caps.
  for (const int64_t cap : {int64_t{0}, before.worst * 9 / 10, before.worst * 6 / 5}) {
    SCOPED_TRACE(cap);
    s.shape.search.steps = 20'000;
    s.shape.search.activation_cap_bytes = cap;
    absl::StatusOr<Schedule> searched = GenerateSchedule(s.shape);
    ASSERT_TRUE(searched.ok()) << searched.status();
    const Simulated after = SimulateKept(*searched, *s.cm);
    if (cap == 0 || cap >= before.worst) {
      EXPECT_LE(after.worst, cap == 0 ? before.worst : cap);
      EXPECT_LE(after.pipeline, before.pipeline * (1 + 1e-12));
    } else {
      // A cap under the start's peak: the search may not reach it, but it
      // never returns more memory than it started with.
      EXPECT_LE(after.worst, before.worst);
    }
  }
}

TEST(OrderSearchTest, RoomUnderTheCapBuysAShorterPipeline) {
  Fixture s = Llama("chronos", 4, 4, 8, 32);
  s.shape.block.uniform_costs = true;
  absl::StatusOr<Schedule> start = GenerateSchedule(s.shape);
  ASSERT_TRUE(start.ok());
  const Simulated before = SimulateKept(*start, *s.cm);
  s.shape.search.steps = 50'000;
  s.shape.search.activation_cap_bytes = before.worst * 5 / 4;
  absl::StatusOr<Schedule> searched = GenerateSchedule(s.shape);
  ASSERT_TRUE(searched.ok());
  const Simulated after = SimulateKept(*searched, *s.cm);
  EXPECT_LT(after.pipeline, before.pipeline * 0.99);
  EXPECT_LE(after.worst, s.shape.search.activation_cap_bytes);
  // The report describes the same search.
  OrderSearchReport report;
  absl::StatusOr<Schedule> direct = SearchOrders(*start, s.shape.costs, s.shape.search, &report);
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ(report.activation_cap_bytes, s.shape.search.activation_cap_bytes);
  EXPECT_TRUE(report.cap_met);
  EXPECT_NEAR(report.start.pipeline_seconds, before.pipeline, 1e-9 * before.pipeline);
  EXPECT_NEAR(report.result.pipeline_seconds, after.pipeline, 1e-9 * after.pipeline);
  EXPECT_GT(report.accepted, 0);
}

TEST(OrderSearchTest, SameSeedSameOrdersOtherSeedOtherOrders) {
  Fixture s = Llama("chronos", 4, 2, 8, 16);
  s.shape.search.steps = 5'000;
  s.shape.search.activation_cap_bytes = 0;
  absl::StatusOr<Schedule> a = GenerateSchedule(s.shape);
  absl::StatusOr<Schedule> b = GenerateSchedule(s.shape);
  s.shape.search.seed = 7;
  absl::StatusOr<Schedule> c = GenerateSchedule(s.shape);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->devices, b->devices);
  EXPECT_NE(a->devices, c->devices);
}

// A caller's stop check ends the search within one poll interval of firing,
// with kCancelled, and a stopped search is not remembered as a result.
TEST(OrderSearchTest, AStopCheckEndsTheSearchAtItsNextPoll) {
  Fixture s = Llama("chronos", 4, 2, 8, 16);
  const Schedule start = *GenerateSchedule(s.shape);  // no search: the start
  OrderSearchOptions o;
  o.steps = 100'000'000;  // minutes, were it not stopped
  int polls = 0;
  o.should_stop = [&polls] { return ++polls > 3; };
  struct CountingMemo : OrderSearchMemo {
    int inserts = 0;
    std::optional<SearchedOrders> Find(const std::string&) override { return std::nullopt; }
    void Insert(const std::string&, const SearchedOrders&) override { ++inserts; }
  } memo;
  o.memo = &memo;
  absl::StatusOr<Schedule> searched = SearchOrders(start, s.shape.costs, o);
  EXPECT_EQ(searched.status().code(), absl::StatusCode::kCancelled) << searched.status();
  // Polled at steps 0, 256, 512 and stopped at 768.
  EXPECT_EQ(polls, 4);
  EXPECT_NE(searched.status().message().find("768 of 100000000 steps"), std::string::npos)
      << searched.status();
  EXPECT_EQ(memo.inserts, 0);
  // A check that never fires changes nothing: the same orders as without.
  o.steps = 2'000;
  o.memo = nullptr;
  o.should_stop = [] { return false; };
  absl::StatusOr<Schedule> polled = SearchOrders(start, s.shape.costs, o);
  o.should_stop = nullptr;
  absl::StatusOr<Schedule> plain = SearchOrders(start, s.shape.costs, o);
  ASSERT_TRUE(polled.ok() && plain.ok());
  EXPECT_EQ(polled->devices, plain->devices);
}

TEST(OrderSearchTest, RefusesWhatItCannotReplay) {
  Fixture s = Llama("1f1b", 2, 1, 4, 4);
  absl::StatusOr<Schedule> g = GenerateSchedule(s.shape);
  ASSERT_TRUE(g.ok());
  // A device that runs its B before its F waits for ever.
  Schedule stuck = *g;
  std::vector<Action>& d1 = stuck.devices[1];
  auto f =
      std::find_if(d1.begin(), d1.end(), [](const Action& a) { return a.type == ActionType::kF; });
  auto b =
      std::find_if(d1.begin(), d1.end(), [](const Action& a) { return a.type == ActionType::kB; });
  ASSERT_TRUE(f != d1.end() && b != d1.end());
  std::iter_swap(f, b);
  EXPECT_EQ(ReplayOrders(stuck, s.shape.costs).status().code(),
            absl::StatusCode::kFailedPrecondition);
  OrderSearchOptions o;
  o.steps = 10;
  EXPECT_EQ(SearchOrders(stuck, s.shape.costs, o).status().code(),
            absl::StatusCode::kFailedPrecondition);

  ChunkCosts no_bytes = s.shape.costs;
  no_bytes.kept_bytes.clear();
  absl::Status st = ReplayOrders(*g, no_bytes).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("activation bytes"), std::string::npos) << st;

  Schedule with_memory = *g;
  ASSERT_TRUE(
      ApplyMemoryPolicy(&with_memory, UniformPolicy(with_memory, MemoryPolicy::Keep()), *s.cm)
          .ok());
  st = ReplayOrders(with_memory, s.shape.costs).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("is OPTIM_STEP"), std::string::npos) << st;

  o.steps = -1;
  st = SearchOrders(*g, s.shape.costs, o).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("schedule.order_search_steps"), std::string::npos) << st;
}

// CHRONOS.md section 8, first figure: with the cost model (H100 profile,
// LLaMA-like layer h = s = 4096, 64 layers), p = 8, m = 32, Chronos-Pipe's
// worst device holds at most half of 1F1B's peak activations at no more
// bubble than 1F1B. The four-chunk V laid out with unit costs, refined by
// the order search under that cap; 1F1B from its own generator.
TEST(OrderSearchTest, ChronosPipeHalvesOneFOneBsActivationsAtNoMoreBubble) {
  const int p = 8, m = 32, layers = 64;
  Fixture one = Llama("1f1b", p, 1, m, layers);
  absl::StatusOr<Schedule> g1 = GenerateSchedule(one.shape);
  ASSERT_TRUE(g1.ok());
  const Simulated base = SimulateKept(*g1, *one.cm);

  Fixture chronos = Llama("chronos", p, 4, m, layers);
  chronos.shape.block.uniform_costs = true;
  absl::StatusOr<Schedule> plain = GenerateSchedule(chronos.shape);
  ASSERT_TRUE(plain.ok());
  const Simulated unsearched = SimulateKept(*plain, *chronos.cm);
  // Without the search the block meets the memory half and misses the
  // bubble half: the search is what closes it.
  EXPECT_GT(unsearched.bubble, base.bubble);

  chronos.shape.search.steps = 3'000'000;
  chronos.shape.search.activation_cap_bytes = base.worst / 2;
  absl::StatusOr<Schedule> g = GenerateSchedule(chronos.shape);
  ASSERT_TRUE(g.ok()) << g.status();
  const Simulated got = SimulateKept(*g, *chronos.cm);
  EXPECT_LE(got.worst, base.worst / 2);
  EXPECT_LE(got.bubble, base.bubble);
  RecordProperty("activation_vs_1f1b", std::to_string(double(got.worst) / base.worst));
  RecordProperty("bubble", std::to_string(got.bubble));
}

}  // namespace
}  // namespace chronos

#include "core/planner.h"

#include <algorithm>
#include <atomic>
#include <limits>

#include "core/device_profile.h"
#include "core/job_spec_validation.h"
#include "core/render.h"
#include "core/validator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace chronos {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kGiB = int64_t{1} << 30;

v1::JobSpec LlamaLike(int layers, int p, int m) {
  v1::JobSpec spec;
  auto* mo = spec.mutable_model();
  mo->set_layers(layers);
  mo->set_hidden(2048);
  mo->set_heads(16);
  mo->set_ffn_hidden(5504);
  mo->set_vocab(32000);
  mo->set_seq_len(2048);
  mo->set_attention(v1::ATTENTION_FLASH);
  spec.mutable_training()->set_microbatches(m);
  spec.mutable_training()->set_micro_batch_size(1);
  spec.mutable_training()->set_precision(v1::PRECISION_BF16);
  spec.mutable_parallel()->set_pipeline(p);
  spec.mutable_parallel()->set_data(1);
  spec.mutable_schedule()->set_kind("chronos");
  return spec;
}

v1::DeviceProfile H100() { return *BuiltinDeviceProfile("h100"); }

int64_t WorstPeak(const PlannedSchedule& ps) {
  int64_t w = 0;
  for (const auto& d : ps.sim.devices) w = std::max(w, d.peak_bytes);
  return w;
}

TEST(PlannerTest, NeverExceedsTheBudgetItWasGiven) {
  const v1::JobSpec spec = LlamaLike(32, 4, 8);
  for (const char* variant : {"1f1b", "interleaved", "zbh1", "chronos", "gpipe"}) {
    PlanOptions o;
    o.hbm_budget_bytes = 64 * kGiB;
    absl::StatusOr<PlannedSchedule> roomy = PlanSchedule(spec, H100(), variant, o);
    ASSERT_TRUE(roomy.ok()) << roomy.status();
    const int64_t need = WorstPeak(*roomy);
    int fitted = 0;
    // Squeeze the budget step by step below what keeping everything needs.
    for (double f : {1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4}) {
      o.hbm_budget_bytes = static_cast<int64_t>(need * f);
      absl::StatusOr<PlannedSchedule> ps = PlanSchedule(spec, H100(), variant, o);
      ASSERT_TRUE(ps.ok()) << variant << ": " << ps.status();
      if (!ps->fits) continue;
      ++fitted;
      for (const auto& d : ps->sim.devices) {
        EXPECT_LE(d.peak_bytes, o.hbm_budget_bytes) << variant << " at " << f;
      }
      for (const auto& d : ps->report.devices()) {
        EXPECT_TRUE(d.fits());
        EXPECT_LE(d.peak_bytes(), d.budget_bytes());
      }
      EXPECT_TRUE(ValidateSchedule(ps->schedule).ok());
    }
    // Keeping everything fits at 1.0; offload and recompute must carry
    // the plan some way below that.
    EXPECT_GE(fitted, 3) << variant;
  }
}

// Interleaved 1F1B's warm-up produces activations faster than the host
// link takes them, so offloads that each hide on their own queue up and
// are still resident at the peak. With nothing else left to evict (the
// optimizer state stays on the device here), the planner recomputes those
// instead of giving up; before it learnt to, this budget did not fit.
TEST(PlannerTest, RecomputesOffloadedActivationsStillResidentAtThePeak) {
  v1::JobSpec spec = LlamaLike(32, 4, 8);
  spec.mutable_memory()->set_optimizer_offload(v1::OPTIMIZER_OFFLOAD_OFF);
  PlanOptions o;
  o.include_decisions = true;
  o.hbm_budget_bytes = 64 * kGiB;
  absl::StatusOr<PlannedSchedule> roomy = PlanSchedule(spec, H100(), "interleaved", o);
  ASSERT_TRUE(roomy.ok()) << roomy.status();
  o.hbm_budget_bytes = static_cast<int64_t>(WorstPeak(*roomy) * 0.8);
  absl::StatusOr<PlannedSchedule> ps = PlanSchedule(spec, H100(), "interleaved", o);
  ASSERT_TRUE(ps.ok()) << ps.status();
  ASSERT_TRUE(ps->fits) << ps->report.error();
  int resident = 0;
  for (const v1::PlanDecision& d : ps->report.decisions()) {
    if (d.reason().find("still resident") == std::string::npos) continue;
    ++resident;
    EXPECT_EQ(d.action(), "recompute");
    EXPECT_EQ(ps->policy[d.chunk()][d.microbatch()].kind, PolicyKind::kRecompute)
        << "chunk " << d.chunk() << " micro-batch " << d.microbatch();
  }
  EXPECT_GT(resident, 0);
  for (const auto& d : ps->sim.devices) EXPECT_LE(d.peak_bytes, o.hbm_budget_bytes);
  EXPECT_TRUE(ValidateSchedule(ps->schedule).ok());
}

TEST(PlannerTest, TighterBudgetsTradeTimeForMemory) {
  const v1::JobSpec spec = LlamaLike(32, 4, 8);
  PlanOptions o;
  o.hbm_budget_bytes = 64 * kGiB;
  absl::StatusOr<PlannedSchedule> roomy = PlanSchedule(spec, H100(), "1f1b", o);
  ASSERT_TRUE(roomy.ok());
  EXPECT_THAT(roomy->report.policy(), HasSubstr("offload 0, recompute 0"));
  o.hbm_budget_bytes = WorstPeak(*roomy) * 7 / 10;
  absl::StatusOr<PlannedSchedule> tight = PlanSchedule(spec, H100(), "1f1b", o);
  ASSERT_TRUE(tight.ok());
  ASSERT_TRUE(tight->fits) << tight->report.policy();
  EXPECT_LT(WorstPeak(*tight), WorstPeak(*roomy));
  EXPECT_GE(tight->sim.iteration_seconds, roomy->sim.iteration_seconds);
  EXPECT_THAT(tight->report.policy(), ::testing::Not(HasSubstr("offload 0, recompute 0")));
}

TEST(PlannerTest, ImpossibleBudgetIsReportedNotFaked) {
  const v1::JobSpec spec = LlamaLike(32, 4, 8);
  PlanOptions o;
  o.hbm_budget_bytes = 256 << 20;  // less than the weights
  absl::StatusOr<PlannedSchedule> ps = PlanSchedule(spec, H100(), "chronos", o);
  ASSERT_TRUE(ps.ok()) << ps.status();
  EXPECT_FALSE(ps->fits);
  bool some_device_over = false;
  for (const auto& d : ps->report.devices()) some_device_over |= !d.fits();
  EXPECT_TRUE(some_device_over);
}

TEST(PlannerTest, MaxLayersIsTheLargestSizeThatFits) {
  const v1::JobSpec spec = LlamaLike(8, 4, 8);
  PlanOptions o;
  o.hbm_budget_bytes = 24 * kGiB;
  for (const char* variant : {"1f1b+plain", "1f1b+recompute", "chronos"}) {
    absl::StatusOr<int> n = MaxLayers(spec, H100(), variant, o);
    ASSERT_TRUE(n.ok()) << n.status();
    ASSERT_GT(*n, 0) << variant;
    v1::JobSpec at = spec;
    at.mutable_model()->set_layers(*n);
    EXPECT_TRUE(PlanSchedule(at, H100(), variant, o)->fits) << variant << " " << *n;
    at.mutable_model()->set_layers(*n + 1);
    EXPECT_FALSE(PlanSchedule(at, H100(), variant, o)->fits) << variant << " " << *n + 1;
  }
  // Recomputation keeps only layer inputs, so it fits more layers than
  // keeping everything; the planner can always fall back to it.
  EXPECT_GT(*MaxLayers(spec, H100(), "1f1b+recompute", o),
            *MaxLayers(spec, H100(), "1f1b+plain", o));
  EXPECT_GE(*MaxLayers(spec, H100(), "chronos", o), *MaxLayers(spec, H100(), "1f1b+recompute", o));
}

TEST(PlannerTest, MaxLayersAtAnMfuFloorIsTheLargestSizeThatMeetsIt) {
  // With a floor, no size between the answer and the largest that fits may
  // meet it: MFU is not monotone in the size, so this is checked at every
  // size above the answer, not by bisection.
  const v1::JobSpec spec = LlamaLike(8, 4, 8);
  PlanOptions o;
  o.hbm_budget_bytes = 24 * kGiB;
  for (const char* variant : {"interleaved", "chronos"}) {
    absl::StatusOr<int> fit = MaxLayers(spec, H100(), variant, o);
    ASSERT_TRUE(fit.ok()) << fit.status();
    v1::JobSpec at = spec;
    auto mfu = [&](int layers) {
      at.mutable_model()->set_layers(layers);
      absl::StatusOr<PlannedSchedule> ps = PlanSchedule(at, H100(), variant, o);
      EXPECT_TRUE(ps.ok()) << ps.status();
      return ps.ok() && ps->fits ? ps->report.mfu() : 0.0;
    };
    // A floor just above the MFU at the largest size that fits, so it binds.
    PlanOptions floor = o;
    floor.min_mfu = mfu(*fit) * 1.01;
    absl::StatusOr<int> n = MaxLayers(spec, H100(), variant, floor);
    ASSERT_TRUE(n.ok()) << n.status();
    ASSERT_GT(*n, 0) << variant;
    ASSERT_LT(*n, *fit) << variant;
    EXPECT_GE(mfu(*n), floor.min_mfu) << variant << " " << *n;
    for (int l = *n + 1; l <= *fit; ++l) {
      EXPECT_LT(mfu(l), floor.min_mfu) << variant << " " << l << " also meets the floor";
    }
  }
}

TEST(PlannerTest, ReportsEveryOrderComparedAndKeepsTheFastestThatFits) {
  // A budget under what keeping everything needs, so orders differ in
  // whether and how fast they fit.
  const v1::JobSpec spec = LlamaLike(32, 4, 8);
  PlanOptions o;
  o.hbm_budget_bytes = 64 * kGiB;
  absl::StatusOr<PlannedSchedule> roomy = PlanSchedule(spec, H100(), "chronos", o);
  ASSERT_TRUE(roomy.ok()) << roomy.status();
  o.hbm_budget_bytes = WorstPeak(*roomy) * 6 / 10;
  absl::StatusOr<PlannedSchedule> ps = PlanSchedule(spec, H100(), "chronos", o);
  ASSERT_TRUE(ps.ok()) << ps.status();
  const v1::SchedulePlan& r = ps->report;
  ASSERT_GE(r.candidates_size(), 2);
  ASSERT_TRUE(r.fits());
  const v1::OrderCandidate* fastest = nullptr;
  for (const v1::OrderCandidate& c : r.candidates()) {
    EXPECT_FALSE(c.order().empty());
    if (!c.fits()) {
      EXPECT_FALSE(c.error().empty()) << c.order();
      continue;
    }
    if (fastest == nullptr || c.iteration_seconds() < fastest->iteration_seconds()) fastest = &c;
  }
  ASSERT_NE(fastest, nullptr);
  EXPECT_EQ(r.order(), fastest->order());
  EXPECT_DOUBLE_EQ(r.iteration_seconds(), fastest->iteration_seconds());
  // One order only: nothing to compare.
  absl::StatusOr<PlannedSchedule> one = PlanSchedule(spec, H100(), "1f1b", o);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->report.order(), "1f1b");
  EXPECT_EQ(one->report.candidates_size(), 0);
}

// Planning stops when the caller's check says so: in the order search of
// each candidate, and between candidates and memory-planning rounds.
TEST(PlannerTest, AStopCheckEndsPlanningWithCancelled) {
  v1::JobSpec spec = LlamaLike(32, 4, 8);
  spec.mutable_schedule()->set_order_search_steps(100'000'000);
  std::atomic<int64_t> polls{0};
  PlanOptions o;
  o.should_stop = [&polls] { return polls.fetch_add(1) >= 10; };
  absl::StatusOr<PlannedSchedule> stopped = PlanSchedule(spec, H100(), "chronos", o);
  EXPECT_EQ(stopped.status().code(), absl::StatusCode::kCancelled) << stopped.status();
  // Each searching candidate polls a few times after the check fires; a
  // finished search of 10^8 steps would poll 390,625 times per candidate.
  EXPECT_LT(polls.load(), 1000);
  // Without a search the check is still polled (memory planning rounds) and
  // obeyed; one that never fires plans as if there were none.
  spec.mutable_schedule()->set_order_search_steps(0);
  polls = 0;
  o.should_stop = [&polls] { return polls.fetch_add(1) >= 1; };
  EXPECT_EQ(PlanSchedule(spec, H100(), "chronos", o).status().code(), absl::StatusCode::kCancelled);
  o.should_stop = [] { return false; };
  absl::StatusOr<PlannedSchedule> polled = PlanSchedule(spec, H100(), "chronos", o);
  absl::StatusOr<PlannedSchedule> plain = PlanSchedule(spec, H100(), "chronos");
  ASSERT_TRUE(polled.ok() && plain.ok());
  EXPECT_EQ(polled->report.order(), plain->report.order());
  EXPECT_DOUBLE_EQ(polled->report.iteration_seconds(), plain->report.iteration_seconds());
}

TEST(PlannerTest, ActivationCapBindsTheChosenOrder) {
  v1::JobSpec spec = LlamaLike(32, 4, 8);
  spec.mutable_parallel()->set_chunks_per_device(4);
  PlanOptions o;
  o.hbm_budget_bytes = int64_t{1} << 50;  // keep everything; only the cap binds
  absl::StatusOr<PlannedSchedule> free = PlanSchedule(spec, H100(), "chronos+plain", o);
  ASSERT_TRUE(free.ok()) << free.status();
  int64_t least = std::numeric_limits<int64_t>::max(), most = 0;
  for (const auto& d : free->sim.devices) most = std::max(most, d.peak_activation_bytes);
  // The cap between the least-memory order and the fastest one: the plan
  // must give up speed for it, and say so for the orders it passes over.
  spec.mutable_schedule()->set_order_search_steps(20'000);
  bool mixed = false;  // some cap left some orders unsearched
  for (int64_t cap = most; cap > 0; cap = cap * 9 / 10) {
    spec.mutable_schedule()->set_activation_cap_bytes(cap);
    absl::StatusOr<PlannedSchedule> ps = PlanSchedule(spec, H100(), "chronos+plain", o);
    if (!ps.ok()) {
      EXPECT_EQ(ps.status().code(), absl::StatusCode::kResourceExhausted);
      EXPECT_THAT(ps.status().message(), HasSubstr("schedule.activation_cap"));
      break;
    }
    int64_t worst = 0;
    for (const auto& d : ps->sim.devices) worst = std::max(worst, d.peak_activation_bytes);
    EXPECT_LE(worst, cap);
    EXPECT_THAT(ps->report.order(), HasSubstr("order search (20000 steps)"));
    // Only orders that start under the cap are searched (all of them when
    // none does), and the search keeps them under it; the others are
    // listed with their peak.
    auto was_searched = [](const v1::OrderCandidate& c) {
      return c.order().find("order search") != std::string::npos;
    };
    const bool all_searched =
        std::all_of(ps->report.candidates().begin(), ps->report.candidates().end(), was_searched);
    mixed = mixed || !all_searched;
    for (const v1::OrderCandidate& c : ps->report.candidates()) {
      const bool over = c.error().find("over schedule.activation_cap") != std::string::npos;
      if (!all_searched && (c.error().empty() || over)) {
        EXPECT_NE(over, was_searched(c)) << c.order();
      }
    }
    least = std::min(least, worst);
  }
  EXPECT_LT(least, most);
  EXPECT_TRUE(mixed);
}

TEST(PlannerTest, MaxLayersStopsWhereTheActivationCapDoes) {
  v1::JobSpec spec = LlamaLike(8, 2, 4);
  PlanOptions o;
  o.hbm_budget_bytes = int64_t{1} << 50;  // only the cap binds
  absl::StatusOr<PlannedSchedule> small = PlanSchedule(spec, H100(), "chronos+plain", o);
  ASSERT_TRUE(small.ok()) << small.status();
  int64_t at8 = 0;
  for (const auto& d : small->sim.devices) at8 = std::max(at8, d.peak_activation_bytes);
  // Room for about twice the activations of 8 layers.
  spec.mutable_schedule()->set_activation_cap_bytes(2 * at8);
  PlannedSchedule at;
  absl::StatusOr<int> n = MaxLayers(spec, H100(), "chronos+plain", o, &at);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_GE(*n, 12);
  EXPECT_LT(*n, kMaxModelLayers);
  int64_t worst = 0;
  for (const auto& d : at.sim.devices) worst = std::max(worst, d.peak_activation_bytes);
  EXPECT_LE(worst, 2 * at8);
  v1::JobSpec bigger = spec;
  bigger.mutable_model()->set_layers(*n + 1);
  EXPECT_EQ(PlanSchedule(bigger, H100(), "chronos+plain", o).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(PlannerTest, MaxLayersStopsAtTheJobSpecLimit) {
  // A tiny model on a roomy budget fits far more layers than a spec may
  // ask for; the search stops at the limit instead of running for minutes.
  v1::JobSpec spec = LlamaLike(4, 2, 4);
  spec.mutable_model()->set_hidden(32);
  spec.mutable_model()->set_heads(4);
  spec.mutable_model()->set_ffn_hidden(64);
  spec.mutable_model()->set_vocab(256);
  spec.mutable_model()->set_seq_len(16);
  PlanOptions o;
  o.hbm_budget_bytes = 64 * kGiB;
  absl::StatusOr<int> n = MaxLayers(spec, H100(), "1f1b+plain", o);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, kMaxModelLayers);
}

TEST(PlannerTest, UnknownVariantNamesTheSchedule) {
  const v1::JobSpec spec = LlamaLike(8, 4, 8);
  absl::StatusOr<PlannedSchedule> ps = PlanSchedule(spec, H100(), "pipedream");
  EXPECT_EQ(ps.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ps.status().message(), HasSubstr("pipedream"));
  ps = PlanSchedule(spec, H100(), "1f1b+magic");
  EXPECT_THAT(ps.status().message(), HasSubstr("+magic"));
}

TEST(RenderTest, AsciiHasOneRowPerDeviceWithinTheWidth) {
  const v1::JobSpec spec = LlamaLike(8, 4, 8);
  absl::StatusOr<PlannedSchedule> ps = PlanSchedule(spec, H100(), "chronos");
  ASSERT_TRUE(ps.ok());
  const std::string text = RenderAscii(ps->schedule, ps->sim, 80);
  int rows = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    EXPECT_LE(end - start, 80u) << text.substr(start, end - start);
    rows += text.compare(start, 3, "dev") == 0;
    start = end + 1;
  }
  EXPECT_EQ(rows, 4) << text;
}

TEST(RenderTest, ChromeTraceIsJsonWithOneEventPerComputeAction) {
  const v1::JobSpec spec = LlamaLike(8, 2, 4);
  absl::StatusOr<PlannedSchedule> ps = PlanSchedule(spec, H100(), "1f1b+plain");
  ASSERT_TRUE(ps.ok());
  nlohmann::json trace = nlohmann::json::parse(RenderChromeTrace(ps->schedule, ps->sim));
  int computes = 0;
  for (const auto& list : ps->schedule.devices) {
    for (const Action& a : list) computes += a.type == ActionType::kF || a.type == ActionType::kB;
  }
  int events = 0;
  for (const auto& e : trace["traceEvents"]) {
    if (e.value("ph", "") != "X") continue;
    const std::string name = e.value("name", "");
    events += name.rfind("F", 0) == 0 || name.rfind("B(", 0) == 0;
  }
  EXPECT_EQ(events, computes);
}

}  // namespace
}  // namespace chronos

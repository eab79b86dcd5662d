// Order search: a local search over each device's order of compute actions
// that shortens the pipeline while every device's activation peak stays
// under a cap. A periodic block repeats one micro-batch's layout, so every
// micro-batch waits where the first one had to; here each action may move a
// few places on its own, which lets the warm-up start micro-batches sooner,
// the cool-down drain without the steady state's waits, and the steady
// state trade a little memory for a shorter chain. Pure and deterministic
// for a given seed.
#ifndef CHRONOS_CORE_ORDER_SEARCH_H_
#define CHRONOS_CORE_ORDER_SEARCH_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/generate.h"
#include "core/schedule.h"

namespace chronos {

// What a replay of compute orders costs: the time the last backward ends and
// each device's activation peak with everything kept (F's stash from the end
// of F to the end of B/BI; BI's weight-gradient stash from the end of BI to
// the end of BW). Sends and receives are implied by the chunk placement; a
// hop takes costs.p2p_seconds on its link, one message at a time, as in the
// simulator.
struct OrderCost {
  double pipeline_seconds = 0;
  int64_t worst_activation_bytes = 0;
  std::vector<int64_t> device_activation_bytes;
};

// Replays the compute actions of a schedule (F, B, BI, BW; sends and
// receives are skipped, the replay times the hops itself; memory actions
// are refused) with `costs` (durations, hop time and the per-chunk byte
// counts, all required). kFailedPrecondition when the orders deadlock.
absl::StatusOr<OrderCost> ReplayOrders(const Schedule& compute_only, const ChunkCosts& costs);

struct OrderSearchReport {
  OrderCost start;
  OrderCost result;
  int64_t activation_cap_bytes = 0;  // the cap that applied
  int64_t steps = 0;
  int64_t accepted = 0;
  bool cap_met = false;  // the result's worst peak is at or under the cap
};

// Searched orders kept by whoever plans the same job again: the coordinator
// re-plans a job on every policy change, recovery and out-of-memory fault
// (same orders, other policies), and a search of tens of seconds must not
// run twice. Core keeps no state of its own: the memo belongs to its caller
// (coordinator/search_memo.h), which makes it thread-safe; keys are opaque.
struct SearchedOrders {
  std::vector<std::vector<Action>> devices;  // each device's compute order
  OrderSearchReport report;
};
class OrderSearchMemo {
 public:
  virtual ~OrderSearchMemo() = default;
  virtual std::optional<SearchedOrders> Find(const std::string& key) = 0;
  virtual void Insert(const std::string& key, const SearchedOrders& value) = 0;
};

// Simulated annealing over the orders: each step moves one action up to
// `search.max_shift` places on its device and keeps the move if the orders
// still run (no deadlock) and the cost (pipeline time, plus a steep charge
// per byte over the cap) improves, or by the Metropolis rule. Returns the
// fastest orders seen that meet the cap (the start when none is faster); a
// start over the cap is first brought under it where the search can.
// Receives are not part of the orders: InsertCommunication posts them in
// each channel's send order, so no move can break a channel's FIFO. With
// `search.memo`, a search of the same inputs is looked up there first.
absl::StatusOr<Schedule> SearchOrders(const Schedule& compute_only, const ChunkCosts& costs,
                                      const OrderSearchOptions& search,
                                      OrderSearchReport* report = nullptr);

}  // namespace chronos

#endif  // CHRONOS_CORE_ORDER_SEARCH_H_

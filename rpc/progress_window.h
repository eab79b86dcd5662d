// How many progress reports may wait for the coordinator's acknowledgement
// (chronos.v1.ProgressAck), in one place so that the worker (which pauses
// training while it holds this many) and the coordinator (which takes
// reports at most this far past the last iteration it stored) agree.
#ifndef CHRONOS_RPC_PROGRESS_WINDOW_H_
#define CHRONOS_RPC_PROGRESS_WINDOW_H_

#include <cstdint>

namespace chronos::rpc {

// A report is a few hundred bytes, so a worker holds at most ~100 KB of
// them per stage, and the coordinator at most this many iterations' worth
// of partial reports per job. At a fast iteration (tens of ms) it covers
// seconds of coordinator outage before training pauses; a pause longer
// than the transport timeout ends the attempt (docs/reliability.md).
inline constexpr int64_t kMaxUnacknowledgedReports = 256;

}  // namespace chronos::rpc

#endif  // CHRONOS_RPC_PROGRESS_WINDOW_H_

// `chronosctl workers` output: the registered workers as a table, or the
// ListWorkersResponse itself in JSON/YAML. Pure.
#ifndef CHRONOS_CLIENT_WORKER_VIEW_H_
#define CHRONOS_CLIENT_WORKER_VIEW_H_

#include <ostream>
#include <string>

#include "absl/time/time.h"
#include "chronos/v1/control.pb.h"
#include "client/output.h"

namespace chronos::client {

std::string WorkerStateName(v1::WorkerState state);  // "IDLE"; "UNKNOWN" for 0

void PrintWorkers(std::ostream& out, const v1::ListWorkersResponse& workers, OutputFormat format,
                  absl::Time now);

}  // namespace chronos::client

#endif  // CHRONOS_CLIENT_WORKER_VIEW_H_

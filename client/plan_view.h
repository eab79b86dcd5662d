// `chronosctl plan` output: a PlanReport as a table (one row per schedule,
// then each schedule's per-device memory by category) or as the PlanReport
// itself in JSON/YAML, field names exactly as plan.proto (CHRONOS.md §9).
#ifndef CHRONOS_CLIENT_PLAN_VIEW_H_
#define CHRONOS_CLIENT_PLAN_VIEW_H_

#include <ostream>

#include "chronos/v1/plan.pb.h"
#include "client/output.h"

namespace chronos::client {

void PrintPlanReport(std::ostream& out, const v1::PlanReport& report, OutputFormat format);

}  // namespace chronos::client

#endif  // CHRONOS_CLIENT_PLAN_VIEW_H_

// The standard process_* metrics of Prometheus client libraries (start
// time, CPU seconds, resident and virtual memory, open and maximum file
// descriptors), read from /proc/self at scrape time. prometheus-cpp has no
// process collector; both daemons append these to their /metrics.
#ifndef CHRONOS_RPC_PROCESS_METRICS_H_
#define CHRONOS_RPC_PROCESS_METRICS_H_

#include <prometheus/metric_family.h>

#include <vector>

namespace chronos::rpc {

// The families as of now, named and typed as the Go and Python clients
// export them (process_cpu_seconds_total is a counter, the rest gauges). A
// figure /proc cannot give (not Linux) is left out.
std::vector<prometheus::MetricFamily> ProcessMetricFamilies();

}  // namespace chronos::rpc

#endif  // CHRONOS_RPC_PROCESS_METRICS_H_

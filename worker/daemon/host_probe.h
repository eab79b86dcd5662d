// What a worker measures about its host at start, for Register: physical
// memory and the host-memory copy bandwidth (on a CPU worker "offloading"
// is a copy within host memory, so memcpy is the link it has). Plain C++,
// no Torch. Thread-safe (no state).
#ifndef CHRONOS_WORKER_DAEMON_HOST_PROBE_H_
#define CHRONOS_WORKER_DAEMON_HOST_PROBE_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace chronos::worker {

// Physical memory of the machine (or the cgroup limit when lower), bytes;
// 0 when unknown.
int64_t HostMemoryBytes();

// Copy bandwidth in bytes/s: memcpy of a `buffer_bytes` buffer, repeated
// until `budget` is spent (at least twice); the best round counts.
double MeasureCopyBandwidth(int64_t buffer_bytes = 64 << 20,
                            absl::Duration budget = absl::Milliseconds(100));

// This host's name (gethostname), or "localhost".
std::string HostName();

// The name a worker registers under when --name is not given: the host
// name, and for a GPU device its index ("node7-cuda3"), since the
// coordinator takes a second live registration under one name for a
// restart of the first.
std::string DefaultWorkerName(const std::string& host, const std::string& device);

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_DAEMON_HOST_PROBE_H_

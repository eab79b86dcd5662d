// A GPU's UUID in the spelling of nvidia-smi, NVML and DCGM exporter's UUID
// label ("GPU-" and the 16 bytes as 8-4-4-4-12 lower-case hex digits), so
// that the worker's metrics join DCGM's on it. Pure: no CUDA needed.
#ifndef CHRONOS_WORKER_GPU_UUID_H_
#define CHRONOS_WORKER_GPU_UUID_H_

#include <string>

namespace chronos::worker {

// `bytes`: cudaDeviceProp::uuid.bytes (the same 16 bytes NVML prints).
std::string GpuUuidString(const unsigned char (&bytes)[16]);

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_GPU_UUID_H_

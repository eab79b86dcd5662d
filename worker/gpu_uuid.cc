#include "worker/gpu_uuid.h"

#include "absl/strings/str_cat.h"

namespace chronos::worker {

std::string GpuUuidString(const unsigned char (&bytes)[16]) {
  std::string out = "GPU-";
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    absl::StrAppend(&out, absl::Hex(bytes[i], absl::kZeroPad2));
  }
  return out;
}

}  // namespace chronos::worker

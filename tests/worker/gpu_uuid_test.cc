// The UUID label a GPU worker puts on its series must be spelled as DCGM
// exporter spells it, or the join of docs/metrics.md finds nothing.
#include "worker/gpu_uuid.h"

#include <gtest/gtest.h>

namespace chronos::worker {
namespace {

TEST(GpuUuidTest, SpelledAsNvidiaSmiAndDcgm) {
  // Bytes 0x00..0x0f in order, grouped 4-2-2-2-6 (worked by hand).
  const unsigned char ordered[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  EXPECT_EQ(GpuUuidString(ordered), "GPU-00010203-0405-0607-0809-0a0b0c0d0e0f");
  // High bytes stay two lower-case digits (no sign extension, no upper case).
  const unsigned char high[16] = {0xde, 0xad, 0xbe, 0xef, 0xff, 0x80, 0x7f, 0x00,
                                  0xa0, 0x0a, 0xc3, 0x5c, 0x01, 0x10, 0xf0, 0x0f};
  EXPECT_EQ(GpuUuidString(high), "GPU-deadbeef-ff80-7f00-a00a-c35c0110f00f");
}

}  // namespace
}  // namespace chronos::worker

#include "worker/daemon/host_probe.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace chronos::worker {
namespace {

// cgroup v2 (memory.max) or v1 (memory.limit_in_bytes); 0 = none.
int64_t CgroupLimitBytes() {
  for (const char* path :
       {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    std::ifstream in(path);
    std::string text;
    if (!(in >> text)) continue;
    int64_t v = 0;
    if (absl::SimpleAtoi(text, &v) && v > 0) return v;
  }
  return 0;
}

}  // namespace

int64_t HostMemoryBytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGESIZE);
  int64_t physical = pages > 0 && page > 0 ? int64_t{pages} * page : 0;
  const int64_t limit = CgroupLimitBytes();
  if (limit > 0 && (physical == 0 || limit < physical)) physical = limit;
  return physical;
}

double MeasureCopyBandwidth(int64_t buffer_bytes, absl::Duration budget) {
  buffer_bytes = std::max<int64_t>(buffer_bytes, 1 << 20);
  auto src = std::make_unique<char[]>(buffer_bytes);
  auto dst = std::make_unique<char[]>(buffer_bytes);
  // Touch both buffers so page faults are not measured.
  std::memset(src.get(), 1, buffer_bytes);
  std::memset(dst.get(), 0, buffer_bytes);
  const auto until = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(budget);
  double best = 0;
  for (int round = 0; round < 2 || std::chrono::steady_clock::now() < until; ++round) {
    const auto start = std::chrono::steady_clock::now();
    std::memcpy(dst.get(), src.get(), buffer_bytes);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (seconds > 0) best = std::max(best, buffer_bytes / seconds);
    src[round % buffer_bytes] ^= dst[(round * 7) % buffer_bytes];
    if (round > 1000) break;
  }
  return best;
}

std::string DefaultWorkerName(const std::string& host, const std::string& device) {
  absl::string_view index = device;
  if (!absl::ConsumePrefix(&index, "cuda:")) return host;
  return absl::StrCat(host, "-cuda", index);
}

std::string HostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') {
    return "localhost";
  }
  return buf;
}

}  // namespace chronos::worker

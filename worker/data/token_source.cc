#include "worker/data/token_source.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "core/data_path.h"
#include "core/status_macros.h"
#include "worker/input_fault.h"

namespace chronos::worker {
namespace {

namespace fs = std::filesystem;

constexpr int32_t kMagicU16 = 20240520;
constexpr int32_t kMagicU32 = 20240801;
constexpr int64_t kHeaderInts = 256;
constexpr int64_t kHeaderBytes = kHeaderInts * sizeof(int32_t);

// Reads a regular file, at most the size it had when opened: opened
// without blocking (a FIFO swapped in after CheckDataPath must not block
// the stage) and refused unless fstat says it is a regular file.
absl::StatusOr<std::string> ReadFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(
        absl::StrCat("cannot open data file ", path, ": ", std::strerror(errno)));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat("data file ", path, " is not a regular file"));
  }
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t off = 0;
  bool failed = false;
  while (off < data.size()) {
    const ssize_t n = read(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      failed = true;
      break;
    }
    if (n == 0) break;  // the file shrank
    off += static_cast<size_t>(n);
  }
  close(fd);
  if (failed) return absl::DataLossError(absl::StrCat("read error in ", path));
  data.resize(off);
  return data;
}

// One file, a directory's *.bin files, or a glob; sorted so every worker
// concatenates the shards in the same order.
absl::StatusOr<std::vector<std::string>> ShardPaths(const std::string& path) {
  std::error_code ec;
  std::vector<std::string> out;
  if (fs::is_directory(path, ec)) {
    for (const fs::directory_entry& e : fs::directory_iterator(path, ec)) {
      if (e.is_regular_file() && e.path().extension() == ".bin") {
        out.push_back(e.path().string());
      }
    }
  } else if (path.find_first_of("*?[") != std::string::npos) {
    glob_t g;
    if (glob(path.c_str(), 0, nullptr, &g) == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) out.push_back(g.gl_pathv[i]);
    }
    globfree(&g);
  } else {
    out.push_back(path);
  }
  if (out.empty()) {
    return absl::NotFoundError(absl::StrCat("no llmc shards match ", path));
  }
  std::sort(out.begin(), out.end());
  return out;
}

template <typename T>
absl::Status AppendTokens(const std::string& data, int64_t count, int64_t vocab,
                          const std::string& path, std::vector<int32_t>* tokens) {
  const char* p = data.data() + kHeaderBytes;
  tokens->reserve(tokens->size() + count);
  for (int64_t i = 0; i < count; ++i) {
    T t;
    std::memcpy(&t, p + i * sizeof(T), sizeof(T));
    if (static_cast<int64_t>(t) >= vocab) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": token ", static_cast<int64_t>(t),
                                                     " at index ", i, " is >= model.vocab ",
                                                     vocab));
    }
    tokens->push_back(static_cast<int32_t>(t));
  }
  return absl::OkStatus();
}

absl::Status ReadLlmcShard(const std::string& path, int64_t vocab, std::vector<int32_t>* tokens) {
  CHRONOS_ASSIGN_OR_RETURN(std::string data, ReadFile(path));
  const int64_t size = static_cast<int64_t>(data.size());
  if (size < kHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", size, " bytes, shorter than the ",
                                                   kHeaderBytes, "-byte llmc header"));
  }
  int32_t header[kHeaderInts];
  std::memcpy(header, data.data(), kHeaderBytes);
  int64_t width;
  if (header[0] == kMagicU16) {
    width = 2;
  } else if (header[0] == kMagicU32) {
    width = 4;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": bad llmc magic ", header[0], " (expected ", kMagicU16, " or ", kMagicU32, ")"));
  }
  // 1 and 2 are what our own tooling writes; llm.c's Llama-3 exporter
  // writes 7 for the uint32 layout, which is otherwise identical.
  const int32_t version = header[1];
  if (version != 1 && version != 2 && version != 7) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": unsupported llmc version ", version));
  }
  const int64_t count = header[2];
  if (count < 0 || size != kHeaderBytes + count * width) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": size ", size, " does not match the header (", count, " tokens of ",
                     width, " bytes -> ", kHeaderBytes + count * width, "); truncated?"));
  }
  return width == 2 ? AppendTokens<uint16_t>(data, count, vocab, path, tokens)
                    : AppendTokens<uint32_t>(data, count, vocab, path, tokens);
}

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

struct TokenSource::Permutation {
  uint64_t seed;
  int64_t windows;
  int64_t epoch;
  std::vector<int64_t> order;
};

absl::StatusOr<std::unique_ptr<TokenSource>> TokenSource::Open(const std::string& path,
                                                               TokenFormat format, int64_t vocab,
                                                               int64_t seq_len) {
  // Every way this can fail is the corpus's, and a restart would read the
  // same bytes: mark it so (worker/input_fault.h).
  auto open = [&]() -> absl::StatusOr<std::unique_ptr<TokenSource>> {
    CHRONOS_RETURN_IF_ERROR(CheckDataPath(path, format == TokenFormat::kLlmc));
    auto src = std::make_unique<TokenSource>();
    if (format == TokenFormat::kText) {
      if (vocab < 256) {
        return absl::InvalidArgumentError(
            absl::StrCat("text data ", path, " has byte tokens (0..255) but model.vocab is ", vocab,
                         "; it must be >= 256"));
      }
      CHRONOS_ASSIGN_OR_RETURN(std::string data, ReadFile(path));
      src->tokens_.resize(data.size());
      for (size_t i = 0; i < data.size(); ++i) {  // bytes as unsigned ids
        src->tokens_[i] = static_cast<unsigned char>(data[i]);
      }
    } else {
      CHRONOS_ASSIGN_OR_RETURN(std::vector<std::string> shards, ShardPaths(path));
      for (const std::string& shard : shards) {
        CHRONOS_RETURN_IF_ERROR(ReadLlmcShard(shard, vocab, &src->tokens_));
      }
    }
    const int64_t need = std::max<int64_t>(seq_len, 1) + 1;
    if (src->num_tokens() < need) {
      return absl::InvalidArgumentError(absl::StrCat("data.path ", path, " has ", src->num_tokens(),
                                                     " tokens; need at least ", need,
                                                     " (model.seq_len + 1)"));
    }
    return src;
  };
  absl::StatusOr<std::unique_ptr<TokenSource>> src = open();
  if (!src.ok()) return AsInputFault(src.status());
  return src;
}

std::shared_ptr<const TokenSource::Permutation> TokenSource::EpochOrder(uint64_t seed,
                                                                        int64_t windows,
                                                                        int64_t epoch) const {
  absl::MutexLock lock(&mu_);
  for (const auto& p : cache_) {
    if (p->seed == seed && p->windows == windows && p->epoch == epoch) return p;
  }
  auto p = std::make_shared<Permutation>();
  p->seed = seed;
  p->windows = windows;
  p->epoch = epoch;
  p->order.resize(windows);
  for (int64_t i = 0; i < windows; ++i) p->order[i] = i;
  // mt19937_64's output is fixed by the standard; std::shuffle and the
  // distributions are not, so the swap index is taken by modulo (bias
  // < W / 2^64, irrelevant here).
  std::mt19937_64 rng(SplitMix64(seed ^ SplitMix64(static_cast<uint64_t>(epoch))));
  for (int64_t i = windows - 1; i > 0; --i) {
    const int64_t j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1));
    std::swap(p->order[i], p->order[j]);
  }
  constexpr size_t kKeep = 4;
  if (cache_.size() >= kKeep) cache_.erase(cache_.begin());
  cache_.push_back(p);
  return p;
}

Batch TokenSource::Get(int64_t iteration, int data_rank, int data_parallel, int mb,
                       int microbatches, int64_t micro_batch_size, int64_t seq_len,
                       uint64_t seed) const {
  TORCH_CHECK(iteration >= 1, "TokenSource: iteration is 1-based, got ", iteration);
  TORCH_CHECK(data_rank >= 0 && data_rank < data_parallel, "TokenSource: data_rank ", data_rank,
              " of ", data_parallel);
  TORCH_CHECK(mb >= 0 && mb < microbatches, "TokenSource: micro-batch ", mb, " of ", microbatches);
  TORCH_CHECK(micro_batch_size > 0 && seq_len > 0, "TokenSource: empty micro-batch shape");
  const int64_t windows = num_windows(seq_len);
  TORCH_CHECK(windows > 0, "TokenSource: ", num_tokens(),
              " tokens hold no window of seq_len + 1 = ", seq_len + 1);

  at::Tensor inputs = at::empty({micro_batch_size, seq_len}, at::kLong);
  at::Tensor targets = at::empty({micro_batch_size, seq_len}, at::kLong);
  int64_t* in = inputs.data_ptr<int64_t>();
  int64_t* tg = targets.data_ptr<int64_t>();
  const int64_t first =
      (((iteration - 1) * data_parallel + data_rank) * microbatches + mb) * micro_batch_size;
  std::shared_ptr<const Permutation> perm;
  for (int64_t row = 0; row < micro_batch_size; ++row) {
    const int64_t g = first + row;
    const int64_t epoch = g / windows;
    if (!perm || perm->epoch != epoch) perm = EpochOrder(seed, windows, epoch);
    const int32_t* w = tokens_.data() + perm->order[g % windows] * seq_len;
    for (int64_t k = 0; k < seq_len; ++k) {
      in[row * seq_len + k] = w[k];
      tg[row * seq_len + k] = w[k + 1];
    }
  }
  return Batch{std::move(inputs), std::move(targets)};
}

}  // namespace chronos::worker

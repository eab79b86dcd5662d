// TokenSource: text and llm.c shard formats, their validation messages, and
// the sampling contract (deterministic, per-rank, epoch-wise permutations).
#include "worker/data/token_source.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <stdlib.h>
#include <tuple>

#include <cstdint>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "worker/input_fault.h"

namespace chronos::worker {
namespace {

std::string MakeTempDir() {
  std::string tmpl = ::testing::TempDir() + "/token_source_XXXXXX";
  char* dir = mkdtemp(tmpl.data());
  EXPECT_NE(dir, nullptr);
  return tmpl;
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
}

template <typename T>
std::string Shard(int32_t magic, int32_t version, const std::vector<T>& tokens,
                  int64_t claimed = -1) {
  std::vector<int32_t> header(256, 0);
  header[0] = magic;
  header[1] = version;
  header[2] = static_cast<int32_t>(claimed >= 0 ? claimed : tokens.size());
  std::string out(reinterpret_cast<const char*>(header.data()), 1024);
  out.append(reinterpret_cast<const char*>(tokens.data()), tokens.size() * sizeof(T));
  return out;
}

// Text whose window starts are recognisable: bytes cycle through 0..250.
std::string TextOf(int64_t n) {
  std::string s(n, '\0');
  for (int64_t i = 0; i < n; ++i) s[i] = static_cast<char>(i % 251);
  return s;
}

class TokenSourceTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir(); }
  std::string dir_;
};

TEST_F(TokenSourceTest, TextBatchesAreDeterministicWindowsWithShiftedTargets) {
  const std::string path = dir_ + "/corpus.txt";
  const int64_t s = 16;
  WriteBytes(path, TextOf(16 * 40 + 1));  // W = 40 windows
  auto src = TokenSource::Open(path, TokenFormat::kText, 256, s);
  ASSERT_TRUE(src.ok()) << src.status();
  EXPECT_EQ((*src)->num_windows(s), 40);
  Batch a = (*src)->Get(3, 1, 2, 0, 2, 4, s, 42);
  Batch b = (*src)->Get(3, 1, 2, 0, 2, 4, s, 42);
  EXPECT_TRUE(at::equal(a.inputs, b.inputs));
  EXPECT_TRUE(at::equal(a.targets, b.targets));
  ASSERT_EQ(a.inputs.sizes(), (std::vector<int64_t>{4, s}));
  EXPECT_EQ(a.inputs.scalar_type(), at::kLong);
  EXPECT_TRUE(at::equal(a.inputs.narrow(1, 1, s - 1), a.targets.narrow(1, 0, s - 1)));
  for (int64_t row = 0; row < 4; ++row) {
    // Each row starts at a multiple of seq_len: token = start % 251.
    const int64_t first = a.inputs[row][0].item<int64_t>();
    const int64_t last_target = a.targets[row][s - 1].item<int64_t>();
    EXPECT_EQ((last_target - first + 251) % 251, s);
  }
}

TEST_F(TokenSourceTest, EachEpochVisitsEveryWindowOnceAndRanksDiffer) {
  const std::string path = dir_ + "/corpus.txt";
  const int64_t s = 8, W = 64;
  WriteBytes(path, std::string(TextOf(s * W + 1)));
  auto src = TokenSource::Open(path, TokenFormat::kText, 300);
  ASSERT_TRUE(src.ok()) << src.status();
  // d=2, m=2, b=4: 16 samples per iteration, so iterations 1..4 are epoch 0
  // and 5..8 epoch 1.
  auto batch_of = [&](int64_t it, int r, int mb) {
    return (*src)->Get(it, r, 2, mb, 2, 4, s, 7).inputs;
  };
  for (int epoch = 0; epoch < 2; ++epoch) {
    std::multiset<std::vector<int64_t>> rows;
    for (int64_t it = 1 + 4 * epoch; it <= 4 + 4 * epoch; ++it) {
      for (int r = 0; r < 2; ++r) {
        for (int mb = 0; mb < 2; ++mb) {
          Batch batch = (*src)->Get(it, r, 2, mb, 2, 4, s, 7);
          for (int64_t row = 0; row < 4; ++row) {
            at::Tensor x = batch.inputs[row].contiguous();
            rows.insert(std::vector<int64_t>(x.data_ptr<int64_t>(), x.data_ptr<int64_t>() + s));
          }
        }
      }
    }
    EXPECT_EQ(rows.size(), static_cast<size_t>(W));
    EXPECT_EQ(std::set<std::vector<int64_t>>(rows.begin(), rows.end()).size(),
              static_cast<size_t>(W))
        << "epoch " << epoch << " repeats a window";
  }
  EXPECT_FALSE(at::equal(batch_of(1, 0, 0), batch_of(1, 1, 0)));
  EXPECT_FALSE(at::equal(batch_of(1, 0, 0), batch_of(1, 0, 1)));
  EXPECT_FALSE(at::equal(batch_of(1, 0, 0), batch_of(5, 0, 0)));  // next epoch
  Batch seed7 = (*src)->Get(1, 0, 2, 0, 2, 4, s, 7);
  Batch seed8 = (*src)->Get(1, 0, 2, 0, 2, 4, s, 8);
  EXPECT_FALSE(at::equal(seed7.inputs, seed8.inputs));
}

TEST_F(TokenSourceTest, TextNeedsByteVocab) {
  const std::string path = dir_ + "/corpus.txt";
  WriteBytes(path, TextOf(100));
  auto src = TokenSource::Open(path, TokenFormat::kText, 100);
  EXPECT_EQ(src.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(src.status().message().find("model.vocab"), std::string::npos) << src.status();
}

TEST_F(TokenSourceTest, TooShortForSeqLen) {
  const std::string path = dir_ + "/corpus.txt";
  WriteBytes(path, TextOf(10));
  auto src = TokenSource::Open(path, TokenFormat::kText, 256, 10);
  EXPECT_EQ(src.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(src.status().message().find(path), std::string::npos);
  EXPECT_NE(src.status().message().find("data.path"), std::string::npos) << src.status();
  // The daemon reports both as input faults, which the coordinator does not
  // restart (worker/input_fault.h).
  EXPECT_TRUE(IsInputFault(src.status()));
  const absl::Status absent =
      TokenSource::Open(dir_ + "/absent.txt", TokenFormat::kText, 256).status();
  EXPECT_EQ(absent.code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(IsInputFault(absent));
}

TEST_F(TokenSourceTest, TextPathThatIsADirectorySaysSo) {
  const absl::Status st = TokenSource::Open(dir_, TokenFormat::kText, 256).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("is a directory"), std::string::npos) << st;
  EXPECT_NE(st.message().find("data.path"), std::string::npos) << st;
  EXPECT_TRUE(IsInputFault(st));
}

// A device never ends (/dev/zero grew a worker by gigabytes) and a FIFO
// blocks its reader in open() until someone writes: both are refused at
// once, naming data.path, as input faults (no restart would help).
TEST_F(TokenSourceTest, DevicesAndFifosAreRefusedWithoutReadingOrBlocking) {
  const std::string fifo = dir_ + "/corpus.fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  for (const auto& [path, format, what] :
       {std::tuple<std::string, TokenFormat, std::string>{"/dev/zero", TokenFormat::kText,
                                                          "a character device"},
        {fifo, TokenFormat::kText, "a FIFO"},
        {fifo, TokenFormat::kLlmc, "a FIFO"}}) {
    const absl::Status st = TokenSource::Open(path, format, 256).status();
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << path << ": " << st;
    EXPECT_NE(st.message().find("data.path " + path + " is " + what), std::string::npos) << st;
    EXPECT_TRUE(IsInputFault(st)) << st;
  }
}

TEST_F(TokenSourceTest, LlmcReadsBothMagicsFromDirectoryAndGlob) {
  std::vector<uint16_t> a = {1, 2, 3, 60000};
  std::vector<uint32_t> b = {70000, 5, 6};
  WriteBytes(dir_ + "/shard_000.bin", Shard(20240520, 1, a));
  WriteBytes(dir_ + "/shard_001.bin", Shard(20240801, 2, b));
  WriteBytes(dir_ + "/notes.txt", "ignored");
  const std::vector<int64_t> all = {1, 2, 3, 60000, 70000, 5, 6};
  for (const std::string& path : {dir_, dir_ + "/shard_*.bin"}) {
    auto src = TokenSource::Open(path, TokenFormat::kLlmc, 100000);
    ASSERT_TRUE(src.ok()) << path << ": " << src.status();
    ASSERT_EQ((*src)->num_tokens(), 7);
    // seq_len 6: one window, the whole stream.
    Batch batch = (*src)->Get(1, 0, 1, 0, 1, 1, 6, 0);
    for (int64_t k = 0; k < 6; ++k) {
      EXPECT_EQ(batch.inputs[0][k].item<int64_t>(), all[k]);
      EXPECT_EQ(batch.targets[0][k].item<int64_t>(), all[k + 1]);
    }
  }
  auto one = TokenSource::Open(dir_ + "/shard_001.bin", TokenFormat::kLlmc, 100000);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ((*one)->num_tokens(), 3);
}

TEST_F(TokenSourceTest, LlmcErrorsNameTheFile) {
  const std::string bad_magic = dir_ + "/magic.bin";
  WriteBytes(bad_magic, Shard<uint16_t>(1234, 1, {1, 2, 3}));
  const std::string truncated = dir_ + "/short.bin";
  WriteBytes(truncated, Shard<uint16_t>(20240520, 1, {1, 2, 3}, /*claimed=*/5));
  const std::string big_token = dir_ + "/vocab.bin";
  WriteBytes(big_token, Shard<uint32_t>(20240801, 1, {1, 50257, 3}));
  const std::string tiny = dir_ + "/tiny.bin";
  WriteBytes(tiny, "abc");
  const std::string version = dir_ + "/version.bin";
  WriteBytes(version, Shard<uint16_t>(20240520, 9, {1, 2, 3}));
  for (const auto& [path, needle] :
       std::vector<std::pair<std::string, std::string>>{{bad_magic, "magic"},
                                                        {truncated, "does not match"},
                                                        {big_token, "model.vocab"},
                                                        {tiny, "header"},
                                                        {version, "version"}}) {
    auto src = TokenSource::Open(path, TokenFormat::kLlmc, 50257);
    ASSERT_FALSE(src.ok()) << path;
    EXPECT_EQ(src.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(IsInputFault(src.status())) << path;
    EXPECT_NE(src.status().message().find(path), std::string::npos) << src.status();
    EXPECT_NE(src.status().message().find(needle), std::string::npos) << src.status();
  }
  EXPECT_EQ(TokenSource::Open(dir_ + "/none_*.bin", TokenFormat::kLlmc, 10).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(TokenSourceTest, ManyBatchesFromMegabytesOfTextStayCheap) {
  const std::string path = dir_ + "/big.txt";
  WriteBytes(path, TextOf(4 << 20));
  auto src = TokenSource::Open(path, TokenFormat::kText, 256);
  ASSERT_TRUE(src.ok());
  // ~16K windows of 256; 2000 micro-batches touch several epochs' caches.
  int64_t sum = 0;
  for (int64_t it = 1; it <= 500; ++it) {
    for (int mb = 0; mb < 4; ++mb) {
      sum += (*src)->Get(it, 0, 1, mb, 4, 8, 256, 1).inputs[0][0].item<int64_t>();
    }
  }
  EXPECT_GE(sum, 0);
}

}  // namespace
}  // namespace chronos::worker

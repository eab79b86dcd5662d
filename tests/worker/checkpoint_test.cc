// Stage checkpoints: bit-exact round trip, atomic-write leftovers ignored,
// damage reported as kDataLoss, and latest-complete selection.
#include "worker/checkpoint.h"
#include "worker/input_fault.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <limits>
#include <string>

namespace chronos::worker {
namespace {

namespace fs = std::filesystem;

StageCheckpoint Sample(int64_t iteration, int device, int data_rank) {
  StageCheckpoint ck;
  ck.iteration = iteration;
  ck.device = device;
  ck.data_rank = data_rank;
  ck.seed = 0xfedcba9876543210ULL;  // high bit set: must survive int64 IValue
  ck.optimizer_step = iteration;
  ck.chunk_layers = {0, 3, 5};
  at::Tensor w = at::randn({7, 5});
  // Values equality would not see: NaN, -0, denormals.
  w[0][0] = std::numeric_limits<float>::quiet_NaN();
  w[0][1] = -0.0f;
  w[0][2] = std::numeric_limits<float>::denorm_min();
  ck.params["layers.0.wqkv"] = w;
  ck.params["layers.0.norm"] = at::ones({5});
  // A view of a larger buffer is saved as just its own elements.
  ck.params["head.w"] = at::randn({10, 4}).narrow(0, 2, 3);
  ck.optimizer_state = {at::randn({7, 5}), at::rand({7, 5}),  at::zeros({5}),
                        at::zeros({5}),    at::randn({3, 4}), at::rand({3, 4})};
  ck.param_order = {"layers.0.wqkv", "layers.0.norm", "head.w"};
  return ck;
}

bool SameBits(const at::Tensor& a, const at::Tensor& b) {
  if (a.sizes() != b.sizes() || a.scalar_type() != b.scalar_type()) return false;
  at::Tensor x = a.contiguous(), y = b.contiguous();
  return std::memcmp(x.data_ptr(), y.data_ptr(), x.numel() * x.element_size()) == 0;
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/ckpt_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(CheckpointTest, RoundTripIsBitExact) {
  const StageCheckpoint ck = Sample(120, 1, 2);
  ASSERT_TRUE(WriteStageCheckpoint(dir_, ck).ok());
  EXPECT_EQ(StageCheckpointPath(dir_, 120, 1, 2), dir_ + "/iter-120/stage-1-dp2.ckpt");
  auto back = ReadStageCheckpoint(dir_, 120, 1, 2);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->iteration, 120);
  EXPECT_EQ(back->device, 1);
  EXPECT_EQ(back->data_rank, 2);
  EXPECT_EQ(back->seed, ck.seed);
  EXPECT_EQ(back->optimizer_step, 120);
  EXPECT_EQ(back->chunk_layers, ck.chunk_layers);
  EXPECT_EQ(back->param_order, ck.param_order);
  ASSERT_EQ(back->params.size(), ck.params.size());
  for (const auto& [name, t] : ck.params) {
    ASSERT_TRUE(back->params.count(name)) << name;
    EXPECT_TRUE(SameBits(back->params.at(name), t)) << name;
  }
  ASSERT_EQ(back->optimizer_state.size(), ck.optimizer_state.size());
  for (size_t i = 0; i < ck.optimizer_state.size(); ++i) {
    EXPECT_TRUE(SameBits(back->optimizer_state[i], ck.optimizer_state[i])) << i;
  }
  // The temporary file was renamed, not left behind.
  for (const auto& e : fs::directory_iterator(dir_ + "/iter-120")) {
    EXPECT_EQ(e.path().filename().string(), "stage-1-dp2.ckpt");
  }
}

TEST_F(CheckpointTest, MissingFileIsNotFound) {
  EXPECT_EQ(ReadStageCheckpoint(dir_, 1, 0, 0).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CheckpointTest, TruncatedOrCorruptFilesAreDataLoss) {
  ASSERT_TRUE(WriteStageCheckpoint(dir_, Sample(5, 0, 0)).ok());
  const std::string path = StageCheckpointPath(dir_, 5, 0, 0);
  const auto full = fs::file_size(path);
  auto expect_data_loss = [&](const char* what) {
    absl::Status s = ReadStageCheckpoint(dir_, 5, 0, 0).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << what << ": " << s;
    EXPECT_NE(s.message().find(path), std::string::npos) << s;
  };
  auto flip_byte = [&](std::uintmax_t offset) {
    std::FILE* f = std::fopen(path.c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    std::fseek(f, static_cast<long>(offset), SEEK_SET);
    int c = std::fgetc(f);
    std::fseek(f, static_cast<long>(offset), SEEK_SET);
    std::fputc(c ^ 0x5a, f);
    std::fclose(f);
  };
  flip_byte(full - 10);  // inside a tensor's bytes
  expect_data_loss("flipped payload byte");
  flip_byte(full - 10);
  ASSERT_TRUE(ReadStageCheckpoint(dir_, 5, 0, 0).ok());
  flip_byte(0);
  expect_data_loss("bad magic");
  flip_byte(0);
  fs::resize_file(path, full / 2);
  expect_data_loss("half the file");
  fs::resize_file(path, 10);
  expect_data_loss("shorter than the header");
}

TEST_F(CheckpointTest, LatestCompleteNeedsEveryStageAndIgnoresTmpFiles) {
  EXPECT_EQ(LatestCompleteCheckpoint(dir_ + "/absent", 2, 1), 0);
  EXPECT_EQ(LatestCompleteCheckpoint(dir_, 2, 1), 0);
  for (int dev = 0; dev < 2; ++dev) {
    ASSERT_TRUE(WriteStageCheckpoint(dir_, Sample(10, dev, 0)).ok());
  }
  // Iteration 20: stage 1 crashed mid-write and left only its temp file.
  ASSERT_TRUE(WriteStageCheckpoint(dir_, Sample(20, 0, 0)).ok());
  {
    std::FILE* f = std::fopen((StageCheckpointPath(dir_, 20, 1, 0) + ".tmp.12345").c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fputs("partial", f);
    std::fclose(f);
  }
  fs::create_directories(dir_ + "/iter-oops");
  fs::create_directories(dir_ + "/unrelated");
  EXPECT_EQ(LatestCompleteCheckpoint(dir_, 2, 1), 10);
  EXPECT_EQ(ReadStageCheckpoint(dir_, 20, 1, 0).status().code(), absl::StatusCode::kNotFound);
  // A 2 x 2 job needs dp1 files too.
  EXPECT_EQ(LatestCompleteCheckpoint(dir_, 2, 2), 0);
  ASSERT_TRUE(WriteStageCheckpoint(dir_, Sample(20, 1, 0)).ok());
  EXPECT_EQ(LatestCompleteCheckpoint(dir_, 2, 1), 20);
}

TEST_F(CheckpointTest, PruneKeepsTheNewestOfThisStageAndRemovesItsOrphans) {
  for (int64_t it : {10, 20, 30, 40}) {
    for (int dev = 0; dev < 2; ++dev) {
      ASSERT_TRUE(WriteStageCheckpoint(dir_, Sample(it, dev, 0)).ok());
    }
  }
  // Orphans of killed writers, this stage's and another's.
  for (int dev = 0; dev < 2; ++dev) {
    std::FILE* f = std::fopen((StageCheckpointPath(dir_, 40, dev, 0) + ".tmp.999").c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fclose(f);
  }
  PruneStageCheckpoints(dir_, /*device=*/0, /*data_rank=*/0, /*keep=*/2);
  for (int64_t it : {10, 20}) {
    EXPECT_FALSE(fs::exists(StageCheckpointPath(dir_, it, 0, 0))) << it;
    EXPECT_TRUE(fs::exists(StageCheckpointPath(dir_, it, 1, 0))) << "another stage's " << it;
  }
  for (int64_t it : {30, 40}) EXPECT_TRUE(fs::exists(StageCheckpointPath(dir_, it, 0, 0))) << it;
  EXPECT_FALSE(fs::exists(StageCheckpointPath(dir_, 40, 0, 0) + ".tmp.999"));
  EXPECT_TRUE(fs::exists(StageCheckpointPath(dir_, 40, 1, 0) + ".tmp.999"));
  PruneStageCheckpoints(dir_, 1, 0, 2);
  // Emptied iteration directories go too; the newest complete one stays.
  EXPECT_FALSE(fs::exists(dir_ + "/iter-10"));
  EXPECT_EQ(LatestCompleteCheckpoint(dir_, 2, 1), 40);
  EXPECT_TRUE(ReadStageCheckpoint(dir_, 30, 1, 0).ok());
}

// A full disk is a storage fault, not out of memory: the checkpoint is
// written into a 64 KiB tmpfs in a private mount namespace of a child
// process (skipped where namespaces or tmpfs cannot be had).
TEST_F(CheckpointTest, AFullDiskIsAStorageFaultAndLeavesNoTempFile) {
  const std::string mnt = dir_ + "/small";
  fs::create_directories(mnt);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (unshare(CLONE_NEWNS) != 0 ||
        mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=64k") != 0) {
      _exit(77);
    }
    StageCheckpoint big = Sample(5, 0, 0);
    big.params["layers.0.wqkv"] = at::randn({256, 256});  // 256 KiB
    const absl::Status s = WriteStageCheckpoint(mnt, big);
    bool tmp_left = false;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(mnt, ec), end; !ec && it != end; it.increment(ec)) {
      tmp_left |= it->path().string().find(".tmp.") != std::string::npos;
    }
    const bool ok = absl::IsResourceExhausted(s) && IsStorageFault(s) &&
                    s.message().find("training.checkpoint_dir") != std::string::npos && !tmp_left;
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) {
    GTEST_SKIP() << "cannot mount a tmpfs in a private namespace here";
  }
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "a write to a full disk must be ResourceExhausted, marked FAULT_STORAGE, naming "
         "training.checkpoint_dir, and leave no temp file";
}

}  // namespace
}  // namespace chronos::worker

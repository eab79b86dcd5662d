// Allowed roots (core/path_roots.h): inside, outside, ".." and symlink
// escapes, a sibling with the root's name as prefix, patterns, relative paths.
#include "core/path_roots.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace chronos {
namespace {

namespace fs = std::filesystem;

class PathRootsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("path_roots_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "data" / "sub");
    fs::create_directories(dir_ / "data2");
    fs::create_directories(dir_ / "etc");
    fs::create_directory_symlink(dir_ / "etc", dir_ / "data" / "escape");
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string P(const std::string& rel) const { return (dir_ / rel).string(); }
  fs::path dir_;
};

TEST_F(PathRootsTest, NoRootsAllowEverything) {
  EXPECT_TRUE(CheckUnderRoots("/etc/shadow", "", {}, "data.path").ok());
  EXPECT_TRUE(CheckUnderRoots("relative.txt", "", {}, "data.path").ok());
}

TEST_F(PathRootsTest, InsideIsAllowedAndEveryEscapeIsRefusedNamingTheField) {
  const std::vector<std::string> roots = {P("data")};
  EXPECT_TRUE(CheckUnderRoots(P("data/sub/corpus.txt"), "", roots, "data.path").ok());
  EXPECT_TRUE(CheckUnderRoots(P("data/new/not-yet.txt"), "", roots, "data.path").ok());
  EXPECT_TRUE(CheckUnderRoots(P("data/shards/*.bin"), "", roots, "data.path").ok());
  for (const std::string& bad : {std::string("/etc/shadow"), P("data/../etc/x"), P("data/escape/x"),
                                 P("data2/x"), P("data*/x")}) {
    const absl::Status s = CheckUnderRoots(bad, "", roots, "data.path");
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("data.path"), std::string::npos) << s;
  }
}

TEST_F(PathRootsTest, RelativePathsNeedABaseAndResolveAgainstIt) {
  const std::vector<std::string> roots = {P("data")};
  const absl::Status s = CheckUnderRoots("./checkpoints", "", roots, "training.checkpoint_dir");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("absolute"), std::string::npos) << s;
  EXPECT_TRUE(CheckUnderRoots("./checkpoints", P("data"), roots, "training.checkpoint_dir").ok());
  EXPECT_FALSE(CheckUnderRoots("../etc", P("data"), roots, "training.checkpoint_dir").ok());
}

}  // namespace
}  // namespace chronos

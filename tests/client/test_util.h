// Helpers for chronosctl tests: run the dispatcher in-process with a fake
// environment and capture its output; scratch files under the test's
// temporary directory.
#ifndef CHRONOS_TESTS_CLIENT_TEST_UTIL_H_
#define CHRONOS_TESTS_CLIENT_TEST_UTIL_H_

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/cli.h"
#include "gtest/gtest.h"

namespace chronos::client::testing {

using Env = std::map<std::string, std::string>;

inline EnvLookup LookupIn(Env env) {
  return [env = std::move(env)](const std::string& k) -> std::optional<std::string> {
    auto it = env.find(k);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
}

struct CliResult {
  int code = -1;
  std::string out;
  std::string err;
};

// A fixed clock: 2023-11-14T22:23:20Z.
inline absl::Time FixedNow() { return absl::FromUnixSeconds(1700000600); }

// Runs `chronosctl args...` in-process. `env` replaces the process
// environment entirely, so the developer's CHRONOS_* variables and config
// file never leak into a test (HOME points at an empty folder by default).
inline CliResult RunCli(std::vector<std::string> args, Env env = {}) {
  if (env.find("HOME") == env.end()) env["HOME"] = ::testing::TempDir() + "/no-home";
  RunOptions options;
  options.env = LookupIn(env);
  options.now = FixedNow;
  args.insert(args.begin(), "chronosctl");
  std::ostringstream out, err;
  CliResult r;
  r.code = RunChronosctl(args, out, err, options);
  r.out = out.str();
  r.err = err.str();
  return r;
}

// A fresh folder under the test temp dir, unique per call.
inline std::string ScratchDir(const std::string& name) {
  static int counter = 0;
  const std::string dir =
      absl::StrCat(::testing::TempDir(), "/chronosctl-", getpid(), "-", name, "-", counter++);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline std::string WriteFile(const std::string& path, const std::string& content) {
  std::ofstream(path) << content;
  return path;
}

inline std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A valid tiny job spec (2 CPU stages).
inline std::string TinySpecYaml(const std::string& name = "tiny") {
  return absl::StrCat("name: ", name, R"(
model:    {layers: 4, hidden: 32, heads: 4, ffn_hidden: 64, vocab: 256, seq_len: 16}
data:     {path: data/input.txt, format: text}
training: {iterations: 3, micro_batch_size: 2, microbatches: 4, lr: 1.0e-3, seed: 1, precision: fp32}
parallel: {pipeline: 2, data: 1}
schedule: {kind: chronos}
device:   {profile: cpu}
)");
}

}  // namespace chronos::client::testing

#endif  // CHRONOS_TESTS_CLIENT_TEST_UTIL_H_

// chronosctl's command dispatcher. main() is a thin wrapper around
// RunChronosctl so that tests can run any command in-process, with their own
// streams and environment, and check its output and exit code.
#ifndef CHRONOS_CLIENT_CLI_H_
#define CHRONOS_CLIENT_CLI_H_

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "client/config.h"

namespace chronos::client {

struct RunOptions {
  EnvLookup env = ProcessEnv();
  // Whether stdout / stderr are terminals: progress lines are then
  // rewritten in place.
  bool out_is_tty = false;
  bool err_is_tty = false;
  // This binary's path; `local run` looks for the daemons next to it.
  // "" = /proc/self/exe.
  std::string self_path;
  std::function<absl::Time()> now = [] { return absl::Now(); };
};

// Parses `args` (args[0] is the program name), runs the command and returns
// its exit code (client/exit_codes.h). Errors go to `err` as
// "error: <message>"; results go to `out`. Not reentrant: `local run`
// installs process-wide signal handlers while it runs.
int RunChronosctl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                  const RunOptions& options);

// The same with the process environment, for main() and simple tests.
int RunChronosctl(int argc, char** argv, std::ostream& out, std::ostream& err);

}  // namespace chronos::client

#endif  // CHRONOS_CLIENT_CLI_H_

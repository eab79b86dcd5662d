// What every chronosctl command gets from the dispatcher (client/cli.cc) and
// how command groups register themselves. Internal to client/.
#ifndef CHRONOS_CLIENT_COMMANDS_H_
#define CHRONOS_CLIENT_COMMANDS_H_

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/cli.h"
#include "client/config.h"
#include "client/control_client.h"
#include "client/output.h"
#include "core/status_macros.h"

namespace chronos::client {

// Flags every command accepts (CLI11 fallthrough lets them follow the verb).
struct GlobalFlags {
  ConnectionFlags connection;
  std::string output = "table";
};

// Per-invocation state: streams, options, and the connection, made on
// first use so that commands that need no server (plan, version) never
// read the config file.
class CommandContext {
 public:
  CommandContext(std::ostream& out, std::ostream& err, const RunOptions& run,
                 const GlobalFlags& flags)
      : out_(out), err_(err), run_(run), flags_(flags) {}

  std::ostream& out() { return out_; }
  std::ostream& err() { return err_; }
  const RunOptions& run() const { return run_; }
  const GlobalFlags& flags() const { return flags_; }
  absl::Time Now() const { return run_.now(); }

  absl::StatusOr<OutputFormat> Output() const { return ParseOutputFormat(flags_.output); }
  absl::StatusOr<Connection> ResolveConnection() const {
    return client::ResolveConnection(flags_.connection, run_.env);
  }
  // The ControlService client, connecting on first use.
  absl::StatusOr<ControlClient*> Control();

  // Prints "error: <message>" and returns the exit code for `status`.
  int Fail(const absl::Status& status);

 private:
  std::ostream& out_;
  std::ostream& err_;
  const RunOptions& run_;
  const GlobalFlags& flags_;
  std::unique_ptr<ControlClient> control_;
};

// Inside a command handler: `lhs = value`, or return ctx.Fail(status).
#define CHRONOSCTL_ASSIGN_OR_FAIL(ctx, lhs, expr) \
  CHRONOSCTL_ASSIGN_OR_FAIL_IMPL_(CHRONOS_STATUS_CONCAT_(chronosctl_or_, __LINE__), ctx, lhs, expr)
#define CHRONOSCTL_ASSIGN_OR_FAIL_IMPL_(tmp, ctx, lhs, expr) \
  auto tmp = (expr);                                         \
  if (!tmp.ok()) return (ctx).Fail(tmp.status());            \
  lhs = std::move(tmp).value()

using CommandFn = std::function<int(CommandContext&)>;

struct Command {
  CLI::App* app;  // the (sub)command whose parse selects `run`
  CommandFn run;
};

// Each adds its subcommands to `app` and their handlers to `commands`.
// Flag values live in objects the handlers own (shared_ptr captures).
void AddJobCommands(
    CLI::App& app,
    std::vector<Command>* commands);  // submit get list describe watch cancel delete set
void AddPlanCommands(CLI::App& app, std::vector<Command>* commands);     // plan schedule
void AddClusterCommands(CLI::App& app, std::vector<Command>* commands);  // workers health version
void AddLocalCommands(CLI::App& app, std::vector<Command>* commands);    // local run

}  // namespace chronos::client

#endif  // CHRONOS_CLIENT_COMMANDS_H_

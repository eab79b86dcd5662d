#include "client/cli.h"

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "client/exit_codes.h"

namespace chronos::client {

absl::StatusOr<ControlClient*> CommandContext::Control() {
  if (control_ == nullptr) {
    absl::StatusOr<Connection> conn = ResolveConnection();
    if (!conn.ok()) return conn.status();
    absl::StatusOr<std::unique_ptr<ControlClient>> client = ControlClient::Create(*conn);
    if (!client.ok()) return client.status();
    control_ = std::move(*client);
  }
  return control_.get();
}

int CommandContext::Fail(const absl::Status& status) {
  err_ << "error: " << status.message() << "\n" << std::flush;
  return ExitCodeForStatus(status);
}

namespace {

// The deepest parsed subcommand's handler: `set offload-ratio` wins over
// `set` (which has none).
const Command* Selected(const std::vector<Command>& commands) {
  const Command* best = nullptr;
  int best_depth = -1;
  for (const Command& c : commands) {
    if (!c.app->parsed()) continue;
    int depth = 0;
    for (const CLI::App* a = c.app; a->get_parent() != nullptr; a = a->get_parent()) ++depth;
    if (depth > best_depth) {
      best = &c;
      best_depth = depth;
    }
  }
  return best;
}

std::string CommandPath(const CLI::App* app) {
  std::vector<std::string> parts;
  for (const CLI::App* a = app; a != nullptr && a->get_parent() != nullptr; a = a->get_parent()) {
    parts.push_back(a->get_name());
  }
  std::reverse(parts.begin(), parts.end());
  std::string path = "chronosctl";
  for (const std::string& p : parts) absl::StrAppend(&path, " ", p);
  return path;
}

}  // namespace

int RunChronosctl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                  const RunOptions& options) {
  CLI::App app("chronosctl: control Chronos pipeline-parallel training jobs", "chronosctl");
  app.fallthrough();  // global flags may follow the verb: `chronosctl get JOB -o json`
  app.require_subcommand(1);
  GlobalFlags flags;
  app.add_option("--server", flags.connection.server,
                 "Coordinator HOST:PORT (else $CHRONOS_SERVER, the config file, 127.0.0.1:7070)");
  app.add_option("--token-file", flags.connection.token_file,
                 "File holding the bearer token (else $CHRONOS_TOKEN, the config file)");
  app.add_option("--tls-ca", flags.connection.tls_ca,
                 "PEM file of the CA that signed the coordinator's certificate (enables TLS)");
  app.add_flag("--tls", flags.connection.tls, "Use TLS with the system's root certificates");
  app.add_option("--context", flags.connection.context,
                 "Context of the config file to use (else $CHRONOS_CONTEXT, current-context)");
  app.add_option("--request-timeout", flags.connection.request_timeout,
                 "Deadline of each request, e.g. 10s, 1m; 0 = none")
      ->capture_default_str();
  app.add_option("-o,--output", flags.output, "Output format: table, wide, json or yaml")
      ->capture_default_str();

  std::vector<Command> commands;
  AddJobCommands(app, &commands);
  AddPlanCommands(app, &commands);
  AddClusterCommands(app, &commands);
  AddLocalCommands(app, &commands);

  std::vector<const char*> argv;
  argv.reserve(args.size());
  for (const std::string& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {
      app.exit(e, out, err);  // --help
      return kExitOk;
    }
    err << "error: " << e.what() << "\n";
    const CLI::App* where = &app;
    for (const Command& c : commands) {
      if (c.app->parsed()) where = c.app;
    }
    err << "Run '" << CommandPath(where) << " --help' for usage.\n" << std::flush;
    return kExitUsage;
  }

  const Command* command = Selected(commands);
  if (command == nullptr) {
    err << "error: no command given\n" << app.help() << std::flush;
    return kExitUsage;
  }
  CommandContext ctx(out, err, options, flags);
  // Reject a bad -o before doing any work, whatever the command.
  if (absl::StatusOr<OutputFormat> format = ctx.Output(); !format.ok()) {
    return ctx.Fail(format.status());
  }
  const int code = command->run(ctx);
  out << std::flush;
  err << std::flush;
  return code;
}

int RunChronosctl(int argc, char** argv, std::ostream& out, std::ostream& err) {
  std::vector<std::string> args(argv, argv + argc);
  return RunChronosctl(args, out, err, RunOptions());
}

}  // namespace chronos::client

// Job commands: submit, get, list, describe, watch, cancel, delete and
// set offload-ratio. Each translates flags into one ControlService request
// and the reply into the chosen output format.
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/commands.h"
#include "client/exit_codes.h"
#include "client/job_file.h"
#include "client/job_view.h"
#include "client/job_watcher.h"

namespace chronos::client {
namespace {

// Idempotency key for SubmitJob: a retried request (after a timeout whose
// reply was lost) returns the job it created instead of failing on the name.
std::string NewRequestId() {
  std::random_device rd;
  std::mt19937_64 gen((static_cast<uint64_t>(rd()) << 32) ^ rd());
  return absl::StrFormat("chronosctl-%016x", gen());
}

// Prints a finished job's outcome and returns the exit code for it.
int ReportOutcome(CommandContext& ctx, const v1::Job& job) {
  const v1::JobState state = job.status().state();
  std::string line = absl::StrCat("job/", job.metadata().name(), " ", JobStateName(state));
  if (!job.status().message().empty()) absl::StrAppend(&line, ": ", job.status().message());
  (state == v1::JOB_STATE_SUCCEEDED ? ctx.out() : ctx.err()) << line << "\n";
  return ExitCodeForJobState(state);
}

// Follows `name` to its end with the watch output `format` asks for.
int Follow(CommandContext& ctx, ControlClient& client, const std::string& name, OutputFormat format,
           int64_t since) {
  WatchOptions w;
  w.progress = &ctx.out();
  w.interactive = ctx.run().out_is_tty && !IsStructured(format);
  w.json_lines = IsStructured(format);
  w.since_sequence = since;
  absl::StatusOr<v1::Job> job = WatchUntilTerminal(client, name, w);
  if (!job.ok()) return ctx.Fail(job.status());
  if (w.json_lines) return ExitCodeForJobState(job->status().state());
  return ReportOutcome(ctx, *job);
}

// For commands that print one job: the object for json/yaml, else a line.
void PrintJobResult(CommandContext& ctx, const v1::Job& job, OutputFormat format,
                    const std::string& line) {
  if (IsStructured(format)) {
    PrintMessage(ctx.out(), job, format);
  } else {
    ctx.out() << line << "\n";
  }
}

// "job/NAME submitted", and what happens next while the coordinator plans
// it in the background.
std::string SubmittedLine(const v1::Job& job, bool waiting) {
  const std::string& name = job.metadata().name();
  std::string line = absl::StrCat("job/", name, " submitted");
  if (job.status().state() == v1::JOB_STATE_PLANNING) {
    absl::StrAppend(&line, "; the coordinator is planning it");
    if (!waiting) absl::StrAppend(&line, " (`chronosctl watch ", name, "` follows it)");
  } else if (job.status().state() != v1::JOB_STATE_UNSPECIFIED) {
    absl::StrAppend(&line, " (", JobStateName(job.status().state()), ")");
  }
  return line;
}

void AddSubmit(CLI::App& app, std::vector<Command>* commands) {
  struct Flags {
    std::string file;
    std::string request_id;
    bool wait = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand("submit", "Validate a job spec and submit it");
  cmd->add_option("-f,--file", f->file, "Job spec YAML file")->required();
  cmd->add_option("--request-id", f->request_id,
                  "Idempotency key: resubmitting with the same id returns the same job");
  cmd->add_flag("--wait", f->wait, "Follow the job and exit with its outcome");
  commands->push_back({cmd, [f](CommandContext& ctx) -> int {
                         CHRONOSCTL_ASSIGN_OR_FAIL(ctx, OutputFormat format, ctx.Output());
                         // Validate before contacting the server: every problem at once, each
                         // naming its field, and no round trip for a typo.
                         absl::StatusOr<v1::JobSpec> spec =
                             LoadJobFileForSubmit(f->file, CurrentDirectory());
                         if (!spec.ok()) return ctx.Fail(spec.status());
                         CHRONOSCTL_ASSIGN_OR_FAIL(ctx, ControlClient * client, ctx.Control());
                         v1::SubmitJobRequest req;
                         *req.mutable_spec() = *spec;
                         req.set_request_id(f->request_id.empty() ? NewRequestId() : f->request_id);
                         v1::Job job;
                         if (absl::Status s = client->Call(&Stub::SubmitJob, req, &job); !s.ok()) {
                           return ctx.Fail(s);
                         }
                         if (!f->wait || !IsStructured(format)) {
                           PrintJobResult(ctx, job, format, SubmittedLine(job, f->wait));
                         }
                         if (!f->wait) return kExitOk;
                         return Follow(ctx, *client, job.metadata().name(), format, 0);
                       }});
}

absl::StatusOr<v1::Job> GetJob(ControlClient& client, const std::string& name, bool history) {
  v1::GetJobRequest req;
  req.set_name(name);
  req.set_include_events(history);
  req.set_include_iterations(history);
  v1::Job job;
  CHRONOS_RETURN_IF_ERROR(client.Call(&Stub::GetJob, req, &job));
  return job;
}

int ListJobs(CommandContext& ctx, const std::string& state_flag) {
  CHRONOSCTL_ASSIGN_OR_FAIL(ctx, OutputFormat format, ctx.Output());
  v1::ListJobsRequest req;
  if (!state_flag.empty()) {
    absl::StatusOr<v1::JobState> state = ParseJobState(state_flag);
    if (!state.ok()) return ctx.Fail(state.status());
    req.set_state(*state);
  }
  CHRONOSCTL_ASSIGN_OR_FAIL(ctx, ControlClient * client, ctx.Control());
  v1::ListJobsResponse resp;
  if (absl::Status s = client->Call(&Stub::ListJobs, req, &resp); !s.ok()) {
    return ctx.Fail(s);
  }
  if (IsStructured(format)) {
    PrintMessage(ctx.out(), resp, format);
  } else if (resp.jobs().empty()) {
    ctx.err() << "No jobs found.\n";
  } else {
    PrintJobTable(ctx.out(), {resp.jobs().begin(), resp.jobs().end()},
                  format == OutputFormat::kWide, ctx.Now());
  }
  return kExitOk;
}

void AddGetAndList(CLI::App& app, std::vector<Command>* commands) {
  struct Flags {
    std::string job;
    std::string state;
    bool watch = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* get = app.add_subcommand("get", "Show one job (or all, like list)");
  get->add_option("job", f->job, "Job name");
  get->add_option("--state", f->state, "With no JOB: only jobs in this state");
  get->add_flag("-w,--watch", f->watch, "Follow the job until it ends (like watch)");
  commands->push_back(
      {get, [f](CommandContext& ctx) -> int {
         if (f->job.empty()) {
           if (f->watch) return ctx.Fail(UsageError("--watch needs a JOB"));
           return ListJobs(ctx, f->state);
         }
         CHRONOSCTL_ASSIGN_OR_FAIL(ctx, OutputFormat format, ctx.Output());
         CHRONOSCTL_ASSIGN_OR_FAIL(ctx, ControlClient * client, ctx.Control());
         absl::StatusOr<v1::Job> job = GetJob(*client, f->job, IsStructured(format));
         if (!job.ok()) return ctx.Fail(job.status());
         if (IsStructured(format)) {
           PrintMessage(ctx.out(), *job, format);
         } else {
           PrintJobTable(ctx.out(), {*job}, format == OutputFormat::kWide, ctx.Now());
         }
         if (!f->watch) return kExitOk;
         return Follow(ctx, *client, f->job, format, 0);
       }});

  auto lf = std::make_shared<std::string>();
  CLI::App* list = app.add_subcommand("list", "List jobs");
  list->add_option("--state", *lf,
                   "Only jobs in this state: pending, running, recovering, succeeded, failed, "
                   "cancelled");
  commands->push_back({list, [lf](CommandContext& ctx) { return ListJobs(ctx, *lf); }});
}

void AddDescribe(CLI::App& app, std::vector<Command>* commands) {
  auto job_name = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "describe", "Show a job in detail: spec, status, conditions, assignments, memory, events");
  cmd->add_option("job", *job_name, "Job name")->required();
  commands->push_back({cmd, [job_name](CommandContext& ctx) -> int {
                         CHRONOSCTL_ASSIGN_OR_FAIL(ctx, OutputFormat format, ctx.Output());
                         CHRONOSCTL_ASSIGN_OR_FAIL(ctx, ControlClient * client, ctx.Control());
                         absl::StatusOr<v1::Job> job = GetJob(*client, *job_name, /*history=*/true);
                         if (!job.ok()) return ctx.Fail(job.status());
                         if (IsStructured(format)) {
                           PrintMessage(ctx.out(), *job, format);
                         } else {
                           PrintJobDescription(ctx.out(), *job, ctx.Now());
                         }
                         return kExitOk;
                       }});
}

void AddWatch(CLI::App& app, std::vector<Command>* commands) {
  struct Flags {
    std::string job;
    int64_t since = 0;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd =
      app.add_subcommand("watch", "Follow a job's progress until it ends; exit with its outcome");
  cmd->add_option("job", f->job, "Job name")->required();
  cmd->add_option("--since", f->since, "Replay only history after this sequence number (0 = all)");
  commands->push_back({cmd, [f](CommandContext& ctx) -> int {
                         CHRONOSCTL_ASSIGN_OR_FAIL(ctx, OutputFormat format, ctx.Output());
                         if (f->since < 0) return ctx.Fail(UsageError("--since must be >= 0"));
                         CHRONOSCTL_ASSIGN_OR_FAIL(ctx, ControlClient * client, ctx.Control());
                         return Follow(ctx, *client, f->job, format, f->since);
                       }});
}

void AddCancelAndDelete(CLI::App& app, std::vector<Command>* commands) {
  auto cancel_name = std::make_shared<std::string>();
  CLI::App* cancel = app.add_subcommand("cancel", "Cancel a job (it ends CANCELLED)");
  cancel->add_option("job", *cancel_name, "Job name")->required();
  commands->push_back({cancel, [cancel_name](CommandContext& ctx) -> int {
                         CHRONOSCTL_ASSIGN_OR_FAIL(ctx, OutputFormat format, ctx.Output());
                         CHRONOSCTL_ASSIGN_OR_FAIL(ctx, ControlClient * client, ctx.Control());
                         v1::CancelJobRequest req;
                         req.set_name(*cancel_name);
                         v1::Job job;
                         if (absl::Status s = client->Call(&Stub::CancelJob, req, &job); !s.ok()) {
                           return ctx.Fail(s);
                         }
                         PrintJobResult(
                             ctx, job, format,
                             absl::StrCat("job/", job.metadata().name(), " cancelled (state ",
                                          JobStateName(job.status().state()), ")"));
                         return kExitOk;
                       }});

  auto delete_name = std::make_shared<std::string>();
  CLI::App* del = app.add_subcommand(
      "delete", "Remove a finished job and its history so that its name can be reused");
  del->add_option("job", *delete_name, "Job name")->required();
  commands->push_back({del, [delete_name](CommandContext& ctx) -> int {
                         CHRONOSCTL_ASSIGN_OR_FAIL(ctx, OutputFormat format, ctx.Output());
                         CHRONOSCTL_ASSIGN_OR_FAIL(ctx, ControlClient * client, ctx.Control());
                         v1::DeleteJobRequest req;
                         req.set_name(*delete_name);
                         v1::Job job;
                         if (absl::Status s = client->Call(&Stub::DeleteJob, req, &job); !s.ok()) {
                           return ctx.Fail(s);
                         }
                         PrintJobResult(ctx, job, format,
                                        absl::StrCat("job/", *delete_name, " deleted"));
                         return kExitOk;
                       }});
}

void AddSet(CLI::App& app, std::vector<Command>* commands) {
  struct Flags {
    std::string job;
    std::string ratio;
    int64_t expected_generation = 0;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* set = app.add_subcommand("set", "Change a running job's memory policy");
  set->require_subcommand(1);
  CLI::App* cmd = set->add_subcommand(
      "offload-ratio",
      "Set the fraction (0..1) of saved activations offloaded to host memory, live");
  cmd->add_option("job", f->job, "Job name")->required();
  cmd->add_option("ratio", f->ratio, "Offload ratio, 0 <= RATIO <= 1")->required();
  cmd->add_option("--expected-generation", f->expected_generation,
                  "Fail with a conflict unless the job is at this generation (0 = don't check)");
  commands->push_back(
      {cmd, [f](CommandContext& ctx) -> int {
         CHRONOSCTL_ASSIGN_OR_FAIL(ctx, OutputFormat format, ctx.Output());
         double ratio = 0;
         if (!absl::SimpleAtod(f->ratio, &ratio) || !(ratio >= 0.0 && ratio <= 1.0)) {
           return ctx.Fail(UsageError(absl::StrCat(
               "offload-ratio RATIO must be a number between 0 and 1 (got '", f->ratio, "')")));
         }
         CHRONOSCTL_ASSIGN_OR_FAIL(ctx, ControlClient * client, ctx.Control());
         v1::UpdatePolicyRequest req;
         req.set_name(f->job);
         req.set_offload_ratio(ratio);
         req.set_expected_generation(f->expected_generation);
         v1::Job job;
         if (absl::Status s = client->Call(&Stub::UpdatePolicy, req, &job); !s.ok()) {
           return ctx.Fail(s);
         }
         PrintJobResult(ctx, job, format,
                        absl::StrFormat("job/%s offload ratio set to %.2f (generation %d)",
                                        job.metadata().name(), ratio, job.metadata().generation()));
         return kExitOk;
       }});
}

}  // namespace

void AddJobCommands(CLI::App& app, std::vector<Command>* commands) {
  AddSubmit(app, commands);
  AddGetAndList(app, commands);
  AddDescribe(app, commands);
  AddWatch(app, commands);
  AddCancelAndDelete(app, commands);
  AddSet(app, commands);
}

}  // namespace chronos::client

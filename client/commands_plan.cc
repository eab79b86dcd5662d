// Planning commands that need no server: `plan` (the memory planner's
// report for one or more schedules) and `schedule` (draw one schedule's
// simulated timeline); `schedule JOB` draws a running job's schedule as the
// coordinator pushed it.
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "client/exit_codes.h"
#include "client/job_file.h"
#include "client/plan_view.h"
#include "core/cost_model.h"
#include "core/device_profile.h"
#include "core/job_spec.h"
#include "core/planner.h"
#include "core/render.h"
#include "core/schedule_proto.h"
#include "core/simulator.h"
#include "core/size.h"

namespace chronos::client {
namespace {

absl::StatusOr<int64_t> ParseBudgetFlag(const std::string& text) {
  if (text.empty() || absl::AsciiStrToLower(text) == "auto") return 0;
  absl::StatusOr<int64_t> bytes = ParseByteSize(text);
  if (!bytes.ok()) return UsageError(absl::StrCat("--hbm-budget: ", bytes.status().message()));
  return *bytes;
}

void AddPlan(CLI::App& app, std::vector<Command>* commands) {
  struct Flags {
    std::string file;
    std::vector<std::string> schedules;
    std::string hbm_budget;
    std::string profile;
    bool max_layers = false;
    bool decisions = false;
    double min_mfu_share = 0;
    double min_mfu = 0;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "plan", "Plan a job's memory for several schedules, locally (no server needed)");
  cmd->add_option("-f,--file", f->file, "Job spec YAML file")->required();
  cmd->add_option("--schedules", f->schedules,
                  "Schedules to compare, comma-separated; each may carry a variant "
                  "(1f1b+recompute, chronos+offload, ...). Default: every generator")
      ->delimiter(',');
  cmd->add_option("--hbm-budget", f->hbm_budget,
                  "HBM per device the plan may use, e.g. 80GiB (default: the spec's)");
  cmd->add_option("--profile", f->profile,
                  "Device profile: a built-in name (cpu, h100) or a profile YAML file "
                  "(default: the spec's)");
  cmd->add_flag("--max-layers", f->max_layers,
                "Also find the largest model.layers each schedule fits");
  cmd->add_option("--min-mfu-share", f->min_mfu_share,
                  "With --max-layers: a size counts only at this share of plain 1F1B's MFU at "
                  "its own largest size, e.g. 0.95");
  cmd->add_option("--min-mfu", f->min_mfu,
                  "With --max-layers: a size counts only at this MFU or more, e.g. 0.45");
  cmd->add_flag(
      "--decisions", f->decisions,
      "Include the per-(chunk, micro-batch) keep/offload/recompute decisions (json/yaml)");
  commands->push_back(
      {cmd, [f](CommandContext& ctx) -> int {
         CHRONOSCTL_ASSIGN_OR_FAIL(ctx, OutputFormat format, ctx.Output());
         CHRONOSCTL_ASSIGN_OR_FAIL(ctx, int64_t budget, ParseBudgetFlag(f->hbm_budget));
         CHRONOSCTL_ASSIGN_OR_FAIL(ctx, v1::JobSpec spec,
                                   LoadJobFileForPlan(f->file, CurrentDirectory(), f->profile));
         // A misspelt name is a usage error, not a row that says "error": a
         // script that compares schedules must not read exit 0 as success.
         for (const std::string& name : f->schedules) {
           absl::StatusOr<ScheduleVariant> v = ParseVariant(name, spec.memory());
           if (!v.ok())
             return ctx.Fail(UsageError(absl::StrCat("--schedules: ", v.status().message())));
         }
         for (const auto& [flag, v] : {std::pair{"--min-mfu-share", f->min_mfu_share},
                                       std::pair{"--min-mfu", f->min_mfu}}) {
           if (!(v >= 0 && v <= 1)) {
             return ctx.Fail(UsageError(absl::StrCat(flag, " must be in (0, 1] (got ", v, ")")));
           }
           if (v > 0 && !f->max_layers) {
             return ctx.Fail(UsageError(absl::StrCat(flag, " needs --max-layers")));
           }
         }
         PlanOptions options;
         options.hbm_budget_bytes = budget;
         options.include_decisions = f->decisions;
         options.min_mfu = f->min_mfu;
         options.min_mfu_share = f->min_mfu_share;
         absl::StatusOr<v1::PlanReport> report =
             BuildPlanReport(spec, f->schedules, f->max_layers, options);
         if (!report.ok()) return ctx.Fail(report.status());
         PrintPlanReport(ctx.out(), *report, format);
         return kExitOk;
       }});
}

// The simulated timeline of a schedule pushed to a running job: the job's
// spec gives the model and profile for the cost model.
absl::Status RenderJobSchedule(CommandContext& ctx, const std::string& name,
                               const std::string& render, int width) {
  CHRONOS_ASSIGN_OR_RETURN(ControlClient * client, ctx.Control());
  v1::GetScheduleResponse resp;
  {
    v1::GetScheduleRequest req;
    req.set_name(name);
    CHRONOS_RETURN_IF_ERROR(client->Call(&Stub::GetSchedule, req, &resp));
  }
  v1::Job job;
  {
    v1::GetJobRequest req;
    req.set_name(name);
    CHRONOS_RETURN_IF_ERROR(client->Call(&Stub::GetJob, req, &job));
  }
  CHRONOS_ASSIGN_OR_RETURN(Schedule schedule, ScheduleFromProto(resp.schedule()));
  v1::JobSpec spec = job.spec();
  ApplyJobSpecDefaults(&spec);
  CHRONOS_ASSIGN_OR_RETURN(v1::DeviceProfile profile, ResolveDeviceProfile(spec.device()));
  CostModel costs(ModelShapeFromSpec(spec, profile), profile, schedule.chunk_layers);
  SimOptions sim_options;
  sim_options.data_parallel = std::max(1, spec.parallel().data());
  if (schedule.optimizer_offload) {
    // The plan reports optimizer bytes per device split into resident and
    // host; the simulator wants the host fraction.
    for (const v1::DevicePlan& d : resp.plan().devices()) {
      const double total = static_cast<double>(d.optimizer_bytes() + d.optimizer_host_bytes());
      sim_options.optimizer_offload.push_back(total > 0 ? d.optimizer_host_bytes() / total : 0.0);
    }
  }
  CHRONOS_ASSIGN_OR_RETURN(SimResult sim, Simulate(schedule, costs, sim_options));
  if (render == "ascii") {
    ctx.out() << RenderAscii(schedule, sim, width);
  } else {
    ctx.out() << RenderChromeTrace(schedule, sim) << "\n";
  }
  return absl::OkStatus();
}

void AddSchedule(CLI::App& app, std::vector<Command>* commands) {
  struct Flags {
    std::string job;
    std::string file;
    std::string schedule;
    std::string render = "ascii";
    int width = 120;
    std::string hbm_budget;
    std::string profile;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "schedule",
      "Draw a schedule's simulated timeline: from a spec file (-f, no server needed) or "
      "from a running JOB");
  cmd->add_option("job", f->job, "Running job whose schedule to draw");
  cmd->add_option("-f,--file", f->file, "Job spec YAML file to plan and draw");
  cmd->add_option("--schedule", f->schedule,
                  "With -f: the schedule (and variant) to draw (default: the spec's kind)");
  cmd->add_option("--render", f->render, "ascii or chrome-trace (JSON for Perfetto)")
      ->capture_default_str();
  cmd->add_option("--width", f->width, "Columns of the ascii chart")->capture_default_str();
  cmd->add_option("--hbm-budget", f->hbm_budget, "With -f: HBM per device, e.g. 80GiB");
  cmd->add_option("--profile", f->profile, "With -f: device profile name or file");
  commands->push_back(
      {cmd, [f](CommandContext& ctx) -> int {
         const std::string render = absl::AsciiStrToLower(f->render);
         if (render != "ascii" && render != "chrome-trace") {
           return ctx.Fail(UsageError(
               absl::StrCat("--render must be ascii or chrome-trace (got '", f->render, "')")));
         }
         if (f->width < 20) {
           return ctx.Fail(UsageError(absl::StrCat("--width must be >= 20 (got ", f->width, ")")));
         }
         if (f->job.empty() == f->file.empty()) {
           return ctx.Fail(UsageError("give either a JOB name or -f/--file, not both or neither"));
         }
         if (!f->job.empty()) {
           if (!f->schedule.empty() || !f->hbm_budget.empty() || !f->profile.empty()) {
             return ctx.Fail(UsageError("--schedule, --hbm-budget and --profile need -f/--file"));
           }
           absl::Status s = RenderJobSchedule(ctx, f->job, render, f->width);
           return s.ok() ? static_cast<int>(kExitOk) : ctx.Fail(s);
         }
         CHRONOSCTL_ASSIGN_OR_FAIL(ctx, int64_t budget, ParseBudgetFlag(f->hbm_budget));
         CHRONOSCTL_ASSIGN_OR_FAIL(ctx, v1::JobSpec spec,
                                   LoadJobFileForPlan(f->file, CurrentDirectory(), f->profile));
         CHRONOSCTL_ASSIGN_OR_FAIL(ctx, v1::DeviceProfile profile,
                                   ResolveDeviceProfile(spec.device()));
         PlanOptions options;
         options.hbm_budget_bytes = budget;
         const std::string variant = f->schedule.empty() ? spec.schedule().kind() : f->schedule;
         if (!f->schedule.empty()) {
           absl::StatusOr<ScheduleVariant> v = ParseVariant(f->schedule, spec.memory());
           if (!v.ok())
             return ctx.Fail(UsageError(absl::StrCat("--schedule: ", v.status().message())));
         }
         absl::StatusOr<PlannedSchedule> planned = PlanSchedule(spec, profile, variant, options);
         if (!planned.ok()) {
           return ctx.Fail(f->schedule.empty()
                               ? planned.status()
                               : absl::Status(planned.status().code(),
                                              absl::StrCat("--schedule ", f->schedule, ": ",
                                                           planned.status().message())));
         }
         if (render == "ascii") {
           ctx.out() << RenderAscii(planned->schedule, planned->sim, f->width);
         } else {
           ctx.out() << RenderChromeTrace(planned->schedule, planned->sim) << "\n";
         }
         return kExitOk;
       }});
}

}  // namespace

void AddPlanCommands(CLI::App& app, std::vector<Command>* commands) {
  AddPlan(app, commands);
  AddSchedule(app, commands);
}

}  // namespace chronos::client

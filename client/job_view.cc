#include "client/job_view.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/exit_codes.h"
#include "core/job_width.h"
#include "core/size.h"

namespace chronos::client {
namespace {

constexpr int kDescribeIterations = 5;
constexpr int kDescribeEvents = 20;

// "RECOMPUTE_AUTO" with prefix "RECOMPUTE_" → "auto".
std::string ShortEnum(const std::string& full, absl::string_view prefix) {
  std::string s = full;
  if (absl::StartsWith(s, prefix)) s = s.substr(prefix.size());
  return absl::AsciiStrToLower(s);
}

std::string Progress(const v1::Job& job) {
  const int64_t total = job.spec().training().iterations();
  if (total <= 0) return absl::StrCat(job.status().iteration());
  return absl::StrCat(job.status().iteration(), "/", total);
}

bool HasProgress(const v1::Job& job) { return job.status().iteration() > 0; }

std::string OffloadSetting(const v1::Job& job) {
  if (job.status().has_policy() && job.status().policy().has_offload_ratio()) {
    return FormatRatio(job.status().policy().offload_ratio());
  }
  if (job.spec().memory().has_offload_ratio()) {
    return FormatRatio(job.spec().memory().offload_ratio());
  }
  return "auto";
}

std::string Bytes(int64_t b) { return FormatBytes(b); }

}  // namespace

std::string JobStateName(v1::JobState state) {
  if (state == v1::JOB_STATE_UNSPECIFIED) return "UNKNOWN";
  std::string name = v1::JobState_Name(state);
  if (absl::StartsWith(name, "JOB_STATE_")) name = name.substr(10);
  return name;
}

bool IsTerminal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

absl::StatusOr<v1::JobState> ParseJobState(const std::string& text) {
  std::string t = absl::AsciiStrToUpper(text);
  if (!absl::StartsWith(t, "JOB_STATE_")) t = absl::StrCat("JOB_STATE_", t);
  v1::JobState state;
  if (t != "JOB_STATE_UNSPECIFIED" && v1::JobState_Parse(t, &state)) return state;
  return UsageError(absl::StrCat(
      "--state must be one of planning, pending, running, recovering, succeeded, failed, "
      "cancelled (got '",
      text, "')"));
}

void PrintJobTable(std::ostream& out, const std::vector<v1::Job>& jobs, bool wide, absl::Time now) {
  Row header = {"NAME", "STATE", "ITERATION", "LOSS", "TOKENS/S", "RESTARTS", "AGE"};
  if (wide) {
    for (const char* h : {"SCHEDULE", "DEVICES", "OFFLOAD", "GENERATION", "MESSAGE"}) {
      header.push_back(h);
    }
  }
  std::vector<Row> rows;
  for (const v1::Job& job : jobs) {
    const v1::JobStatus& st = job.status();
    Row r = {job.metadata().name(),
             JobStateName(st.state()),
             Progress(job),
             HasProgress(job) ? FormatDouble(st.loss(), 4) : "-",
             HasProgress(job) ? FormatRate(st.tokens_per_second()) : "-",
             absl::StrCat(st.restarts()),
             FormatSince(job.metadata().created_at(), now)};
    if (wide) {
      const v1::ParallelSpec& par = job.spec().parallel();
      r.push_back(job.spec().schedule().kind().empty() ? "-" : job.spec().schedule().kind());
      r.push_back(absl::StrCat(std::max(1, par.pipeline()), "x", std::max(1, par.data())));
      r.push_back(OffloadSetting(job));
      r.push_back(absl::StrCat(job.metadata().generation(), "/", st.observed_generation()));
      r.push_back(st.message().empty() ? "-" : st.message());
    }
    rows.push_back(std::move(r));
  }
  PrintTable(out, header, rows);
}

void PrintJobDescription(std::ostream& out, const v1::Job& job, absl::Time now) {
  const v1::JobMetadata& md = job.metadata();
  const v1::JobSpec& spec = job.spec();
  const v1::JobStatus& st = job.status();
  auto field = [&](absl::string_view name, const std::string& value) {
    std::string label = absl::StrCat(name, ":");
    label.resize(std::max<size_t>(label.size() + 1, 16), ' ');
    out << label << value << "\n";
  };
  auto sub = [&](absl::string_view name, const std::string& value) {
    std::string label = absl::StrCat("  ", name, ":");
    label.resize(std::max<size_t>(label.size() + 1, 16), ' ');
    out << label << value << "\n";
  };

  field("Name", md.name());
  if (!md.uid().empty()) field("UID", md.uid());
  field("Created", absl::StrCat(FormatTimestamp(md.created_at()), " (",
                                FormatSince(md.created_at(), now), " ago)"));
  if (!md.request_id().empty()) field("Request ID", md.request_id());
  field("Generation", absl::StrCat(md.generation(), " (observed ", st.observed_generation(), ")"));
  field("State", absl::StrCat(JobStateName(st.state()), " (attempt ", st.attempt(), ", restarts ",
                              st.restarts(), ")"));
  if (st.state() == v1::JOB_STATE_PLANNING) {
    // How long the coordinator's planner has been at it: the Planned
    // condition turned false when the job was stored (or the coordinator
    // restarted and planned it again).
    for (const v1::Condition& c : st.conditions()) {
      if (c.type() != "Planned" || c.status()) continue;
      field("Planning", absl::StrCat("since ", FormatTimestamp(c.last_transition_time()), " (",
                                     FormatSince(c.last_transition_time(), now),
                                     "); admitted once the plan lands"));
    }
  }
  std::string progress = absl::StrCat(Progress(job), " iterations");
  if (HasProgress(job)) {
    absl::StrAppend(&progress, ", loss ", FormatDouble(st.loss(), 4), ", ",
                    FormatRate(st.tokens_per_second()), " tokens/s");
  }
  field("Progress", progress);
  if (st.checkpoint_iteration() > 0) {
    field("Checkpoint", absl::StrCat("iteration ", st.checkpoint_iteration()));
  }
  // What recovery changed (fewer stages or replicas, a smaller budget after
  // an out-of-memory fault), so the spec below is not mistaken for it.
  if (st.pipeline() > 0 || st.hbm_budget_bytes() > 0) {
    std::string running;
    if (st.pipeline() > 0) {
      absl::StrAppend(&running, st.pipeline(), " stages");
      if (st.pipeline() != spec.parallel().pipeline()) {
        absl::StrAppend(&running, " (spec: ", spec.parallel().pipeline(), ")");
      }
      const int spec_data = std::max(1, spec.parallel().data());
      if (st.data() > 0 && st.data() != spec_data) {
        // Each replica runs more micro-batches: the global batch is the spec's.
        absl::StrAppend(&running, " x ", st.data(), " replicas (spec: ", spec_data, ") of ",
                        SpecAtWidth(spec, st.pipeline(), st.data()).training().microbatches(),
                        " micro-batches");
      }
    }
    if (st.hbm_budget_bytes() > 0) {
      absl::StrAppend(&running, running.empty() ? "" : ", ", "hbm budget ",
                      Bytes(st.hbm_budget_bytes()), " per device");
    }
    field("Running with", running);
  }
  if (st.has_start_time()) field("Started", FormatTimestamp(st.start_time()));
  if (st.has_completion_time()) field("Completed", FormatTimestamp(st.completion_time()));
  if (!st.message().empty()) field("Message", st.message());

  out << "Spec:\n";
  const v1::ModelSpec& m = spec.model();
  sub("Model",
      absl::StrCat(m.layers(), " layers, hidden ", m.hidden(), ", ", m.heads(), " heads, ffn ",
                   m.ffn_hidden(), ", vocab ", m.vocab(), ", seq ", m.seq_len(), ", attention ",
                   ShortEnum(v1::AttentionImpl_Name(m.attention()), "ATTENTION_")));
  sub("Data",
      absl::StrCat(spec.data().path().empty() ? "-" : spec.data().path(), " (",
                   ShortEnum(v1::DataFormat_Name(spec.data().format()), "DATA_FORMAT_"), ")"));
  const v1::TrainingSpec& t = spec.training();
  sub("Training",
      absl::StrCat(t.iterations(), " iterations, ", t.microbatches(), " micro-batches of ",
                   t.micro_batch_size(), ", lr ", t.lr(), ", ",
                   ShortEnum(v1::Precision_Name(t.precision()), "PRECISION_"), ", seed ", t.seed(),
                   t.checkpoint_every() > 0
                       ? absl::StrCat(", checkpoint every ", t.checkpoint_every())
                       : std::string()));
  const v1::ParallelSpec& par = spec.parallel();
  sub("Parallel", absl::StrCat("pipeline ", par.pipeline(), " x data ", par.data(), ", ",
                               par.chunks_per_device() > 0 ? absl::StrCat(par.chunks_per_device())
                                                           : std::string("auto"),
                               " chunks per device"));
  std::string schedule = absl::StrCat(
      spec.schedule().kind().empty() ? "auto" : spec.schedule().kind(), ", inflight cap ",
      spec.schedule().inflight_cap() > 0 ? absl::StrCat(spec.schedule().inflight_cap())
                                         : std::string("auto"));
  if (spec.schedule().order_search_steps() > 0) {
    absl::StrAppend(&schedule, ", order search ", spec.schedule().order_search_steps(), " steps");
  }
  if (spec.schedule().activation_cap_bytes() > 0) {
    absl::StrAppend(&schedule, ", activation cap ", Bytes(spec.schedule().activation_cap_bytes()));
  } else if (spec.schedule().activation_cap_ratio() > 0) {
    absl::StrAppend(&schedule, ", activation cap ", spec.schedule().activation_cap_ratio(),
                    "x 1F1B's");
  }
  sub("Schedule", schedule);
  const v1::MemorySpec& mem = spec.memory();
  sub("Memory",
      absl::StrCat(
          "hbm budget ",
          mem.hbm_budget_bytes() > 0 ? Bytes(mem.hbm_budget_bytes()) : std::string("auto"),
          ", recompute ", ShortEnum(v1::RecomputeMode_Name(mem.recompute()), "RECOMPUTE_"),
          ", offload ratio ",
          mem.has_offload_ratio() ? FormatRatio(mem.offload_ratio()) : std::string("auto"),
          ", optimizer offload ",
          ShortEnum(v1::OptimizerOffload_Name(mem.optimizer_offload()), "OPTIMIZER_OFFLOAD_"),
          mem.activation_budget_bytes() > 0
              ? absl::StrCat(", activation budget ", Bytes(mem.activation_budget_bytes()))
          : mem.activation_budget_ratio() > 0
              ? absl::StrCat(", activation budget ", mem.activation_budget_ratio(), "x 1F1B's")
              : ""));
  std::string device = spec.device().profile().empty() ? "cpu" : spec.device().profile();
  if (spec.device().has_custom()) absl::StrAppend(&device, " (custom profile inlined)");
  sub("Device", device);

  if (st.has_policy()) {
    const v1::PolicyState& p = st.policy();
    field(
        "Policy",
        absl::StrCat("offload ratio ",
                     p.has_offload_ratio() ? FormatRatio(p.offload_ratio()) : std::string("auto"),
                     ", recompute ", ShortEnum(v1::RecomputeMode_Name(p.recompute()), "RECOMPUTE_"),
                     " (generation ", p.generation(), ")"));
  }

  out << "Conditions:\n";
  if (st.conditions().empty()) {
    out << "  <none>\n";
  } else {
    std::vector<Row> rows;
    for (const v1::Condition& c : st.conditions()) {
      rows.push_back({absl::StrCat("  ", c.type()), c.status() ? "True" : "False",
                      c.reason().empty() ? "-" : c.reason(),
                      FormatTimestamp(c.last_transition_time()),
                      c.message().empty() ? "-" : c.message()});
    }
    PrintTable(out, {"  TYPE", "STATUS", "REASON", "LAST TRANSITION", "MESSAGE"}, rows);
  }

  out << "Assignments:\n";
  if (st.assignments().empty()) {
    out << "  <none>\n";
  } else {
    std::vector<Row> rows;
    for (const v1::StageAssignment& a : st.assignments()) {
      rows.push_back({absl::StrCat("  ", a.device()), absl::StrCat(a.data_rank()), a.worker_id(),
                      absl::StrJoin(a.chunks(), ",")});
    }
    PrintTable(out, {"  DEVICE", "DATA-RANK", "WORKER", "CHUNKS"}, rows);
  }

  out << "Memory per device (latest iteration):\n";
  if (st.devices().empty()) {
    out << "  <none>\n";
  } else {
    std::vector<Row> rows;
    for (const v1::DeviceIteration& d : st.devices()) {
      rows.push_back({absl::StrCat("  ", d.device()), absl::StrCat(d.data_rank()),
                      Bytes(d.hbm_peak_bytes()), Bytes(d.hbm_allocated_bytes()),
                      Bytes(d.hbm_reserved_bytes()), Bytes(d.peak_activation_bytes()),
                      Bytes(d.resident_activation_bytes()), Bytes(d.peak_offloaded_bytes()),
                      FormatSeconds(d.recompute_seconds())});
    }
    PrintTable(out,
               {"  DEVICE", "RANK", "HBM-PEAK", "HBM-ALLOC", "HBM-RESERVED", "ACT-PEAK",
                "ACT-RESIDENT", "OFFLOADED", "RECOMPUTE"},
               rows);
  }

  out << "Last iterations:\n";
  if (job.iterations().empty()) {
    out << "  <none>\n";
  } else {
    std::vector<Row> rows;
    const int n = job.iterations_size();
    for (int i = std::max(0, n - kDescribeIterations); i < n; ++i) {
      const v1::IterationRecord& it = job.iterations(i);
      rows.push_back({absl::StrCat("  ", it.iteration()), FormatDouble(it.loss(), 4),
                      FormatRate(it.tokens_per_second()), FormatSeconds(it.iteration_seconds()),
                      absl::StrFormat("%.3g", it.lr()), FormatDouble(it.grad_norm(), 3),
                      FormatRatio(it.offload_ratio()), absl::StrCat(it.attempt())});
    }
    PrintTable(out, {"  ITER", "LOSS", "TOKENS/S", "TIME", "LR", "GRAD-NORM", "OFFLOAD", "ATTEMPT"},
               rows);
  }

  out << "Events:\n";
  if (job.events().empty()) {
    out << "  <none>\n";
  } else {
    std::vector<Row> rows;
    const int n = job.events_size();
    for (int i = std::max(0, n - kDescribeEvents); i < n; ++i) {
      const v1::JobEvent& e = job.events(i);
      rows.push_back({absl::StrCat("  ", FormatSince(e.time(), now)), e.type(),
                      JobStateName(e.state()), e.message()});
    }
    PrintTable(out, {"  AGE", "TYPE", "STATE", "MESSAGE"}, rows);
  }
}

std::string ProgressLine(const v1::IterationRecord& it, int64_t total_iterations) {
  std::string line = total_iterations > 0
                         ? absl::StrCat("iter ", it.iteration(), "/", total_iterations)
                         : absl::StrCat("iter ", it.iteration());
  absl::StrAppend(&line, "  loss ", FormatDouble(it.loss(), 4), "  ",
                  FormatRate(it.tokens_per_second()), " tok/s  ",
                  FormatSeconds(it.iteration_seconds()), "/it  offload ",
                  FormatRatio(it.offload_ratio()));
  std::vector<v1::DeviceIteration> devices(it.devices().begin(), it.devices().end());
  std::sort(devices.begin(), devices.end(), [](const auto& a, const auto& b) {
    return std::make_pair(a.data_rank(), a.device()) < std::make_pair(b.data_rank(), b.device());
  });
  std::vector<std::string> stages;
  for (const v1::DeviceIteration& d : devices) {
    if (d.data_rank() != 0) continue;  // replicas repeat stage 0..p-1's figures
    stages.push_back(absl::StrCat("s", d.device(), " hbm ", FormatBytes(d.hbm_peak_bytes()),
                                  " act ", FormatBytes(d.peak_activation_bytes())));
  }
  if (!stages.empty()) absl::StrAppend(&line, "  [", absl::StrJoin(stages, " | "), "]");
  return line;
}

std::string EventLine(const v1::JobEvent& event) {
  std::string line = absl::StrCat(event.type(), " (", JobStateName(event.state()), ")");
  if (!event.message().empty()) absl::StrAppend(&line, ": ", event.message());
  return line;
}

}  // namespace chronos::client

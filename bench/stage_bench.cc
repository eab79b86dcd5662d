// chronos-bench-stage: one GPU (or the CPU) stands in for every stage of a
// p-stage job in turn (worker/stage_emulation.h): each stage's real action
// list runs with loopback peers, and its measured iteration time, saved-
// activation peak (the ledger) and allocator peak sit beside the planner's
// predictions for that device.
//
//   chronos-bench-stage -f examples/llama-h100-p8.yaml --device cuda:0 \
//       [--stage K] [--warmup 1] [--iterations 3] [--data FILE]
//
// Output: a table, then one JSON object on the last line of stdout.
// Predicted "busy" is the device's compute plus its waits for reloads in the
// planner's simulation; the measured iteration also holds the optimizer step
// and the executor's own work. On a GPU the iteration time is wall clock to
// the loss (which synchronizes the device).
#include <cstdio>
#include <stdexcept>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/job_spec.h"
#include "worker/stage_emulation.h"

namespace {

double GiB(int64_t b) { return static_cast<double>(b) / (1 << 30); }

std::string Ratio(double measured, double predicted) {
  if (predicted <= 0 || measured <= 0) return "-";
  return absl::StrFormat("%.3f", measured / predicted);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Emulate the stages of a planned job on one device"};
  std::string spec_path;
  std::string data;
  chronos::worker::StageEmulationOptions o;
  std::string stage = "all";
  app.add_option("-f,--file", spec_path, "job spec (YAML)")->required();
  app.add_option("--device", o.device, "cpu or cuda:N")->capture_default_str();
  app.add_option("--stage", stage, "stage index, or all")->capture_default_str();
  app.add_option("--warmup", o.warmup_iterations, "unmeasured iterations")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
  app.add_option("--iterations", o.iterations, "measured iterations")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_option("--threads", o.threads, "intra-op threads (CPU)")->check(CLI::Range(0, 1024));
  app.add_option("--data", data, "override data.path of the spec");
  CLI11_PARSE(app, argc, argv);
  if (stage != "all") {
    try {
      size_t used = 0;
      o.stage = std::stoi(stage, &used);
      if (used != stage.size() || o.stage < 0) throw std::invalid_argument(stage);
    } catch (const std::exception&) {
      std::fprintf(stderr, "error: --stage: '%s' is neither a stage index nor all\n",
                   stage.c_str());
      return 2;
    }
  }
  absl::StatusOr<chronos::v1::JobSpec> spec = chronos::LoadJobSpecFile(spec_path);
  if (!spec.ok()) {
    std::fprintf(stderr, "error: %s\n", spec.status().ToString().c_str());
    return 3;
  }
  if (!data.empty()) spec->mutable_data()->set_path(data);
  absl::StatusOr<chronos::worker::StageEmulationReport> r =
      chronos::worker::EmulateStages(*spec, o);
  if (!r.ok()) {
    std::fprintf(stderr, "error: %s\n", r.status().ToString().c_str());
    return absl::IsInvalidArgument(r.status()) ? 3 : 1;
  }
  std::printf("%s on %s (profile %s), %d stages, %d measured iterations\n",
              r->schedule_kind.c_str(), r->device.c_str(), r->device_profile.c_str(), r->pipeline,
              o.iterations);
  std::printf("%-5s %12s %12s %7s %14s %14s %7s %12s %12s\n", "stage", "iter_s", "pred_busy_s",
              "ratio", "act_peak_GiB", "pred_act_GiB", "ratio", "hbm_peak_GiB", "pred_hbm_GiB");
  std::string json = absl::StrFormat(
      "{\"stages\": {\"schedule\": \"%s\", \"device\": \"%s\", \"profile\": "
      "\"%s\", \"pipeline\": %d, \"rows\": [",
      r->schedule_kind, r->device, r->device_profile, r->pipeline);
  for (size_t i = 0; i < r->rows.size(); ++i) {
    const auto& x = r->rows[i];
    std::printf("%-5d %12.4f %12.4f %7s %14.4f %14.4f %7s %12.3f %12.3f\n", x.stage,
                x.median_seconds, x.predicted_busy_seconds,
                Ratio(x.median_seconds, x.predicted_busy_seconds).c_str(),
                GiB(x.peak_activation_bytes), GiB(x.predicted_peak_activation_bytes),
                Ratio(static_cast<double>(x.peak_activation_bytes),
                      static_cast<double>(x.predicted_peak_activation_bytes))
                    .c_str(),
                GiB(x.hbm_peak_bytes), GiB(x.predicted_peak_bytes));
    absl::StrAppend(
        &json, i ? ", " : "",
        absl::StrFormat("{\"stage\": %d, \"iteration_seconds\": %.6f, "
                        "\"predicted_busy_seconds\": %.6f, \"peak_activation_bytes\": %d, "
                        "\"predicted_peak_activation_bytes\": %d, \"hbm_peak_bytes\": %d, "
                        "\"predicted_peak_bytes\": %d, \"offloaded_bytes\": %d}",
                        x.stage, x.median_seconds, x.predicted_busy_seconds,
                        x.peak_activation_bytes, x.predicted_peak_activation_bytes,
                        x.hbm_peak_bytes, x.predicted_peak_bytes, x.offloaded_bytes));
  }
  json += "]}}";
  std::printf("%s\n", json.c_str());
  return 0;
}

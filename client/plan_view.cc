#include "client/plan_view.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/size.h"

namespace chronos::client {

void PrintPlanReport(std::ostream& out, const v1::PlanReport& report, OutputFormat format) {
  if (IsStructured(format)) {
    PrintMessage(out, report, format);
    return;
  }
  const bool wide = format == OutputFormat::kWide;
  const bool any_max_layers = std::any_of(report.plans().begin(), report.plans().end(),
                                          [](const auto& p) { return p.max_layers() > 0; });
  out << "profile " << (report.profile().empty() ? "-" : report.profile());
  if (report.hbm_budget_bytes() > 0) {
    out << ", HBM budget " << FormatBytes(report.hbm_budget_bytes()) << " per device";
  }
  if (report.min_mfu() > 0) {
    out << ", MAX-LAYERS at MFU >= " << FormatRatio(report.min_mfu());
    if (report.reference_mfu() > 0) {
      out << " (1f1b+plain reaches " << FormatRatio(report.reference_mfu())
          << " at its largest size; it is the reference, not held to the floor)";
    }
  }
  out << "\n\n";

  Row header = {"SCHEDULE", "BUBBLE", "ITERATION", "TOKENS/S", "MFU", "FITS"};
  if (any_max_layers) header.push_back("MAX-LAYERS");
  header.push_back("POLICY");
  std::vector<Row> rows;
  for (const v1::SchedulePlan& p : report.plans()) {
    if (!p.error().empty()) {
      Row r = {p.schedule(), "-", "-", "-", "-", "no"};
      if (any_max_layers) r.push_back("-");
      r.push_back(absl::StrCat("error: ", p.error()));
      rows.push_back(std::move(r));
      continue;
    }
    Row r = {p.schedule(),
             FormatRatio(p.bubble_ratio()),
             FormatSeconds(p.iteration_seconds()),
             FormatRate(p.tokens_per_second()),
             FormatRatio(p.mfu()),
             p.fits() ? "yes" : "no"};
    if (any_max_layers) r.push_back(absl::StrCat(p.max_layers()));
    r.push_back(p.policy().empty() ? "-" : p.policy());
    rows.push_back(std::move(r));
  }
  PrintTable(out, header, rows);

  for (const v1::SchedulePlan& p : report.plans()) {
    if (p.candidates_size() < 2) continue;
    out << "\n"
        << p.schedule() << ": kept " << p.order() << " ("
        << (p.fits() ? "the fastest that fits" : "none fits; the smallest peak") << " of "
        << p.candidates_size() << " orders compared" << (wide ? ")" : "; -o wide lists them)")
        << "\n";
    if (!wide) continue;
    std::vector<Row> crows;
    for (const v1::OrderCandidate& c : p.candidates()) {
      const bool ran = c.iteration_seconds() > 0;
      crows.push_back({absl::StrCat("  ", c.order()), c.fits() ? "yes" : "no",
                       ran ? FormatRatio(c.bubble_ratio()) : "-",
                       ran ? FormatSeconds(c.iteration_seconds()) : "-",
                       c.kept_activation_bytes() > 0 ? FormatBytes(c.kept_activation_bytes()) : "-",
                       c.error().empty() ? "" : c.error()});
    }
    PrintTable(out, {"  ORDER", "FITS", "BUBBLE", "ITERATION", "KEPT ACTIVATIONS", "WHY NOT"},
               crows);
  }

  for (const v1::SchedulePlan& p : report.plans()) {
    if (p.recomputes_in_idle_time() == 0) continue;
    out << "\n"
        << p.schedule() << ": " << p.recomputes_in_idle_time()
        << " recomputations moved into time the device waits for a receive: iteration "
        << FormatSeconds(p.iteration_seconds()) << " against "
        << FormatSeconds(p.on_demand_recompute_iteration_seconds())
        << " with each right before its backward\n";
  }

  for (const v1::SchedulePlan& p : report.plans()) {
    if (p.devices().empty()) continue;
    out << "\n" << p.schedule() << ": peak bytes per device";
    if (p.num_devices() > 0) {
      out << " (p=" << p.num_devices() << ", v=" << p.chunks_per_device()
          << ", m=" << p.num_microbatches() << ")";
    }
    out << "\n";
    Row h = {"  DEVICE", "PEAK",      "ACTIVATIONS", "WEIGHTS", "GRADIENTS", "OPTIMIZER",
             "BUFFERS",  "OFFLOADED", "RECOMPUTE",   "BUDGET",  "FITS"};
    if (wide) {
      for (const char* c :
           {"OPTIM-HOST", "KEEP", "OFFLOAD", "RECOMP", "EXPOSED-COPY", "INFLIGHT"}) {
        h.push_back(c);
      }
    }
    std::vector<Row> drows;
    for (const v1::DevicePlan& d : p.devices()) {
      Row r = {absl::StrCat("  ", d.device()),
               FormatBytes(d.peak_bytes()),
               FormatBytes(d.peak_activation_bytes()),
               FormatBytes(d.weight_bytes()),
               FormatBytes(d.gradient_bytes()),
               FormatBytes(d.optimizer_bytes()),
               FormatBytes(d.buffer_bytes()),
               FormatBytes(d.offloaded_bytes()),
               FormatSeconds(d.recompute_seconds()),
               d.budget_bytes() > 0 ? FormatBytes(d.budget_bytes()) : "-",
               d.fits() ? "yes" : "no"};
      if (wide) {
        r.push_back(FormatBytes(d.optimizer_host_bytes()));
        r.push_back(absl::StrCat(d.keep_count()));
        r.push_back(absl::StrCat(d.offload_count()));
        r.push_back(absl::StrCat(d.recompute_count()));
        r.push_back(FormatSeconds(d.exposed_copy_seconds()));
        r.push_back(absl::StrCat(d.max_inflight()));
      }
      drows.push_back(std::move(r));
    }
    PrintTable(out, h, drows);
  }
}

}  // namespace chronos::client

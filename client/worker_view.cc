#include "client/worker_view.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/size.h"

namespace chronos::client {
namespace {

std::string Bandwidth(double bytes_per_second) {
  if (bytes_per_second <= 0) return "-";
  return absl::StrFormat("%.1fGB/s", bytes_per_second / 1e9);
}

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

}  // namespace

std::string WorkerStateName(v1::WorkerState state) {
  if (state == v1::WORKER_STATE_UNSPECIFIED) return "UNKNOWN";
  std::string name = v1::WorkerState_Name(state);
  if (absl::StartsWith(name, "WORKER_STATE_")) name = name.substr(13);
  return name;
}

void PrintWorkers(std::ostream& out, const v1::ListWorkersResponse& workers, OutputFormat format,
                  absl::Time now) {
  if (IsStructured(format)) {
    PrintMessage(out, workers, format);
    return;
  }
  const bool wide = format == OutputFormat::kWide;
  Row header = {"ID", "NAME", "DEVICE", "STATE", "ATTACHED", "JOB", "STAGE", "HBM", "HEARTBEAT"};
  if (wide) {
    for (const char* h :
         {"DEVICE-NAME", "HOST-MEMORY", "H2D", "D2H", "ADDRESS", "METRICS", "VERSION"}) {
      header.push_back(h);
    }
  }
  std::vector<Row> rows;
  for (const v1::WorkerStatus& w : workers.workers()) {
    const v1::WorkerInfo& info = w.info();
    Row r = {
        w.worker_id(),
        OrDash(info.name()),
        OrDash(info.device()),
        WorkerStateName(w.state()),
        w.attached() ? "yes" : "no",
        OrDash(w.job()),
        w.job().empty() ? "-" : absl::StrCat(w.device()),
        info.hbm_bytes() > 0 ? FormatBytes(info.hbm_bytes()) : "-",
        w.has_last_heartbeat() ? absl::StrCat(FormatSince(w.last_heartbeat(), now), " ago") : "-"};
    if (wide) {
      r.push_back(OrDash(info.device_name()));
      r.push_back(info.host_memory_bytes() > 0 ? FormatBytes(info.host_memory_bytes()) : "-");
      r.push_back(Bandwidth(info.h2d_bandwidth()));
      r.push_back(Bandwidth(info.d2h_bandwidth()));
      r.push_back(OrDash(info.advertise_host()));
      r.push_back(OrDash(info.metrics_endpoint()));
      r.push_back(OrDash(info.version()));
    }
    rows.push_back(std::move(r));
  }
  PrintTable(out, header, rows);
}

}  // namespace chronos::client

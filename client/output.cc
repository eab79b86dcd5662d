#include "client/output.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/exit_codes.h"
#include "core/proto_json.h"

namespace chronos::client {

absl::StatusOr<OutputFormat> ParseOutputFormat(const std::string& text) {
  const std::string t = absl::AsciiStrToLower(text);
  if (t == "table" || t.empty()) return OutputFormat::kTable;
  if (t == "wide") return OutputFormat::kWide;
  if (t == "json") return OutputFormat::kJson;
  if (t == "yaml") return OutputFormat::kYaml;
  return UsageError(
      absl::StrCat("--output must be one of table, wide, json, yaml (got '", text, "')"));
}

bool IsStructured(OutputFormat format) {
  return format == OutputFormat::kJson || format == OutputFormat::kYaml;
}

void PrintTable(std::ostream& out, const Row& header, const std::vector<Row>& rows) {
  std::vector<size_t> width(header.size(), 0);
  auto measure = [&](const Row& r) {
    for (size_t i = 0; i < r.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], r[i].size());
    }
  };
  measure(header);
  for (const Row& r : rows) measure(r);
  auto print = [&](const Row& r) {
    std::string line;
    for (size_t i = 0; i < width.size(); ++i) {
      const std::string cell = i < r.size() ? r[i] : "";
      line += cell;
      if (i + 1 < width.size()) line += std::string(width[i] - cell.size() + 3, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  };
  print(header);
  for (const Row& r : rows) print(r);
}

void PrintJson(std::ostream& out, const nlohmann::json& value, OutputFormat format) {
  if (format == OutputFormat::kYaml) {
    std::string yaml = JsonToYaml(value);
    out << yaml;
    if (yaml.empty() || yaml.back() != '\n') out << "\n";
    return;
  }
  out << value.dump(2) << "\n";
}

void PrintMessage(std::ostream& out, const google::protobuf::Message& message,
                  OutputFormat format) {
  PrintJson(out, ProtoToJson(message, /*include_defaults=*/true), format);
}

std::string FormatAge(absl::Duration d) {
  if (d < absl::ZeroDuration()) d = absl::ZeroDuration();
  const int64_t s = absl::ToInt64Seconds(d);
  if (s < 120) return absl::StrCat(s, "s");
  if (s < 2 * 3600) return absl::StrCat(s / 60, "m");
  if (s < 48 * 3600) return absl::StrCat(s / 3600, "h");
  return absl::StrCat(s / 86400, "d");
}

std::string FormatSince(const google::protobuf::Timestamp& ts, absl::Time now) {
  if (ts.seconds() == 0 && ts.nanos() == 0) return "-";
  return FormatAge(now - absl::FromUnixSeconds(ts.seconds()));
}

std::string FormatTimestamp(const google::protobuf::Timestamp& ts) {
  if (ts.seconds() == 0 && ts.nanos() == 0) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(ts.seconds()),
                          absl::UTCTimeZone());
}

std::string FormatDouble(double v, int precision) {
  if (std::isnan(v)) return "-";
  return absl::StrFormat("%.*f", precision, v);
}

std::string FormatRate(double v) {
  if (std::isnan(v)) return "-";
  if (v < 10000) return absl::StrFormat("%.0f", v);
  if (v < 1e6) return absl::StrFormat("%.1fk", v / 1e3);
  if (v < 1e9) return absl::StrFormat("%.2fM", v / 1e6);
  return absl::StrFormat("%.2fG", v / 1e9);
}

std::string FormatRatio(double v) { return FormatDouble(v, 2); }

std::string FormatSeconds(double s) {
  if (std::isnan(s)) return "-";
  if (s == 0) return "0s";
  if (s < 1e-3) return absl::StrFormat("%.0fus", s * 1e6);
  if (s < 1) return absl::StrFormat("%.1fms", s * 1e3);
  if (s < 100) return absl::StrFormat("%.2fs", s);
  return absl::StrFormat("%.0fs", s);
}

}  // namespace chronos::client

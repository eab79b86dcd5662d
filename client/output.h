// Output formats shared by every chronosctl command: aligned tables for
// people (`table`, `wide` adds columns), and the API object itself as JSON or
// YAML for scripts, with the exact .proto field names and int64 as numbers
// (core/proto_json.h). Pure functions over their arguments.
#ifndef CHRONOS_CLIENT_OUTPUT_H_
#define CHRONOS_CLIENT_OUTPUT_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"
#include "nlohmann/json.hpp"

namespace chronos::client {

enum class OutputFormat { kTable, kWide, kJson, kYaml };

// "table" | "wide" | "json" | "yaml" (case-insensitive). A UsageError
// naming --output otherwise.
absl::StatusOr<OutputFormat> ParseOutputFormat(const std::string& text);
bool IsStructured(OutputFormat format);  // json or yaml

using Row = std::vector<std::string>;

// Columns padded to their widest cell and separated by three spaces, as
// kubectl prints them; no trailing spaces.
void PrintTable(std::ostream& out, const Row& header, const std::vector<Row>& rows);

// A JSON value as pretty JSON (2-space indent) or block YAML, newline-ended.
void PrintJson(std::ostream& out, const nlohmann::json& value, OutputFormat format);
// A message through ProtoToJson (every field present), then PrintJson.
void PrintMessage(std::ostream& out, const google::protobuf::Message& message, OutputFormat format);

// Table cells. Lossy and human-oriented; scripts use -o json.
std::string FormatAge(absl::Duration d);  // "45s", "12m", "3h", "4d"
std::string FormatSince(const google::protobuf::Timestamp& ts, absl::Time now);  // age or "-"
std::string FormatTimestamp(const google::protobuf::Timestamp& ts);              // RFC 3339 or "-"
std::string FormatDouble(double v, int precision);  // fixed, "-" for NaN
std::string FormatRate(double per_second);          // "5400", "1.2k", "3.4M"
std::string FormatRatio(double v);                  // "0.40"
std::string FormatSeconds(double s);                // "1.23s", "12.3ms"

}  // namespace chronos::client

#endif  // CHRONOS_CLIENT_OUTPUT_H_

// Protobuf messages as JSON and YAML for people and scripts (`chronosctl
// ... -o json|yaml`, `chronosctl plan -o json`). Unlike protobuf's own
// JsonFormat, field names stay exactly as in the .proto (snake_case) and
// 64-bit integers are JSON numbers, because scripts index these objects by
// the names in docs and compare the byte counts as numbers. Pure functions
// over immutable inputs; thread-safe.
#ifndef CHRONOS_CORE_PROTO_JSON_H_
#define CHRONOS_CORE_PROTO_JSON_H_

#include <string>

#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "nlohmann/json.hpp"

namespace chronos {

// Walks `message` by reflection:
//  - scalars as JSON numbers / bools / strings; int64 and uint64 as numbers;
//    non-finite doubles as the strings "NaN", "Infinity", "-Infinity";
//  - enums by value name ("RECOMPUTE_FULL"), or the number if unknown;
//  - bytes as base64; repeated fields as arrays; map fields as objects;
//  - nested messages as objects, written only when set;
//  - proto3 `optional` and oneof members only when set;
//  - google.protobuf.Timestamp as an RFC 3339 string in UTC, Duration as
//    "1.5s".
// With include_defaults, singular scalars at their zero value and empty
// repeated fields are written too (so every documented key is present);
// without, they are left out.
nlohmann::json ProtoToJson(const google::protobuf::Message& message, bool include_defaults = true);

// The reverse of ProtoToJson, for tests and scripts. Accepts what
// ProtoToJson writes, plus protobuf's camelCase json names, integers as
// strings, enums by number, and null for "leave unset". Fields not named in
// `json` keep their values in `message`. kInvalidArgument naming the field
// path ("spec.model.layers: expected an integer") on any mismatch, unknown
// fields included; `message` may then be partly filled.
absl::Status JsonToProto(const nlohmann::json& json, google::protobuf::Message* message);

// Block-style YAML for the same value: mappings and lists in block style
// (empty ones as {} and []), strings quoted where YAML would read them as
// something else ("true", "1.5", "", "null", ...). Object keys come out in
// the JSON object's order (sorted for nlohmann::json).
std::string JsonToYaml(const nlohmann::json& json);

}  // namespace chronos

#endif  // CHRONOS_CORE_PROTO_JSON_H_

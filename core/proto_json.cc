// Reflection-based on purpose: protobuf's JsonFormat writes int64 as
// strings and lowerCamelCase names, both of which break the documented
// scripting interface (docs and CHRONOS.md section 9).
#include "core/proto_json.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.h"
#include "yaml-cpp/yaml.h"

namespace chronos {
namespace {

using ::google::protobuf::Descriptor;
using ::google::protobuf::EnumValueDescriptor;
using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::Message;
using ::google::protobuf::Reflection;
using json = ::nlohmann::json;

constexpr char kTimestamp[] = "google.protobuf.Timestamp";
constexpr char kDuration[] = "google.protobuf.Duration";
constexpr char kTimeFormat[] = "%Y-%m-%dT%H:%M:%E*SZ";

// ---------------------------------------------------------------------------
// proto -> JSON.

json MessageToJson(const Message& m, bool defaults);

json DoubleToJson(double d) {
  // JSON has no NaN or infinity; these are protobuf's JSON spellings.
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  return d;
}

// One value of a field: index < 0 for a singular field.
json FieldValueToJson(const Message& m, const FieldDescriptor* f, int index, bool defaults) {
  const Reflection* r = m.GetReflection();
  const bool rep = index >= 0;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f);
    case FieldDescriptor::CPPTYPE_INT64:
      return rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f);
    case FieldDescriptor::CPPTYPE_UINT32:
      return rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f);
    case FieldDescriptor::CPPTYPE_UINT64:
      return rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f);
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return DoubleToJson(rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return DoubleToJson(rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f));
    case FieldDescriptor::CPPTYPE_BOOL:
      return rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f);
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string s = rep ? r->GetRepeatedString(m, f, index) : r->GetString(m, f);
      if (f->type() == FieldDescriptor::TYPE_BYTES) {
        return absl::Base64Escape(s);
      }
      return s;
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      const int number = rep ? r->GetRepeatedEnumValue(m, f, index) : r->GetEnumValue(m, f);
      const EnumValueDescriptor* v = f->enum_type()->FindValueByNumber(number);
      if (v == nullptr) return number;
      return v->name();
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return MessageToJson(rep ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f),
                           defaults);
  }
  return nullptr;
}

std::string TimestampToString(int64_t seconds, int32_t nanos) {
  const absl::Time t = absl::FromUnixSeconds(seconds) + absl::Nanoseconds(nanos);
  return absl::FormatTime(kTimeFormat, t, absl::UTCTimeZone());
}

// "1.5s", "-0.010s": protobuf's JSON form, 0, 3, 6 or 9 fraction digits.
std::string DurationToString(int64_t seconds, int32_t nanos) {
  const bool negative = seconds < 0 || nanos < 0;
  const uint64_t s = negative ? -static_cast<uint64_t>(seconds) : seconds;
  const int32_t n = nanos < 0 ? -nanos : nanos;
  std::string out = absl::StrCat(negative ? "-" : "", s);
  if (n == 0) {
  } else if (n % 1000000 == 0) {
    absl::StrAppendFormat(&out, ".%03d", n / 1000000);
  } else if (n % 1000 == 0) {
    absl::StrAppendFormat(&out, ".%06d", n / 1000);
  } else {
    absl::StrAppendFormat(&out, ".%09d", n);
  }
  return out + "s";
}

// Seconds and nanos of a Timestamp or Duration (fields 1 and 2).
std::pair<int64_t, int32_t> SecondsNanos(const Message& m) {
  const Descriptor* d = m.GetDescriptor();
  const Reflection* r = m.GetReflection();
  return {r->GetInt64(m, d->FindFieldByNumber(1)), r->GetInt32(m, d->FindFieldByNumber(2))};
}

json MessageToJson(const Message& m, bool defaults) {
  const Descriptor* desc = m.GetDescriptor();
  if (desc->full_name() == kTimestamp) {
    const auto [s, n] = SecondsNanos(m);
    return TimestampToString(s, n);
  }
  if (desc->full_name() == kDuration) {
    const auto [s, n] = SecondsNanos(m);
    return DurationToString(s, n);
  }
  const Reflection* r = m.GetReflection();
  json out = json::object();
  for (int i = 0; i < desc->field_count(); ++i) {
    const FieldDescriptor* f = desc->field(i);
    if (f->is_map()) {
      const FieldDescriptor* key = f->message_type()->map_key();
      const FieldDescriptor* value = f->message_type()->map_value();
      json object = json::object();
      for (int j = 0; j < r->FieldSize(m, f); ++j) {
        const Message& entry = r->GetRepeatedMessage(m, f, j);
        const json k = FieldValueToJson(entry, key, -1, defaults);
        object[k.is_string() ? k.get<std::string>() : k.dump()] =
            FieldValueToJson(entry, value, -1, defaults);
      }
      if (defaults || !object.empty()) out[f->name()] = std::move(object);
    } else if (f->is_repeated()) {
      json array = json::array();
      for (int j = 0; j < r->FieldSize(m, f); ++j) {
        array.push_back(FieldValueToJson(m, f, j, defaults));
      }
      if (defaults || !array.empty()) out[f->name()] = std::move(array);
    } else {
      // Fields with presence (messages, `optional`, oneof members) are
      // written only when set: "unset" is information there. Plain proto3
      // scalars cannot tell unset from zero, so `defaults` decides.
      const bool set = r->HasField(m, f);
      if (set || (defaults && !f->has_presence())) {
        out[f->name()] = FieldValueToJson(m, f, -1, defaults);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// JSON -> proto.

absl::Status Invalid(const std::string& path, absl::string_view what, const json& got) {
  return absl::InvalidArgumentError(
      absl::StrCat(path.empty() ? "message" : path, ": expected ", what, ", got ", got.dump()));
}

template <typename T>
bool JsonToInteger(const json& j, T* out) {
  if (j.is_number_unsigned()) {
    const uint64_t v = j.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<T>::max())) return false;
    *out = static_cast<T>(v);
    return true;
  }
  if (j.is_number_integer()) {
    const int64_t v = j.get<int64_t>();
    if constexpr (std::is_unsigned_v<T>) {
      if (v < 0) return false;
      if (static_cast<uint64_t>(v) > std::numeric_limits<T>::max()) return false;
    } else {
      if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max()) {
        return false;
      }
    }
    *out = static_cast<T>(v);
    return true;
  }
  if (j.is_number_float()) {
    // Tools that only know doubles write 8.0 for 8; accept whole values
    // that fit.
    const double d = j.get<double>();
    // long double holds every bound of T exactly.
    const long double lo = std::numeric_limits<T>::min();
    const long double hi = std::numeric_limits<T>::max();
    if (d != std::floor(d) || d < lo || d > hi) return false;
    *out = static_cast<T>(d);
    return true;
  }
  if (j.is_string()) {
    // Protobuf's own JSON writes 64-bit integers as strings.
    return absl::SimpleAtoi(j.get<std::string>(), out);
  }
  return false;
}

bool JsonToDouble(const json& j, double* out) {
  if (j.is_number()) {
    *out = j.get<double>();
    return true;
  }
  if (!j.is_string()) return false;
  const std::string s = j.get<std::string>();
  if (s == "NaN") {
    *out = std::numeric_limits<double>::quiet_NaN();
  } else if (s == "Infinity") {
    *out = std::numeric_limits<double>::infinity();
  } else if (s == "-Infinity") {
    *out = -std::numeric_limits<double>::infinity();
  } else {
    return absl::SimpleAtod(s, out);
  }
  return true;
}

absl::Status JsonToMessage(const json& j, const std::string& path, Message* m);

// Sets (index < 0: singular) or appends one value.
absl::Status JsonToFieldValue(const json& j, const std::string& path, const FieldDescriptor* f,
                              bool add, Message* m) {
  const Reflection* r = m->GetReflection();
  switch (f->cpp_type()) {
#define CHRONOS_INTEGER_CASE(CPPTYPE, T, Name, what)          \
  case FieldDescriptor::CPPTYPE: {                            \
    T v;                                                      \
    if (!JsonToInteger(j, &v)) return Invalid(path, what, j); \
    add ? r->Add##Name(m, f, v) : r->Set##Name(m, f, v);      \
    return absl::OkStatus();                                  \
  }
    CHRONOS_INTEGER_CASE(CPPTYPE_INT32, int32_t, Int32, "a 32-bit integer")
    CHRONOS_INTEGER_CASE(CPPTYPE_INT64, int64_t, Int64, "a 64-bit integer")
    CHRONOS_INTEGER_CASE(CPPTYPE_UINT32, uint32_t, UInt32, "a non-negative 32-bit integer")
    CHRONOS_INTEGER_CASE(CPPTYPE_UINT64, uint64_t, UInt64, "a non-negative 64-bit integer")
#undef CHRONOS_INTEGER_CASE
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT: {
      double v;
      if (!JsonToDouble(j, &v)) return Invalid(path, "a number", j);
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
        add ? r->AddDouble(m, f, v) : r->SetDouble(m, f, v);
      } else {
        const float fv = static_cast<float>(v);
        add ? r->AddFloat(m, f, fv) : r->SetFloat(m, f, fv);
      }
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_BOOL:
      if (!j.is_boolean()) return Invalid(path, "true or false", j);
      add ? r->AddBool(m, f, j.get<bool>()) : r->SetBool(m, f, j.get<bool>());
      return absl::OkStatus();
    case FieldDescriptor::CPPTYPE_STRING: {
      if (!j.is_string()) return Invalid(path, "a string", j);
      std::string s = j.get<std::string>();
      if (f->type() == FieldDescriptor::TYPE_BYTES) {
        std::string decoded;
        if (!absl::Base64Unescape(s, &decoded)) {
          return Invalid(path, "base64", j);
        }
        s = std::move(decoded);
      }
      add ? r->AddString(m, f, std::move(s)) : r->SetString(m, f, std::move(s));
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      int number = 0;
      if (j.is_string()) {
        const EnumValueDescriptor* v = f->enum_type()->FindValueByName(j.get<std::string>());
        if (v == nullptr) {
          return Invalid(path, absl::StrCat("a value of ", f->enum_type()->name()), j);
        }
        number = v->number();
      } else if (!JsonToInteger(j, &number)) {
        return Invalid(path, "an enum name or number", j);
      }
      add ? r->AddEnumValue(m, f, number) : r->SetEnumValue(m, f, number);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return JsonToMessage(j, path, add ? r->AddMessage(m, f) : r->MutableMessage(m, f));
  }
  return absl::OkStatus();
}

absl::Status JsonToSecondsNanos(const json& j, const std::string& path, Message* m) {
  const Descriptor* d = m->GetDescriptor();
  const Reflection* r = m->GetReflection();
  const bool timestamp = d->full_name() == kTimestamp;
  const char* what = timestamp ? "an RFC 3339 time" : "a duration such as 1.5s";
  if (!j.is_string()) return Invalid(path, what, j);
  const std::string s = j.get<std::string>();
  int64_t seconds = 0;
  int32_t nanos = 0;
  if (timestamp) {
    absl::Time t;
    std::string error;
    if (!absl::ParseTime(absl::RFC3339_full, s, &t, &error)) {
      return Invalid(path, what, j);
    }
    const absl::Duration since = t - absl::UnixEpoch();
    seconds = absl::ToInt64Seconds(since);  // truncates toward zero
    absl::Duration rest = since - absl::Seconds(seconds);
    if (rest < absl::ZeroDuration()) {  // keep nanos in [0, 1e9)
      seconds -= 1;
      rest += absl::Seconds(1);
    }
    nanos = static_cast<int32_t>(absl::ToInt64Nanoseconds(rest));
  } else {
    absl::Duration dur;
    if (!absl::ParseDuration(s, &dur)) return Invalid(path, what, j);
    seconds = absl::ToInt64Seconds(dur);
    nanos = static_cast<int32_t>(absl::ToInt64Nanoseconds(dur - absl::Seconds(seconds)));
  }
  r->SetInt64(m, d->FindFieldByNumber(1), seconds);
  r->SetInt32(m, d->FindFieldByNumber(2), nanos);
  return absl::OkStatus();
}

const FieldDescriptor* FindField(const Descriptor* d, const std::string& key) {
  if (const FieldDescriptor* f = d->FindFieldByName(key)) return f;
  for (int i = 0; i < d->field_count(); ++i) {
    if (d->field(i)->json_name() == key) return d->field(i);
  }
  return nullptr;
}

absl::Status JsonToMessage(const json& j, const std::string& path, Message* m) {
  const Descriptor* d = m->GetDescriptor();
  if (d->full_name() == kTimestamp || d->full_name() == kDuration) {
    return JsonToSecondsNanos(j, path, m);
  }
  if (!j.is_object()) return Invalid(path, "an object", j);
  const Reflection* r = m->GetReflection();
  for (const auto& [key, value] : j.items()) {
    const std::string field_path = path.empty() ? key : path + "." + key;
    const FieldDescriptor* f = FindField(d, key);
    if (f == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown field '", field_path, "' in ", d->full_name()));
    }
    if (value.is_null()) {
      r->ClearField(m, f);
      continue;
    }
    if (f->is_map()) {
      if (!value.is_object()) return Invalid(field_path, "an object", value);
      r->ClearField(m, f);
      const FieldDescriptor* kf = f->message_type()->map_key();
      const FieldDescriptor* vf = f->message_type()->map_value();
      for (const auto& [k, v] : value.items()) {
        const std::string entry_path = absl::StrCat(field_path, "[", k, "]");
        Message* entry = r->AddMessage(m, f);
        // Map keys are strings in JSON; parse them as the key type.
        json key_json = k;
        if (kf->cpp_type() == FieldDescriptor::CPPTYPE_BOOL) {
          key_json = k == "true";
        }
        absl::Status s = JsonToFieldValue(key_json, entry_path, kf, false, entry);
        if (s.ok()) s = JsonToFieldValue(v, entry_path, vf, false, entry);
        if (!s.ok()) return s;
      }
    } else if (f->is_repeated()) {
      if (!value.is_array()) return Invalid(field_path, "an array", value);
      r->ClearField(m, f);
      for (size_t i = 0; i < value.size(); ++i) {
        absl::Status s =
            JsonToFieldValue(value[i], absl::StrCat(field_path, "[", i, "]"), f, true, m);
        if (!s.ok()) return s;
      }
    } else {
      absl::Status s = JsonToFieldValue(value, field_path, f, false, m);
      if (!s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// JSON -> YAML.

// True when a plain (unquoted) scalar with this text would not read back as
// the same string in YAML 1.1 or 1.2: empty, null, booleans (1.1 has
// yes/no/on/off/y/n), numbers, and the like.
bool NeedsQuotes(const std::string& s) {
  if (s.empty()) return true;
  if (s.front() == ' ' || s.back() == ' ') return true;
  const std::string lower = absl::AsciiStrToLower(s);
  static const char* const kReserved[] = {"~",  "null", "true", "false", "yes", "no",
                                          "on", "off",  "y",    "n",     "<<",  "="};
  for (const char* word : kReserved) {
    if (lower == word) return true;
  }
  if (absl::ascii_isdigit(s[0])) return true;  // numbers, times, 0x1F, 1_000
  // Signed and leading-dot numbers: "-1", "+.5", ".5", "-.inf".
  absl::string_view rest = lower;
  if (rest[0] == '+' || rest[0] == '-') rest.remove_prefix(1);
  if (!rest.empty() && rest[0] == '.') rest.remove_prefix(1);
  if (rest.size() == lower.size()) return false;  // neither sign nor dot
  return (!rest.empty() && absl::ascii_isdigit(rest[0])) || rest == "inf" || rest == "nan";
}

void EmitString(const std::string& s, YAML::Emitter* out) {
  if (NeedsQuotes(s)) *out << YAML::DoubleQuoted;
  *out << s;
}

void EmitJson(const json& j, YAML::Emitter* out) {
  switch (j.type()) {
    case json::value_t::object:
      if (j.empty()) {
        *out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
        return;
      }
      *out << YAML::BeginMap;
      for (const auto& [key, value] : j.items()) {
        *out << YAML::Key;
        EmitString(key, out);
        *out << YAML::Value;
        EmitJson(value, out);
      }
      *out << YAML::EndMap;
      return;
    case json::value_t::array:
      if (j.empty()) {
        *out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
        return;
      }
      *out << YAML::BeginSeq;
      for (const json& item : j) EmitJson(item, out);
      *out << YAML::EndSeq;
      return;
    case json::value_t::string:
      EmitString(j.get<std::string>(), out);
      return;
    case json::value_t::boolean:
      *out << (j.get<bool>() ? "true" : "false");
      return;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      *out << j.dump();
      return;
    case json::value_t::number_float: {
      const double d = j.get<double>();
      if (std::isnan(d)) {
        *out << ".nan";
      } else if (std::isinf(d)) {
        *out << (d > 0 ? ".inf" : "-.inf");
      } else {
        *out << j.dump();  // shortest text that reads back as d
      }
      return;
    }
    case json::value_t::binary:
    case json::value_t::null:
    case json::value_t::discarded:
      *out << YAML::Null;
      return;
  }
}

}  // namespace

nlohmann::json ProtoToJson(const google::protobuf::Message& message, bool include_defaults) {
  return MessageToJson(message, include_defaults);
}

absl::Status JsonToProto(const nlohmann::json& json, google::protobuf::Message* message) {
  return JsonToMessage(json, "", message);
}

std::string JsonToYaml(const nlohmann::json& json) {
  YAML::Emitter out;
  EmitJson(json, &out);
  return absl::StrCat(out.c_str(), "\n");
}

}  // namespace chronos

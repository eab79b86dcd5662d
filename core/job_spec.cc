// The YAML <-> JobSpec mapping walks the proto's descriptors, so a field
// added to job.proto is readable and writable here without code changes.
// Only the conveniences that differ from "key = field name, value = field
// value" are spelled out, as tables at the top of this file.
#include "core/job_spec.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <system_error>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "core/size.h"
#include "core/status_macros.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace chronos {
namespace {

using ::google::protobuf::Descriptor;
using ::google::protobuf::EnumDescriptor;
using ::google::protobuf::EnumValueDescriptor;
using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::Message;
using ::google::protobuf::Reflection;

// ---------------------------------------------------------------------------
// The YAML conveniences, as data.

// YAML keys that differ from the proto field name. The proto name is
// accepted too, so the output of `chronosctl get -o yaml` reads back.
struct KeyAlias {
  absl::string_view field;  // full field name
  absl::string_view key;
};
constexpr KeyAlias kKeyAliases[] = {
    {"chronos.v1.MemorySpec.hbm_budget_bytes", "hbm_budget"},
    {"chronos.v1.ScheduleSpec.activation_cap_bytes", "activation_cap"},
    {"chronos.v1.MemorySpec.activation_budget_bytes", "activation_budget"},
};

// Integer fields whose zero means "decide for me": "auto" reads as 0 and 0
// is written as "auto". (Proto3 `optional` fields get "auto" = unset.)
constexpr absl::string_view kAutoIntFields[] = {
    "chronos.v1.MemorySpec.hbm_budget_bytes",       "chronos.v1.ScheduleSpec.inflight_cap",
    "chronos.v1.ScheduleSpec.activation_cap_bytes", "chronos.v1.MemorySpec.activation_budget_bytes",
    "chronos.v1.ParallelSpec.chunks_per_device",
};

// Short enum spellings. The first entry for a value is the one written
// back. Other enums (and these too) also accept the value name with or
// without its common prefix: "RECOMPUTE_FULL", "full".
struct EnumSpelling {
  absl::string_view enum_type;
  absl::string_view name;
  int number;
};
constexpr EnumSpelling kEnumSpellings[] = {
    {"chronos.v1.DataFormat", "text", 1},         {"chronos.v1.DataFormat", "llmc", 2},
    {"chronos.v1.Precision", "auto", 0},          {"chronos.v1.Precision", "fp32", 1},
    {"chronos.v1.Precision", "bf16", 2},          {"chronos.v1.AttentionImpl", "auto", 0},
    {"chronos.v1.AttentionImpl", "flash", 1},     {"chronos.v1.AttentionImpl", "standard", 2},
    {"chronos.v1.RecomputeMode", "auto", 0},      {"chronos.v1.RecomputeMode", "off", 1},
    {"chronos.v1.RecomputeMode", "none", 1},      {"chronos.v1.RecomputeMode", "false", 1},
    {"chronos.v1.RecomputeMode", "full", 2},      {"chronos.v1.RecomputeMode", "true", 2},
    {"chronos.v1.RecomputeMode", "selective", 3}, {"chronos.v1.RecomputeMode", "chunk", 4},
    {"chronos.v1.OptimizerOffload", "auto", 0},   {"chronos.v1.OptimizerOffload", "on", 1},
    {"chronos.v1.OptimizerOffload", "true", 1},   {"chronos.v1.OptimizerOffload", "off", 2},
    {"chronos.v1.OptimizerOffload", "false", 2},
};

// A spec is a page of YAML. Aliases can make a small file expand into a
// huge tree; stop walking long before that hurts.
constexpr int kMaxNodes = 100000;

// ---------------------------------------------------------------------------
// Helpers.

absl::string_view YamlKey(const FieldDescriptor* f) {
  for (const KeyAlias& a : kKeyAliases) {
    if (a.field == f->full_name()) return a.key;
  }
  return f->name();
}

bool IsAutoIntField(const FieldDescriptor* f) {
  return std::find(std::begin(kAutoIntFields), std::end(kAutoIntFields), f->full_name()) !=
         std::end(kAutoIntFields);
}

// Proto3 `optional` scalars: unset is meaningful ("auto").
bool IsOptionalScalar(const FieldDescriptor* f) {
  return f->has_optional_keyword() && f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE;
}

// The double field that holds a size field's relative form ("0.5x"):
// activation_cap_bytes -> activation_cap_ratio; null when there is none.
const FieldDescriptor* RatioField(const FieldDescriptor* f) {
  if (f->cpp_type() != FieldDescriptor::CPPTYPE_INT64 || !absl::EndsWith(f->name(), "_bytes")) {
    return nullptr;
  }
  const std::string name = absl::StrCat(f->name().substr(0, f->name().size() - 6), "_ratio");
  const FieldDescriptor* r = f->containing_type()->FindFieldByName(name);
  return r != nullptr && r->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE ? r : nullptr;
}

bool IsSizeField(const FieldDescriptor* f) {
  return f->cpp_type() == FieldDescriptor::CPPTYPE_INT64 && absl::EndsWith(f->name(), "_bytes");
}

// The longest prefix ending in '_' shared by all value names
// ("RECOMPUTE_"), so "full" can stand for RECOMPUTE_FULL.
std::string EnumPrefix(const EnumDescriptor* e) {
  std::string prefix = e->value(0)->name();
  for (int i = 1; i < e->value_count(); ++i) {
    const std::string& name = e->value(i)->name();
    size_t n = 0;
    while (n < prefix.size() && n < name.size() && prefix[n] == name[n]) ++n;
    prefix.resize(n);
  }
  const size_t underscore = prefix.rfind('_');
  prefix.resize(underscore == std::string::npos ? 0 : underscore + 1);
  return prefix;
}

std::string EnumShortName(const EnumValueDescriptor* v) {
  std::string name = v->name().substr(EnumPrefix(v->type()).size());
  return absl::AsciiStrToLower(name);
}

std::vector<std::string> EnumSpellings(const EnumDescriptor* e) {
  std::vector<std::string> names;
  for (const EnumSpelling& s : kEnumSpellings) {
    if (s.enum_type == e->full_name()) names.emplace_back(s.name);
  }
  if (names.empty()) {
    for (int i = 0; i < e->value_count(); ++i) {
      names.push_back(EnumShortName(e->value(i)));
    }
  }
  return names;
}

const EnumValueDescriptor* FindEnumValue(const EnumDescriptor* e, absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  for (const EnumSpelling& s : kEnumSpellings) {
    if (s.enum_type == e->full_name() && s.name == lower) {
      return e->FindValueByNumber(s.number);
    }
  }
  const std::string prefix = absl::AsciiStrToLower(EnumPrefix(e));
  for (int i = 0; i < e->value_count(); ++i) {
    const std::string name = absl::AsciiStrToLower(e->value(i)->name());
    if (name == lower || name == prefix + lower) return e->value(i);
  }
  return nullptr;
}

std::string EnumToYaml(const EnumValueDescriptor* v) {
  for (const EnumSpelling& s : kEnumSpellings) {
    if (s.enum_type == v->type()->full_name() && s.number == v->number()) {
      return std::string(s.name);
    }
  }
  return EnumShortName(v);
}

// Shortest text that reads back as the same double ("0.0003", "1e-08").
std::string FormatDouble(double d) {
  if (std::isnan(d)) return ".nan";
  if (std::isinf(d)) return d > 0 ? ".inf" : "-.inf";
  return nlohmann::json(d).dump();
}

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      const bool same = absl::ascii_tolower(a[i - 1]) == absl::ascii_tolower(b[j - 1]);
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + !same});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string Location(const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  if (mark.is_null()) return "";
  return absl::StrCat(" (line ", mark.line + 1, ", column ", mark.column + 1, ")");
}

std::string Join(const std::string& path, absl::string_view key) {
  return path.empty() ? std::string(key) : absl::StrCat(path, ".", key);
}

const char* NodeKind(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "a scalar";
    default:
      return "nothing";
  }
}

// ---------------------------------------------------------------------------
// YAML -> proto.

class Parser {
 public:
  std::vector<std::string>& errors() { return errors_; }

  void ParseMessage(const YAML::Node& node, const std::string& path, Message* msg) {
    if (!Visit()) return;
    if (node.IsNull()) return;  // "model:" with nothing under it
    if (!node.IsMap()) {
      Error(absl::StrCat(path.empty() ? "job spec" : path, ": expected a mapping of keys, got ",
                         NodeKind(node), Location(node)));
      return;
    }
    const Descriptor* desc = msg->GetDescriptor();
    absl::flat_hash_set<int> seen;  // field numbers, so aliases count too
    for (const auto& entry : node) {
      const YAML::Node& key_node = entry.first;
      if (!key_node.IsScalar()) {
        Error(absl::StrCat(path.empty() ? "job spec" : path, ": keys must be plain names",
                           Location(key_node)));
        continue;
      }
      const std::string key = key_node.Scalar();
      const std::string key_path = Join(path, key);
      const FieldDescriptor* f = FindField(desc, key);
      if (f == nullptr) {
        Error(UnknownField(desc, path, key, Location(key_node)));
        continue;
      }
      if (!seen.insert(f->number()).second) {
        Error(absl::StrCat("duplicate key '", key_path, "'", Location(key_node)));
        continue;
      }
      ParseField(entry.second, key_path, f, msg);
    }
  }

 private:
  bool Visit() {
    if (++nodes_ == kMaxNodes) {
      Error(absl::StrCat("job spec has more than ", kMaxNodes, " YAML nodes"));
    }
    return nodes_ < kMaxNodes;
  }

  void Error(std::string message) { errors_.push_back(std::move(message)); }

  static const FieldDescriptor* FindField(const Descriptor* desc, absl::string_view key) {
    for (int i = 0; i < desc->field_count(); ++i) {
      if (YamlKey(desc->field(i)) == key) return desc->field(i);
    }
    return desc->FindFieldByName(std::string(key));
  }

  // "unknown field 'model.hiden'; did you mean 'model.hidden'?" or, with
  // nothing close, the list of known keys at that level.
  static std::string UnknownField(const Descriptor* desc, const std::string& path,
                                  absl::string_view key, const std::string& location) {
    std::string message = absl::StrCat("unknown field '", Join(path, key), "'", location);
    std::vector<std::string> known;
    absl::string_view best;
    size_t best_distance = std::numeric_limits<size_t>::max();
    for (int i = 0; i < desc->field_count(); ++i) {
      const absl::string_view candidate = YamlKey(desc->field(i));
      known.emplace_back(candidate);
      const size_t d = EditDistance(key, candidate);
      if (d < best_distance) {
        best_distance = d;
        best = candidate;
      }
    }
    // Close enough to be a typo: a third of the key, at least two edits.
    const size_t limit = std::max<size_t>(2, key.size() / 3);
    if (best_distance <= limit) {
      absl::StrAppend(&message, "; did you mean '", Join(path, best), "'?");
    } else {
      absl::StrAppend(&message, "; known fields", path.empty() ? "" : absl::StrCat(" of ", path),
                      ": ", absl::StrJoin(known, ", "));
    }
    return message;
  }

  void ParseField(const YAML::Node& value, const std::string& path, const FieldDescriptor* f,
                  Message* msg) {
    if (!Visit()) return;
    if (value.IsNull()) return;  // "lr:" with no value keeps the default
    const Reflection* refl = msg->GetReflection();
    if (f->is_repeated()) {
      if (!value.IsSequence()) {
        Error(absl::StrCat(path, ": expected a list, got ", NodeKind(value), Location(value)));
        return;
      }
      refl->ClearField(msg, f);
      for (size_t i = 0; i < value.size(); ++i) {
        const std::string item_path = absl::StrCat(path, "[", i, "]");
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
          ParseMessage(value[i], item_path, refl->AddMessage(msg, f));
        } else {
          ParseScalar(value[i], item_path, f, msg);
        }
      }
      return;
    }
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      ParseMessage(value, path, refl->MutableMessage(msg, f));
      return;
    }
    ParseScalar(value, path, f, msg);
  }

  // One scalar into a singular field, or appended to a repeated one.
  void ParseScalar(const YAML::Node& node, const std::string& path, const FieldDescriptor* f,
                   Message* msg) {
    if (!Visit()) return;
    const Reflection* refl = msg->GetReflection();
    const bool add = f->is_repeated();
    if (!node.IsScalar()) {
      Error(absl::StrCat(path, ": expected ", ExpectedType(f), ", got ", NodeKind(node),
                         Location(node)));
      return;
    }
    const std::string& text = node.Scalar();
    const bool is_auto = absl::AsciiStrToLower(text) == "auto";
    if (is_auto && !add && IsOptionalScalar(f)) {
      refl->ClearField(msg, f);
      return;
    }
    if (is_auto && !add && IsAutoIntField(f)) {
      refl->ClearField(msg, f);  // proto3: cleared == 0
      return;
    }
    bool ok = false;
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32: {
        int32_t v;
        if ((ok = absl::SimpleAtoi(text, &v))) {
          add ? refl->AddInt32(msg, f, v) : refl->SetInt32(msg, f, v);
        }
        break;
      }
      case FieldDescriptor::CPPTYPE_INT64: {
        int64_t v;
        // "0.5x": a size relative to 1F1B's worst device, where the message
        // has a <name>_ratio field for it (resolved when planning).
        const FieldDescriptor* ratio = RatioField(f);
        if (ratio != nullptr && !add && absl::EndsWithIgnoreCase(text, "x")) {
          double r;
          if (absl::SimpleAtod(text.substr(0, text.size() - 1), &r) && std::isfinite(r) && r > 0) {
            refl->ClearField(msg, f);
            refl->SetDouble(msg, ratio, r);
            return;
          }
          Error(absl::StrCat(path, ": expected a size such as 12GiB or a multiple of 1F1B's ",
                             "activation memory such as 0.5x, got '", text, "'", Location(node)));
          return;
        }
        if (IsSizeField(f)) {
          absl::StatusOr<int64_t> size = ParseByteSize(text);
          if ((ok = size.ok())) v = *size;
        } else {
          ok = absl::SimpleAtoi(text, &v);
        }
        if (ok) add ? refl->AddInt64(msg, f, v) : refl->SetInt64(msg, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_UINT32: {
        uint32_t v;
        if ((ok = !absl::StartsWith(text, "-") && absl::SimpleAtoi(text, &v))) {
          add ? refl->AddUInt32(msg, f, v) : refl->SetUInt32(msg, f, v);
        }
        break;
      }
      case FieldDescriptor::CPPTYPE_UINT64: {
        uint64_t v;
        if ((ok = !absl::StartsWith(text, "-") && absl::SimpleAtoi(text, &v))) {
          add ? refl->AddUInt64(msg, f, v) : refl->SetUInt64(msg, f, v);
        }
        break;
      }
      case FieldDescriptor::CPPTYPE_DOUBLE:
      case FieldDescriptor::CPPTYPE_FLOAT: {
        double v;
        // SimpleAtod also takes "inf" and "nan"; no field wants those.
        if ((ok = absl::SimpleAtod(text, &v) && std::isfinite(v))) {
          if (f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
            add ? refl->AddDouble(msg, f, v) : refl->SetDouble(msg, f, v);
          } else {
            const float fv = static_cast<float>(v);
            add ? refl->AddFloat(msg, f, fv) : refl->SetFloat(msg, f, fv);
          }
        }
        break;
      }
      case FieldDescriptor::CPPTYPE_BOOL: {
        const std::string lower = absl::AsciiStrToLower(text);
        const bool yes = lower == "true" || lower == "yes" || lower == "on";
        const bool no = lower == "false" || lower == "no" || lower == "off";
        if ((ok = yes || no)) {
          add ? refl->AddBool(msg, f, yes) : refl->SetBool(msg, f, yes);
        }
        break;
      }
      case FieldDescriptor::CPPTYPE_STRING:
        ok = true;
        add ? refl->AddString(msg, f, text) : refl->SetString(msg, f, text);
        break;
      case FieldDescriptor::CPPTYPE_ENUM: {
        const EnumValueDescriptor* v = FindEnumValue(f->enum_type(), text);
        if ((ok = v != nullptr)) {
          add ? refl->AddEnum(msg, f, v) : refl->SetEnum(msg, f, v);
        }
        break;
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        break;  // handled by ParseField
    }
    if (!ok) {
      Error(absl::StrCat(path, ": expected ", ExpectedType(f), ", got '", text, "'",
                         OutOfRange(f, text), Location(node)));
    }
  }

  // " (out of range: at most N)" when `text` is all digits but does not fit
  // the field, so "99999999999" is not reported as "not an integer" alone.
  static std::string OutOfRange(const FieldDescriptor* f, absl::string_view text) {
    const bool negative = absl::StartsWith(text, "-");
    absl::string_view digits = absl::StripPrefix(text, "-");
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit)) {
      return "";
    }
    // "-1" fits an int64, but no size is negative.
    if (negative && IsSizeField(f)) return " (a size cannot be negative)";
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        return negative ? absl::StrCat(" (out of range: at least ",
                                       std::numeric_limits<int32_t>::min(), ")")
                        : absl::StrCat(" (out of range: at most ",
                                       std::numeric_limits<int32_t>::max(), ")");
      case FieldDescriptor::CPPTYPE_INT64:
        return negative ? absl::StrCat(" (out of range: at least ",
                                       std::numeric_limits<int64_t>::min(), ")")
                        : absl::StrCat(" (out of range: at most ",
                                       std::numeric_limits<int64_t>::max(), ")");
      case FieldDescriptor::CPPTYPE_UINT32:
      case FieldDescriptor::CPPTYPE_UINT64:
        return negative ? " (negative)" : " (out of range)";
      default:
        return "";
    }
  }

  static std::string ExpectedType(const FieldDescriptor* f) {
    std::string type;
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        type = "an integer";
        break;
      case FieldDescriptor::CPPTYPE_INT64:
        type = IsSizeField(f) ? "a size such as 80GiB or a byte count" : "an integer";
        break;
      case FieldDescriptor::CPPTYPE_UINT32:
      case FieldDescriptor::CPPTYPE_UINT64:
        type = "a non-negative integer";
        break;
      case FieldDescriptor::CPPTYPE_DOUBLE:
      case FieldDescriptor::CPPTYPE_FLOAT:
        type = "a finite number";
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        type = "true or false";
        break;
      case FieldDescriptor::CPPTYPE_STRING:
        type = "a string";
        break;
      case FieldDescriptor::CPPTYPE_ENUM:
        return absl::StrCat("one of ", absl::StrJoin(EnumSpellings(f->enum_type()), ", "));
      case FieldDescriptor::CPPTYPE_MESSAGE:
        return "a mapping of keys";
    }
    // For a repeated field this names one element; the list itself is
    // checked in ParseField.
    if (!f->is_repeated() && (IsOptionalScalar(f) || IsAutoIntField(f))) {
      return absl::StrCat("auto or ", type);
    }
    return type;
  }

  std::vector<std::string> errors_;
  int nodes_ = 0;
};

// ---------------------------------------------------------------------------
// proto -> YAML.

std::string ScalarToYaml(const Message& msg, const FieldDescriptor* f, int index) {
  const Reflection* refl = msg.GetReflection();
  const bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: {
      const int32_t v = rep ? refl->GetRepeatedInt32(msg, f, index) : refl->GetInt32(msg, f);
      return v == 0 && !rep && IsAutoIntField(f) ? "auto" : absl::StrCat(v);
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      const int64_t v = rep ? refl->GetRepeatedInt64(msg, f, index) : refl->GetInt64(msg, f);
      if (v == 0 && !rep && IsAutoIntField(f)) return "auto";
      return IsSizeField(f) ? FormatByteSize(v) : absl::StrCat(v);
    }
    case FieldDescriptor::CPPTYPE_UINT32:
      return absl::StrCat(rep ? refl->GetRepeatedUInt32(msg, f, index) : refl->GetUInt32(msg, f));
    case FieldDescriptor::CPPTYPE_UINT64:
      return absl::StrCat(rep ? refl->GetRepeatedUInt64(msg, f, index) : refl->GetUInt64(msg, f));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return FormatDouble(rep ? refl->GetRepeatedDouble(msg, f, index) : refl->GetDouble(msg, f));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return FormatDouble(rep ? refl->GetRepeatedFloat(msg, f, index) : refl->GetFloat(msg, f));
    case FieldDescriptor::CPPTYPE_BOOL:
      return (rep ? refl->GetRepeatedBool(msg, f, index) : refl->GetBool(msg, f)) ? "true"
                                                                                  : "false";
    case FieldDescriptor::CPPTYPE_STRING:
      return rep ? refl->GetRepeatedString(msg, f, index) : refl->GetString(msg, f);
    case FieldDescriptor::CPPTYPE_ENUM: {
      const int number =
          rep ? refl->GetRepeatedEnumValue(msg, f, index) : refl->GetEnumValue(msg, f);
      const EnumValueDescriptor* v = f->enum_type()->FindValueByNumber(number);
      return v != nullptr ? EnumToYaml(v) : absl::StrCat(number);
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
  return "";
}

void EmitScalar(const Message& msg, const FieldDescriptor* f, int index, YAML::Emitter* out) {
  const std::string text = ScalarToYaml(msg, f, index);
  // Strings are quoted when YAML would read them as something else; the
  // other kinds are written in the form the parser expects, unquoted.
  if (f->cpp_type() == FieldDescriptor::CPPTYPE_STRING &&
      (text.empty() || YAML::IsNullString(text) || absl::AsciiStrToLower(text) == "auto")) {
    *out << YAML::DoubleQuoted << text;
  } else {
    *out << text;
  }
}

// The root's sections are always written, so the output shows every knob;
// deeper messages (device.custom) only when set.
void EmitMessage(const Message& msg, bool root, YAML::Emitter* out) {
  const Descriptor* desc = msg.GetDescriptor();
  const Reflection* refl = msg.GetReflection();
  *out << YAML::BeginMap;
  for (int i = 0; i < desc->field_count(); ++i) {
    const FieldDescriptor* f = desc->field(i);
    const bool is_message = f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE;
    if (f->is_repeated()) {
      *out << YAML::Key << std::string(YamlKey(f)) << YAML::Value;
      if (!is_message) *out << YAML::Flow;
      *out << YAML::BeginSeq;
      for (int j = 0; j < refl->FieldSize(msg, f); ++j) {
        if (is_message) {
          EmitMessage(refl->GetRepeatedMessage(msg, f, j), false, out);
        } else {
          EmitScalar(msg, f, j, out);
        }
      }
      *out << YAML::EndSeq;
    } else if (is_message) {
      if (!root && !refl->HasField(msg, f)) continue;
      *out << YAML::Key << std::string(YamlKey(f)) << YAML::Value;
      EmitMessage(refl->GetMessage(msg, f), false, out);
    } else {
      *out << YAML::Key << std::string(YamlKey(f)) << YAML::Value;
      if (IsOptionalScalar(f) && !refl->HasField(msg, f)) {
        *out << "auto";
      } else {
        EmitScalar(msg, f, -1, out);
      }
    }
  }
  *out << YAML::EndMap;
}

// See ParseJobSpecYaml. A small scanner for what yaml-cpp gets wrong: it
// follows quotes, comments, flow collections, node properties (&anchor,
// *alias, !tag) and plain scalars, and rejects a ',' that starts a token
// outside any flow collection.
absl::Status CheckTopLevelCommas(const std::string& text) {
  int depth = 0, line = 1, column = 0;
  char quote = 0;
  bool plain = false, property = false;
  const size_t n = text.size();
  auto blank_at = [&](size_t i) {
    return i >= n || text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n';
  };
  for (size_t i = 0; i < n; ++i) {
    const char c = text[i];
    ++column;
    if (c == '\n') {
      ++line;
      column = 0;
      plain = property = false;
      continue;
    }
    if (quote != 0) {
      if (quote == '"' && c == '\\') {
        ++i;
        ++column;
      } else if (c == quote) {
        if (quote == '\'' && i + 1 < n && text[i + 1] == '\'') {
          ++i;
          ++column;
        } else {
          quote = 0;
        }
      }
      continue;
    }
    if (c == '#' && (i == 0 || blank_at(i - 1))) {
      while (i + 1 < n && text[i + 1] != '\n') ++i;
      continue;
    }
    if (depth > 0) {
      if (c == '"' || c == '\'') quote = c;
      if (c == '[' || c == '{') ++depth;
      if ((c == ']' || c == '}') && --depth == 0) plain = property = false;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r') {
      property = false;
      continue;
    }
    if (plain) {
      if (c == ':' && blank_at(i + 1)) plain = false;
      continue;
    }
    if (property && c != '[' && c != '{' && c != ',') continue;
    property = false;
    if (c == ',') {
      return absl::InvalidArgumentError(absl::StrFormat(
          "job spec is not valid YAML: line %d, column %d: ',' outside a flow collection", line,
          column));
    }
    if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if (c == '&' || c == '*' || c == '!') {
      property = true;
    } else if ((c == '-' || c == '?' || c == ':') && blank_at(i + 1)) {
      // an indicator; the next token starts after it
    } else if (c != ']' && c != '}') {
      plain = true;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::JobSpec> ParseJobSpecYaml(const std::string& raw) {
  // YAML text may not hold C0 control characters other than tab and line
  // breaks (YAML 1.2, 5.1); say where, rather than leave it to yaml-cpp's
  // less precise errors. Line breaks become "\n": yaml-cpp 0.7 and the scan
  // below disagree about a lone "\r" (it hung on "&a\rz," under
  // job_spec_fuzzer), so a "\r" is only accepted as part of "\r\n".
  std::string text;
  text.reserve(raw.size());
  int line = 1, column = 1;
  for (size_t i = 0; i < raw.size(); ++i) {
    const unsigned char c = raw[i];
    if (c == '\r' && i + 1 < raw.size() && raw[i + 1] == '\n') continue;
    if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "job spec is not valid YAML: line %d, column %d: control character 0x%02x%s", line,
          column, c, c == '\r' ? " (a carriage return without a line feed)" : ""));
    }
    text.push_back(static_cast<char>(c));
    if (c == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  // yaml-cpp 0.7 never returns from a document whose top level holds a
  // flow entry ',' where a token starts (",", "\"x\",", "&a,": found by
  // job_spec_fuzzer). Outside flow collections YAML allows ',' only inside
  // a plain scalar, so any other ',' there is invalid anyway: refuse it.
  CHRONOS_RETURN_IF_ERROR(CheckTopLevelCommas(text));
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(text);
  } catch (const YAML::ParserException& e) {
    return absl::InvalidArgumentError(absl::StrCat("job spec is not valid YAML: line ",
                                                   e.mark.line + 1, ", column ", e.mark.column + 1,
                                                   ": ", e.msg));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("job spec is not valid YAML: ", e.what()));
  }
  if (docs.size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("job spec has ", docs.size(), " YAML documents; expected one"));
  }
  if (docs.empty() || docs[0].IsNull()) {
    return absl::InvalidArgumentError("job spec is empty");
  }
  v1::JobSpec spec;
  Parser parser;
  try {
    parser.ParseMessage(docs[0], "", &spec);
  } catch (const YAML::Exception& e) {
    // Not expected: the parser only reads what it has checked. Kept so
    // that a yaml-cpp surprise becomes a status, not a crash.
    parser.errors().push_back(absl::StrCat("job spec: ", e.what()));
  }
  if (!parser.errors().empty()) {
    return absl::InvalidArgumentError(absl::StrJoin(parser.errors(), "; "));
  }
  return spec;
}

absl::StatusOr<v1::JobSpec> LoadJobSpecFile(const std::string& path) {
  std::error_code ec;
  const std::filesystem::file_status st = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(st)) {
    return absl::NotFoundError(absl::StrCat("job spec file '", path, "' does not exist"));
  }
  if (std::filesystem::is_directory(st)) {
    return absl::InvalidArgumentError(absl::StrCat("job spec file '", path, "' is a directory"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::PermissionDeniedError(absl::StrCat("job spec file '", path, "' cannot be opened"));
  }
  // Read one byte past the limit rather than trusting the file size, so
  // pipes and special files are bounded too.
  std::string text(kMaxJobSpecFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read job spec file '", path, "'"));
  }
  text.resize(static_cast<size_t>(in.gcount()));
  if (static_cast<int64_t>(text.size()) > kMaxJobSpecFileBytes) {
    return absl::InvalidArgumentError(absl::StrCat("job spec file '", path, "' is larger than ",
                                                   FormatBytes(kMaxJobSpecFileBytes),
                                                   "; is it the right file?"));
  }
  absl::StatusOr<v1::JobSpec> spec = ParseJobSpecYaml(text);
  if (!spec.ok()) {
    return absl::Status(spec.status().code(), absl::StrCat(path, ": ", spec.status().message()));
  }
  return spec;
}

std::string JobSpecToYaml(const v1::JobSpec& spec) {
  YAML::Emitter out;
  EmitMessage(spec, /*root=*/true, &out);
  return absl::StrCat(out.c_str(), "\n");
}

}  // namespace chronos

#include "core/device_profile.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/size.h"
#include "core/status_macros.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/reflection.h"
#include "yaml-cpp/yaml.h"

namespace chronos {
namespace {

v1::DeviceProfile H100() {
  v1::DeviceProfile p;
  p.set_name("h100");
  p.set_peak_flops(989e12);  // dense bf16
  // Calibrated so one h=4096, s=4096 LLaMA layer takes 2.7 ms forward and
  // 6.2 ms backward, as measured with flash attention in bf16.
  p.set_forward_efficiency(0.672);
  p.set_backward_efficiency(0.597);
  p.set_hbm_bandwidth(2.8e12);
  p.set_hbm_bytes(int64_t{81559} << 20);  // 80GB HBM3 as cudaMemGetInfo reports
  p.set_host_memory_bytes(int64_t{200} << 30);
  p.set_reserved_bytes(int64_t{2} << 30);  // context, workspaces, fragmentation
  p.set_h2d_bandwidth(55e9);
  p.set_d2h_bandwidth(55e9);
  p.set_duplex_bandwidth(83e9);
  p.set_p2p_bandwidth(200e9);  // NVLink, one direction, as NCCL p2p achieves
  p.set_p2p_latency_seconds(10e-6);
  p.set_allreduce_bandwidth(180e9);
  p.set_async_copies(true);
  p.set_flash_attention(true);
  p.set_bf16(true);
  p.set_kernel_overhead_seconds(20e-6);
  return p;
}

v1::DeviceProfile Cpu() {
  v1::DeviceProfile p;
  p.set_name("cpu");
  // LibTorch on 2 cores with OpenBLAS: ~150 GFLOP/s on large products; small
  // pipeline chunks reach far less, hence the low efficiencies.
  p.set_peak_flops(150e9);
  p.set_forward_efficiency(0.25);
  p.set_backward_efficiency(0.2);
  p.set_hbm_bandwidth(10e9);
  p.set_hbm_bytes(int64_t{16} << 30);
  p.set_host_memory_bytes(int64_t{16} << 30);
  p.set_reserved_bytes(int64_t{512} << 20);
  p.set_h2d_bandwidth(8e9);
  p.set_d2h_bandwidth(8e9);
  p.set_duplex_bandwidth(8e9);
  p.set_p2p_bandwidth(2.5e9);  // Gloo over loopback
  p.set_p2p_latency_seconds(100e-6);
  p.set_allreduce_bandwidth(2e9);
  p.set_async_copies(false);  // the CPU executor copies synchronously
  p.set_flash_attention(false);
  p.set_bf16(false);
  p.set_kernel_overhead_seconds(50e-6);
  return p;
}

// Bandwidth values may be written "55GB/s".
absl::StatusOr<double> ParseNumberOrSize(const std::string& key, const std::string& text) {
  double d;
  if (absl::SimpleAtod(text, &d)) return d;
  std::string t = text;
  if (absl::EndsWith(t, "/s")) t = t.substr(0, t.size() - 2);
  absl::StatusOr<int64_t> bytes = ParseByteSize(t);
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("profile field '", key, "': cannot parse '", text, "'"));
  }
  return static_cast<double>(*bytes);
}

}  // namespace

std::vector<std::string> BuiltinDeviceProfileNames() { return {"cpu", "h100"}; }

absl::StatusOr<v1::DeviceProfile> BuiltinDeviceProfile(absl::string_view name) {
  std::string n = absl::AsciiStrToLower(name);
  if (n == "h100") return H100();
  if (n == "cpu") return Cpu();
  return absl::InvalidArgumentError(absl::StrCat(
      "device.profile '", name, "' is not a built-in profile (",
      absl::StrJoin(BuiltinDeviceProfileNames(), ", "), ") nor a readable profile file"));
}

v1::DeviceProfile MergeDeviceProfile(const v1::DeviceProfile& base,
                                     const v1::DeviceProfile& overrides) {
  v1::DeviceProfile out = base;
  const auto* desc = overrides.GetDescriptor();
  const auto* refl = overrides.GetReflection();
  for (int i = 0; i < desc->field_count(); ++i) {
    const auto* f = desc->field(i);
    if (!refl->HasField(overrides, f)) continue;  // proto3: non-default only
    if (f->name() == "name") continue;
    out.GetReflection()->ClearField(&out, f);
    switch (f->cpp_type()) {
      case google::protobuf::FieldDescriptor::CPPTYPE_DOUBLE:
        out.GetReflection()->SetDouble(&out, f, refl->GetDouble(overrides, f));
        break;
      case google::protobuf::FieldDescriptor::CPPTYPE_INT64:
        out.GetReflection()->SetInt64(&out, f, refl->GetInt64(overrides, f));
        break;
      case google::protobuf::FieldDescriptor::CPPTYPE_BOOL:
        out.GetReflection()->SetBool(&out, f, refl->GetBool(overrides, f));
        break;
      case google::protobuf::FieldDescriptor::CPPTYPE_STRING:
        out.GetReflection()->SetString(&out, f, refl->GetString(overrides, f));
        break;
      default:
        break;
    }
  }
  if (!overrides.name().empty()) out.set_name(overrides.name());
  return out;
}

absl::StatusOr<v1::DeviceProfile> ParseDeviceProfileYaml(const std::string& text) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("profile: ", e.what()));
  }
  if (!root.IsMap()) return absl::InvalidArgumentError("profile: expected a mapping");
  v1::DeviceProfile base;
  if (root["base"]) {
    CHRONOS_ASSIGN_OR_RETURN(base, BuiltinDeviceProfile(root["base"].as<std::string>()));
  }
  v1::DeviceProfile over;
  const auto* desc = over.GetDescriptor();
  const auto* refl = over.GetReflection();
  // Booleans set to false must still override (proto3 cannot tell false from
  // unset), so they are applied to `base` directly.
  for (const auto& kv : root) {
    std::string key = kv.first.as<std::string>();
    if (key == "base") continue;
    const auto* f = desc->FindFieldByName(key);
    if (f == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("profile: unknown field '", key, "'"));
    }
    std::string value = kv.second.as<std::string>();
    switch (f->cpp_type()) {
      case google::protobuf::FieldDescriptor::CPPTYPE_DOUBLE: {
        CHRONOS_ASSIGN_OR_RETURN(double d, ParseNumberOrSize(key, value));
        refl->SetDouble(&over, f, d);
        break;
      }
      case google::protobuf::FieldDescriptor::CPPTYPE_INT64: {
        CHRONOS_ASSIGN_OR_RETURN(double d, ParseNumberOrSize(key, value));
        refl->SetInt64(&over, f, static_cast<int64_t>(d));
        break;
      }
      case google::protobuf::FieldDescriptor::CPPTYPE_BOOL: {
        std::string v = absl::AsciiStrToLower(value);
        bool b = v == "true" || v == "yes" || v == "on" || v == "1";
        if (!b && v != "false" && v != "no" && v != "off" && v != "0") {
          return absl::InvalidArgumentError(
              absl::StrCat("profile field '", key, "' must be true or false"));
        }
        base.GetReflection()->SetBool(&base, f, b);
        break;
      }
      case google::protobuf::FieldDescriptor::CPPTYPE_STRING:
        refl->SetString(&over, f, value);
        break;
      default:
        break;
    }
  }
  v1::DeviceProfile merged = MergeDeviceProfile(base, over);
  if (merged.name().empty()) merged.set_name("custom");
  if (merged.peak_flops() <= 0 || merged.hbm_bytes() <= 0) {
    return absl::InvalidArgumentError(
        "profile: peak_flops and hbm_bytes must be positive (or set base:)");
  }
  return merged;
}

absl::StatusOr<v1::DeviceProfile> LoadDeviceProfileFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("device profile file not found: ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseDeviceProfileYaml(ss.str());
}

absl::StatusOr<v1::DeviceProfile> ResolveDeviceProfile(const v1::DeviceSpec& spec) {
  std::string name = spec.profile().empty() ? "cpu" : spec.profile();
  if (spec.has_custom() && spec.custom().peak_flops() > 0 && spec.custom().hbm_bytes() > 0) {
    return spec.custom();  // a complete inlined profile
  }
  absl::StatusOr<v1::DeviceProfile> base = BuiltinDeviceProfile(name);
  if (!base.ok()) {
    std::ifstream probe(name);
    if (!probe) return base.status();
    CHRONOS_ASSIGN_OR_RETURN(base, LoadDeviceProfileFile(name));
  }
  if (spec.has_custom()) return MergeDeviceProfile(*base, spec.custom());
  return base;
}

int64_t DefaultHbmBudget(const v1::DeviceProfile& profile) {
  return profile.hbm_bytes() - profile.reserved_bytes();
}

}  // namespace chronos

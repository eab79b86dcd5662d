#include "worker/input_fault.h"

#include <utility>

#include "absl/strings/cord.h"

namespace chronos::worker {
namespace {

constexpr char kPayloadUrl[] = "type.chronos.dev/chronos.v1.FaultKind";
constexpr char kInput[] = "FAULT_INPUT";
constexpr char kStorage[] = "FAULT_STORAGE";

}  // namespace

absl::Status AsInputFault(absl::Status s) {
  if (!s.ok()) s.SetPayload(kPayloadUrl, absl::Cord(kInput));
  return s;
}

bool IsInputFault(const absl::Status& s) {
  const auto payload = s.GetPayload(kPayloadUrl);
  return payload.has_value() && *payload == kInput;
}

absl::Status AsStorageFault(absl::Status s) {
  if (!s.ok()) s.SetPayload(kPayloadUrl, absl::Cord(kStorage));
  return s;
}

bool IsStorageFault(const absl::Status& s) {
  const auto payload = s.GetPayload(kPayloadUrl);
  return payload.has_value() && *payload == kStorage;
}

}  // namespace chronos::worker

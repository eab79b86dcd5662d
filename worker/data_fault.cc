#include "worker/data_fault.h"

#include <utility>

#include "absl/strings/cord.h"

namespace chronos::worker {
namespace {

constexpr char kPayloadUrl[] = "type.chronos.dev/chronos.v1.FaultKind";
constexpr char kData[] = "FAULT_DATA";

}  // namespace

absl::Status AsDataFault(absl::Status s) {
  if (!s.ok()) s.SetPayload(kPayloadUrl, absl::Cord(kData));
  return s;
}

bool IsDataFault(const absl::Status& s) {
  const auto payload = s.GetPayload(kPayloadUrl);
  return payload.has_value() && *payload == kData;
}

}  // namespace chronos::worker

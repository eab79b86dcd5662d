#include "core/schedule.h"

#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace chronos {

std::vector<int> Schedule::DeviceChunks(int device) const {
  std::vector<int> out;
  for (int c = 0; c < num_chunks(); ++c) {
    if (chunk_device[c] == device) out.push_back(c);
  }
  return out;
}

bool IsCompute(ActionType t) {
  switch (t) {
    case ActionType::kF:
    case ActionType::kB:
    case ActionType::kBI:
    case ActionType::kBW:
    case ActionType::kRecompute:
    case ActionType::kOptimStep:
      return true;
    default:
      return false;
  }
}

bool IsBackward(ActionType t) { return t == ActionType::kB || t == ActionType::kBI; }

const char* ActionTypeName(ActionType t) {
  switch (t) {
    case ActionType::kF:
      return "F";
    case ActionType::kB:
      return "B";
    case ActionType::kBI:
      return "BI";
    case ActionType::kBW:
      return "BW";
    case ActionType::kSendAct:
      return "SEND_ACT";
    case ActionType::kRecvAct:
      return "RECV_ACT";
    case ActionType::kSendGrad:
      return "SEND_GRAD";
    case ActionType::kRecvGrad:
      return "RECV_GRAD";
    case ActionType::kOffload:
      return "OFFLOAD";
    case ActionType::kReload:
      return "RELOAD";
    case ActionType::kRecompute:
      return "RECOMPUTE";
    case ActionType::kAllReduce:
      return "ALLREDUCE";
    case ActionType::kOptimStep:
      return "OPTIM_STEP";
  }
  return "?";
}

bool ParseActionType(absl::string_view name, ActionType* out) {
  std::string upper = absl::AsciiStrToUpper(name);
  for (int i = 0; i <= static_cast<int>(ActionType::kOptimStep); ++i) {
    ActionType t = static_cast<ActionType>(i);
    if (upper == ActionTypeName(t)) {
      *out = t;
      return true;
    }
  }
  return false;
}

std::string ActionToString(const Action& a) {
  std::string s = absl::StrCat(ActionTypeName(a.type), "(");
  bool first = true;
  auto field = [&](const char* k, int v) {
    if (v < 0) return;
    absl::StrAppend(&s, first ? "" : ",", k, "=", v);
    first = false;
  };
  field("c", a.chunk);
  field("mb", a.microbatch);
  field("peer", a.peer);
  if (a.type == ActionType::kF && a.policy.kind != PolicyKind::kKeep) {
    if (a.policy.kind == PolicyKind::kOffload) {
      absl::StrAppend(&s, first ? "" : ",", "offload=", a.policy.offload_fraction);
    } else {
      static const char* kG[] = {"layer", "chunk", "selective"};
      absl::StrAppend(&s, first ? "" : ",",
                      "recompute=", kG[static_cast<int>(a.policy.granularity)]);
    }
  }
  absl::StrAppend(&s, ")");
  return s;
}

}  // namespace chronos

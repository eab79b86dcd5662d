#include "core/validator.h"

#include <deque>
#include <map>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace chronos {
namespace {

constexpr size_t kMaxReported = 12;

struct Key {
  int mb, chunk;
  bool operator<(const Key& o) const { return std::tie(mb, chunk) < std::tie(o.mb, o.chunk); }
};

// Where each action of one (micro-batch, chunk) sits on its device; -1 absent.
struct Positions {
  int f = -1, b = -1, bi = -1, bw = -1, recompute = -1, offload = -1, reload = -1;
  int recv_act = -1, recv_grad = -1, send_act = -1, send_grad = -1;
  int f_count = 0, b_count = 0, bi_count = 0, bw_count = 0;
  int recompute_count = 0, offload_count = 0, reload_count = 0;
  int recv_act_count = 0, recv_grad_count = 0, send_act_count = 0, send_grad_count = 0;
  MemoryPolicy policy;
  int backward() const { return b >= 0 ? b : bi; }
};

class Checker {
 public:
  explicit Checker(const Schedule& s) : s_(s) {}

  std::vector<ValidationError> Run() {
    if (!CheckShape()) return errors_;
    CheckActions();
    if (errors_.empty()) CheckChannels();
    if (errors_.empty()) Replay();
    return errors_;
  }

 private:
  void Error(int dev, int idx, std::string msg) {
    if (errors_.size() < kMaxReported) errors_.push_back({dev, idx, std::move(msg)});
  }
  std::string Describe(int dev, int idx) const { return ActionToString(s_.devices[dev][idx]); }
  void ActionError(int dev, int idx, const std::string& msg) {
    Error(dev, idx, absl::StrCat(Describe(dev, idx), ": ", msg));
  }

  bool CheckShape() {
    if (s_.num_devices < 1 || static_cast<int>(s_.devices.size()) != s_.num_devices) {
      Error(-1, -1,
            absl::StrCat("schedule has ", s_.devices.size(), " device lists for num_devices ",
                         s_.num_devices));
      return false;
    }
    if (s_.num_chunks() < 1 || s_.num_microbatches < 1) {
      Error(-1, -1, "schedule needs at least one chunk and one micro-batch");
      return false;
    }
    for (int c = 0; c < s_.num_chunks(); ++c) {
      if (s_.chunk_device[c] < 0 || s_.chunk_device[c] >= s_.num_devices) {
        Error(-1, -1,
              absl::StrCat("chunk ", c, " is placed on device ", s_.chunk_device[c],
                           ", which does not exist"));
        return false;
      }
    }
    return true;
  }

  int Dev(int c) const { return s_.chunk_device[c]; }

  void CheckActions() {
    const int C = s_.num_chunks(), m = s_.num_microbatches;
    pos_.assign(s_.num_devices, {});
    optim_.assign(s_.num_devices, -1);
    for (int d = 0; d < s_.num_devices; ++d) {
      const auto& list = s_.devices[d];
      for (int i = 0; i < static_cast<int>(list.size()); ++i) {
        const Action& a = list[i];
        if (a.type == ActionType::kOptimStep) {
          if (optim_[d] >= 0) ActionError(d, i, "second OPTIM_STEP on the device");
          optim_[d] = i;
          continue;
        }
        if (a.chunk < 0 || a.chunk >= C) {
          ActionError(d, i, absl::StrCat("chunk ", a.chunk, " out of range [0, ", C, ")"));
          continue;
        }
        if (Dev(a.chunk) != d) {
          ActionError(d, i, absl::StrCat("chunk ", a.chunk, " lives on device ", Dev(a.chunk)));
          continue;
        }
        if (a.type == ActionType::kAllReduce) {
          allreduce_[{d, a.chunk}].push_back(i);
          continue;
        }
        if (a.microbatch < 0 || a.microbatch >= m) {
          ActionError(d, i,
                      absl::StrCat("micro-batch ", a.microbatch, " out of range [0, ", m, ")"));
          continue;
        }
        if (optim_[d] >= 0) ActionError(d, i, "comes after OPTIM_STEP");
        Positions& p = pos_[d][{a.microbatch, a.chunk}];
        switch (a.type) {
          case ActionType::kF:
            p.f = i;
            p.f_count++;
            p.policy = a.policy;
            break;
          case ActionType::kB:
            p.b = i;
            p.b_count++;
            break;
          case ActionType::kBI:
            p.bi = i;
            p.bi_count++;
            break;
          case ActionType::kBW:
            p.bw = i;
            p.bw_count++;
            break;
          case ActionType::kRecompute:
            p.recompute = i;
            p.recompute_count++;
            break;
          case ActionType::kOffload:
            p.offload = i;
            p.offload_count++;
            break;
          case ActionType::kReload:
            p.reload = i;
            p.reload_count++;
            break;
          case ActionType::kRecvAct:
            p.recv_act = i;
            Count(d, i, &p.recv_act_count);
            CheckPeer(d, i, a, a.chunk - 1);
            break;
          case ActionType::kRecvGrad:
            p.recv_grad = i;
            Count(d, i, &p.recv_grad_count);
            CheckPeer(d, i, a, a.chunk + 1);
            break;
          case ActionType::kSendAct:
            p.send_act = i;
            Count(d, i, &p.send_act_count);
            CheckPeer(d, i, a, a.chunk + 1);
            break;
          case ActionType::kSendGrad:
            p.send_grad = i;
            Count(d, i, &p.send_grad_count);
            CheckPeer(d, i, a, a.chunk - 1);
            break;
          default:
            break;
        }
      }
    }
    // Every (micro-batch, chunk) exactly once, on its device, in order.
    for (int c = 0; c < C; ++c) {
      const int d = Dev(c);
      for (int mb = 0; mb < m; ++mb) {
        auto it = pos_[d].find({mb, c});
        const std::string what = absl::StrCat("(c=", c, ",mb=", mb, ")");
        if (it == pos_[d].end() || it->second.f_count == 0) {
          Error(d, -1, absl::StrCat("missing F", what));
          continue;
        }
        const Positions& p = it->second;
        if (p.f_count > 1) Error(d, p.f, absl::StrCat("F", what, " appears ", p.f_count, " times"));
        CheckBackward(d, c, mb, p, what);
        CheckMemoryActions(d, p, what);
        CheckDependencies(d, c, mb, p, what);
      }
    }
    CheckOptimizer();
  }

  // A transfer of one (micro-batch, chunk) happens once; a second copy
  // could satisfy the channel counts while running before its F (found by
  // schedule_validator_fuzzer: the replay then stalls).
  void Count(int d, int i, int* count) {
    if (++*count == 2) ActionError(d, i, "is a second copy of the same transfer");
  }

  void CheckPeer(int d, int i, const Action& a, int other_chunk) {
    if (other_chunk < 0 || other_chunk >= s_.num_chunks()) {
      ActionError(d, i, "has no neighbouring chunk to talk to");
    } else if (Dev(other_chunk) == d) {
      ActionError(d, i, "neighbouring chunk is on the same device (no transfer needed)");
    } else if (a.peer != Dev(other_chunk)) {
      ActionError(d, i, absl::StrCat("peer should be device ", Dev(other_chunk)));
    }
  }

  void CheckBackward(int d, int c, int mb, const Positions& p, const std::string& what) {
    const bool full = p.b_count > 0, split = p.bi_count > 0 || p.bw_count > 0;
    if (!full && !split) {
      Error(d, -1, absl::StrCat("missing backward (B or BI+BW) of", what));
      return;
    }
    if (full && split) {
      Error(d, p.b, absl::StrCat("both B and BI/BW for", what));
      return;
    }
    if (p.b_count > 1) Error(d, p.b, absl::StrCat("B", what, " appears ", p.b_count, " times"));
    if (split) {
      if (p.bi_count != 1 || p.bw_count != 1) {
        Error(d, std::max(p.bi, p.bw),
              absl::StrCat("expected exactly one BI and one BW for", what));
        return;
      }
      if (p.bw < p.bi) Error(d, p.bw, absl::StrCat("BW", what, " runs before its BI"));
    }
    if (p.backward() < p.f) {
      Error(d, p.backward(), absl::StrCat("backward of", what, " runs before its F"));
    }
  }

  void CheckMemoryActions(int d, const Positions& p, const std::string& what) {
    const int bwd = p.backward();
    const bool recompute = p.policy.kind == PolicyKind::kRecompute;
    const bool offload = p.policy.kind == PolicyKind::kOffload;
    if (recompute != (p.recompute_count == 1) || p.recompute_count > 1) {
      Error(d, p.recompute >= 0 ? p.recompute : p.f,
            absl::StrCat(recompute ? "F with a recompute policy needs exactly one RECOMPUTE"
                                   : "RECOMPUTE without a recompute policy on F",
                         what));
    } else if (recompute && (p.recompute < p.f || p.recompute > bwd)) {
      Error(d, p.recompute,
            absl::StrCat("RECOMPUTE", what, " must come between F and its backward"));
    }
    if (offload != (p.offload_count == 1) || offload != (p.reload_count == 1) ||
        p.offload_count > 1 || p.reload_count > 1) {
      Error(d, p.offload >= 0 ? p.offload : p.f,
            absl::StrCat(offload ? "F with an offload policy needs one OFFLOAD and one RELOAD"
                                 : "OFFLOAD/RELOAD without an offload policy on F",
                         what));
    } else if (offload && !(p.f < p.offload && p.offload < p.reload && p.reload < bwd)) {
      Error(d, p.reload, absl::StrCat("expected F < OFFLOAD < RELOAD < backward for", what));
    }
    if (offload && (p.policy.offload_fraction <= 0 || p.policy.offload_fraction > 1)) {
      Error(d, p.f, absl::StrCat("offload fraction must be in (0, 1] for", what));
    }
  }

  void CheckDependencies(int d, int c, int mb, const Positions& p, const std::string& what) {
    const int C = s_.num_chunks();
    if (c > 0) {
      if (Dev(c - 1) == d) {
        auto prev = pos_[d].find({mb, c - 1});
        if (prev == pos_[d].end() || prev->second.f < 0 || prev->second.f > p.f) {
          Error(d, p.f,
                absl::StrCat("F", what, " runs before F of chunk ", c - 1, " on the same device"));
        }
      } else if (p.recv_act < 0 || p.recv_act > p.f) {
        Error(d, p.f, absl::StrCat("F", what, " has no earlier RECV_ACT"));
      }
    }
    const int bwd = p.backward();
    if (c < C - 1) {
      if (Dev(c + 1) == d) {
        auto next = pos_[d].find({mb, c + 1});
        if (next == pos_[d].end() || next->second.backward() < 0 || next->second.backward() > bwd) {
          Error(d, bwd,
                absl::StrCat("backward of", what, " runs before the backward of chunk ", c + 1,
                             " on the same device"));
        }
      } else if (p.recv_grad < 0 || p.recv_grad > bwd) {
        Error(d, bwd, absl::StrCat("backward of", what, " has no earlier RECV_GRAD"));
      }
      if (Dev(c + 1) != d && (p.send_act < 0 || p.send_act < p.f)) {
        Error(d, p.f, absl::StrCat("F", what, " output is never sent (SEND_ACT after F)"));
      }
    }
    if (c > 0 && Dev(c - 1) != d && (p.send_grad < 0 || p.send_grad < bwd)) {
      Error(d, bwd, absl::StrCat("backward of", what, " input gradient is never sent (SEND_GRAD)"));
    }
  }

  void CheckOptimizer() {
    int with = 0;
    for (int d = 0; d < s_.num_devices; ++d) with += optim_[d] >= 0;
    if (with != 0 && with != s_.num_devices) {
      for (int d = 0; d < s_.num_devices; ++d) {
        if (optim_[d] < 0) Error(d, -1, "OPTIM_STEP is a collective but this device has none");
      }
    }
    for (const auto& [key, idxs] : allreduce_) {
      const auto [d, c] = key;
      if (idxs.size() > 1) ActionError(d, idxs[1], "second ALLREDUCE of the chunk");
      for (const auto& [k, p] : pos_[d]) {
        if (k.chunk != c) continue;
        const int last = std::max(p.backward(), p.bw);
        if (last > idxs[0]) {
          ActionError(d, idxs[0], absl::StrCat("runs before the backward of mb ", k.mb));
          break;
        }
      }
      if (optim_[d] >= 0 && optim_[d] < idxs[0]) {
        ActionError(d, idxs[0], "comes after OPTIM_STEP");
      }
    }
  }

  // Sends and receives on each (from, to, kind) channel must pair up in the
  // same order: NCCL matches point-to-point operations by issue order.
  void CheckChannels() {
    using Channel = std::tuple<int, int, bool>;                        // from, to, is_grad
    std::map<Channel, std::vector<std::pair<int, Key>>> sends, recvs;  // (index, key)
    for (int d = 0; d < s_.num_devices; ++d) {
      const auto& list = s_.devices[d];
      for (int i = 0; i < static_cast<int>(list.size()); ++i) {
        const Action& a = list[i];
        switch (a.type) {
          case ActionType::kSendAct:
            sends[{d, a.peer, false}].push_back({i, {a.microbatch, a.chunk + 1}});
            break;
          case ActionType::kSendGrad:
            sends[{d, a.peer, true}].push_back({i, {a.microbatch, a.chunk - 1}});
            break;
          case ActionType::kRecvAct:
            recvs[{a.peer, d, false}].push_back({i, {a.microbatch, a.chunk}});
            break;
          case ActionType::kRecvGrad:
            recvs[{a.peer, d, true}].push_back({i, {a.microbatch, a.chunk}});
            break;
          default:
            break;
        }
      }
    }
    auto name = [](bool grad) { return grad ? "gradient" : "activation"; };
    for (const auto& [ch, list] : sends) {
      const auto& [from, to, grad] = ch;
      const auto& rl = recvs[ch];
      for (size_t k = 0; k < list.size(); ++k) {
        if (k >= rl.size()) {
          ActionError(from, list[k].first,
                      absl::StrCat("unmatched send: device ", to, " posts no matching ", name(grad),
                                   " receive"));
          break;
        }
        const Key a = list[k].second, b = rl[k].second;
        if (a.mb != b.mb || a.chunk != b.chunk) {
          ActionError(from, list[k].first,
                      absl::StrCat("send #", k, " on the ", name(grad), " channel to device ", to,
                                   " meets receive ", Describe(to, rl[k].first), " (action ",
                                   rl[k].first, "): order differs"));
          break;
        }
      }
    }
    for (const auto& [ch, rl] : recvs) {
      const auto& [from, to, grad] = ch;
      const size_t n = sends.count(ch) ? sends[ch].size() : 0;
      if (rl.size() > n) {
        ActionError(
            to, rl[n].first,
            absl::StrCat("unmatched receive: device ", from, " never sends this ", name(grad)));
      }
    }
  }

  // Replays all devices together: a receive waits until its send has been
  // posted, OPTIM_STEP waits for every device. Finishing proves the order
  // cannot deadlock; otherwise every stuck device is reported.
  void Replay() {
    const int p = s_.num_devices;
    std::vector<int> pc(p, 0);
    std::map<std::tuple<int, int, bool, int, int>, int> posted;  // from,to,grad,mb,chunk
    bool progress = true;
    while (progress) {
      progress = false;
      for (int d = 0; d < p; ++d) {
        while (pc[d] < static_cast<int>(s_.devices[d].size())) {
          const Action& a = s_.devices[d][pc[d]];
          if (a.type == ActionType::kRecvAct || a.type == ActionType::kRecvGrad) {
            const bool grad = a.type == ActionType::kRecvGrad;
            auto it = posted.find({a.peer, d, grad, a.microbatch, a.chunk});
            if (it == posted.end() || it->second == 0) break;
            it->second--;
          } else if (a.type == ActionType::kSendAct) {
            posted[{d, a.peer, false, a.microbatch, a.chunk + 1}]++;
          } else if (a.type == ActionType::kSendGrad) {
            posted[{d, a.peer, true, a.microbatch, a.chunk - 1}]++;
          } else if (a.type == ActionType::kOptimStep) {
            bool all = true;
            for (int o = 0; o < p; ++o) {
              const auto& l = s_.devices[o];
              all = all && pc[o] < static_cast<int>(l.size()) &&
                    l[pc[o]].type == ActionType::kOptimStep;
            }
            if (!all) break;
            for (int o = 0; o < p; ++o) pc[o]++;
            progress = true;
            continue;
          }
          pc[d]++;
          progress = true;
        }
      }
    }
    for (int d = 0; d < p; ++d) {
      if (pc[d] >= static_cast<int>(s_.devices[d].size())) continue;
      const Action& a = s_.devices[d][pc[d]];
      std::string why = a.type == ActionType::kOptimStep
                            ? "waits for the other devices to reach OPTIM_STEP"
                            : absl::StrCat("waits for device ", a.peer, " (stuck at action ",
                                           pc[a.peer >= 0 ? a.peer : d], ")");
      ActionError(d, pc[d], absl::StrCat("deadlock: ", why));
    }
  }

  const Schedule& s_;
  std::vector<ValidationError> errors_;
  std::vector<std::map<Key, Positions>> pos_;
  std::vector<int> optim_;
  std::map<std::pair<int, int>, std::vector<int>> allreduce_;
};

}  // namespace

std::string ValidationError::ToString() const {
  if (device < 0) return message;
  if (action < 0) return absl::StrCat("device ", device, ": ", message);
  return absl::StrCat("device ", device, ", action ", action, " ", message);
}

std::vector<ValidationError> FindScheduleErrors(const Schedule& s) { return Checker(s).Run(); }

absl::Status ValidateSchedule(const Schedule& s) {
  std::vector<ValidationError> errors = FindScheduleErrors(s);
  if (errors.empty()) return absl::OkStatus();
  std::vector<std::string> lines;
  for (const auto& e : errors) lines.push_back(e.ToString());
  return absl::InvalidArgumentError(absl::StrCat("invalid schedule: ", absl::StrJoin(lines, "; ")));
}

}  // namespace chronos

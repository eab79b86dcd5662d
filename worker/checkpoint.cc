// File layout: a 32-byte header, then the payload.
//   magic "CHRNCKPT" | u32 version | u32 reserved | u64 payload bytes |
//   u64 payload fingerprint
// The payload is torch::jit::pickle_save of one tuple (see Encode). The
// header lets Read tell a truncated or corrupt file (kDataLoss) from a
// missing one (kNotFound) before unpickling anything.
#include "worker/checkpoint.h"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <system_error>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "worker/input_fault.h"

namespace chronos::worker {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[8] = {'C', 'H', 'R', 'N', 'C', 'K', 'P', 'T'};
// Version 2 added param_order; version-1 files still restore onto their own
// partition.
constexpr uint32_t kVersion = 2;
constexpr uint32_t kOldestReadable = 1;

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t reserved;
  uint64_t payload_bytes;
  uint64_t fingerprint;
};
static_assert(sizeof(Header) == 32, "header layout");

// Detects corruption, not tampering: 8 bytes per multiply, so checking a
// multi-GB stage file costs less than reading it.
uint64_t Fingerprint(const char* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ULL ^ n;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * 0x100000001b3ULL;
    h ^= h >> 32;
  }
  for (; i < n; ++i) h = (h ^ static_cast<unsigned char>(p[i])) * 0x100000001b3ULL;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  return h ^ (h >> 33);
}

// Pickle saves a tensor's whole storage; a compact CPU copy keeps views of
// larger buffers from dragging the rest along.
at::Tensor Compact(const at::Tensor& t) {
  at::Tensor c = t.cpu().contiguous();
  if (c.storage().nbytes() != static_cast<size_t>(c.numel() * c.element_size()) ||
      c.storage_offset() != 0) {
    c = c.clone();
  }
  return c;
}

std::vector<char> Encode(const StageCheckpoint& ck) {
  c10::List<int64_t> layers;
  for (int l : ck.chunk_layers) layers.push_back(l);
  c10::List<std::string> names;
  c10::List<at::Tensor> params;
  for (const auto& [name, t] : ck.params) {
    names.push_back(name);
    params.push_back(Compact(t));
  }
  c10::List<at::Tensor> state;
  for (const at::Tensor& t : ck.optimizer_state) state.push_back(Compact(t));
  c10::List<std::string> order;
  for (const std::string& name : ck.param_order) order.push_back(name);
  auto tuple = c10::ivalue::Tuple::create(
      {c10::IValue(ck.iteration), c10::IValue(static_cast<int64_t>(ck.device)),
       c10::IValue(static_cast<int64_t>(ck.data_rank)),
       // IValue has no unsigned integers; the bits round-trip.
       c10::IValue(static_cast<int64_t>(ck.seed)), c10::IValue(ck.optimizer_step),
       c10::IValue(layers), c10::IValue(names), c10::IValue(params), c10::IValue(state),
       c10::IValue(order)});
  return torch::jit::pickle_save(c10::IValue(tuple));
}

StageCheckpoint Decode(const std::vector<char>& payload) {
  c10::IValue v = torch::jit::pickle_load(payload);
  const auto& e = v.toTupleRef().elements();
  TORCH_CHECK(e.size() == 9 || e.size() == 10, "expected 9 or 10 fields, found ", e.size());
  StageCheckpoint ck;
  ck.iteration = e[0].toInt();
  ck.device = static_cast<int>(e[1].toInt());
  ck.data_rank = static_cast<int>(e[2].toInt());
  ck.seed = static_cast<uint64_t>(e[3].toInt());
  ck.optimizer_step = e[4].toInt();
  for (int64_t l : e[5].toIntVector()) ck.chunk_layers.push_back(static_cast<int>(l));
  const c10::List<c10::IValue> names = e[6].toList();
  const std::vector<at::Tensor> params = e[7].toTensorVector();
  TORCH_CHECK(names.size() == params.size(), "names/params length mismatch");
  for (size_t i = 0; i < params.size(); ++i) {
    ck.params.emplace(names.get(i).toStringRef(), params[i]);
  }
  ck.optimizer_state = e[8].toTensorVector();
  if (e.size() > 9) {
    const c10::List<c10::IValue> order = e[9].toList();
    for (size_t i = 0; i < order.size(); ++i) {
      ck.param_order.push_back(order.get(i).toStringRef());
    }
  }
  return ck;
}

absl::Status IoError(const std::string& what, const std::string& path) {
  const int err = errno;
  std::string msg = absl::StrCat(what, " ", path, ": ", std::strerror(err));
  if (err == ENOSPC || err == EDQUOT) {
    return AsStorageFault(absl::ResourceExhaustedError(
        absl::StrCat(msg,
                     " (training.checkpoint_dir is out of space; the previous checkpoint "
                     "stays usable)")));
  }
  return absl::UnavailableError(msg);
}

absl::Status WriteAll(int fd, const char* p, size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return IoError("cannot write", path);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return absl::OkStatus();
}

// Reads until `n` bytes or end of file; returns the count read.
absl::StatusOr<size_t> ReadUpTo(int fd, char* p, size_t n, const std::string& path) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::read(fd, p + done, n - done);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return IoError("cannot read", path);
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  return done;
}

// Makes a rename durable: the directory entry lives in the directory.
absl::Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open directory", dir);
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return IoError("cannot fsync directory", dir);
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const std::string& path, const Header& header,
                                 const std::vector<char>& payload) {
  const std::string tmp = absl::StrCat(path, ".tmp.", ::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("cannot create", tmp);
  absl::Status s = WriteAll(fd, reinterpret_cast<const char*>(&header), sizeof(header), tmp);
  if (s.ok()) s = WriteAll(fd, payload.data(), payload.size(), tmp);
  if (s.ok() && ::fsync(fd) != 0) s = IoError("cannot fsync", tmp);
  if (::close(fd) != 0 && s.ok()) s = IoError("cannot close", tmp);
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    s = IoError("cannot rename to", path);
  }
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  // The file's entry lives in iter-<N>/, whose own entry may be new too.
  const fs::path iter_dir = fs::path(path).parent_path();
  CHRONOS_RETURN_IF_ERROR(SyncDir(iter_dir.string()));
  return SyncDir(iter_dir.parent_path().string());
}

std::string IterDir(const std::string& dir, int64_t iteration) {
  return absl::StrCat(dir, "/iter-", iteration);
}

}  // namespace

std::string StageCheckpointPath(const std::string& dir, int64_t iteration, int device,
                                int data_rank) {
  return absl::StrCat(IterDir(dir, iteration), "/stage-", device, "-dp", data_rank, ".ckpt");
}

absl::Status WriteStageCheckpoint(const std::string& dir, const StageCheckpoint& ckpt) {
  const std::string path = StageCheckpointPath(dir, ckpt.iteration, ckpt.device, ckpt.data_rank);
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot create checkpoint directory for ", path, ": ", ec.message()));
  }
  std::vector<char> payload;
  try {
    payload = Encode(ckpt);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("cannot serialize checkpoint ", path, ": ", e.what()));
  }
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof(kMagic));
  h.version = kVersion;
  h.payload_bytes = payload.size();
  h.fingerprint = Fingerprint(payload.data(), payload.size());
  return WriteFileAtomically(path, h, payload);
}

absl::StatusOr<StageCheckpoint> ReadStageCheckpoint(const std::string& dir, int64_t iteration,
                                                    int device, int data_rank) {
  const std::string path = StageCheckpointPath(dir, iteration, device, data_rank);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(absl::StrCat("no checkpoint at ", path));
    }
    return IoError("cannot open", path);
  }
  auto corrupt = [&](const std::string& why) {
    return absl::DataLossError(absl::StrCat("checkpoint ", path, ": ", why));
  };
  // Header first, so a damaged file is rejected before a payload-sized
  // allocation; the payload is then read straight into its final buffer.
  Header h;
  std::vector<char> payload;
  absl::StatusOr<size_t> got = ReadUpTo(fd, reinterpret_cast<char*>(&h), sizeof(h), path);
  absl::Status s = got.status();
  if (s.ok() && *got < sizeof(h)) {
    s = corrupt(absl::StrCat("truncated: ", *got, " bytes, shorter than the header"));
  } else if (s.ok() && std::memcmp(h.magic, kMagic, sizeof(kMagic)) != 0) {
    s = corrupt("not a Chronos checkpoint (bad magic)");
  } else if (s.ok() && (h.version < kOldestReadable || h.version > kVersion)) {
    s = corrupt(absl::StrCat("unsupported version ", h.version, " (this build reads ",
                             kOldestReadable, " to ", kVersion, ")"));
  }
  struct stat st;
  if (s.ok() && ::fstat(fd, &st) != 0) s = IoError("cannot stat", path);
  if (s.ok() && static_cast<uint64_t>(st.st_size) - sizeof(h) != h.payload_bytes) {
    s = corrupt(absl::StrCat("truncated or padded: payload is ", st.st_size - sizeof(h),
                             " bytes, header says ", h.payload_bytes));
  }
  if (s.ok()) {
    payload.resize(h.payload_bytes);
    got = ReadUpTo(fd, payload.data(), payload.size(), path);
    s = got.status();
    if (s.ok() && *got != payload.size()) s = corrupt("shrank while reading");
  }
  ::close(fd);
  if (!s.ok()) return s;
  if (Fingerprint(payload.data(), payload.size()) != h.fingerprint) {
    return corrupt("checksum mismatch");
  }
  StageCheckpoint ck;
  try {
    ck = Decode(payload);
  } catch (const c10::Error& e) {
    return corrupt(absl::StrCat("cannot decode: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return corrupt(absl::StrCat("cannot decode: ", e.what()));
  }
  if (ck.iteration != iteration || ck.device != device || ck.data_rank != data_rank) {
    return corrupt(
        absl::StrCat("holds iteration ", ck.iteration, " device ", ck.device, " dp", ck.data_rank));
  }
  return ck;
}

int64_t LatestCompleteCheckpoint(const std::string& dir, int num_devices, int data_parallel) {
  std::error_code ec;
  int64_t latest = 0;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    int64_t iteration;
    if (!absl::StartsWith(name, "iter-") || !absl::SimpleAtoi(name.substr(5), &iteration) ||
        iteration <= latest) {
      continue;
    }
    // Only renamed (hence complete) files have the final name; a leftover
    // "<path>.tmp.<pid>" from a crashed writer does not count.
    bool complete = true;
    for (int r = 0; r < data_parallel && complete; ++r) {
      for (int d = 0; d < num_devices && complete; ++d) {
        std::error_code fe;
        complete = fs::is_regular_file(StageCheckpointPath(dir, iteration, d, r), fe);
      }
    }
    if (complete) latest = iteration;
  }
  return latest;
}

void PruneStageCheckpoints(const std::string& dir, int device, int data_rank, int keep) {
  std::error_code ec;
  const std::string own = absl::StrCat("stage-", device, "-dp", data_rank, ".ckpt");
  std::vector<int64_t> mine;
  std::vector<fs::path> iter_dirs;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    int64_t iteration;
    if (!absl::StartsWith(name, "iter-") || !absl::SimpleAtoi(name.substr(5), &iteration)) {
      continue;
    }
    iter_dirs.push_back(it->path());
    std::error_code fe;
    for (fs::directory_iterator f(it->path(), fe), fend; !fe && f != fend; f.increment(fe)) {
      const std::string file = f->path().filename().string();
      if (absl::StartsWith(file, own + ".tmp.")) {
        std::error_code re;
        fs::remove(f->path(), re);
      } else if (file == own) {
        mine.push_back(iteration);
      }
    }
  }
  std::sort(mine.begin(), mine.end(), std::greater<>());
  for (size_t i = static_cast<size_t>(std::max(keep, 1)); i < mine.size(); ++i) {
    std::error_code re;
    fs::remove(StageCheckpointPath(dir, mine[i], device, data_rank), re);
  }
  for (const fs::path& d : iter_dirs) {
    std::error_code re;
    if (fs::is_empty(d, re) && !re) fs::remove(d, re);
  }
}

}  // namespace chronos::worker

#include "worker/daemon/grpc_kv_store.h"

#include <grpcpp/client_context.h>

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "rpc/auth.h"
#include "rpc/status_convert.h"

namespace chronos::worker {
namespace {

// Pause between retries of an UNAVAILABLE call; the coordinator restarts in
// about a second.
constexpr absl::Duration kRetryPause = absl::Milliseconds(250);
// Longest single StoreGet wait (the server caps waits at 10 minutes).
constexpr absl::Duration kMaxWaitSlice = absl::Minutes(1);

// Runs `call(ctx)` with the token and a deadline until it succeeds, fails
// with something other than UNAVAILABLE, or `until` passes.
template <typename Call>
absl::Status WithRetry(const std::string& token, absl::Duration per_call, absl::Time until,
                       Call&& call) {
  while (true) {
    grpc::ClientContext ctx;
    rpc::AddBearerToken(token, &ctx);
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + per_call));
    absl::Status s = rpc::FromGrpcStatus(call(&ctx));
    if (!absl::IsUnavailable(s) || absl::Now() + kRetryPause >= until) return s;
    absl::SleepFor(kRetryPause);
  }
}

}  // namespace

GrpcKeyValueStore::GrpcKeyValueStore(v1::WorkerService::Stub* stub, std::string token,
                                     absl::Duration rpc_timeout)
    : stub_(stub), token_(std::move(token)), rpc_timeout_(rpc_timeout) {}

absl::Status GrpcKeyValueStore::Set(const std::string& key, const std::string& value) {
  v1::StoreSetRequest req;
  req.set_key(key);
  req.set_value(value);
  v1::StoreSetResponse resp;
  return WithRetry(token_, rpc_timeout_, absl::Now() + rpc_timeout_ * 3,
                   [&](grpc::ClientContext* ctx) { return stub_->StoreSet(ctx, req, &resp); });
}

absl::StatusOr<std::string> GrpcKeyValueStore::Get(const std::string& key, absl::Duration timeout) {
  const absl::Time until =
      timeout == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + timeout;
  while (true) {
    const absl::Duration left = until - absl::Now();
    const absl::Duration slice = std::max(absl::ZeroDuration(), std::min(left, kMaxWaitSlice));
    v1::StoreGetRequest req;
    req.set_key(key);
    req.set_timeout_ms(std::max<int64_t>(1, absl::ToInt64Milliseconds(slice)));
    v1::StoreGetResponse resp;
    absl::Status s = WithRetry(token_, slice + rpc_timeout_, until, [&](grpc::ClientContext* ctx) {
      return stub_->StoreGet(ctx, req, &resp);
    });
    if (s.ok()) return std::move(*resp.mutable_value());
    const bool waited_out = absl::IsDeadlineExceeded(s) || absl::IsNotFound(s);
    if (!waited_out) return s;
    if (absl::Now() >= until) {
      return absl::DeadlineExceededError(absl::StrCat(
          "rendezvous key '", key, "' did not appear within ", absl::FormatDuration(timeout)));
    }
  }
}

absl::StatusOr<int64_t> GrpcKeyValueStore::Add(const std::string& key, int64_t delta) {
  v1::StoreAddRequest req;
  req.set_key(key);
  req.set_delta(delta);
  v1::StoreAddResponse resp;
  // Not retried blindly: an Add that reached the server before the
  // connection broke would count twice. One attempt, then the caller's
  // rendezvous fails and the coordinator restarts the attempt.
  grpc::ClientContext ctx;
  rpc::AddBearerToken(token_, &ctx);
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + rpc_timeout_));
  absl::Status s = rpc::FromGrpcStatus(stub_->StoreAdd(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp.value();
}

absl::StatusOr<bool> GrpcKeyValueStore::Check(const std::vector<std::string>& keys) {
  v1::StoreCheckRequest req;
  for (const std::string& k : keys) req.add_keys(k);
  v1::StoreCheckResponse resp;
  absl::Status s =
      WithRetry(token_, rpc_timeout_, absl::Now() + rpc_timeout_ * 3,
                [&](grpc::ClientContext* ctx) { return stub_->StoreCheck(ctx, req, &resp); });
  if (!s.ok()) return s;
  return resp.ready();
}

absl::StatusOr<bool> GrpcKeyValueStore::Delete(const std::string& key) {
  v1::StoreDeleteRequest req;
  req.set_key(key);
  v1::StoreDeleteResponse resp;
  absl::Status s =
      WithRetry(token_, rpc_timeout_, absl::Now() + rpc_timeout_ * 3,
                [&](grpc::ClientContext* ctx) { return stub_->StoreDelete(ctx, req, &resp); });
  if (!s.ok()) return s;
  return resp.deleted();
}

}  // namespace chronos::worker

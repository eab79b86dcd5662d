#include "rpc/auth.h"

#include <grpc/grpc.h>

#include <utility>

#include "absl/strings/match.h"

namespace chronos::rpc {
namespace {

// Metadata key the interceptor adds to a rejected call's client metadata.
// A client sending it itself can only get itself rejected.
constexpr char kRejectedKey[] = "x-chronos-auth-rejected";
constexpr char kRejectedValue[] = "1";
constexpr char kBearerPrefix[] = "Bearer ";
constexpr char kRejectMessage[] =
    "missing or invalid bearer token: send metadata 'authorization: Bearer "
    "<token>' with the coordinator's token";

class TokenAuthInterceptor : public grpc::experimental::Interceptor {
 public:
  TokenAuthInterceptor(grpc::experimental::ServerRpcInfo* info, const std::string* token)
      : info_(info), token_(token) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      auto* metadata = methods->GetRecvInitialMetadata();
      if (metadata != nullptr) Check(metadata);
    }
    if (rejected_ && methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      // The handler already answers UNAUTHENTICATED; this keeps the answer
      // right even for a handler that forgot to call CallRejected.
      methods->ModifySendStatus(UnauthenticatedStatus());
    }
    methods->Proceed();
  }

 private:
  void Check(std::multimap<grpc::string_ref, grpc::string_ref>* metadata) {
    const absl::string_view method = info_->method() != nullptr ? info_->method() : "";
    int headers = 0;
    bool valid = false;
    for (auto it = metadata->begin(); it != metadata->end();) {
      const absl::string_view key(it->first.data(), it->first.size());
      if (key != kAuthorizationHeader) {
        ++it;
        continue;
      }
      const absl::string_view value(it->second.data(), it->second.size());
      ++headers;
      valid = absl::StartsWith(value, kBearerPrefix) &&
              TokensEqual(value.substr(sizeof(kBearerPrefix) - 1), *token_);
      // Handlers never see the token, so they cannot log it by accident.
      it = metadata->erase(it);
    }
    // Exactly one authorization header: a second one is ambiguous.
    if (IsAuthExempt(method) || (headers == 1 && valid)) return;
    rejected_ = true;
    metadata->emplace(grpc::string_ref(kRejectedKey), grpc::string_ref(kRejectedValue));
    // The client sees UNAUTHENTICATED at once, whatever the handler does.
    grpc_call_cancel_with_status(info_->server_context()->c_call(), GRPC_STATUS_UNAUTHENTICATED,
                                 kRejectMessage, nullptr);
  }

  grpc::experimental::ServerRpcInfo* info_;
  const std::string* token_;
  bool rejected_ = false;
};

class TokenAuthInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit TokenAuthInterceptorFactory(std::string token) : token_(std::move(token)) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new TokenAuthInterceptor(info, &token_);
  }

 private:
  const std::string token_;
};

}  // namespace

bool TokensEqual(absl::string_view presented, absl::string_view expected) {
  // Compare every byte of `expected` whatever the input, and fold the length
  // difference in, so neither early exit nor length leaks timing.
  volatile unsigned char diff = presented.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    const unsigned char p = i < presented.size() ? static_cast<unsigned char>(presented[i]) : 0;
    diff = diff | (p ^ static_cast<unsigned char>(expected[i]));
  }
  return diff == 0 && !expected.empty();
}

bool IsAuthExempt(absl::string_view method) {
  return absl::StartsWith(method, "/grpc.health.v1.Health/") ||
         absl::StartsWith(method, "/grpc.reflection.v1alpha.ServerReflection/") ||
         absl::StartsWith(method, "/grpc.reflection.v1.ServerReflection/");
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeTokenAuthInterceptorFactory(std::string token) {
  return std::make_unique<TokenAuthInterceptorFactory>(std::move(token));
}

bool CallRejected(const grpc::ServerContextBase& context) {
  const auto& metadata = context.client_metadata();
  return metadata.find(grpc::string_ref(kRejectedKey)) != metadata.end();
}

grpc::Status UnauthenticatedStatus() {
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, kRejectMessage);
}

void AddBearerToken(const std::string& token, grpc::ClientContext* context) {
  if (token.empty()) return;
  context->AddMetadata(kAuthorizationHeader, kBearerPrefix + token);
}

}  // namespace chronos::rpc

// With a token, every ControlService and WorkerService method refuses calls
// without it or with a wrong one (UNAUTHENTICATED) and does no work for
// them; health checks need no token.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <string>

#include "rpc/health_client.h"
#include "tests/coordinator/coordinator_harness.h"

namespace chronos::coordinator::testing {
namespace {

constexpr char kToken[] = "correct-horse-battery-staple";

using Call = std::function<grpc::StatusCode(grpc::ClientContext*)>;

template <typename Stub, typename Req, typename Resp>
Call Unary(Stub* stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
           Req req = Req()) {
  return [=](grpc::ClientContext* ctx) {
    Resp resp;
    return (stub->*method)(ctx, req, &resp).error_code();
  };
}

template <typename Stub, typename Req, typename Resp>
Call Stream(Stub* stub,
            std::unique_ptr<grpc::ClientReader<Resp>> (Stub::*method)(grpc::ClientContext*,
                                                                      const Req&),
            Req req = Req()) {
  return [=](grpc::ClientContext* ctx) {
    auto reader = (stub->*method)(ctx, req);
    Resp resp;
    while (reader->Read(&resp)) {
    }
    return reader->Finish().error_code();
  };
}

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Harness::Config config;
    config.token = kToken;
    h_ = std::make_unique<Harness>(config);
    ASSERT_TRUE(h_->Start().ok());
    worker_ = v1::WorkerService::NewStub(h_->channel());
    v1::ControlService::Stub* c = h_->control();
    v1::WorkerService::Stub* w = worker_.get();
    v1::SubmitJobRequest submit;
    *submit.mutable_spec() = TinySpec("sneaky");
    v1::WatchJobRequest watch;
    watch.set_name("sneaky");
    calls_ = {
        {"SubmitJob", Unary(c, &v1::ControlService::Stub::SubmitJob, submit)},
        {"GetJob", Unary(c, &v1::ControlService::Stub::GetJob)},
        {"ListJobs", Unary(c, &v1::ControlService::Stub::ListJobs)},
        {"CancelJob", Unary(c, &v1::ControlService::Stub::CancelJob)},
        {"DeleteJob", Unary(c, &v1::ControlService::Stub::DeleteJob)},
        {"WatchJob", Stream(c, &v1::ControlService::Stub::WatchJob, watch)},
        {"UpdatePolicy", Unary(c, &v1::ControlService::Stub::UpdatePolicy)},
        {"PlanJob", Unary(c, &v1::ControlService::Stub::PlanJob)},
        {"GetSchedule", Unary(c, &v1::ControlService::Stub::GetSchedule)},
        {"ListWorkers", Unary(c, &v1::ControlService::Stub::ListWorkers)},
        {"Register", Unary(w, &v1::WorkerService::Stub::Register)},
        {"Heartbeat", Unary(w, &v1::WorkerService::Stub::Heartbeat)},
        {"Attach", Stream(w, &v1::WorkerService::Stub::Attach)},
        {"ReportProgress", Unary(w, &v1::WorkerService::Stub::ReportProgress)},
        {"ReportFault", Unary(w, &v1::WorkerService::Stub::ReportFault)},
        {"StoreSet", Unary(w, &v1::WorkerService::Stub::StoreSet)},
        {"StoreGet", Unary(w, &v1::WorkerService::Stub::StoreGet)},
        {"StoreAdd", Unary(w, &v1::WorkerService::Stub::StoreAdd)},
        {"StoreCheck", Unary(w, &v1::WorkerService::Stub::StoreCheck)},
        {"StoreDelete", Unary(w, &v1::WorkerService::Stub::StoreDelete)},
    };
  }

  grpc::StatusCode Invoke(const std::string& name, const std::string& auth_value) {
    grpc::ClientContext ctx;
    if (!auth_value.empty()) ctx.AddMetadata("authorization", auth_value);
    SetDeadline(&ctx);
    return calls_.at(name)(&ctx);
  }

  std::unique_ptr<Harness> h_;
  std::unique_ptr<v1::WorkerService::Stub> worker_;
  std::map<std::string, Call> calls_;
};

TEST_F(AuthTest, EveryMethodIsCovered) {
  // A method added to a service must be added to this test too.
  size_t methods = 0;
  for (const char* service : {"chronos.v1.ControlService", "chronos.v1.WorkerService"}) {
    const auto* d = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
    ASSERT_NE(d, nullptr);
    for (int i = 0; i < d->method_count(); ++i) {
      EXPECT_TRUE(calls_.count(d->method(i)->name())) << d->method(i)->name();
      ++methods;
    }
  }
  EXPECT_EQ(methods, calls_.size());
}

TEST_F(AuthTest, MissingOrWrongTokenIsUnauthenticatedEverywhere) {
  for (const auto& [name, call] : calls_) {
    EXPECT_EQ(Invoke(name, ""), grpc::StatusCode::UNAUTHENTICATED) << name;
    EXPECT_EQ(Invoke(name, "Bearer wrong-token"), grpc::StatusCode::UNAUTHENTICATED) << name;
    EXPECT_EQ(Invoke(name, std::string(kToken)), grpc::StatusCode::UNAUTHENTICATED)
        << name << " (no Bearer prefix)";
    EXPECT_EQ(Invoke(name, absl::StrCat("Bearer ", kToken, "x")), grpc::StatusCode::UNAUTHENTICATED)
        << name;
  }
  // The refused SubmitJob did nothing.
  EXPECT_EQ(h_->Get("sneaky").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(AuthTest, TheRightTokenPasses) {
  for (const auto& [name, call] : calls_) {
    if (name == "Attach" || name == "WatchJob" || name == "StoreGet") continue;
    EXPECT_NE(Invoke(name, absl::StrCat("Bearer ", kToken)), grpc::StatusCode::UNAUTHENTICATED)
        << name;
  }
  EXPECT_EQ(Invoke("ListJobs", absl::StrCat("Bearer ", kToken)), grpc::StatusCode::OK);
  EXPECT_TRUE(h_->Submit(TinySpec("legit")).ok());
}

TEST_F(AuthTest, HealthNeedsNoToken) {
  absl::StatusOr<rpc::ServingStatus> status =
      rpc::CheckHealth(h_->channel(), "", absl::Seconds(10));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, ::grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST_F(AuthTest, RejectionsAreCountedInMetrics) {
  Invoke("ListJobs", "");
  // The client hears UNAUTHENTICATED as soon as the interceptor cancels the
  // call; the server counts it when the handler's status goes out, which
  // may be a moment later. Wait for that, boundedly.
  const std::string expected =
      "chronos_coordinator_rpc_requests_total{code=\"UNAUTHENTICATED\","
      "method=\"ListJobs\"} 1";
  const absl::Time deadline = absl::Now() + kWait;
  std::string rendered = h_->coordinator()->metrics()->Render();
  while (rendered.find(expected) == std::string::npos && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
    rendered = h_->coordinator()->metrics()->Render();
  }
  EXPECT_NE(rendered.find(expected), std::string::npos) << rendered;
}

}  // namespace
}  // namespace chronos::coordinator::testing

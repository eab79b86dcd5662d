// Cluster commands: workers (the registry), health (grpc.health.v1 Check,
// for probes and scripts) and version.
#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "client/exit_codes.h"
#include "client/worker_view.h"
#include "google/protobuf/stubs/common.h"
#include "rpc/health_client.h"

#ifndef CHRONOS_VERSION
#define CHRONOS_VERSION "0.0.0-dev"
#endif

namespace chronos::client {
namespace {

void AddWorkers(CLI::App& app, std::vector<Command>* commands) {
  CLI::App* cmd = app.add_subcommand("workers", "List the workers registered with the coordinator");
  commands->push_back({cmd, [](CommandContext& ctx) -> int {
                         CHRONOSCTL_ASSIGN_OR_FAIL(ctx, OutputFormat format, ctx.Output());
                         CHRONOSCTL_ASSIGN_OR_FAIL(ctx, ControlClient * client, ctx.Control());
                         const v1::ListWorkersRequest req;
                         v1::ListWorkersResponse resp;
                         if (absl::Status s = client->Call(&Stub::ListWorkers, req, &resp);
                             !s.ok()) {
                           return ctx.Fail(s);
                         }
                         if (resp.workers().empty() && !IsStructured(format)) {
                           ctx.err() << "No workers registered.\n";
                           return kExitOk;
                         }
                         PrintWorkers(ctx.out(), resp, format, ctx.Now());
                         return kExitOk;
                       }});
}

void AddHealth(CLI::App& app, std::vector<Command>* commands) {
  auto service = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "health", "Check the server's gRPC health (exit 0 when SERVING, 1 when not)");
  cmd->add_option("--service", *service, "Service to check (default: the whole server)");
  commands->push_back(
      {cmd, [service](CommandContext& ctx) -> int {
         CHRONOSCTL_ASSIGN_OR_FAIL(ctx, OutputFormat format, ctx.Output());
         CHRONOSCTL_ASSIGN_OR_FAIL(ctx, ControlClient * client, ctx.Control());
         const Connection& conn = client->connection();
         const absl::Duration timeout =
             conn.request_timeout > absl::ZeroDuration() ? conn.request_timeout : absl::Seconds(10);
         absl::StatusOr<rpc::ServingStatus> status =
             rpc::CheckHealth(client->channel(), *service, timeout);
         if (!status.ok()) {
           return ctx.Fail(
               client->Convert(grpc::Status(static_cast<grpc::StatusCode>(status.status().code()),
                                            std::string(status.status().message()))));
         }
         const std::string name = rpc::ServingStatusName(*status);
         if (IsStructured(format)) {
           PrintJson(ctx.out(), {{"server", conn.server}, {"service", *service}, {"status", name}},
                     format);
         } else {
           ctx.out() << name << "\n";
         }
         return *status == grpc::health::v1::HealthCheckResponse::SERVING ? kExitOk
                                                                          : kExitJobFailed;
       }});
}

void AddVersion(CLI::App& app, std::vector<Command>* commands) {
  CLI::App* cmd = app.add_subcommand("version", "Print chronosctl's version");
  commands->push_back({cmd, [](CommandContext& ctx) -> int {
                         CHRONOSCTL_ASSIGN_OR_FAIL(ctx, OutputFormat format, ctx.Output());
                         const std::string protobuf =
                             google::protobuf::internal::VersionString(GOOGLE_PROTOBUF_VERSION);
                         if (IsStructured(format)) {
                           PrintJson(ctx.out(),
                                     {{"client",
                                       {{"version", CHRONOS_VERSION},
                                        {"grpc", grpc::Version()},
                                        {"protobuf", protobuf}}}},
                                     format);
                         } else {
                           ctx.out() << "chronosctl " << CHRONOS_VERSION << " (gRPC "
                                     << grpc::Version() << ", Protobuf " << protobuf << ")\n";
                         }
                         return kExitOk;
                       }});
}

}  // namespace

void AddClusterCommands(CLI::App& app, std::vector<Command>* commands) {
  AddWorkers(app, commands);
  AddHealth(app, commands);
  AddVersion(app, commands);
}

}  // namespace chronos::client

// Size and keepalive limits every Chronos gRPC server applies, in one place
// so the coordinator and the worker's health server agree with the clients
// (core/rpc/credentials.h ChannelOptions) on them.
#ifndef CHRONOS_CORE_RPC_LIMITS_H_
#define CHRONOS_CORE_RPC_LIMITS_H_

#include <grpcpp/server_builder.h>

#include <cstdint>

namespace chronos::rpc {

// Largest request a server accepts. Schedules for big pipelines and KV
// values (transport bootstrap blobs) fit comfortably; gRPC's 4 MiB default
// does not leave room for p = 64 schedules with every action listed.
inline constexpr int kMaxReceiveMessageBytes = 64 << 20;
// Largest serialized JobSpec SubmitJob/PlanJob accept: a spec is a page of
// YAML (same bound as core/job_spec.h kMaxJobSpecFileBytes).
inline constexpr int64_t kMaxJobSpecBytes = 1 << 20;
// Rendezvous store bounds.
inline constexpr int64_t kMaxStoreKeyBytes = 1024;
inline constexpr int64_t kMaxStoreValueBytes = 4 << 20;

// Message size limits, and keepalive pings accepted from clients every 5 s
// or more (clients ping every 10 s) even without active calls, so that a
// worker's idle Attach stream keeps its connection alive through NATs; and
// no SO_REUSEPORT, so no second process can share the listening port.
void ApplyServerLimits(grpc::ServerBuilder* builder);

}  // namespace chronos::rpc

#endif  // CHRONOS_CORE_RPC_LIMITS_H_

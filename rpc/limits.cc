#include "rpc/limits.h"

#include <grpc/grpc.h>

namespace chronos::rpc {

void ApplyServerLimits(grpc::ServerBuilder* builder) {
  builder->SetMaxReceiveMessageSize(kMaxReceiveMessageBytes);
  builder->SetMaxSendMessageSize(kMaxReceiveMessageBytes);
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Detect dead clients (a worker whose host vanished) within ~30 s even
  // when no heartbeat would arrive on this connection.
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  // gRPC sets SO_REUSEPORT by default: a second daemon could then bind the
  // same address and the kernel would split new connections (and the
  // bearer tokens they carry) between the two. One port, one process: the
  // second one fails to start, naming the address.
  builder->AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
}

}  // namespace chronos::rpc

// Adapts a KeyValueStore (the coordinator's, over gRPC, or an in-memory one)
// to c10d::Store, so ProcessGroupGloo can rendezvous through it.
//
// Only the factory is declared here: c10d's Store.hpp pulls in the TorchScript
// custom-class machinery, which we keep out of headers. Callers that hold the
// returned pointer include <torch/csrc/distributed/c10d/Store.hpp> themselves.
#ifndef CHRONOS_WORKER_COMM_KV_C10D_STORE_H_
#define CHRONOS_WORKER_COMM_KV_C10D_STORE_H_

#include <c10/util/intrusive_ptr.h>

#include <memory>

#include "absl/time/time.h"
#include "worker/comm/kv_store.h"

namespace c10d {
class Store;
}  // namespace c10d

namespace chronos::worker {

// The store's errors surface as c10::Error exceptions, as c10d expects (the
// GlooCommunicator factory catches them). `timeout` bounds get() and wait()
// without an explicit timeout. compareSet and watchKey are not supported:
// ProcessGroupGloo does not use them.
c10::intrusive_ptr<c10d::Store> NewKvC10dStore(std::shared_ptr<KeyValueStore> kv,
                                               absl::Duration timeout);

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_COMM_KV_C10D_STORE_H_

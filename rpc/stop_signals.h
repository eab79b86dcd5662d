// SIGTERM/SIGINT handling shared by the daemons: block the stop signals in
// every thread before any is started (threads inherit the mask), so that
// only the main thread's Wait() sees them and shutdown runs in a normal
// context instead of a signal handler.
#ifndef CHRONOS_CORE_RPC_STOP_SIGNALS_H_
#define CHRONOS_CORE_RPC_STOP_SIGNALS_H_

#include <csignal>

namespace chronos::rpc {

class StopSignals {
 public:
  // Call first thing in main(), before any thread exists.
  static StopSignals Block();
  // Blocks until SIGTERM or SIGINT arrives; returns the signal number.
  int Wait() const;
  // Sends this process SIGTERM, which wakes Wait() (every thread blocks it,
  // so the waiting one takes it): how a thread asks main() to shut down.
  static void RequestStop();

 private:
  sigset_t set_;
};

}  // namespace chronos::rpc

#endif  // CHRONOS_CORE_RPC_STOP_SIGNALS_H_

#include "rpc/stop_signals.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

namespace chronos::rpc {

StopSignals StopSignals::Block() {
  StopSignals s;
  sigemptyset(&s.set_);
  sigaddset(&s.set_, SIGTERM);
  sigaddset(&s.set_, SIGINT);
  pthread_sigmask(SIG_BLOCK, &s.set_, nullptr);
  return s;
}

void StopSignals::RequestStop() { kill(getpid(), SIGTERM); }

int StopSignals::Wait() const {
  int signal = 0;
  sigwait(&set_, &signal);
  return signal;
}

}  // namespace chronos::rpc

// chronosctl: the Chronos command-line client. Everything happens in
// RunChronosctl (client/cli.h) so that tests can run commands in-process.
#include <unistd.h>

#include <iostream>

#include "client/cli.h"

int main(int argc, char** argv) {
  chronos::client::RunOptions options;
  options.out_is_tty = isatty(STDOUT_FILENO) == 1;
  options.err_is_tty = isatty(STDERR_FILENO) == 1;
  std::vector<std::string> args(argv, argv + argc);
  return chronos::client::RunChronosctl(args, std::cout, std::cerr, options);
}

// Where chronosctl finds its coordinator and credentials. Precedence, as
// kubectl users expect: command-line flag, then environment variable, then
// the selected context of the config file, then the built-in default.
//
//   server : --server,     CHRONOS_SERVER,  context.server, 127.0.0.1:7070
//   token  : --token-file, CHRONOS_TOKEN (the token itself), context.token-file
//   TLS CA : --tls-ca,     CHRONOS_TLS_CA,  context.tls-ca
//   context: --context,    CHRONOS_CONTEXT, current-context
//   file   : $CHRONOS_CONFIG, else $XDG_CONFIG_HOME/chronos/config.yaml,
//            else $HOME/.config/chronos/config.yaml
//
// The environment is passed in as a lookup function so that tests (and the
// in-process dispatcher) never depend on the real process environment.
// Functions here read files (config, token, CA) but keep no state.
#ifndef CHRONOS_CLIENT_CONFIG_H_
#define CHRONOS_CLIENT_CONFIG_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace chronos::client {

inline constexpr char kDefaultServer[] = "127.0.0.1:7070";

// Returns the variable's value, or nullopt when it is unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// getenv-backed lookup for main().
EnvLookup ProcessEnv();

// The global flags as given on the command line ("" = not given).
struct ConnectionFlags {
  std::string server;
  std::string token_file;
  std::string tls_ca;
  bool tls = false;  // TLS with the system's roots when no CA is given
  std::string context;
  std::string request_timeout = "10s";
};

struct ConfigContext {
  std::string name;
  std::string server;
  std::string token_file;  // absolute, or relative to the config file's folder
  std::string tls_ca;
};

struct ConfigFile {
  std::string path;
  std::string current_context;
  std::vector<ConfigContext> contexts;
};

// Parses the config file format (docs/cli.md). Relative token-file and
// tls-ca paths are resolved against the folder of `path`; "~/" is expanded
// with `home`. kInvalidArgument naming the file and the key on bad input.
absl::StatusOr<ConfigFile> ParseConfigFile(const std::string& text, const std::string& path,
                                           const std::string& home);

// The config file to use: nullopt when none is configured and the default
// path does not exist. kNotFound when $CHRONOS_CONFIG names a missing file.
absl::StatusOr<std::optional<ConfigFile>> LoadConfigFile(const EnvLookup& env);

// Everything needed to open a channel and make calls.
struct Connection {
  std::string server;
  std::string server_source;  // "--server", "CHRONOS_SERVER", "context prod", "default"
  std::string token;          // "" = send no authorization header
  bool tls = false;           // implied by a non-empty tls_ca_file
  std::string tls_ca_file;    // PEM roots (checked readable); "" with tls = system roots
  absl::Duration request_timeout = absl::Seconds(10);  // ZeroDuration = none
};

// Applies the precedence above and reads the token file. Usage errors name
// the flag ("--request-timeout: ..."); file errors name the file, never the
// token.
absl::StatusOr<Connection> ResolveConnection(const ConnectionFlags& flags, const EnvLookup& env);

// "10s", "1m30s", "500ms", a bare number of seconds, or "0" for none. A
// UsageError naming `flag` otherwise.
absl::StatusOr<absl::Duration> ParseDurationFlag(const std::string& flag, const std::string& text);
inline absl::StatusOr<absl::Duration> ParseRequestTimeout(const std::string& text) {
  return ParseDurationFlag("--request-timeout", text);
}

}  // namespace chronos::client

#endif  // CHRONOS_CLIENT_CONFIG_H_

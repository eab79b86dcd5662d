#include "client/config.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/exit_codes.h"
#include "core/status_macros.h"
#include "rpc/credentials.h"
#include "yaml-cpp/yaml.h"

namespace chronos::client {
namespace {

std::string Dirname(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// "~/x" → home + "/x"; relative → relative to `base_dir`; "" stays "".
std::string ResolvePath(const std::string& p, const std::string& base_dir,
                        const std::string& home) {
  if (p.empty() || p[0] == '/') return p;
  if (p == "~") return home;
  if (p.rfind("~/", 0) == 0) return absl::StrCat(home, p.substr(1));
  return absl::StrCat(base_dir, "/", p);
}

std::optional<std::string> NonEmpty(const EnvLookup& env, const char* name) {
  std::optional<std::string> v = env(name);
  if (v.has_value() && v->empty()) return std::nullopt;
  return v;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

absl::StatusOr<ConfigFile> ParseConfigFile(const std::string& text, const std::string& path,
                                           const std::string& home) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("config file ", path, ": ", e.what()));
  }
  ConfigFile config;
  config.path = path;
  if (root.IsNull()) return config;  // an empty file is a valid, empty config
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config file ", path, ": expected a mapping at the top level"));
  }
  const std::string dir = Dirname(path);
  try {
    for (const auto& kv : root) {
      const std::string key = kv.first.as<std::string>();
      if (key == "current-context") {
        config.current_context = kv.second.as<std::string>();
      } else if (key == "contexts") {
        if (!kv.second.IsSequence()) {
          return absl::InvalidArgumentError(
              absl::StrCat("config file ", path, ": contexts must be a list"));
        }
        for (size_t i = 0; i < kv.second.size(); ++i) {
          const YAML::Node& node = kv.second[i];
          const std::string where = absl::StrCat("config file ", path, ": contexts[", i, "]");
          if (!node.IsMap()) return absl::InvalidArgumentError(where + " must be a mapping");
          ConfigContext c;
          for (const auto& f : node) {
            const std::string k = f.first.as<std::string>();
            const std::string v = f.second.as<std::string>();
            if (k == "name") {
              c.name = v;
            } else if (k == "server") {
              c.server = v;
            } else if (k == "token-file") {
              c.token_file = ResolvePath(v, dir, home);
            } else if (k == "tls-ca" || k == "ca-file") {
              c.tls_ca = ResolvePath(v, dir, home);
            } else {
              return absl::InvalidArgumentError(absl::StrCat(
                  where, ": unknown key '", k, "' (known: name, server, token-file, tls-ca)"));
            }
          }
          if (c.name.empty()) return absl::InvalidArgumentError(where + ".name is required");
          config.contexts.push_back(std::move(c));
        }
      } else {
        return absl::InvalidArgumentError(absl::StrCat("config file ", path, ": unknown key '", key,
                                                       "' (known: current-context, contexts)"));
      }
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("config file ", path, ": ", e.what()));
  }
  return config;
}

absl::StatusOr<std::optional<ConfigFile>> LoadConfigFile(const EnvLookup& env) {
  const std::string home = env("HOME").value_or("");
  std::string path;
  bool explicit_path = false;
  if (std::optional<std::string> p = NonEmpty(env, "CHRONOS_CONFIG")) {
    path = *p;
    explicit_path = true;
  } else if (std::optional<std::string> xdg = NonEmpty(env, "XDG_CONFIG_HOME")) {
    path = absl::StrCat(*xdg, "/chronos/config.yaml");
  } else if (!home.empty()) {
    path = absl::StrCat(home, "/.config/chronos/config.yaml");
  } else {
    return std::optional<ConfigFile>();
  }
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    // A missing default file just means "no config"; a file the user named
    // must exist, or their settings would be silently ignored.
    if (!explicit_path) return std::optional<ConfigFile>();
    return absl::NotFoundError(absl::StrCat("CHRONOS_CONFIG: ", text.status().message()));
  }
  CHRONOS_ASSIGN_OR_RETURN(ConfigFile config, ParseConfigFile(*text, path, home));
  return std::optional<ConfigFile>(std::move(config));
}

absl::StatusOr<absl::Duration> ParseDurationFlag(const std::string& flag, const std::string& text) {
  std::string t(absl::StripAsciiWhitespace(text));
  double seconds;
  absl::Duration d;
  if (absl::SimpleAtod(t, &seconds) && std::isfinite(seconds)) {
    d = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(t, &d) || d == absl::InfiniteDuration()) {
    return UsageError(
        absl::StrCat(flag, ": cannot parse '", text, "' (use e.g. 10s, 1m, 500ms, or 0 for none)"));
  }
  if (d < absl::ZeroDuration()) {
    return UsageError(absl::StrCat(flag, " must not be negative (got '", text, "')"));
  }
  return d;
}

absl::StatusOr<Connection> ResolveConnection(const ConnectionFlags& flags, const EnvLookup& env) {
  Connection conn;
  CHRONOS_ASSIGN_OR_RETURN(conn.request_timeout, ParseRequestTimeout(flags.request_timeout));

  // The config file matters only for what flags and environment leave open,
  // but a broken file is reported even then: silently ignoring it would
  // surprise whoever relies on it next time.
  CHRONOS_ASSIGN_OR_RETURN(std::optional<ConfigFile> config, LoadConfigFile(env));
  const ConfigContext* ctx = nullptr;
  std::string context_name = flags.context;
  if (context_name.empty()) context_name = NonEmpty(env, "CHRONOS_CONTEXT").value_or("");
  if (context_name.empty() && config.has_value()) context_name = config->current_context;
  if (!context_name.empty()) {
    if (!config.has_value()) {
      return UsageError(absl::StrCat("--context '", context_name,
                                     "': no config file (set CHRONOS_CONFIG or create "
                                     "~/.config/chronos/config.yaml)"));
    }
    std::vector<std::string> names;
    for (const ConfigContext& c : config->contexts) {
      if (c.name == context_name) ctx = &c;
      names.push_back(c.name);
    }
    if (ctx == nullptr) {
      return absl::NotFoundError(absl::StrCat("context '", context_name, "' is not in ",
                                              config->path, " (known: ", absl::StrJoin(names, ", "),
                                              ")"));
    }
  }

  if (!flags.server.empty()) {
    conn.server = flags.server;
    conn.server_source = "--server";
  } else if (std::optional<std::string> s = NonEmpty(env, "CHRONOS_SERVER")) {
    conn.server = *s;
    conn.server_source = "CHRONOS_SERVER";
  } else if (ctx != nullptr && !ctx->server.empty()) {
    conn.server = ctx->server;
    conn.server_source = absl::StrCat("context ", ctx->name);
  } else {
    conn.server = kDefaultServer;
    conn.server_source = "default";
  }

  if (!flags.token_file.empty()) {
    absl::Status st = rpc::LoadTokenFileFlag(flags.token_file, &conn.token);
    if (!st.ok()) return UsageError(st.message());
  } else if (std::optional<std::string> t = NonEmpty(env, "CHRONOS_TOKEN")) {
    conn.token = std::string(absl::StripAsciiWhitespace(*t));
  } else if (ctx != nullptr && !ctx->token_file.empty()) {
    absl::StatusOr<std::string> token = rpc::ReadTokenFile(ctx->token_file);
    if (!token.ok()) {
      return absl::Status(token.status().code(),
                          absl::StrCat("context ", ctx->name, ": ", token.status().message()));
    }
    conn.token = *token;
  }

  // The CA file is read now, not when the channel is made, so that a typo
  // is reported against the flag that holds it.
  std::string ca_what;
  if (!flags.tls_ca.empty()) {
    conn.tls_ca_file = flags.tls_ca;
    ca_what = "--tls-ca";
  } else if (std::optional<std::string> ca = NonEmpty(env, "CHRONOS_TLS_CA")) {
    conn.tls_ca_file = *ca;
    ca_what = "CHRONOS_TLS_CA";
  } else if (ctx != nullptr && !ctx->tls_ca.empty()) {
    conn.tls_ca_file = ctx->tls_ca;
    ca_what = absl::StrCat("tls-ca of context ", ctx->name);
  }
  if (!conn.tls_ca_file.empty()) {
    absl::StatusOr<std::string> pem = rpc::ReadPemFile(conn.tls_ca_file);
    if (!pem.ok()) {
      const std::string msg = absl::StrCat(ca_what, ": ", pem.status().message());
      return ca_what == "--tls-ca" ? UsageError(msg) : absl::Status(pem.status().code(), msg);
    }
  }
  conn.tls = flags.tls || !conn.tls_ca_file.empty();
  return conn;
}

}  // namespace chronos::client

// Host and credential resolution in the order of the Databricks SDKs
// (Go config/config.go, config_file.go, config_attributes.go, auth_default.go;
// Python config.py, credentials_provider.py). docs/DATABRICKS.md has the facts.
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "daemon/databricks/client.hpp"
#include "daemon/databricks/http.hpp"
#include "daemon/databricks/parsing.hpp"
#include "daemon/databricks/rate_limits.hpp"

namespace brickwork {

namespace {

using databricks_parsing::trim;

using Section = std::map<std::string, std::string>;
using IniFile = std::map<std::string, Section>;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

IniFile parse_ini(std::istream& in) {
  IniFile file;
  std::string current;
  std::string line;
  while (std::getline(in, line)) {
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    if (t.front() == '[' && t.back() == ']') {
      current = trim(std::string_view(t).substr(1, t.size() - 2));
      file[current];
      continue;
    }
    const auto eq = t.find_first_of("=:");
    if (eq == std::string::npos) continue;
    file[current][lower(trim(std::string_view(t).substr(0, eq)))] =
        trim(std::string_view(t).substr(eq + 1));
  }
  return file;
}

std::optional<std::string> env_value(const EnvLookup& env, const std::string& name) {
  auto v = env(name);
  if (v && v->empty()) return std::nullopt;
  return v;
}

// Attribute values and where each came from ("config", "env X", "file").
struct Gathered {
  AuthAttributes values;
  std::map<std::string, std::string> sources;

  bool has(const std::string& name) const { return values.count(name) != 0; }
  std::string get(const std::string& name) const {
    auto it = values.find(name);
    return it == values.end() ? std::string() : it->second;
  }
  void fill(const std::string& name, const std::optional<std::string>& value,
            const std::string& source) {
    if (has(name) || !value || value->empty()) return;
    values[name] = *value;
    sources[name] = source;
  }
};

// Whether any attribute of an auth method is set (the SDKs then skip the
// config file unless a profile is named).
bool any_auth_attribute(const Gathered& g) {
  for (const AuthAttribute& a : auth_attributes()) {
    if (*a.method != '\0' && g.has(a.name)) return true;
  }
  return false;
}

// "Config: host=https://x, token=***. Env: DATABRICKS_TOKEN": what was found,
// secrets masked, as the SDKs word it.
std::string found_summary(const Gathered& g) {
  std::string config;
  std::string env;
  for (const AuthAttribute& a : auth_attributes()) {
    if (!g.has(a.name)) continue;
    config += std::string(config.empty() ? "" : ", ") + a.name + "=" +
              (a.sensitive ? "***" : g.get(a.name));
    const std::string& source = g.sources.at(a.name);
    if (source.rfind("env ", 0) == 0) env += std::string(env.empty() ? "" : ", ") + source.substr(4);
  }
  std::string out = config.empty() ? "nothing found" : "Config: " + config;
  if (!env.empty()) out += ". Env: " + env;
  return out;
}

// Go config_attributes.go Validate: attributes of two methods and no
// auth_type is an error, not a guess.
std::optional<Error> ambiguous(const Gathered& g) {
  std::set<std::string> methods;
  for (const AuthAttribute& a : auth_attributes()) {
    if (*a.method != '\0' && g.has(a.name)) methods.insert(a.method);
  }
  if (methods.size() <= 1) return std::nullopt;
  std::string names;
  for (const auto& m : methods) names += (names.empty() ? "" : " and ") + m;
  return Error{ErrorKind::kInvalidInput, "ambiguous_credentials",
               "more than one authorization method configured: " + names +
                   "; set databricks.auth_type (or DATABRICKS_AUTH_TYPE) to choose. " +
                   found_summary(g)};
}

std::string supported_types() {
  std::string out;
  for (const auto& s : credentials_strategies()) out += (out.empty() ? "" : ", ") + s.name;
  return out;
}

}  // namespace

EnvLookup process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

const std::vector<AuthAttribute>& auth_attributes() {
  // Names, variables and methods of the Go SDK's Config struct tags.
  static const std::vector<AuthAttribute> kAttributes = {
      {"host", "DATABRICKS_HOST", "", false},
      {"metadata_service_url", "DATABRICKS_METADATA_SERVICE_URL", "metadata-service", true},
      {"token", "DATABRICKS_TOKEN", "pat", true},
      {"google_service_account", "DATABRICKS_GOOGLE_SERVICE_ACCOUNT", "google", false},
      {"google_credentials", "GOOGLE_CREDENTIALS", "google", true},
      {"azure_workspace_resource_id", "DATABRICKS_AZURE_RESOURCE_ID", "azure", false},
      {"azure_use_msi", "ARM_USE_MSI", "azure", false},
      {"azure_client_secret", "ARM_CLIENT_SECRET", "azure", true},
      {"azure_client_id", "ARM_CLIENT_ID", "azure", false},
      {"azure_tenant_id", "ARM_TENANT_ID", "azure", false},
      {"actions_id_token_request_url", "ACTIONS_ID_TOKEN_REQUEST_URL", "", false},
      {"actions_id_token_request_token", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "", true},
      {"azure_environment", "ARM_ENVIRONMENT", "", false},
      {"client_id", "DATABRICKS_CLIENT_ID", "oauth", false},
      {"client_secret", "DATABRICKS_CLIENT_SECRET", "oauth", true},
      {"databricks_id_token_filepath", "DATABRICKS_OIDC_TOKEN_FILEPATH", "file-oidc", false},
      {"oidc_token_env", "DATABRICKS_OIDC_TOKEN_ENV", "env-oidc", false},
      {"cloud", "DATABRICKS_CLOUD", "", false},
      {"audience", "DATABRICKS_TOKEN_AUDIENCE", "", false},
  };
  return kAttributes;
}

Result<ResolvedDatabricksConfig> resolve_databricks_config(const DatabricksConfig& config,
                                                           const EnvLookup& env_in) {
  const EnvLookup env = env_in ? env_in : process_environment();
  ResolvedDatabricksConfig out;
  out.request_timeout = config.request_timeout;
  out.retry_budget = config.retry_budget;
  out.limits = databricks_limits_with(config.limits);
  out.max_concurrent_requests =
      static_cast<size_t>(std::max(0, config.max_in_flight) + std::max(0, config.max_transfers));
  out.env = env;

  Gathered g;
  g.fill("host", config.host, "config");
  g.fill("token", config.token, "config");
  g.fill("client_id", config.client_id, "config");
  g.fill("client_secret", config.client_secret, "config");
  for (const AuthAttribute& a : auth_attributes()) {
    g.fill(a.name, env_value(env, a.env), std::string("env ") + a.env);
  }
  std::string auth_type = lower(config.auth_type);
  if (auth_type.empty()) auth_type = lower(env_value(env, "DATABRICKS_AUTH_TYPE").value_or(""));
  std::string named_profile = config.profile;
  if (named_profile.empty()) named_profile = env_value(env, "DATABRICKS_CONFIG_PROFILE").value_or("");

  if (!named_profile.empty() || !(any_auth_attribute(g) || g.has("host"))) {
    std::string path = env_value(env, "DATABRICKS_CONFIG_FILE").value_or("");
    if (path.empty()) {
      if (auto home = env_value(env, "HOME")) path = *home + "/.databrickscfg";
    } else if (path.rfind("~/", 0) == 0) {
      if (auto home = env_value(env, "HOME")) path = *home + path.substr(1);
    }
    std::ifstream in(path);
    if (!path.empty() && in) {
      const IniFile ini = parse_ini(in);
      std::string profile = named_profile;
      bool explicit_profile = !profile.empty();
      if (profile.empty()) {
        auto settings = ini.find("__settings__");
        if (settings != ini.end()) {
          auto dp = settings->second.find("default_profile");
          if (dp != settings->second.end() && !dp->second.empty()) {
            profile = dp->second;
            explicit_profile = true;
          }
        }
      }
      if (profile.empty()) profile = "DEFAULT";
      if (profile == "__settings__") {
        return Error{ErrorKind::kInvalidInput, "bad_profile",
                     "__settings__ cannot be used as a Databricks profile"};
      }
      auto section = ini.find(profile);
      if (section == ini.end()) {
        if (explicit_profile) {
          return Error{ErrorKind::kInvalidInput, "bad_profile",
                       "profile '" + profile + "' not found in " + path};
        }
      } else {
        const Section& s = section->second;
        const std::string source = "file " + path + " [" + profile + "]";
        for (const AuthAttribute& a : auth_attributes()) {
          auto it = s.find(a.name);
          if (it != s.end()) g.fill(a.name, it->second, source);
        }
        if (auth_type.empty()) {
          auto it = s.find("auth_type");
          if (it != s.end()) auth_type = lower(it->second);
        }
        out.profile = profile;
        out.config_file = path;
      }
    } else if (!named_profile.empty()) {
      return Error{ErrorKind::kInvalidInput, "bad_profile",
                   "profile '" + named_profile + "' named but config file '" + path +
                       "' cannot be read"};
    }
  }

  out.host = g.get("host");
  if (out.host.empty()) {
    return Error{ErrorKind::kInvalidInput, "no_host",
                 "Databricks host is not set (databricks.host, DATABRICKS_HOST or a "
                 "~/.databrickscfg profile); " + found_summary(g)};
  }
  if (out.host.find("://") == std::string::npos) out.host = "https://" + out.host;
  while (!out.host.empty() && out.host.back() == '/') out.host.pop_back();
  if (auto ok = http::check_url(out.host + "/"); !ok) return ok.error();
  g.values["host"] = out.host;

  if (!auth_type.empty()) {
    const CredentialsStrategy* strategy = find_credentials_strategy(auth_type);
    if (strategy == nullptr) {
      return Error{ErrorKind::kInvalidInput, "unsupported_auth",
                   "auth_type '" + auth_type + "' is not supported (" + supported_types() + ")"};
    }
    if (auto missing = strategy->missing(g.values, env); !missing.empty()) {
      return Error{ErrorKind::kInvalidInput, "no_credentials",
                   "auth_type " + auth_type + " needs " + missing + "; " + found_summary(g)};
    }
    out.auth_type = auth_type;
  } else {
    if (auto e = ambiguous(g)) return *e;
    for (const auto& strategy : credentials_strategies()) {
      if (strategy.missing(g.values, env).empty()) {
        out.auth_type = strategy.name;
        break;
      }
    }
    if (out.auth_type.empty()) {
      if (g.has("client_id") != g.has("client_secret") && !g.has("actions_id_token_request_url")) {
        return Error{ErrorKind::kInvalidInput, "no_credentials",
                     "OAuth M2M needs both client_id and client_secret; " + found_summary(g)};
      }
      if (out.host.rfind("http://", 0) == 0 && !any_auth_attribute(g)) {
        out.auth_type = "none";  // the loopback simulator without auth
      } else {
        return Error{ErrorKind::kInvalidInput, "no_credentials",
                     "no Databricks credentials: none of the auth types (" + supported_types() +
                         ") is configured, in the config, DATABRICKS_* / ARM_* variables or "
                         "~/.databrickscfg; " + found_summary(g)};
      }
    }
  }
  out.attributes = std::move(g.values);
  out.sources = std::move(g.sources);
  return out;
}

std::string describe_auth(const ResolvedDatabricksConfig& resolved) {
  std::string out = resolved.host + " (auth_type " + resolved.auth_type;
  if (!resolved.profile.empty()) out += ", profile " + resolved.profile;
  return out + ")";
}

}  // namespace brickwork

// Host and credential resolution in the order of the Databricks SDKs
// (Go config/config.go, config_file.go; Python config.py).
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <map>
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

void fill(std::string& attr, const std::optional<std::string>& value) {
  if (attr.empty() && value) attr = *value;
}

}  // namespace

EnvLookup process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

Result<ResolvedDatabricksConfig> resolve_databricks_config(const DatabricksConfig& config,
                                                           const EnvLookup& env_in) {
  const EnvLookup env = env_in ? env_in : process_environment();
  ResolvedDatabricksConfig out;
  out.request_timeout = config.request_timeout;
  out.retry_budget = config.retry_budget;
  out.limits = databricks_limits_with(config.limits);
  out.host = config.host;
  out.token = config.token;
  out.client_id = config.client_id;
  out.client_secret = config.client_secret;

  fill(out.host, env_value(env, "DATABRICKS_HOST"));
  fill(out.token, env_value(env, "DATABRICKS_TOKEN"));
  fill(out.client_id, env_value(env, "DATABRICKS_CLIENT_ID"));
  fill(out.client_secret, env_value(env, "DATABRICKS_CLIENT_SECRET"));
  std::string auth_type = lower(env_value(env, "DATABRICKS_AUTH_TYPE").value_or(""));
  const std::string named_profile = env_value(env, "DATABRICKS_CONFIG_PROFILE").value_or("");

  const bool anything_set = !out.host.empty() || !out.token.empty() || !out.client_id.empty() ||
                            !out.client_secret.empty();
  if (!named_profile.empty() || !anything_set) {
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
        auto get = [&](const char* key) -> std::optional<std::string> {
          auto it = s.find(key);
          if (it == s.end() || it->second.empty()) return std::nullopt;
          return it->second;
        };
        fill(out.host, get("host"));
        fill(out.token, get("token"));
        fill(out.client_id, get("client_id"));
        fill(out.client_secret, get("client_secret"));
        if (auth_type.empty()) auth_type = lower(get("auth_type").value_or(""));
        out.profile = profile;
        out.config_file = path;
      }
    } else if (!named_profile.empty()) {
      return Error{ErrorKind::kInvalidInput, "bad_profile",
                   "profile '" + named_profile + "' named but config file '" + path +
                       "' cannot be read"};
    }
  }

  if (out.host.empty()) {
    return Error{ErrorKind::kInvalidInput, "no_host",
                 "Databricks host is not set (databricks.host, DATABRICKS_HOST or a "
                 "~/.databrickscfg profile)"};
  }
  if (out.host.find("://") == std::string::npos) out.host = "https://" + out.host;
  while (!out.host.empty() && out.host.back() == '/') out.host.pop_back();
  if (auto ok = http::check_url(out.host + "/"); !ok) return ok.error();

  const bool has_pat = !out.token.empty();
  const bool has_m2m = !out.client_id.empty() && !out.client_secret.empty();
  if (auth_type == "pat") {
    if (!has_pat) {
      return Error{ErrorKind::kInvalidInput, "no_credentials", "auth_type pat needs a token"};
    }
    out.auth = DatabricksAuth::kPat;
  } else if (auth_type == "oauth-m2m") {
    if (!has_m2m) {
      return Error{ErrorKind::kInvalidInput, "no_credentials",
                   "auth_type oauth-m2m needs client_id and client_secret"};
    }
    out.auth = DatabricksAuth::kOAuthM2M;
  } else if (!auth_type.empty()) {
    return Error{ErrorKind::kInvalidInput, "unsupported_auth",
                 "auth_type '" + auth_type + "' is not supported (pat, oauth-m2m)"};
  } else if (has_pat) {
    out.auth = DatabricksAuth::kPat;
  } else if (has_m2m) {
    out.auth = DatabricksAuth::kOAuthM2M;
  } else if (!out.client_id.empty() || !out.client_secret.empty()) {
    return Error{ErrorKind::kInvalidInput, "no_credentials",
                 "OAuth M2M needs both client_id and client_secret"};
  } else if (out.host.rfind("http://", 0) == 0) {
    out.auth = DatabricksAuth::kNone;  // the loopback simulator without auth
  } else {
    return Error{ErrorKind::kInvalidInput, "no_credentials",
                 "no Databricks credentials: set a token (PAT) or client_id and client_secret "
                 "(OAuth M2M), in the config, DATABRICKS_* variables or ~/.databrickscfg"};
  }
  if (out.auth != DatabricksAuth::kPat) out.token.clear();
  if (out.auth != DatabricksAuth::kOAuthM2M) {
    out.client_id.clear();
    out.client_secret.clear();
  }
  return out;
}

}  // namespace brickwork

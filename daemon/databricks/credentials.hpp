#pragma once
// Databricks unified authentication (docs/DATABRICKS.md "Authentication"):
// the configuration attributes the SDKs read, one CredentialsProvider per
// auth type (daemon/databricks/auth/, one file each, listed in
// auth/registry.cpp), and the token cache every provider renews through.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "daemon/core/json_limits.hpp"
#include "daemon/core/result.hpp"
#include "daemon/core/time.hpp"
#include "daemon/databricks/http.hpp"

namespace brickwork {

struct DatabricksClientCounters;
struct ResolvedDatabricksConfig;

// Reads one environment variable; nullopt when unset. Tests pass a map.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

// One configuration attribute as the SDKs name it.
struct AuthAttribute {
  const char* name;  // ~/.databrickscfg key
  const char* env;   // environment variable
  // The method its presence implies ("pat", "oauth", "azure", ...), for the
  // "more than one authorization method" check; "" for none.
  const char* method;
  bool sensitive;  // never printed
};
// Every attribute brickwork reads, in the SDKs' order.
const std::vector<AuthAttribute>& auth_attributes();

// Attribute values by name; only non-empty values are present.
using AuthAttributes = std::map<std::string, std::string>;

// What a provider needs to fetch its tokens.
struct AuthContext {
  std::string host;  // the workspace, "https://..." without a trailing '/'
  std::string auth_type;
  AuthAttributes attributes;
  EnvLookup env;
  http::Client* http = nullptr;
  Duration timeout{std::chrono::seconds(10)};  // one token request
  std::shared_ptr<DatabricksClientCounters> counters;
  // Each token exchange, for brickwork_databricks_request*: the endpoint
  // label ("oidc/v1/token" at the workspace, "identity/<auth type>" elsewhere),
  // the status or error code, and its duration.
  std::function<void(const std::string& endpoint, const std::string& code, double seconds)> observe;

  std::string attr(const std::string& name) const {
    auto it = attributes.find(name);
    return it == attributes.end() ? std::string() : it->second;
  }
};

// Headers for workspace requests. Thread-safe: every call of the client (and
// every Lakebase credential request) shares one provider and its tokens.
class CredentialsProvider {
 public:
  virtual ~CredentialsProvider() = default;
  // Authorization and any header the auth type adds; tokens come from the
  // cache, renewed before they expire.
  virtual Result<http::Headers> headers() = 0;
  // The workspace refused the token (401): the next headers() fetches anew.
  virtual void invalidate() {}
};

// An auth type, as the SDKs' credentials strategies are.
struct CredentialsStrategy {
  std::string name;  // auth_type: "pat", "oauth-m2m", "azure-client-secret", ...
  // "" when the attributes (and, for env-oidc, the environment) configure
  // this auth type; otherwise what is missing, for the error when the type
  // was asked for by name.
  std::function<std::string(const AuthAttributes&, const EnvLookup&)> missing;
  std::function<std::unique_ptr<CredentialsProvider>(const AuthContext&)> make;
};

// The auth types in the order the default chain tries them (the Go SDK's
// DefaultCredentials, docs/DATABRICKS.md).
const std::vector<CredentialsStrategy>& credentials_strategies();
const CredentialsStrategy* find_credentials_strategy(std::string_view name);

// ------------------------------------------------------ shared by providers

// One access token and when it stops being valid.
struct AccessToken {
  std::string value;  // never logged
  std::string type = "Bearer";
  std::chrono::steady_clock::time_point expires;

  std::string header() const { return type + " " + value; }
};

// A token cached and renewed when its remaining life drops below
// min(lifetime/2, 20 min). A failed renewal keeps the still-valid token and is
// retried after a growing pause (1 s doubling to 60 s); with no valid token
// left the failure is returned, so the caller's retry loop backs off.
class CachedToken {
 public:
  using Fetch = std::function<Result<AccessToken>()>;
  CachedToken(std::string what, Fetch fetch, std::shared_ptr<DatabricksClientCounters> counters);

  Result<AccessToken> get();
  void invalidate();

 private:
  const std::string what_;  // "Entra ID token", for log lines
  const Fetch fetch_;
  const std::shared_ptr<DatabricksClientCounters> counters_;
  std::mutex mu_;
  std::optional<AccessToken> token_;
  std::chrono::steady_clock::time_point renew_at_{};
  std::chrono::steady_clock::time_point next_try_{};
  int failures_ = 0;
};

// A provider whose only header is Authorization from one cached token.
class BearerProvider : public CredentialsProvider {
 public:
  BearerProvider(const AuthContext& ctx, std::string what, CachedToken::Fetch fetch);
  Result<http::Headers> headers() override;
  void invalidate() override { token_.invalidate(); }

 private:
  CachedToken token_;
};

// Sends one token request (no retries: the caller's loop retries) with the
// context's timeout. `url` may be http:// only to loopback, or to the
// link-local metadata address when `link_local` (IMDS, GCE metadata).
Result<http::Response> send_token_request(const AuthContext& ctx, http::Request request,
                                          bool link_local = false);

// A form body: k=v&k=v, each value percent-encoded.
std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields);

// Reads a token answer: a non-2xx status is an error (error_from_http, its
// message prefixed with `what`); the token is the string field `field`; its
// expiry is expires_in (seconds), expires_on (epoch seconds), expireTime
// (RFC 3339) or the "exp" claim of a JWT, else one hour.
Result<AccessToken> parse_token_answer(const http::Response& response, std::string_view what,
                                       std::string_view field = "access_token");

// The payload of a JWT (not verified), or nullopt if `jwt` is not one.
std::optional<std::string> jwt_payload(std::string_view jwt);

}  // namespace brickwork

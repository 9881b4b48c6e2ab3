// google-id: the daemon's own Google identity (Application Default
// Credentials) impersonates a service account (google_service_account,
// DATABRICKS_GOOGLE_SERVICE_ACCOUNT) through the IAM Credentials API:
// generateIdToken (audience = the workspace, includeEmail) for Authorization
// and generateAccessToken for the GCP access-token header (Go
// config/auth_gcp_google_id.go; Python google_id).
// The identity behind it, as Google's libraries find it:
// GOOGLE_APPLICATION_CREDENTIALS (a service account key or an authorized_user
// file), else the GCE/GKE metadata server (GCE_METADATA_HOST, default
// 169.254.169.254). BRICKWORK_GOOGLE_IAM_ENDPOINT replaces
// https://iamcredentials.googleapis.com (Google has no variable for it).
#include <fstream>
#include <sstream>

#include "daemon/databricks/auth/strategies.hpp"
#include "daemon/databricks/parsing.hpp"

namespace brickwork::auth {

namespace {

std::string env_or(const AuthContext& ctx, const char* name, std::string fallback) {
  auto v = ctx.env ? ctx.env(name) : std::nullopt;
  return v && !v->empty() ? *v : fallback;
}

// The access token of Application Default Credentials.
Result<AccessToken> default_credentials_token(const AuthContext& ctx) {
  const std::string file = env_or(ctx, "GOOGLE_APPLICATION_CREDENTIALS", "");
  if (!file.empty()) {
    const std::string text = google_credentials_json(file);
    boost::system::error_code ec;
    const json::value v = parse_json(text, ec);
    const json::object* o = ec ? nullptr : v.if_object();
    const json::value* type = o != nullptr ? o->if_contains("type") : nullptr;
    if (type != nullptr && type->is_string() && type->get_string() == "authorized_user") {
      auto str = [&](const char* k) {
        const json::value* x = o->if_contains(k);
        return x != nullptr && x->is_string() ? std::string(x->get_string()) : std::string();
      };
      http::Request request;
      request.method = "POST";
      request.url = str("token_uri").empty() ? "https://oauth2.googleapis.com/token" : str("token_uri");
      request.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
      request.body = form_encode({{"grant_type", "refresh_token"},
                                  {"client_id", str("client_id")},
                                  {"client_secret", str("client_secret")},
                                  {"refresh_token", str("refresh_token")}});
      auto response = send_token_request(ctx, std::move(request));
      if (!response) return response.error();
      return parse_token_answer(*response, "Google token request");
    }
    return google_service_account_token(ctx, text, "");
  }
  http::Request request;
  request.url = "http://" + env_or(ctx, "GCE_METADATA_HOST", "169.254.169.254") +
                "/computeMetadata/v1/instance/service-accounts/default/token";
  request.headers = {{"Metadata-Flavor", "Google"}};
  auto response = send_token_request(ctx, std::move(request), true);
  if (!response) return response.error();
  return parse_token_answer(*response, "GCE metadata token request");
}

// One IAM Credentials call as the impersonating identity.
Result<AccessToken> impersonate(const AuthContext& ctx, CachedToken& source, const std::string& verb,
                                const json::object& body, const char* field) {
  auto caller = source.get();
  if (!caller) return caller.error();
  http::Request request;
  request.method = "POST";
  request.url = env_or(ctx, "BRICKWORK_GOOGLE_IAM_ENDPOINT", "https://iamcredentials.googleapis.com") +
                "/v1/projects/-/serviceAccounts/" +
                databricks_parsing::percent_encode(ctx.attr("google_service_account")) + ":" + verb;
  request.headers = {{"Authorization", caller->header()}, {"Content-Type", "application/json"}};
  request.body = json::serialize(body);
  auto response = send_token_request(ctx, std::move(request));
  if (!response) return response.error();
  return parse_token_answer(*response, "IAM " + verb, field);
}

}  // namespace

CredentialsStrategy google_id() {
  return {"google-id",
          [](const AuthAttributes& a, const EnvLookup&) {
            std::string missing = missing_of(a, {"google_service_account"});
            if (missing.empty() && !is_gcp(a)) {
              missing = "a GCP workspace (a *.gcp.databricks.com host or cloud: gcp)";
            }
            return missing;
          },
          [](const AuthContext& ctx) -> std::unique_ptr<CredentialsProvider> {
            auto source = std::make_shared<CachedToken>(
                "Google default credentials token", [ctx] { return default_credentials_token(ctx); },
                ctx.counters);
            return google_provider(
                ctx, "Google impersonated token",
                [ctx, source] {
                  return impersonate(ctx, *source, "generateIdToken",
                                     json::object{{"audience", ctx.host}, {"includeEmail", true}},
                                     "token");
                },
                [ctx, source] {
                  return impersonate(ctx, *source, "generateAccessToken",
                                     json::object{{"scope",
                                                   json::array{"https://www.googleapis.com/auth/cloud-platform",
                                                               "https://www.googleapis.com/auth/compute"}}},
                                     "accessToken");
                });
          }};
}

}  // namespace brickwork::auth

// google-credentials: a GCP service account key (google_credentials,
// GOOGLE_CREDENTIALS: the JSON itself or a file holding it) signs its own
// requests for a Google ID token whose audience is the workspace, and for an
// access token (Go config/auth_gcp_google_credentials.go; Python
// google_credentials). The key's token_uri says where to ask.
#include "daemon/databricks/auth/strategies.hpp"

namespace brickwork::auth {

CredentialsStrategy google_credentials() {
  return {"google-credentials",
          [](const AuthAttributes& a, const EnvLookup&) {
            std::string missing = missing_of(a, {"google_credentials"});
            if (missing.empty() && !is_gcp(a)) {
              missing = "a GCP workspace (a *.gcp.databricks.com host or cloud: gcp)";
            }
            return missing;
          },
          [](const AuthContext& ctx) -> std::unique_ptr<CredentialsProvider> {
            const std::string key = google_credentials_json(ctx.attr("google_credentials"));
            return google_provider(
                ctx, "Google service account token",
                [ctx, key] { return google_service_account_token(ctx, key, ctx.host); },
                [ctx, key] { return google_service_account_token(ctx, key, ""); });
          }};
}

}  // namespace brickwork::auth

// oauth-m2m: a Databricks service principal's OAuth secret, traded for a token
// at {host}/oidc/v1/token (client credentials, HTTP Basic, scope all-apis).
#include "daemon/core/base64.hpp"
#include "daemon/databricks/auth/strategies.hpp"

namespace brickwork::auth {

CredentialsStrategy oauth_m2m() {
  return {"oauth-m2m",
          [](const AuthAttributes& a, const EnvLookup&) { return missing_of(a, {"client_id", "client_secret"}); },
          [](const AuthContext& ctx) -> std::unique_ptr<CredentialsProvider> {
            const std::string basic =
                "Basic " + base64(ctx.attr("client_id") + ":" + ctx.attr("client_secret"));
            return std::make_unique<BearerProvider>(ctx, "OAuth token", [ctx, basic] {
              http::Request request;
              request.method = "POST";
              request.url = ctx.host + "/oidc/v1/token";
              request.headers = {{"Authorization", basic},
                                 {"Content-Type", "application/x-www-form-urlencoded"}};
              request.body = "grant_type=client_credentials&scope=all-apis";
              auto response = send_token_request(ctx, std::move(request));
              if (!response) return Result<AccessToken>(response.error());
              return parse_token_answer(*response, "OAuth token request");
            });
          }};
}

}  // namespace brickwork::auth

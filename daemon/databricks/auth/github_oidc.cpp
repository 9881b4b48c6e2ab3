// github-oidc: in a GitHub Actions job with `id-token: write`, the ID token
// comes from ACTIONS_ID_TOKEN_REQUEST_URL (&audience=...) with
// "Authorization: Bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN", answered {"value": JWT}.
#include "daemon/databricks/auth/strategies.hpp"
#include "daemon/databricks/parsing.hpp"

namespace brickwork::auth {

CredentialsStrategy github_oidc() {
  return {"github-oidc",
          [](const AuthAttributes& a, const EnvLookup&) {
            return missing_of(a,
                              {"actions_id_token_request_url", "actions_id_token_request_token"});
          },
          [](const AuthContext& ctx) -> std::unique_ptr<CredentialsProvider> {
            return oidc_exchange_provider(
                ctx, "github-oidc token", [ctx](const std::string& audience) {
                  http::Request request;
                  request.url = ctx.attr("actions_id_token_request_url") + "&audience=" +
                                databricks_parsing::percent_encode(audience);
                  request.headers = {
                      {"Authorization", "Bearer " + ctx.attr("actions_id_token_request_token")}};
                  auto response = send_token_request(ctx, std::move(request));
                  if (!response) return Result<std::string>(response.error());
                  auto token = parse_token_answer(*response, "GitHub ID token request", "value");
                  if (!token) return Result<std::string>(token.error());
                  return Result<std::string>(token->value);
                });
          }};
}

}  // namespace brickwork::auth

// Workload identity federation, shared by env-oidc, file-oidc and
// github-oidc: an identity provider's JWT traded at {host}/oidc/v1/token by
// RFC 8693 token exchange (Go config/experimental/auth/oidc/tokensource.go).
#include "daemon/databricks/auth/strategies.hpp"

namespace brickwork::auth {

std::unique_ptr<CredentialsProvider> oidc_exchange_provider(const AuthContext& ctx,
                                                            const std::string& what,
                                                            IdTokenSource id_token) {
  return std::make_unique<BearerProvider>(ctx, what, [ctx, what, id_token] {
    const std::string endpoint = ctx.host + "/oidc/v1/token";
    // The token endpoint is the default audience of a workspace's ID token.
    const std::string audience = ctx.attr("audience").empty() ? endpoint : ctx.attr("audience");
    auto jwt = id_token(audience);
    if (!jwt) return Result<AccessToken>(jwt.error());
    std::vector<std::pair<std::string, std::string>> form = {
        {"grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"},
        {"subject_token_type", "urn:ietf:params:oauth:token-type:jwt"},
        {"subject_token", *jwt},
        {"scope", "all-apis"}};
    // Without client_id: account-wide token federation.
    if (!ctx.attr("client_id").empty()) form.emplace_back("client_id", ctx.attr("client_id"));
    http::Request request;
    request.method = "POST";
    request.url = endpoint;
    request.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
    request.body = form_encode(form);
    auto response = send_token_request(ctx, std::move(request));
    if (!response) return Result<AccessToken>(response.error());
    return parse_token_answer(*response, what + " exchange");
  });
}

}  // namespace brickwork::auth

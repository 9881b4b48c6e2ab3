// azure-client-secret: an Entra ID service principal (azure_client_id,
// azure_client_secret, azure_tenant_id; ARM_CLIENT_ID, ARM_CLIENT_SECRET,
// ARM_TENANT_ID) gets tokens by client credentials at
// {login endpoint}{tenant}/oauth2/token with resource = the Azure Databricks
// application (Go config/auth_azure_client_secret.go).
#include "daemon/databricks/auth/strategies.hpp"

namespace brickwork::auth {

CredentialsStrategy azure_client_secret() {
  return {"azure-client-secret",
          [](const AuthAttributes& a, const EnvLookup&) {
            std::string missing =
                missing_of(a, {"azure_client_id", "azure_client_secret", "azure_tenant_id"});
            if (missing.empty() && !is_azure(a)) {
              missing = "an Azure workspace (an *.azuredatabricks.net host, "
                        "azure_workspace_resource_id or cloud: azure)";
            }
            return missing;
          },
          [](const AuthContext& ctx) -> std::unique_ptr<CredentialsProvider> {
            const std::string url =
                azure_environment(ctx).login_endpoint + ctx.attr("azure_tenant_id") + "/oauth2/token";
            return azure_provider(ctx, "Entra ID token", [ctx, url](const std::string& resource) {
              http::Request request;
              request.method = "POST";
              request.url = url;
              request.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
              request.body = form_encode({{"grant_type", "client_credentials"},
                                          {"client_id", ctx.attr("azure_client_id")},
                                          {"client_secret", ctx.attr("azure_client_secret")},
                                          {"resource", resource}});
              auto response = send_token_request(ctx, std::move(request));
              if (!response) return Result<AccessToken>(response.error());
              return parse_token_answer(*response, "Entra ID token request");
            });
          }};
}

}  // namespace brickwork::auth

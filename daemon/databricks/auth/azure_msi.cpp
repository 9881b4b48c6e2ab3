// azure-msi: an Azure managed identity (azure_use_msi, ARM_USE_MSI=true; a
// user-assigned one by azure_client_id) gets tokens from the instance
// metadata service: GET http://169.254.169.254/metadata/identity/oauth2/token
// ?api-version=2018-02-01&resource=...[&client_id=...] with "Metadata: true",
// answered {access_token, token_type, expires_on} (Go config/auth_azure_msi.go).
// AZURE_POD_IDENTITY_AUTHORITY_HOST (the Azure Identity SDKs' variable)
// replaces http://169.254.169.254.
#include "daemon/databricks/auth/strategies.hpp"
#include "daemon/databricks/parsing.hpp"

namespace brickwork::auth {

namespace {
bool truthy(const std::string& v) { return v == "true" || v == "1" || v == "TRUE" || v == "True"; }
}  // namespace

CredentialsStrategy azure_msi() {
  return {"azure-msi",
          [](const AuthAttributes& a, const EnvLookup&) {
            if (!truthy(attr(a, "azure_use_msi"))) return std::string("azure_use_msi = true");
            if (!is_azure(a)) {
              return std::string("an Azure workspace (an *.azuredatabricks.net host, "
                                 "azure_workspace_resource_id or cloud: azure)");
            }
            return std::string();
          },
          [](const AuthContext& ctx) -> std::unique_ptr<CredentialsProvider> {
            std::string imds = "http://169.254.169.254";
            if (auto v = ctx.env ? ctx.env("AZURE_POD_IDENTITY_AUTHORITY_HOST") : std::nullopt;
                v && !v->empty()) {
              imds = *v;
            }
            while (!imds.empty() && imds.back() == '/') imds.pop_back();
            return azure_provider(
                ctx, "managed identity token", [ctx, imds](const std::string& resource) {
                  http::Request request;
                  request.url = imds + "/metadata/identity/oauth2/token?api-version=2018-02-01" +
                                "&resource=" + databricks_parsing::percent_encode(resource);
                  if (!ctx.attr("azure_client_id").empty()) {
                    request.url +=
                        "&client_id=" + databricks_parsing::percent_encode(ctx.attr("azure_client_id"));
                  }
                  request.headers = {{"Metadata", "true"}};
                  auto response = send_token_request(ctx, std::move(request), true);
                  if (!response) return Result<AccessToken>(response.error());
                  return parse_token_answer(*response, "instance metadata token request");
                });
          }};
}

}  // namespace brickwork::auth

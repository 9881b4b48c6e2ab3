#pragma once
// The auth types (one file each in this folder) and what several share.
// registry.cpp lists them in the order the default chain tries them.
#include <functional>
#include <memory>
#include <string>

#include "daemon/core/json_limits.hpp"
#include "daemon/databricks/credentials.hpp"

namespace brickwork::auth {

CredentialsStrategy pat();
CredentialsStrategy oauth_m2m();
CredentialsStrategy metadata_service();
CredentialsStrategy github_oidc();
CredentialsStrategy env_oidc();
CredentialsStrategy file_oidc();
CredentialsStrategy azure_msi();
CredentialsStrategy azure_client_secret();
CredentialsStrategy google_credentials();
CredentialsStrategy google_id();

// The attributes' value or "".
std::string attr(const AuthAttributes& a, const std::string& name);
// "x" when attribute x is missing, "x and y" for two, ...: what `missing` returns.
std::string missing_of(const AuthAttributes& a, std::initializer_list<const char*> names);

// Whether the workspace is on Azure / GCP as the SDKs decide it: the cloud
// attribute (DATABRICKS_CLOUD) when set, else the host's DNS zone; a workspace
// resource id also means Azure.
bool is_azure(const AuthAttributes& a);
bool is_gcp(const AuthAttributes& a);

// Entra ID (azure.cpp). Tokens for `resource` from one fetch function; the
// provider sends the Azure Databricks token as Authorization and, when a
// workspace resource id is set, that id and a token for the Azure service
// management endpoint (X-Databricks-Azure-Workspace-Resource-Id,
// X-Databricks-Azure-SP-Management-Token).
struct AzureEnvironment {
  std::string login_endpoint;       // "https://login.microsoftonline.com/" (AZURE_AUTHORITY_HOST)
  std::string management_resource;  // "https://management.core.windows.net/"
  std::string databricks_resource;  // the Azure Databricks application id
};
AzureEnvironment azure_environment(const AuthContext& ctx);
using AzureTokenFetch = std::function<Result<AccessToken>(const std::string& resource)>;
std::unique_ptr<CredentialsProvider> azure_provider(const AuthContext& ctx, const std::string& what,
                                                    AzureTokenFetch fetch);

// Workload identity federation (oidc_exchange.cpp): an ID token from
// `id_token(audience)` exchanged at {host}/oidc/v1/token (RFC 8693) for a
// Databricks token, cached and renewed.
using IdTokenSource = std::function<Result<std::string>(const std::string& audience)>;
std::unique_ptr<CredentialsProvider> oidc_exchange_provider(const AuthContext& ctx,
                                                            const std::string& what,
                                                            IdTokenSource id_token);

// Google (google.cpp): Authorization from a Google ID token for the workspace
// and X-Databricks-GCP-SA-Access-Token from a Google access token (optional,
// as in the SDKs: a failure only logs).
using GoogleTokenFetch = std::function<Result<AccessToken>()>;
std::unique_ptr<CredentialsProvider> google_provider(const AuthContext& ctx,
                                                     const std::string& what,
                                                     GoogleTokenFetch id_token,
                                                     GoogleTokenFetch access_token);
// A service account key (JSON) signs a JWT and trades it at its token_uri:
// for an ID token with target_audience = `audience` when set, else for an
// access token with the cloud-platform and compute scopes.
Result<AccessToken> google_service_account_token(const AuthContext& ctx,
                                                 const std::string& key_json,
                                                 const std::string& audience);
// The JSON of google_credentials: a file's content if it names one, else itself.
std::string google_credentials_json(const std::string& value);

}  // namespace brickwork::auth

// What azure-msi and azure-client-secret share: the Azure environment's
// endpoints (Go common/environment) and the provider that adds Azure's headers
// (Go config/oauth_visitors.go azureVisitor, serviceToServiceVisitor).
#include "daemon/databricks/auth/strategies.hpp"

namespace brickwork::auth {

namespace {
bool host_ends_with(const std::string& host, const std::string& zone) {
  std::string h = host.substr(0, host.find_first_of(":/", host.find("://") + 3));
  return h.size() >= zone.size() && h.compare(h.size() - zone.size(), zone.size(), zone) == 0;
}
}  // namespace

AzureEnvironment azure_environment(const AuthContext& ctx) {
  std::string name = ctx.attr("azure_environment");
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (name.empty()) {
    name = host_ends_with(ctx.host, ".databricks.azure.us")   ? "USGOVERNMENT"
           : host_ends_with(ctx.host, ".databricks.azure.cn") ? "CHINA"
                                                              : "PUBLIC";
  }
  AzureEnvironment env;
  if (name == "USGOVERNMENT") {
    env = {"https://login.microsoftonline.us/", "https://management.core.usgovcloudapi.net/", ""};
  } else if (name == "CHINA") {
    env = {"https://login.chinacloudapi.cn/", "https://management.core.chinacloudapi.cn/", ""};
  } else {
    env = {"https://login.microsoftonline.com/", "https://management.core.windows.net/", ""};
  }
  // The Azure Databricks application: its production id, except in
  // Databricks' own dev and staging zones.
  env.databricks_resource = host_ends_with(ctx.host, ".dev.azuredatabricks.net")
                                ? "62a912ac-b58e-4c1d-89ea-b2dbfc7358fc"
                            : host_ends_with(ctx.host, ".staging.azuredatabricks.net")
                                ? "4a67d088-db5c-48f1-9ff2-0aace800ae68"
                                : "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d";
  // The Azure Identity SDKs' variable for a non-default login endpoint
  // (sovereign clouds, Azure Stack, the local simulator).
  if (auto authority = ctx.env ? ctx.env("AZURE_AUTHORITY_HOST") : std::nullopt;
      authority && !authority->empty()) {
    env.login_endpoint = *authority;
    if (env.login_endpoint.back() != '/') env.login_endpoint += '/';
  }
  return env;
}

namespace {
class AzureProvider final : public CredentialsProvider {
 public:
  AzureProvider(const AuthContext& ctx, const std::string& what, AzureTokenFetch fetch)
      : resource_id_(ctx.attr("azure_workspace_resource_id")),
        inner_(what, [fetch, r = azure_environment(ctx).databricks_resource] { return fetch(r); },
               ctx.counters) {
    // The service management token lets a service principal that is a
    // contributor of the workspace's Azure resource in without being added
    // to the workspace first; it goes with the resource id.
    if (!resource_id_.empty()) {
      management_.emplace(what + " (service management)",
                          [fetch, r = azure_environment(ctx).management_resource] {
                            return fetch(r);
                          },
                          ctx.counters);
    }
  }

  Result<http::Headers> headers() override {
    auto token = inner_.get();
    if (!token) return token.error();
    http::Headers out{{"Authorization", token->header()}};
    if (management_) {
      auto management = management_->get();
      if (!management) return management.error();
      out.emplace_back("X-Databricks-Azure-Workspace-Resource-Id", resource_id_);
      out.emplace_back("X-Databricks-Azure-SP-Management-Token", management->value);
    }
    return out;
  }

  void invalidate() override {
    inner_.invalidate();
    if (management_) management_->invalidate();
  }

 private:
  const std::string resource_id_;
  CachedToken inner_;
  std::optional<CachedToken> management_;
};
}  // namespace

std::unique_ptr<CredentialsProvider> azure_provider(const AuthContext& ctx, const std::string& what,
                                                    AzureTokenFetch fetch) {
  return std::make_unique<AzureProvider>(ctx, what, std::move(fetch));
}

}  // namespace brickwork::auth

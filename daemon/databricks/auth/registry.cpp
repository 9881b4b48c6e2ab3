// The one place auth types are registered, in the order the default chain
// tries them: the Go SDK's DefaultCredentials (config/auth_default.go), minus
// the types brickwork does not offer (basic, databricks-cli, azure-devops-oidc,
// github-oidc-azure, azure-cli). docs/DATABRICKS.md "Authentication".
#include "daemon/databricks/auth/strategies.hpp"

namespace brickwork {

const std::vector<CredentialsStrategy>& credentials_strategies() {
  static const std::vector<CredentialsStrategy> kStrategies = {
      auth::pat(),         auth::oauth_m2m(),           auth::metadata_service(),
      auth::github_oidc(), auth::env_oidc(),            auth::file_oidc(),
      auth::azure_msi(),   auth::azure_client_secret(), auth::google_credentials(),
      auth::google_id(),
  };
  return kStrategies;
}

const CredentialsStrategy* find_credentials_strategy(std::string_view name) {
  for (const auto& s : credentials_strategies()) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

namespace auth {

std::string attr(const AuthAttributes& a, const std::string& name) {
  auto it = a.find(name);
  return it == a.end() ? std::string() : it->second;
}

std::string missing_of(const AuthAttributes& a, std::initializer_list<const char*> names) {
  std::string out;
  for (const char* n : names) {
    if (a.count(n) != 0) continue;
    out += std::string(out.empty() ? "" : " and ") + n;
  }
  return out;
}

namespace {
std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
bool host_in(const AuthAttributes& a, std::initializer_list<const char*> zones) {
  std::string host = lower(attr(a, "host"));
  const auto scheme = host.find("://");
  if (scheme != std::string::npos) host = host.substr(scheme + 3);
  host = host.substr(0, host.find_first_of(":/"));
  for (const char* z : zones) {
    const std::string zone = z;
    if (host.size() >= zone.size() && host.compare(host.size() - zone.size(), zone.size(), zone) == 0) {
      return true;
    }
  }
  return false;
}
}  // namespace

bool is_azure(const AuthAttributes& a) {
  if (a.count("azure_workspace_resource_id") != 0) return true;
  if (const std::string cloud = lower(attr(a, "cloud")); !cloud.empty()) return cloud == "azure";
  return host_in(a, {".azuredatabricks.net", ".databricks.azure.us", ".databricks.azure.cn"});
}

bool is_gcp(const AuthAttributes& a) {
  if (const std::string cloud = lower(attr(a, "cloud")); !cloud.empty()) return cloud == "gcp";
  return host_in(a, {".gcp.databricks.com"});
}

}  // namespace auth
}  // namespace brickwork

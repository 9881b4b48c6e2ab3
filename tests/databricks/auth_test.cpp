// Databricks unified authentication: how the attributes resolve to an auth
// type (as the SDKs do), and each auth type against the simulator's identity
// providers, with tokens that expire during the test.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "config/config.hpp"
#include "daemon/databricks/client.hpp"
#include "daemon/databricks/credentials.hpp"
#include "daemon/databricks/lakebase.hpp"
#include "devstack/simulator.hpp"

namespace brickwork {
namespace {

using namespace std::chrono_literals;
using Env = std::map<std::string, std::string>;

EnvLookup lookup(Env env) {
  return [env = std::move(env)](const std::string& n) -> std::optional<std::string> {
    auto it = env.find(n);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
}

Result<ResolvedDatabricksConfig> resolve(const Env& env, DatabricksConfig c = {}) {
  return resolve_databricks_config(c, lookup(env));
}

TEST(AuthResolve, RegistryAndConfigAgreeOnTheAuthTypes) {
  std::set<std::string> registered;
  for (const auto& s : credentials_strategies()) registered.insert(s.name);
  const auto& known = databricks_auth_types();
  EXPECT_EQ(registered, std::set<std::string>(known.begin(), known.end()));
}

TEST(AuthResolve, EachAuthTypeDetectedFromItsVariables) {
  const std::string azure_host = "https://adb-1.2.azuredatabricks.net";
  const std::string gcp_host = "https://1.2.gcp.databricks.com";
  const std::string aws_host = "https://dbc-1.cloud.databricks.com";
  struct Case {
    Env env;
    std::string expected;
  };
  const Case cases[] = {
      {{{"DATABRICKS_HOST", aws_host}, {"DATABRICKS_TOKEN", "dapi"}}, "pat"},
      {{{"DATABRICKS_HOST", aws_host}, {"DATABRICKS_CLIENT_ID", "c"}, {"DATABRICKS_CLIENT_SECRET", "s"}},
       "oauth-m2m"},
      {{{"DATABRICKS_HOST", aws_host}, {"DATABRICKS_METADATA_SERVICE_URL", "http://localhost:1/t"}},
       "metadata-service"},
      {{{"DATABRICKS_HOST", aws_host},
        {"ACTIONS_ID_TOKEN_REQUEST_URL", "https://gh/x?a=1"},
        {"ACTIONS_ID_TOKEN_REQUEST_TOKEN", "t"},
        {"DATABRICKS_CLIENT_ID", "c"}},
       "github-oidc"},
      {{{"DATABRICKS_HOST", aws_host}, {"DATABRICKS_OIDC_TOKEN", "jwt"}, {"DATABRICKS_CLIENT_ID", "c"}},
       "env-oidc"},
      {{{"DATABRICKS_HOST", aws_host}, {"DATABRICKS_OIDC_TOKEN_ENV", "MY_JWT"}, {"MY_JWT", "jwt"}},
       "env-oidc"},
      {{{"DATABRICKS_HOST", aws_host}, {"DATABRICKS_OIDC_TOKEN_FILEPATH", "/var/run/token"}},
       "file-oidc"},
      {{{"DATABRICKS_HOST", azure_host}, {"ARM_USE_MSI", "true"}}, "azure-msi"},
      {{{"DATABRICKS_HOST", azure_host},
        {"ARM_CLIENT_ID", "a"},
        {"ARM_CLIENT_SECRET", "s"},
        {"ARM_TENANT_ID", "t"}},
       "azure-client-secret"},
      {{{"DATABRICKS_HOST", gcp_host}, {"GOOGLE_CREDENTIALS", "{}"}}, "google-credentials"},
      {{{"DATABRICKS_HOST", gcp_host}, {"DATABRICKS_GOOGLE_SERVICE_ACCOUNT", "sa@p.iam"}},
       "google-id"},
  };
  for (const Case& c : cases) {
    auto r = resolve(c.env);
    ASSERT_TRUE(r.ok()) << c.expected << ": " << r.error().message;
    EXPECT_EQ(r->auth_type, c.expected);
  }
}

TEST(AuthResolve, CloudSpecificTypesNeedThatCloud) {
  // The issue's report: ARM_* set, an AWS-looking host: not Azure, so the SDKs
  // do not use the Entra service principal; DATABRICKS_CLOUD says otherwise.
  Env env{{"DATABRICKS_HOST", "https://dbc-1.cloud.databricks.com"},
          {"ARM_CLIENT_ID", "a"},
          {"ARM_CLIENT_SECRET", "arm-secret-value"},
          {"ARM_TENANT_ID", "t"}};
  auto r = resolve(env);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "no_credentials");
  EXPECT_NE(r.error().message.find("azure_client_secret=***"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(r.error().message.find("arm-secret-value"), std::string::npos);
  env["DATABRICKS_CLOUD"] = "azure";
  auto azure = resolve(env);
  ASSERT_TRUE(azure.ok()) << azure.error().message;
  EXPECT_EQ(azure->auth_type, "azure-client-secret");
}

TEST(AuthResolve, NamedAuthTypeSaysWhatIsMissingWithoutSecrets) {
  DatabricksConfig c;
  c.host = "https://adb-1.2.azuredatabricks.net";
  c.auth_type = "azure-client-secret";
  c.token = "dapi-very-secret";
  auto r = resolve({{"ARM_CLIENT_ID", "app"}}, c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "no_credentials");
  const std::string& m = r.error().message;
  EXPECT_NE(m.find("needs azure_client_secret and azure_tenant_id"), std::string::npos) << m;
  EXPECT_NE(m.find("azure_client_id=app"), std::string::npos) << m;
  EXPECT_NE(m.find("Env: ARM_CLIENT_ID"), std::string::npos) << m;
  EXPECT_EQ(m.find("dapi-very-secret"), std::string::npos) << m;

  c.auth_type = "azure-cli";
  auto unknown = resolve({}, c);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, "unsupported_auth");
  EXPECT_NE(unknown.error().message.find("azure-msi"), std::string::npos);
}

TEST(AuthResolve, TwoMethodsWithoutAuthTypeIsAmbiguous) {
  Env env{{"DATABRICKS_HOST", "https://adb-1.2.azuredatabricks.net"},
          {"DATABRICKS_TOKEN", "dapi-secret"},
          {"ARM_USE_MSI", "true"}};
  auto r = resolve(env);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "ambiguous_credentials");
  EXPECT_NE(r.error().message.find("more than one authorization method configured: azure and pat"),
            std::string::npos)
      << r.error().message;
  EXPECT_EQ(r.error().message.find("dapi-secret"), std::string::npos);
  DatabricksConfig c;
  c.auth_type = "azure-msi";
  auto chosen = resolve(env, c);
  ASSERT_TRUE(chosen.ok()) << chosen.error().message;
  EXPECT_EQ(chosen->auth_type, "azure-msi");
}

TEST(AuthResolve, ProfileFromTheConfigNamesTheFileSection) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("bw-auth-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / ".databrickscfg")
      << "[DEFAULT]\nhost = https://d.cloud.databricks.com\ntoken = d\n"
         "[azure-prod]\nhost = https://adb-9.9.azuredatabricks.net\nazure_use_msi = true\n"
         "azure_client_id = user-assigned\nauth_type = azure-msi\n";
  DatabricksConfig c;
  c.profile = "azure-prod";
  auto r = resolve({{"HOME", dir.string()}}, c);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->auth_type, "azure-msi");
  EXPECT_EQ(r->profile, "azure-prod");
  EXPECT_EQ(r->attr("azure_client_id"), "user-assigned");
  EXPECT_EQ(describe_auth(*r), "https://adb-9.9.azuredatabricks.net (auth_type azure-msi, profile azure-prod)");
}

// ------------------------------------------------ each auth type, end to end

struct AuthTypeTest : ::testing::Test {
  void SetUp() override {
    SimulatorOptions o;
    o.identity.enabled = true;
    o.identity.token_ttl = 2s;  // renewed once less than 1 s is left
    o.jobs[101].name = "extract";
    sim = std::make_unique<DatabricksSimulator>(o);
    ASSERT_TRUE(sim->start().ok());
    env = sim->identity_environment();
    // Each test names the one provider it uses.
    env.erase("DATABRICKS_METADATA_SERVICE_URL");
    env.erase("ACTIONS_ID_TOKEN_REQUEST_URL");
  }

  // Calls the workspace across two token lifetimes; the provider's tokens of
  // `kind` are fetched once per half-life, and every call succeeds.
  void exercise(const std::string& auth_type, const std::string& kind, DatabricksConfig cfg = {}) {
    cfg.host = sim->base_url();
    DatabricksClientOptions o;
    o.backoff_initial = 10ms;
    o.backoff_max = 100ms;
    o.env = lookup(env);
    o.counters = counters;
    auto api = make_databricks_api(cfg, o);
    ASSERT_TRUE(api.ok()) << api.error().message;
    EXPECT_EQ((*api)->auth_type(), auth_type);
    for (int i = 0; i < 3; ++i) {
      auto r = (*api)->find_jobs_by_name("extract");
      ASSERT_TRUE(r.ok()) << r.error().message;
    }
    EXPECT_EQ(sim->stats().identity_tokens[kind], 1);
    std::this_thread::sleep_for(2500ms);  // the first token has expired
    for (int i = 0; i < 3; ++i) {
      auto r = (*api)->find_jobs_by_name("extract");
      ASSERT_TRUE(r.ok()) << r.error().message;
    }
    EXPECT_EQ(sim->stats().identity_tokens[kind], 2);
    EXPECT_EQ(sim->stats().unauthorized, 0);
    // A Lakebase credential request goes with the same cached token: past
    // authentication (this simulator has no instance: 404), nothing fetched.
    auto lakebase = make_lakebase_credentials(**api, LakebaseConfig{"instance-1", "", ""}, "test");
    auto password = lakebase->password();
    ASSERT_FALSE(password.ok());
    EXPECT_NE(password.error().message.find("no database instance is simulated"), std::string::npos)
        << password.error().message;
    EXPECT_EQ(sim->stats().identity_tokens[kind], 2);
    EXPECT_EQ(sim->stats().unauthorized, 0);
  }

  std::unique_ptr<DatabricksSimulator> sim;
  Env env;
  std::shared_ptr<DatabricksClientCounters> counters = std::make_shared<DatabricksClientCounters>();
};

TEST_F(AuthTypeTest, AzureClientSecretWithManagementToken) {
  env["ARM_CLIENT_ID"] = "sim-azure-sp";
  env["ARM_CLIENT_SECRET"] = "sim-azure-secret";
  env["ARM_TENANT_ID"] = "sim-tenant";
  env["DATABRICKS_AZURE_RESOURCE_ID"] =
      "/subscriptions/s/resourceGroups/g/providers/Microsoft.Databricks/workspaces/w";
  exercise("azure-client-secret", "entra");
  EXPECT_EQ(sim->stats().identity_tokens["entra-management"], 2);
  EXPECT_GE(sim->stats().management_headers, 6);
}

TEST_F(AuthTypeTest, AzureClientSecretWrongSecretFailsWithoutPrintingIt) {
  env["ARM_CLIENT_ID"] = "sim-azure-sp";
  env["ARM_CLIENT_SECRET"] = "not-the-secret";
  env["ARM_TENANT_ID"] = "sim-tenant";
  env["DATABRICKS_CLOUD"] = "azure";
  DatabricksClientOptions o;
  o.env = lookup(env);
  DatabricksConfig cfg;
  cfg.host = sim->base_url();
  auto api = make_databricks_api(cfg, o);
  ASSERT_TRUE(api.ok()) << api.error().message;
  auto r = (*api)->find_jobs_by_name("extract");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "invalid_client");
  EXPECT_EQ(r.error().message.find("not-the-secret"), std::string::npos);
}

TEST_F(AuthTypeTest, AzureMsi) {
  env["ARM_USE_MSI"] = "true";
  env["DATABRICKS_CLOUD"] = "azure";
  exercise("azure-msi", "imds");
}

TEST_F(AuthTypeTest, MetadataService) {
  env["DATABRICKS_METADATA_SERVICE_URL"] = sim->identity_environment().at("DATABRICKS_METADATA_SERVICE_URL");
  exercise("metadata-service", "metadata-service");
}

TEST_F(AuthTypeTest, GithubOidc) {
  env["ACTIONS_ID_TOKEN_REQUEST_URL"] = sim->identity_environment().at("ACTIONS_ID_TOKEN_REQUEST_URL");
  env["DATABRICKS_CLIENT_ID"] = "sim-federated-sp";
  exercise("github-oidc", "token-exchange");
  EXPECT_EQ(sim->stats().identity_tokens["github-id-token"], 2);
}

TEST_F(AuthTypeTest, EnvOidcReadsTheVariableAtEachExchange) {
  env["DATABRICKS_CLIENT_ID"] = "sim-federated-sp";
  env["DATABRICKS_OIDC_TOKEN"] = sim->issue_id_token("system:serviceaccount:jobs:brickwork", 1h);
  exercise("env-oidc", "token-exchange");
}

TEST_F(AuthTypeTest, FileOidcWithAnExpiringProjectedToken) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("bw-oidc-token-" + std::to_string(::getpid()));
  // The kubelet's projected token expires too: rewritten between the calls.
  std::ofstream(path) << sim->issue_id_token("system:serviceaccount:jobs:brickwork", 2s) << "\n";
  std::thread rotate([&] {
    std::this_thread::sleep_for(1500ms);
    std::ofstream(path) << sim->issue_id_token("system:serviceaccount:jobs:brickwork", 10s);
  });
  DatabricksConfig cfg;
  cfg.auth_type = "file-oidc";
  cfg.client_id = "sim-federated-sp";
  env["DATABRICKS_OIDC_TOKEN_FILEPATH"] = path.string();
  exercise("file-oidc", "token-exchange", cfg);
  rotate.join();
  std::filesystem::remove(path);
}

TEST_F(AuthTypeTest, TokenExchangeRefusesAnIdTokenItDidNotSign) {
  env["DATABRICKS_CLIENT_ID"] = "sim-federated-sp";
  env["DATABRICKS_OIDC_TOKEN"] =
      "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDAsImF1ZCI6IngifQ.c2lnbmF0dXJl";
  DatabricksClientOptions o;
  o.env = lookup(env);
  DatabricksConfig cfg;
  cfg.host = sim->base_url();
  auto api = make_databricks_api(cfg, o);
  ASSERT_TRUE(api.ok()) << api.error().message;
  auto r = (*api)->find_jobs_by_name("extract");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "invalid_grant");
}

TEST_F(AuthTypeTest, GoogleCredentials) {
  env["GOOGLE_CREDENTIALS"] = sim->google_service_account_key();
  env["DATABRICKS_CLOUD"] = "gcp";
  exercise("google-credentials", "google-id-token");
  EXPECT_EQ(sim->stats().identity_tokens["google-access-token"], 2);
}

TEST_F(AuthTypeTest, GoogleIdImpersonatesFromGceMetadata) {
  env["DATABRICKS_GOOGLE_SERVICE_ACCOUNT"] = "brickwork@sim-project.iam.gserviceaccount.com";
  env["DATABRICKS_CLOUD"] = "gcp";
  exercise("google-id", "iam-id-token");
  EXPECT_EQ(sim->stats().identity_tokens["iam-access-token"], 2);
  EXPECT_GE(sim->stats().identity_tokens["gce"], 1);
}

}  // namespace
}  // namespace brickwork

namespace brickwork {
namespace {

TEST(SimulatorIdentityFile, IdentityKeyTurnsTheProvidersOn) {
  auto on = parse_simulator_jobs("jobs: []\nidentity: {token_ttl: 30s}\n");
  ASSERT_TRUE(on.ok()) << on.error().message;
  EXPECT_TRUE(on->identity.enabled);
  EXPECT_EQ(on->identity.token_ttl, std::chrono::seconds(30));
  auto off = parse_simulator_jobs("jobs: []\n");
  ASSERT_TRUE(off.ok()) << off.error().message;
  EXPECT_FALSE(off->identity.enabled);
}

}  // namespace
}  // namespace brickwork

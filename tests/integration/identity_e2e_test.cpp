// Every auth type runs a workflow to success against the simulator's identity
// providers, with tokens that live 2 s while the job runs 3 s: the daemon
// renews them mid-workflow. `check` and `check --connect` name the auth type
// and never print a secret.
#include <cstdlib>

#include "tests/integration/harness.hpp"

namespace brickwork::testing {
namespace {

// Sets variables for the test's lifetime, then puts the old values back.
class ScopedEnv {
 public:
  void set(const std::string& name, const std::string& value) {
    if (saved_.count(name) == 0) {
      const char* old = std::getenv(name.c_str());
      saved_[name] = old == nullptr ? std::nullopt : std::optional<std::string>(old);
    }
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() {
    for (const auto& [name, old] : saved_) {
      if (old) {
        ::setenv(name.c_str(), old->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

struct AuthCase {
  std::string auth_type;
  std::string token_kind;  // SimulatorStats::identity_tokens key of the workspace token
};

std::ostream& operator<<(std::ostream& out, const AuthCase& c) { return out << c.auth_type; }

class Identity : public EndToEndTest, public ::testing::WithParamInterface<AuthCase> {
 protected:
  void start_identity_stack() {
    LocalStackOptions options;
    options.simulator.jobs = {{101, sim_job("work", 3000, {{"rows", 7}})}};
    options.simulator.identity.enabled = true;
    options.simulator.identity.token_ttl = 2s;
    options.simulator.oauth_client_id = "sp-id";
    options.simulator.oauth_client_secret = "sp-secret-value";
    options.simulator.oauth_token_ttl = 2s;
    auto stack = LocalStack::start(options);
    ASSERT_TRUE(stack) << stack.error().message;
    stack_ = std::move(*stack);
    dir_ = std::filesystem::temp_directory_path() /
           ("brickwork-e2e-" + std::to_string(getpid()) + "-identity-" + std::to_string(counter_++));
    std::filesystem::create_directories(dir_);
  }

  // The variables (and files) that configure `auth_type` against the simulator.
  std::map<std::string, std::string> identity_env(const std::string& auth_type) {
    DatabricksSimulator& sim = stack_->simulator();
    const auto all = sim.identity_environment();
    std::map<std::string, std::string> env{{"DATABRICKS_AUTH_TYPE", auth_type}};
    auto from_sim = [&](const char* name) { env[name] = all.at(name); };
    if (auth_type == "pat") {
      env["DATABRICKS_TOKEN"] = LocalStack::kDatabricksToken;
    } else if (auth_type == "oauth-m2m") {
      env["DATABRICKS_CLIENT_ID"] = "sp-id";
      env["DATABRICKS_CLIENT_SECRET"] = "sp-secret-value";
    } else if (auth_type == "azure-client-secret") {
      from_sim("AZURE_AUTHORITY_HOST");
      env["ARM_TENANT_ID"] = "sim-tenant";
      env["ARM_CLIENT_ID"] = "sim-azure-sp";
      env["ARM_CLIENT_SECRET"] = "sim-azure-secret";
      env["DATABRICKS_AZURE_RESOURCE_ID"] =
          "/subscriptions/s/resourceGroups/g/providers/Microsoft.Databricks/workspaces/w";
    } else if (auth_type == "azure-msi") {
      from_sim("AZURE_POD_IDENTITY_AUTHORITY_HOST");
      env["ARM_USE_MSI"] = "true";
      env["DATABRICKS_CLOUD"] = "azure";
    } else if (auth_type == "metadata-service") {
      from_sim("DATABRICKS_METADATA_SERVICE_URL");
    } else if (auth_type == "github-oidc") {
      from_sim("ACTIONS_ID_TOKEN_REQUEST_URL");
      from_sim("ACTIONS_ID_TOKEN_REQUEST_TOKEN");
      env["DATABRICKS_CLIENT_ID"] = "sim-federated-sp";
    } else if (auth_type == "env-oidc") {
      env["DATABRICKS_CLIENT_ID"] = "sim-federated-sp";
      env["DATABRICKS_OIDC_TOKEN"] = sim.issue_id_token("system:serviceaccount:ci:brickwork", 1h);
    } else if (auth_type == "file-oidc") {
      const auto path = dir_ / "projected-token";
      std::ofstream(path) << sim.issue_id_token("system:serviceaccount:jobs:brickwork", 1h);
      env["DATABRICKS_CLIENT_ID"] = "sim-federated-sp";
      env["DATABRICKS_OIDC_TOKEN_FILEPATH"] = path.string();
    } else if (auth_type == "google-credentials") {
      env["GOOGLE_CREDENTIALS"] = sim.google_service_account_key();
      env["DATABRICKS_CLOUD"] = "gcp";
    } else if (auth_type == "google-id") {
      from_sim("GCE_METADATA_HOST");
      from_sim("BRICKWORK_GOOGLE_IAM_ENDPOINT");
      env["DATABRICKS_GOOGLE_SERVICE_ACCOUNT"] = "brickwork@sim-project.iam.gserviceaccount.com";
      env["DATABRICKS_CLOUD"] = "gcp";
    }
    return env;
  }

  // The stack's configuration without the PAT: the identity comes from the
  // environment, as the SDKs read it.
  void config_without_token(const std::string& workflows) {
    std::string yaml = stack_->config_yaml(workflows, "e2e");
    const std::string line = std::string("  token: \"") + LocalStack::kDatabricksToken + "\"\n";
    const size_t at = yaml.find(line);
    ASSERT_NE(at, std::string::npos);
    yaml.erase(at, line.size());
    yaml_ = yaml;
    load_yaml();
  }

  ScopedEnv env_;
};

TEST_P(Identity, WorkflowSucceedsWhileItsTokensExpire) {
  const AuthCase& c = GetParam();
  start_identity_stack();
  for (const auto& [name, value] : identity_env(c.auth_type)) env_.set(name, value);
  config_without_token(R"(  one:
    steps:
      - name: work
        run_job: {job_id: 101}
        poll_every: 300ms
)");
  start_daemon();
  start_workflow("id-" + c.auth_type, "one");
  auto done = wait_terminal("id-" + c.auth_type, 60s);
  ASSERT_TRUE(done);
  ASSERT_EQ(done->status, WorkflowStatus::kSucceeded)
      << (done->steps[0].error ? done->steps[0].error->message : "");
  EXPECT_EQ(done->steps[0].output->at("rows"), json::value(7));
  const SimulatorStats stats = stack_->simulator().stats();
  if (c.auth_type == "oauth-m2m") {
    EXPECT_GE(stats.token_calls, 2);  // renewed while the job ran
  } else if (!c.token_kind.empty()) {
    auto it = stats.identity_tokens.find(c.token_kind);
    ASSERT_NE(it, stats.identity_tokens.end()) << c.token_kind;
    EXPECT_GE(it->second, 2) << "the token was not renewed while the job ran";
  }
  EXPECT_EQ(stats.unauthorized, 0);
  if (c.auth_type == "azure-client-secret") {
    EXPECT_GT(stats.management_headers, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(
    AuthTypes, Identity,
    ::testing::Values(AuthCase{"pat", ""}, AuthCase{"oauth-m2m", ""},
                      AuthCase{"azure-client-secret", "entra"}, AuthCase{"azure-msi", "imds"},
                      AuthCase{"metadata-service", "metadata-service"},
                      AuthCase{"github-oidc", "token-exchange"},
                      AuthCase{"env-oidc", "token-exchange"},
                      AuthCase{"file-oidc", "token-exchange"},
                      AuthCase{"google-credentials", "google-id-token"},
                      AuthCase{"google-id", "iam-id-token"}),
    [](const ::testing::TestParamInfo<AuthCase>& info) {
      std::string name = info.param.auth_type;
      for (char& ch : name) {
        if (ch == '-') ch = '_';
      }
      return name;
    });

CommandResult run_with(const std::map<std::string, std::string>& env, const std::string& args) {
  std::string prefix = "env";
  for (const auto& [name, value] : env) {
    std::string quoted;
    for (char ch : value) quoted += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
    prefix += " " + name + "='" + quoted + "'";
  }
  return run_command(prefix + " " + std::string(BRICKWORK_BINARY) + " " + args + " 2>&1");
}

class IdentityCli : public Identity {};

TEST_F(IdentityCli, CheckNamesTheAuthTypeAndConnectProvesIt) {
  start_identity_stack();
  config_without_token("  one:\n    steps:\n      - name: work\n        run_job: {job_id: 101}\n");
  const std::string path = (dir_ / "identity.yaml").string();
  std::ofstream(path) << yaml_;
  const auto env = identity_env("azure-client-secret");

  auto checked = run_with(env, "check -c " + path);
  EXPECT_EQ(checked.exit_code, 0) << checked.out;
  EXPECT_NE(checked.out.find("(auth_type azure-client-secret)"), std::string::npos) << checked.out;
  auto connected = run_with(env, "check --connect -c " + path);
  EXPECT_EQ(connected.exit_code, 0) << connected.out;
  EXPECT_NE(connected.out.find("databricks: ok (" + stack_->simulator().base_url() +
                               " (auth_type azure-client-secret))"),
            std::string::npos)
      << connected.out;
  auto as_json = run_with(env, "check --json -c " + path);
  ASSERT_EQ(as_json.exit_code, 0) << as_json.out;
  EXPECT_EQ(json::parse(as_json.out).as_object().at("databricks").as_object().at("auth_type"),
            json::value("azure-client-secret"));

  // A wrong secret: --connect fails at the token endpoint, naming why.
  auto wrong = env;
  wrong["ARM_CLIENT_SECRET"] = "wrong-secret-value";
  auto refused = run_with(wrong, "check --connect -c " + path);
  EXPECT_EQ(refused.exit_code, 1) << refused.out;
  EXPECT_NE(refused.out.find("databricks: FAILED"), std::string::npos) << refused.out;
  EXPECT_NE(refused.out.find("invalid_client"), std::string::npos) << refused.out;

  // Incomplete: what was found and what is missing.
  auto incomplete = env;
  incomplete.erase("ARM_TENANT_ID");
  auto missing = run_with(incomplete, "check -c " + path);
  EXPECT_EQ(missing.exit_code, 1) << missing.out;
  EXPECT_NE(missing.out.find("needs azure_tenant_id"), std::string::npos) << missing.out;
  EXPECT_NE(missing.out.find("azure_client_secret=***"), std::string::npos) << missing.out;

  for (const auto* out : {&checked.out, &connected.out, &as_json.out, &refused.out, &missing.out}) {
    EXPECT_EQ(out->find("sim-azure-secret"), std::string::npos) << *out;
    EXPECT_EQ(out->find("wrong-secret-value"), std::string::npos) << *out;
  }
}

}  // namespace
}  // namespace brickwork::testing

// Several workspaces (issue 20): one workflow runs steps in two workspaces,
// each its own simulator, one reached with a PAT (`databricks:`, the
// default) and one with OAuth M2M (`workspaces.eu`). Each simulator must see
// the calls of its own steps only: starts, polls and cancels alike.
#include "tests/integration/harness.hpp"

namespace brickwork::testing {
namespace {

constexpr const char* kEuClientId = "sp-eu";
constexpr const char* kEuClientSecret = "sp-eu-secret-value";

class TwoWorkspaces : public EndToEndTest {
 protected:
  // The stack's simulator is the default workspace; `eu_` is the second.
  void start_two_workspaces(const std::string& workflows) {
    start_stack({{101, sim_job("here", 300, {{"rows", 7}})}});
    SimulatorOptions eu;
    eu.jobs = {{202, sim_job("there", 300, {}, "SUCCESS", /*emit_event=*/false)},
               {203, sim_job("long", 600'000, {}, "SUCCESS", /*emit_event=*/false)}};
    eu.default_job = sim_job("submitted", 300, {}, "SUCCESS", /*emit_event=*/false);
    eu.oauth_client_id = kEuClientId;
    eu.oauth_client_secret = kEuClientSecret;
    eu_ = std::make_unique<DatabricksSimulator>(eu);
    ASSERT_TRUE(eu_->start());
    std::string yaml = stack_->config_yaml(workflows, "e2e");
    const size_t at = yaml.find("workflows:\n");
    ASSERT_NE(at, std::string::npos);
    yaml.insert(at, "workspaces:\n  eu:\n    host: \"" + eu_->base_url() +
                        "\"\n    auth_type: oauth-m2m\n    client_id: \"" + kEuClientId +
                        "\"\n    client_secret: \"" + kEuClientSecret + "\"\n");
    yaml_ = yaml;
    load_yaml();
  }

  void TearDown() override {
    EndToEndTest::TearDown();
    if (eu_) eu_->stop();
  }

  // The job ids of the runs a simulator created (0: runs/submit).
  static std::multiset<int64_t> job_ids(const SimulatorStats& stats) {
    std::multiset<int64_t> ids;
    for (const auto& [id, run] : stats.runs) ids.insert(run.job_id);
    return ids;
  }

  std::unique_ptr<DatabricksSimulator> eu_;
};

TEST_F(TwoWorkspaces, OneWorkflowRunsEachStepInItsOwnWorkspace) {
  start_two_workspaces(R"(  both:
    steps:
      - name: here
        run_job: {job_id: 101}
        poll_every: 300ms
      - name: there
        workspace: eu
        run_job:
          job_id: 202
          parameters: {rows: "{{ steps.here.output.rows }}"}
        completion: poll
        poll_every: 300ms
      - name: submitted
        workspace: eu
        depends_on: [here]
        submit_run:
          run_name: adhoc
          tasks: [{task_key: t, notebook_task: {notebook_path: /Shared/adhoc}}]
        completion: poll
        poll_every: 300ms
)");
  auto& daemon = start_daemon();
  start_workflow("two-1", "both");
  auto done = wait_terminal("two-1", 60s);
  ASSERT_TRUE(done);
  std::string errors;
  for (const auto& step : done->steps) {
    if (step.error) errors += step.name + ": " + step.error->message + "\n";
  }
  ASSERT_EQ(done->status, WorkflowStatus::kSucceeded) << errors;

  // The default workspace, with its PAT: only the first step's run.
  const SimulatorStats home = stack_->simulator().stats();
  EXPECT_EQ(job_ids(home), (std::multiset<int64_t>{101}));
  EXPECT_EQ(home.run_now_calls, 1);
  EXPECT_EQ(home.submit_calls, 0);
  EXPECT_EQ(home.token_calls, 0);  // a PAT needs no token
  EXPECT_EQ(home.unauthorized, 0);

  // The eu workspace, with OAuth M2M: the two other steps, polled there.
  const SimulatorStats eu = eu_->stats();
  EXPECT_EQ(job_ids(eu), (std::multiset<int64_t>{0, 202}));
  EXPECT_EQ(eu.run_now_calls, 1);
  EXPECT_EQ(eu.submit_calls, 1);
  EXPECT_GE(eu.get_calls, 2);   // each eu run was polled in eu
  EXPECT_GE(eu.token_calls, 1);  // its own identity
  EXPECT_EQ(eu.unauthorized, 0);
  for (const auto& [id, run] : eu.runs) {
    if (run.job_id != 202) continue;
    EXPECT_EQ(run.parameters.at("rows"), "7");  // an output of the other workspace
    EXPECT_EQ(run.parameters.at("brickwork_workflow_id"), "two-1");
  }

  // Metrics carry the workspace.
  const std::string metrics = daemon.daemon().context().metrics().exposition();
  EXPECT_NE(metrics.find(R"(brickwork_databricks_requests_total{code="200",endpoint="jobs/run-now",workspace="default"} 1)"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find(R"(brickwork_databricks_requests_total{code="200",endpoint="jobs/run-now",workspace="eu"} 1)"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find(R"(endpoint="oidc/v1/token",workspace="eu")"), std::string::npos)
      << metrics;
}

TEST_F(TwoWorkspaces, ARunIsCanceledInTheWorkspaceThatStartedIt) {
  start_two_workspaces(R"(  long:
    steps:
      - name: there
        workspace: eu
        run_job: {job_id: 203}
        completion: poll
        poll_every: 300ms
)");
  start_daemon();
  start_workflow("two-cancel", "long");
  ASSERT_TRUE(eventually([&] { return step_is("two-cancel", "there", StepStatus::kWaiting); }));
  send_command(json::object{{"type", "cancel"}, {"id", "two-cancel"}});
  auto done = wait_terminal("two-cancel", 60s);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kCanceled);
  ASSERT_TRUE(eventually([&] { return eu_->stats().cancel_calls >= 1; }));
  const SimulatorStats eu = eu_->stats();
  ASSERT_EQ(eu.runs.size(), 1u);
  EXPECT_TRUE(eu.runs.begin()->second.cancel_requested);
  EXPECT_EQ(stack_->simulator().stats().cancel_calls, 0);
  EXPECT_EQ(stack_->simulator().stats().requests, 0);  // nothing went to the default workspace
}

TEST_F(TwoWorkspaces, CheckNamesEachWorkspaceAndConnectProvesEach) {
  start_two_workspaces("  one:\n    steps:\n      - name: there\n        workspace: eu\n"
                       "        run_job: {job_id: 202}\n");
  const std::string path = (dir_ / "two.yaml").string();
  std::ofstream(path) << yaml_;
  const std::string binary = std::string(BRICKWORK_BINARY);
  auto checked = run_command(binary + " check -c " + path + " 2>&1");
  EXPECT_EQ(checked.exit_code, 0) << checked.out;
  EXPECT_NE(checked.out.find("databricks: " + stack_->simulator().base_url() + " (auth_type pat)"),
            std::string::npos)
      << checked.out;
  EXPECT_NE(checked.out.find("workspace eu: " + eu_->base_url() + " (auth_type oauth-m2m)"),
            std::string::npos)
      << checked.out;
  auto connected = run_command(binary + " check --connect -c " + path + " 2>&1");
  EXPECT_EQ(connected.exit_code, 0) << connected.out;
  EXPECT_NE(connected.out.find("databricks: ok (" + stack_->simulator().base_url() +
                               " (auth_type pat))"),
            std::string::npos)
      << connected.out;
  EXPECT_NE(connected.out.find("databricks (workspace eu): ok (" + eu_->base_url() +
                               " (auth_type oauth-m2m))"),
            std::string::npos)
      << connected.out;
  auto as_json = run_command(binary + " check --json -c " + path + " 2>/dev/null");
  ASSERT_EQ(as_json.exit_code, 0) << as_json.out;
  const json::object report = json::parse(as_json.out).as_object();
  EXPECT_EQ(report.at("workspaces").at("eu").at("auth_type"), json::value("oauth-m2m"));

  // A wrong secret of eu: --connect fails for eu alone.
  std::string wrong = yaml_;
  wrong.replace(wrong.find(kEuClientSecret), std::string(kEuClientSecret).size(),
                "not-the-eu-secret");
  std::ofstream(path) << wrong;
  auto refused = run_command(binary + " check --connect -c " + path + " 2>&1");
  EXPECT_EQ(refused.exit_code, 1) << refused.out;
  EXPECT_NE(refused.out.find("databricks: ok"), std::string::npos) << refused.out;
  EXPECT_NE(refused.out.find("databricks (workspace eu): FAILED"), std::string::npos)
      << refused.out;
  for (const auto* out : {&checked.out, &connected.out, &as_json.out, &refused.out}) {
    EXPECT_EQ(out->find(kEuClientSecret), std::string::npos) << *out;
    EXPECT_EQ(out->find("not-the-eu-secret"), std::string::npos) << *out;
    EXPECT_EQ(out->find(LocalStack::kDatabricksToken), std::string::npos) << *out;
  }
}

TEST_F(TwoWorkspaces, AnUnknownWorkspaceIsRefusedByCheckBeforeAnythingRuns) {
  start_two_workspaces("  one:\n    steps:\n      - name: a\n        run_job: {job_id: 101}\n");
  std::string yaml = yaml_ + "  typo:\n    steps:\n      - name: there\n        workspace: ue\n"
                             "        run_job: {job_id: 202}\n";
  const std::string path = (dir_ / "typo.yaml").string();
  std::ofstream(path) << yaml;
  auto checked = run_command(std::string(BRICKWORK_BINARY) + " check -c " + path + " 2>&1");
  EXPECT_EQ(checked.exit_code, 1) << checked.out;
  EXPECT_NE(checked.out.find("workflows.typo, step 'there': workspace: unknown workspace 'ue' "
                             "(configured: default, eu)"),
            std::string::npos)
      << checked.out;
}

TEST_F(TwoWorkspaces, AReloadNamingAWorkspaceTheDaemonDoesNotHaveIsRefused) {
  start_two_workspaces("  one:\n    steps:\n      - name: a\n        run_job: {job_id: 101}\n");
  InProcessDaemon& d = start_daemon();
  // The edited file adds workspace ap and a workflow using it: valid as a
  // file, but the running daemon has no client for ap until a restart.
  std::string yaml = yaml_;
  yaml.insert(yaml.find("workflows:\n"), "  ap: {host: \"https://adb-3.azuredatabricks.net\", token: t}\n");
  yaml += "  in_ap:\n    steps:\n      - name: there\n        workspace: ap\n"
          "        run_job: {job_id: 1}\n";
  LoadOptions load;
  load.steps = &StepRegistry::builtin();
  auto fresh = load_config_from_string(yaml, "reloaded.yaml", load);
  ASSERT_TRUE(fresh) << fresh.error().message;
  d.daemon().reload(std::make_shared<const Config>(std::move(*fresh)));
  const ConfigPtr now = d.daemon().context().config();
  EXPECT_EQ(now->workflows.count("in_ap"), 0u);
  EXPECT_EQ(now->workflows.count("one"), 1u);
}

}  // namespace
}  // namespace brickwork::testing

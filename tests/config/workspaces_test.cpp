// Several workspaces (issue 20): `workspaces:` beside `databricks:` (the
// default one), `workspace:` on steps and Lakebase credentials, and every
// error `brickwork check` gives for them.
#include <gtest/gtest.h>

#include "config/config.hpp"
#include "tests/config/with_steps.hpp"

namespace brickwork {
namespace {

const char* kWorkspacesSecret = R"(callbacks:
  secret: "0123456789abcdef-0123456789abcdef-secret"
)";

const char* kTwoWorkspaces = R"(databricks:
  host: https://adb-1.azuredatabricks.net
  token: dapi-default
workspaces:
  eu:
    host: https://adb-2.azuredatabricks.net/
    client_id: sp-eu
    client_secret: sp-eu-secret
    auth_type: oauth-m2m
    request_timeout: 20s
    limits: {"jobs/run-now": 5}
    max_in_flight: 8
    max_transfers: 2
  us:
    host: https://dbc-3.cloud.databricks.com
    profile: us-prod
)";

Result<Config> load_with_secret(const std::string& yaml) {
  return load_config_from_string(std::string(kWorkspacesSecret) + yaml, "test.yaml", with_steps());
}

std::string workspaces_error(const std::string& yaml) {
  auto c = load_with_secret(yaml);
  return c ? "ok" : c.error().message;
}

std::string one_step_workflow(const std::string& step_lines) {
  return "workflows:\n  w:\n    steps:\n      - name: a\n" + step_lines;
}

TEST(Workspaces, NamedWorkspacesBesideTheDefaultOne) {
  auto c = load_with_secret(std::string(kTwoWorkspaces) + one_step_workflow("        workspace: eu\n"
                                                            "        run_job: {job_id: 1}\n"
                                                            "      - name: b\n"
                                                            "        run_job: {job_id: 2}\n"));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_TRUE(c->has_default_workspace);
  EXPECT_EQ(c->databricks.host, "https://adb-1.azuredatabricks.net");
  ASSERT_EQ(c->workspaces.size(), 2u);
  const DatabricksConfig& eu = c->workspaces.at("eu");
  EXPECT_EQ(eu.host, "https://adb-2.azuredatabricks.net");
  EXPECT_EQ(eu.client_id, "sp-eu");
  EXPECT_EQ(eu.auth_type, "oauth-m2m");
  EXPECT_EQ(eu.request_timeout, Duration(std::chrono::seconds(20)));
  EXPECT_EQ(eu.limits, (std::map<std::string, double>{{"jobs/run-now", 5}}));
  EXPECT_EQ(eu.max_in_flight, 8);
  EXPECT_EQ(eu.max_transfers, 2);
  EXPECT_EQ(c->workspaces.at("us").profile, "us-prod");
  const WorkflowDefinition& w = c->workflows.at("w");
  EXPECT_EQ(w.steps[0].workspace, "eu");
  EXPECT_EQ(w.steps[1].workspace, "");  // the default workspace
  EXPECT_EQ(find_workspace(*c, "eu"), &eu);
  EXPECT_EQ(find_workspace(*c, ""), &c->databricks);
  EXPECT_EQ(find_workspace(*c, "default"), &c->databricks);
  EXPECT_EQ(find_workspace(*c, "nope"), nullptr);
}

TEST(Workspaces, AStepKeepsItsWorkspaceWhenItsDefinitionIsStored) {
  auto c = load_with_secret(std::string(kTwoWorkspaces) + one_step_workflow("        workspace: eu\n"
                                                            "        run_job: {job_id: 1}\n"));
  ASSERT_TRUE(c) << c.error().message;
  auto back = workflow_definition_from_json(to_json(c->workflows.at("w")));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->steps[0].workspace, "eu");
}

TEST(Workspaces, AnEntryNamedDefaultIsTheDefaultWorkspace) {
  auto c = load_with_secret(R"(workspaces:
  default: {host: https://adb-1.azuredatabricks.net, token: t}
  eu: {host: https://adb-2.azuredatabricks.net, token: u}
)" + one_step_workflow("        run_job: {job_id: 1}\n"));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_TRUE(c->has_default_workspace);
  EXPECT_EQ(c->databricks.host, "https://adb-1.azuredatabricks.net");
  EXPECT_EQ(c->workspaces.count("default"), 0u);
  EXPECT_EQ(c->workspaces.count("eu"), 1u);
}

TEST(Workspaces, DefaultGivenTwiceIsAnError) {
  const std::string e = workspaces_error(R"(databricks: {host: https://adb-1.azuredatabricks.net}
workspaces:
  default: {host: https://adb-2.azuredatabricks.net}
)");
  EXPECT_TRUE(text_has(e, "test.yaml:5:")) << e;
  EXPECT_TRUE(text_has(e, "workspaces.default")) << e;
  EXPECT_TRUE(text_has(e, "already given by databricks:")) << e;
}

TEST(Workspaces, WithoutADefaultEveryDatabricksStepNamesItsWorkspace) {
  const std::string only = "workspaces:\n  eu: {host: https://adb-2.azuredatabricks.net}\n";
  auto named = load_with_secret(only + one_step_workflow("        workspace: eu\n        run_job: {job_id: 1}\n"));
  ASSERT_TRUE(named) << named.error().message;
  EXPECT_FALSE(named->has_default_workspace);
  EXPECT_EQ(find_workspace(*named, ""), nullptr);

  const std::string e = workspaces_error(only + one_step_workflow("        run_job: {job_id: 1}\n"));
  EXPECT_TRUE(text_has(e, "workflows.w, step 'a'")) << e;
  EXPECT_TRUE(text_has(e, "names no workspace, and there is no default workspace")) << e;
  EXPECT_TRUE(text_has(e, "one of eu")) << e;
  // A step that does not call Databricks needs none.
  EXPECT_EQ(workspaces_error(only + one_step_workflow("        sleep: {for: 1s}\n")), "ok");
}

TEST(Workspaces, AnUnknownWorkspaceOfAStepIsRefusedAtLoad) {
  const std::string e = workspaces_error(std::string(kTwoWorkspaces) +
                                 one_step_workflow("        workspace: eu-west\n"
                                               "        run_job: {job_name: nightly}\n"));
  EXPECT_TRUE(text_has(e, "test.yaml:22:")) << e;
  EXPECT_TRUE(text_has(e, "workflows.w, step 'a'")) << e;
  EXPECT_TRUE(text_has(e, "unknown workspace 'eu-west' (configured: default, eu, us)")) << e;
  // Every Databricks step type is checked, not only runs.
  for (const char* action : {"sql: {statement: \"SELECT 1\", warehouse_id: w}",
                             "submit_run: {tasks: [{task_key: t, notebook_task: {notebook_path: /n}}]}",
                             "upload: {path: /Volumes/c/s/v/f.txt, content: x}"}) {
    const std::string each = workspaces_error(std::string(kTwoWorkspaces) +
                                      one_step_workflow(std::string("        workspace: nope\n        ") +
                                                    action + "\n"));
    EXPECT_TRUE(text_has(each, "unknown workspace 'nope'")) << action << ": " << each;
  }
}

TEST(Workspaces, WorkspaceOnAStepThatCallsNoDatabricksIsAnError) {
  const std::string e = workspaces_error(std::string(kTwoWorkspaces) +
                                 one_step_workflow("        workspace: eu\n        sleep: {for: 1s}\n"));
  EXPECT_TRUE(text_has(e, "workspace applies only to steps that call Databricks; sleep does not"))
      << e;
}

TEST(Workspaces, MalformedWorkspaceNamesAreErrors) {
  EXPECT_TRUE(text_has(workspaces_error(std::string(kTwoWorkspaces) +
                                one_step_workflow("        workspace: \"eu west\"\n"
                                              "        run_job: {job_id: 1}\n")),
                       "expected a workspace name"));
  EXPECT_TRUE(text_has(workspaces_error("workspaces:\n  \"eu west\": {host: https://a.b}\n"),
                       "a workspace name is 1-100 characters"));
  EXPECT_TRUE(text_has(workspaces_error("workspaces: [eu]\n"), "workspaces"));
}

TEST(Workspaces, EachWorkspaceIsCheckedAsDatabricksIs) {
  const std::string no_host = workspaces_error("workspaces:\n  eu: {token: t}\n");
  EXPECT_TRUE(text_has(no_host, "workspaces.eu.host")) << no_host;
  EXPECT_TRUE(text_has(no_host, "required for a named workspace")) << no_host;
  const std::string typo = workspaces_error("workspaces:\n  eu: {host: https://a.b, hots: x}\n");
  EXPECT_TRUE(text_has(typo, "workspaces.eu.hots")) << typo;
  const std::string auth =
      workspaces_error("workspaces:\n  eu: {host: https://a.b, auth_type: azure-cli}\n");
  EXPECT_TRUE(text_has(auth, "workspaces.eu.auth_type")) << auth;
  EXPECT_TRUE(text_has(auth, "unknown auth type 'azure-cli'")) << auth;
  const std::string half = workspaces_error("workspaces:\n  eu: {host: https://a.b, client_id: x}\n");
  EXPECT_TRUE(text_has(half, "go together")) << half;
  const std::string remote_http = workspaces_error("workspaces:\n  eu: {host: http://example.com}\n");
  EXPECT_TRUE(text_has(remote_http, "workspaces.eu.host")) << remote_http;
  const std::string limits =
      workspaces_error("workspaces:\n  eu: {host: https://a.b, limits: {\"jobs/runnow\": 1}}\n");
  EXPECT_TRUE(text_has(limits, "workspaces.eu.limits.jobs/runnow")) << limits;
  const std::string slots = workspaces_error("workspaces:\n  eu: {host: https://a.b, max_in_flight: 0}\n");
  EXPECT_TRUE(text_has(slots, "workspaces.eu.max_in_flight")) << slots;
  // A secret is never repeated in a message.
  const std::string both =
      workspaces_error("workspaces:\n  eu: {host: https://a.b, token: tok-SECRET, client_id: i, "
               "client_secret: cs-SECRET}\n");
  EXPECT_TRUE(text_has(both, "either token or client_id")) << both;
  EXPECT_FALSE(text_has(both, "SECRET")) << both;
}

TEST(Workspaces, LakebaseCredentialsNameTheirWorkspace) {
  auto c = load_with_secret(std::string(kTwoWorkspaces) +
                "postgres:\n  url: postgresql://u@h/db\n  lakebase: {instance: i, workspace: eu}\n"
                "databases:\n  sales:\n    url: postgresql://u@h/s\n"
                "    lakebase: {instance: j, workspace: default}\n");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->postgres.lakebase->workspace, "eu");
  EXPECT_EQ(find_workspace(*c, c->databases.at("sales").lakebase->workspace), &c->databricks);

  const std::string unknown =
      workspaces_error(std::string(kTwoWorkspaces) +
               "postgres:\n  url: postgresql://u@h/db\n  lakebase: {instance: i, workspace: ap}\n");
  EXPECT_TRUE(text_has(unknown, "postgres.lakebase.workspace")) << unknown;
  EXPECT_TRUE(text_has(unknown, "unknown workspace 'ap'")) << unknown;
  const std::string database =
      workspaces_error(std::string(kTwoWorkspaces) +
               "databases:\n  sales:\n    url: postgresql://u@h/s\n"
               "    lakebase: {instance: j, workspace: ap}\n");
  EXPECT_TRUE(text_has(database, "databases.sales.lakebase.workspace")) << database;
  const std::string no_default =
      workspaces_error("workspaces:\n  eu: {host: https://a.b}\n"
               "postgres:\n  url: postgresql://u@h/db\n  lakebase: {instance: i}\n");
  EXPECT_TRUE(text_has(no_default, "postgres.lakebase.workspace")) << no_default;
  EXPECT_TRUE(text_has(no_default, "no default workspace")) << no_default;
}

TEST(Workspaces, ChangedWorkspacesNeedARestart) {
  auto running = load_with_secret(kTwoWorkspaces);
  std::string changed = kTwoWorkspaces;
  changed.replace(changed.find("max_in_flight: 8"), 16, "max_in_flight: 9");
  auto fresh = load_with_secret(changed);
  ASSERT_TRUE(running && fresh);
  const auto reloaded = reloaded_config(*running, *fresh);
  EXPECT_EQ(reloaded.needs_restart, std::vector<std::string>{"workspaces"});
  EXPECT_EQ(reloaded.config->workspaces.at("eu").max_in_flight, 8);
}

}  // namespace
}  // namespace brickwork

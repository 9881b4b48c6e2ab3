// Signals as durable promises and a workflow's history end to end (contract
// sections 2 and 8): through Kafka and the `brickwork` program, with real
// Postgres, librdkafka's mock cluster and the simulator.
#include "tests/integration/harness.hpp"

namespace brickwork::testing {
namespace {

// A sleep before the gate: a signal sent during it comes "too early". Long
// enough for `brickwork signal` to start, send and hear back under
// ThreadSanitizer on a loaded machine (2 s was not).
constexpr const char* kNapThenGate = R"(  nap_then_gate:
    steps:
      - name: nap
        sleep: {for: 6s}
      - name: approve
        wait_for_signal: {name: approved, timeout: 120s}
  slow_nap_then_gate:
    steps:
      - name: nap
        sleep: {for: 8s}
      - name: approve
        wait_for_signal: {name: approved}
  long_nap:
    steps:
      - name: nap
        sleep: {for: 10m}
      - name: approve
        wait_for_signal: {name: approved}
  retried:
    steps:
      - name: extract
        run_job: {job_id: 101}
        completion: poll
        poll_every: 200ms
        retry: {max_attempts: 2, backoff: 2s}
  gate_only:
    steps:
      - name: approve
        wait_for_signal: {name: approved}
)";

// stdout and stderr of the `brickwork` program.
CommandResult brickwork_cli(const std::string& args) {
  return run_command(std::string(BRICKWORK_BINARY) + " " + args + " 2>&1");
}

class SignalsAndHistory : public EndToEndTest {
 protected:
  void start(std::map<int64_t, SimulatedJob> jobs = {}) {
    start_stack(std::move(jobs));
    config(kNapThenGate);
    std::ofstream(dir_ / "brickwork.yaml") << yaml_;
  }
  std::string with_config() const { return " -c " + (dir_ / "brickwork.yaml").string(); }

  // Waits for the command_rejected of `id` with `reason`, and its dead letter.
  void expect_refused(const std::string& id, const std::string& reason) {
    EXPECT_TRUE(eventually([&] {
      for (const auto& e : status_events(id)) {
        if (e.at("type") == "command_rejected" && e.at("reason") == reason.c_str()) return true;
      }
      return false;
    })) << id << ": no command_rejected " << reason;
    EXPECT_TRUE(eventually([&] {
      for (const auto& d : dead_letters()) {
        if (d.at("reason") == reason.c_str() && d.at("key") == id.c_str()) return true;
      }
      return false;
    })) << id << ": no dead letter " << reason;
  }

  size_t kept_signals(const std::string& id) {
    auto w = workflow(id);
    return w ? w->kept_signals.size() : 0;
  }
};

// The issue's new user: an approval sent during the sleep before the gate.
// It is kept, `brickwork signal` says so, and the gate takes it when it waits.
TEST_F(SignalsAndHistory, AnEarlySignalIsKeptThenDeliveredWhenTheStepWaits) {
  start();
  start_daemon();
  start_workflow("early-1", "nap_then_gate");
  ASSERT_TRUE(eventually([&] { return step_is("early-1", "nap", StepStatus::kWaiting); }));
  const CommandResult sent =
      brickwork_cli("signal early-1 approved --value '{\"by\":\"ana\"}'" + with_config());
  EXPECT_EQ(sent.exit_code, 0) << sent.out;
  // "kept" is the proof that the gate did not wait yet. The gate's status is
  // not checked here: on a loaded machine the nap may end before this line,
  // and the status events below check the order durably.
  EXPECT_NE(sent.out.find("kept: early-1 keeps approved"), std::string::npos) << sent.out;

  auto done = wait_terminal("early-1");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);
  EXPECT_EQ(done->find_step("approve")->output, (json::object{{"by", "ana"}}));
  EXPECT_TRUE(done->kept_signals.empty());
  ASSERT_TRUE(eventually([&] {
    auto types = event_types("early-1");
    return !types.empty() && types.back() == "workflow_succeeded";
  }));
  const auto types = event_types("early-1");
  const auto kept = std::find(types.begin(), types.end(), "signal_kept");
  ASSERT_NE(kept, types.end());
  // Kept while the nap still ran: before the nap's success.
  EXPECT_LT(kept - types.begin(),
            std::find(types.begin(), types.end(), "step_succeeded") - types.begin());

  // The history tells both: kept, then delivered to the gate.
  const CommandResult history = brickwork_cli("history early-1 --json" + with_config());
  ASSERT_EQ(history.exit_code, 0) << history.out;
  const json::object h = json::parse(history.out).as_object();
  const json::array& timeline = h.at("timeline").as_array();
  ASSERT_EQ(timeline.size(), 2u) << history.out;
  EXPECT_EQ(timeline[0].at("kind"), "signal_kept");
  EXPECT_EQ(timeline[0].at("signal"), "approved");
  EXPECT_EQ(timeline[1].at("kind"), "signal_delivered");
  EXPECT_EQ(timeline[1].at("step"), "approve");
  EXPECT_EQ(h.at("attempts").as_array().size(), 2u);  // nap and approve, one each

  // A step that already waits gets the signal at once: "delivered".
  start_workflow("late-1", "gate_only");
  ASSERT_TRUE(eventually([&] { return step_is("late-1", "approve", StepStatus::kWaiting); }));
  const CommandResult delivered = brickwork_cli("signal late-1 approved" + with_config());
  EXPECT_EQ(delivered.exit_code, 0) << delivered.out;
  EXPECT_NE(delivered.out.find("delivered: step approve of late-1"), std::string::npos)
      << delivered.out;
}

// A kept signal is durable: the daemon dies with it kept, and the next one
// delivers it when the gate starts.
TEST_F(SignalsAndHistory, AKeptSignalSurvivesASigkillOfTheDaemon) {
  start();
  auto& first = start_child_daemon("first");
  // A nap long enough that the kill lands before the gate starts.
  start_workflow("kill-1", "slow_nap_then_gate");
  ASSERT_TRUE(eventually([&] { return step_is("kill-1", "nap", StepStatus::kWaiting); }, 60s));
  signal("kill-1", "approved", json::object{{"by", "bo"}});
  ASSERT_TRUE(eventually([&] { return kept_signals("kill-1") == 1; }));
  ASSERT_TRUE(step_is("kill-1", "nap", StepStatus::kWaiting)) << "the kill came too late";
  first.kill_hard();
  start_child_daemon("second");
  auto done = wait_terminal("kill-1", 120s);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, WorkflowStatus::kSucceeded);
  EXPECT_EQ(done->find_step("approve")->output, (json::object{{"by", "bo"}}));
  EXPECT_TRUE(done->kept_signals.empty());
}

TEST_F(SignalsAndHistory, EachRefusalHasItsReasonAndADeadLetter) {
  start();
  start_daemon();
  start_workflow("refuse-1", "long_nap");
  ASSERT_TRUE(eventually([&] { return step_is("refuse-1", "nap", StepStatus::kWaiting); }));

  // A name no step of the definition waits for.
  signal("refuse-1", "rejected", nullptr);
  expect_refused("refuse-1", "unknown_signal");

  // 100 kept, the 101st refused.
  for (int i = 0; i < 101; ++i) signal("refuse-1", "approved", json::value(i));
  expect_refused("refuse-1", "too_many_signals");
  EXPECT_EQ(kept_signals("refuse-1"), 100u);
  EXPECT_EQ(workflow("refuse-1")->kept_signals.front().value, 0);

  // A finished workflow, and an id with no workflow at all.
  send_command(json::object{{"type", "cancel"}, {"id", "refuse-1"}, {"reason", "enough"}});
  ASSERT_TRUE(wait_terminal("refuse-1"));
  signal("refuse-1", "approved", nullptr);
  expect_refused("refuse-1", "not_running");
  signal("nobody", "approved", nullptr);
  expect_refused("nobody", "not_running");
  const CommandResult refused = brickwork_cli("signal refuse-1 approved" + with_config());
  EXPECT_EQ(refused.exit_code, 1) << refused.out;
  EXPECT_NE(refused.out.find("refused: not_running"), std::string::npos) << refused.out;

  // The cancel is in the history, with its reason.
  auto history = store().get_history("refuse-1");
  ASSERT_TRUE(history && *history);
  const auto& notes = (*history)->notes;
  EXPECT_EQ(std::count_if(notes.begin(), notes.end(),
                          [](const HistoryNote& n) { return n.kind == "signal_kept"; }),
            100);
  ASSERT_FALSE(notes.empty());
  EXPECT_EQ(notes.back().kind, "cancel");
  EXPECT_EQ(notes.back().detail, "enough");
}

// Attempt 1 fails, the retry policy's attempt 2 succeeds: the history has
// both, with the first one's error.
TEST_F(SignalsAndHistory, HistoryKeepsEveryAttemptAfterRetries) {
  SimulatedJob failing = sim_job("extract", 200, {}, "FAILED", false);
  failing.message = "disk full";
  start({{101, failing}});
  start_daemon();
  start_workflow("retried-1", "retried");
  ASSERT_TRUE(eventually([&] {
    auto w = workflow("retried-1");
    return w && w->steps[0].attempt == 1 && w->steps[0].status == StepStatus::kPending;
  }));
  stack_->simulator().set_job(101, sim_job("extract", 200, {{"rows", 42}}, "SUCCESS", false));
  auto done = wait_terminal("retried-1");
  ASSERT_TRUE(done);
  ASSERT_EQ(done->status, WorkflowStatus::kSucceeded);

  const CommandResult history = brickwork_cli("history retried-1 --json" + with_config());
  ASSERT_EQ(history.exit_code, 0) << history.out;
  const json::value parsed = json::parse(history.out);
  const json::array& attempts = parsed.at("attempts").as_array();
  ASSERT_EQ(attempts.size(), 2u) << history.out;
  EXPECT_EQ(attempts[0].at("attempt"), 1);
  EXPECT_EQ(attempts[0].at("state"), "failed");
  EXPECT_EQ(attempts[0].at("error").at("message"), "disk full");
  EXPECT_TRUE(attempts[0].at("run_id").is_int64());
  EXPECT_FALSE(attempts[0].at("run_page_url").as_string().empty());
  EXPECT_EQ(attempts[1].at("attempt"), 2);
  EXPECT_EQ(attempts[1].at("state"), "succeeded");
  EXPECT_NE(attempts[1].at("run_id"), attempts[0].at("run_id"));
  EXPECT_GT(attempts[1].at("output_bytes").as_int64(), 0);
  EXPECT_TRUE(attempts[1].at("error").is_null());
  EXPECT_LE(parse_iso8601(attempts[0].at("ended_at").as_string()).value(),
            parse_iso8601(attempts[1].at("started_at").as_string()).value());

  const CommandResult table = brickwork_cli("history retried-1" + with_config());
  ASSERT_EQ(table.exit_code, 0) << table.out;
  EXPECT_NE(table.out.find("step failed"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("disk full"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("step succeeded"), std::string::npos) << table.out;
  EXPECT_EQ(brickwork_cli("history nobody" + with_config()).exit_code, 1);
}

TEST_F(SignalsAndHistory, ListFiltersByWorkflowAndTimeAndPagesWithAfter) {
  start();
  start_daemon();
  for (int i = 0; i < 5; ++i) {
    start_workflow("list-" + std::to_string(i), i % 2 == 0 ? "long_nap" : "gate_only");
    // Distinct creation times, so the order is the order they were sent.
    ASSERT_TRUE(eventually([&] { return workflow("list-" + std::to_string(i)).has_value(); }));
    std::this_thread::sleep_for(20ms);
  }
  const auto ids = [&](const std::string& args) {
    std::vector<std::string> out;
    const CommandResult listed =
        run_command(std::string(BRICKWORK_BINARY) + " list --json " + args + with_config());
    EXPECT_EQ(listed.exit_code, 0) << args << ": " << listed.out;
    if (listed.exit_code != 0) return out;
    const json::value rows = json::parse(listed.out);
    for (const auto& row : rows.as_array()) {
      out.emplace_back(row.at("id").as_string());
    }
    return out;
  };
  using Ids = std::vector<std::string>;
  EXPECT_EQ(ids("--workflow long_nap"), (Ids{"list-4", "list-2", "list-0"}));
  EXPECT_EQ(ids("--limit 2"), (Ids{"list-4", "list-3"}));
  EXPECT_EQ(ids("--limit 2 --after list-3"), (Ids{"list-2", "list-1"}));
  EXPECT_EQ(ids("--limit 2 --after list-1"), (Ids{"list-0"}));
  EXPECT_EQ(ids("--workflow gate_only --after list-3"), (Ids{"list-1"}));
  EXPECT_EQ(ids("--since 1h").size(), 5u);
  EXPECT_EQ(ids("--until 1h"), Ids{});
  EXPECT_EQ(ids("--since 2020-01-01T00:00:00Z --until 2020-01-02T00:00:00Z"), Ids{});
  const auto created_2 = workflow("list-2")->created_at;
  EXPECT_EQ(ids("--since " + format_iso8601(created_2) + " --workflow long_nap"),
            (Ids{"list-4", "list-2"}));

  // A full page says how to get the next; a bad time or cursor is an error.
  const CommandResult page = brickwork_cli("list --limit 2" + with_config());
  EXPECT_NE(page.out.find("--after list-3"), std::string::npos) << page.out;
  EXPECT_EQ(brickwork_cli("list --since yesterday" + with_config()).exit_code, 2);
  const CommandResult gone = brickwork_cli("list --after no-such-id" + with_config());
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_NE(gone.out.find("no-such-id"), std::string::npos) << gone.out;
}

}  // namespace
}  // namespace brickwork::testing

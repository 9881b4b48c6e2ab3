// The subcommands that drive one workflow (submit, status, cancel, retry,
// signal) and the reading of its status events that --wait, --follow and the
// commands' answers share.
#include <cctype>
#include <functional>
#include <iostream>
#include <random>
#include <set>

#include "daemon/cli/cli_common.hpp"
#include "daemon/cli/commands.hpp"
#include "daemon/core/escape.hpp"
#include "daemon/core/json_limits.hpp"
#include "daemon/kafka/kafka.hpp"
#include "daemon/runtime/status_view.hpp"

namespace brickwork::cli {
namespace {

Result<json::value> parse_json_option(const std::string& text, const char* what) {
  boost::system::error_code ec;
  json::value v = parse_json(text, ec);
  if (ec) return Error{ErrorKind::kInvalidInput, "invalid_json",
                       std::string(what) + " is not valid JSON: " + ec.message()};
  return v;
}

std::string generate_id(const std::string& workflow) {
  std::random_device rd;
  std::uniform_int_distribution<uint32_t> dist;
  char suffix[24];
  std::snprintf(suffix, sizeof suffix, "%08x%04x", dist(rd), dist(rd) & 0xffff);
  std::string base = workflow.substr(0, 180);
  for (char& c : base) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '-';
  }
  return base + "-" + suffix;
}

std::string string_field(const json::object& o, const char* name) {
  const json::value* v = o.if_contains(name);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

// The status events of one workflow, from the moment it is opened: open it
// before sending a command so its answer cannot be missed.
class WorkflowEvents {
 public:
  static Result<WorkflowEvents> open(const Config& config, std::string id) {
    auto tail = TopicTail::open(config.kafka, config.kafka.topics.status, Duration(10000));
    if (!tail) {
      return Error{tail.error().kind, tail.error().code,
                   "cannot read " + config.kafka.topics.status + ": " + tail.error().message};
    }
    return WorkflowEvents(std::move(*tail), std::move(id));
  }
  // The events of this workflow that arrived since, waiting at most `wait`.
  std::vector<json::object> poll(Duration wait) {
    std::vector<json::object> out;
    for (const KafkaMessage& m : tail_->poll(wait)) {
      if (m.key != id_) continue;
      boost::system::error_code ec;
      json::value v = parse_json(m.payload, ec);
      if (ec || !v.is_object() || string_field(v.as_object(), "type").empty()) continue;
      out.push_back(std::move(v.as_object()));
    }
    return out;
  }

 private:
  WorkflowEvents(std::unique_ptr<TopicTail> tail, std::string id)
      : tail_(std::move(tail)), id_(std::move(id)) {}
  std::unique_ptr<TopicTail> tail_;
  std::string id_;
};

// One line per event: the event itself as JSON, or a short human line.
void print_event(const json::object& event, bool as_json) {
  if (as_json) {
    std::cout << json::serialize(event) << std::endl;
    return;
  }
  std::string line = string_field(event, "at") + "  " + string_field(event, "type");
  if (const std::string step = string_field(event, "step"); !step.empty()) {
    line += "  " + step;
    if (const json::value* a = event.if_contains("attempt"); a != nullptr && a->is_int64()) {
      line += " (attempt " + std::to_string(a->as_int64()) + ")";
    }
  }
  if (const json::value* r = event.if_contains("run_id"); r != nullptr && r->is_int64()) {
    line += "  run " + std::to_string(r->as_int64());
  }
  if (const std::string reason = string_field(event, "reason"); !reason.empty()) {
    line += "  reason: " + reason;
  }
  if (const json::value* e = event.if_contains("error"); e != nullptr && e->is_object()) {
    line += "  error " + string_field(e->as_object(), "code") + ": " +
            string_field(e->as_object(), "message");
  }
  std::cout << escape_control_characters(line) << std::endl;
}

// The exit code an event ends a follower with, if it is the workflow's end.
std::optional<int> exit_code_of_event(const std::string& type) {
  if (type == "workflow_succeeded") return kExitOk;
  if (type == "workflow_failed") return kExitFailed;
  if (type == "workflow_canceled") return kExitCanceled;
  return std::nullopt;
}

// Prints the workflow's events until it ends; `after_seq` skips those
// already shown (from Postgres). A start refused (conflict, unknown_workflow)
// ends it with exit 1.
int follow_events(WorkflowEvents& events, const std::string& id, int64_t after_seq, bool as_json,
                  std::optional<Duration> timeout) {
  const auto deadline = timeout ? std::chrono::steady_clock::now() + *timeout
                                : std::chrono::steady_clock::time_point::max();
  while (std::chrono::steady_clock::now() < deadline) {
    for (const json::object& event : events.poll(Duration(200))) {
      const json::value* seq = event.if_contains("seq");
      if (seq != nullptr && seq->is_int64() && seq->as_int64() > 0 &&
          seq->as_int64() <= after_seq) {
        continue;
      }
      print_event(event, as_json);
      const std::string type = string_field(event, "type");
      if (type == "command_rejected") {
        std::cerr << "refused: " << escape_control_characters(string_field(event, "reason"))
                  << "\n";
        return kExitError;
      }
      if (auto code = exit_code_of_event(type)) return *code;
    }
  }
  std::cerr << escape_control_characters(id) << " is still running after "
            << format_duration(*timeout) << "\n";
  return kExitTimeout;
}

// The workflow as Postgres has it now; nullopt with `error` set when it
// cannot be read, nullopt alone when there is no such workflow.
std::optional<WorkflowState> current_state(const Config& config, const std::string& id,
                                           std::optional<Error>& error) {
  auto opened = open_cli_store(config);
  if (!opened) {
    error = opened.error();
    return std::nullopt;
  }
  auto workflow = opened->store->get_workflow(id);
  if (!workflow) {
    error = workflow.error();
    return std::nullopt;
  }
  return *workflow ? std::optional<WorkflowState>(std::move(**workflow)) : std::nullopt;
}

void print_state(const WorkflowState& state, bool as_json) {
  if (as_json) {
    std::cout << json::serialize(status_json(state)) << std::endl;
  } else {
    std::cout << status_table(state) << std::flush;
  }
}

// The daemon's answer to a command, read from its status events.
struct Answer {
  int exit_code = kExitOk;
  std::string result;   // accepted (signal: delivered or kept), refused, no_op
  std::string message;  // for people
  json::object detail;  // added to the --json answer
};
// Classifies one status event of the workflow; nullopt: not the answer.
// command_rejected is handled before any rule sees an event.
using AnswerRule = std::function<std::optional<Answer>(const json::object& event)>;

void print_answer(const std::string& id, const std::string& command, const Answer& answer,
                  bool as_json) {
  if (as_json) {
    json::object out{{"id", id}, {"command", command}, {"result", answer.result}};
    for (const auto& [k, v] : answer.detail) out[k] = v;
    std::cout << json::serialize(out) << std::endl;
    return;
  }
  (answer.exit_code == kExitOk ? std::cout : std::cerr)
      << escape_control_characters(answer.message) << std::endl;
}

// Sends `command` and, with `wait`, reports the daemon's answer to it. The
// status topic is followed from before the send, so the answer cannot be
// missed.
int send_and_report(const Config& config, const std::string& id, const json::object& command,
                    AnswerWait wait, bool as_json, const AnswerRule& rule) {
  const std::string name = string_field(command, "type");
  if (!wait) {
    const int sent = produce_command(config, id, command);
    if (sent == kExitOk && as_json) {
      std::cout << json::serialize(json::object{{"id", id}, {"command", name}, {"result", "sent"}})
                << std::endl;
    }
    return sent;
  }
  auto events = WorkflowEvents::open(config, id);
  if (!events) {
    print_error(events.error().message);
    return kExitError;
  }
  if (int sent = produce_command(config, id, command); sent != kExitOk) return sent;
  const auto deadline = std::chrono::steady_clock::now() + *wait;
  while (std::chrono::steady_clock::now() < deadline) {
    for (const json::object& event : events->poll(Duration(200))) {
      std::optional<Answer> answer;
      if (string_field(event, "type") == "command_rejected") {
        const std::string reason = string_field(event, "reason");
        answer = Answer{kExitError, "refused", "refused: " + (reason.empty() ? "unknown" : reason),
                        json::object{{"reason", reason}}};
      } else {
        answer = rule(event);
      }
      if (!answer) continue;
      print_answer(id, name, *answer, as_json);
      return answer->exit_code;
    }
  }
  if (as_json) {
    std::cout << json::serialize(json::object{{"id", id}, {"command", name},
                                              {"result", "no_answer"}})
              << std::endl;
  }
  std::cerr << "sent, but no answer within " << format_duration(*wait)
            << " (is a daemon running?)\n";
  return kExitTimeout;
}

// The step names of `workflow` that wait for a signal named `name`.
std::set<std::string> steps_waiting_for(const Config& config, const std::string& workflow,
                                        const std::string& name) {
  std::set<std::string> out;
  auto it = config.workflows.find(workflow);
  if (it == config.workflows.end()) return out;
  for (const auto* list : {&it->second.steps, &it->second.on_failure}) {
    for (const auto& step : *list) {
      if (step.plan.kind == StepPlan::Kind::kAwaitSignal && step.plan.signal == name) {
        out.insert(step.name);
      }
    }
  }
  return out;
}

}  // namespace

int run_submit(const std::string& config_path, const std::string& workflow,
               std::optional<std::string> id, const std::string& input_json, bool as_json,
               std::optional<FollowOptions> wait) {
  auto config = load_checked_config(config_path);
  if (!config) return kExitError;
  if (config->workflows.count(workflow) == 0) {
    print_error("no workflow '" + workflow + "' in " + config_path);
    return kExitError;
  }
  auto input = parse_json_option(input_json, "--input");
  if (!input) {
    print_error(input.error().message);
    return kExitError;
  }
  if (!input->is_object()) {
    print_error("--input must be a JSON object");
    return kExitError;
  }
  const std::string workflow_id = id.value_or(generate_id(workflow));
  const json::object command{{"type", "start"},
                             {"id", workflow_id},
                             {"workflow", workflow},
                             {"input", input->as_object()}};
  auto print_id = [&] {
    if (as_json) {
      std::cout << json::serialize(json::object{{"id", workflow_id}}) << std::endl;
    } else {
      std::cout << workflow_id << std::endl;
    }
  };
  if (!wait) {
    const int rc = produce_command(*config, workflow_id, command);
    if (rc == kExitOk) print_id();
    return rc;
  }
  // A start repeated for a workflow that already ended is a no-op without an
  // event: its outcome is in Postgres. (Unreadable: only the events tell.)
  std::optional<Error> unreadable;
  const auto before = current_state(*config, workflow_id, unreadable);
  auto events = WorkflowEvents::open(*config, workflow_id);
  if (!events) {
    print_error(events.error().message);
    return kExitError;
  }
  if (int rc = produce_command(*config, workflow_id, command); rc != kExitOk) return rc;
  print_id();
  if (before && is_terminal(before->status) && before->workflow == workflow &&
      before->input == input->as_object()) {
    print_state(*before, as_json);
    return *exit_code_of(before->status);
  }
  return follow_events(*events, workflow_id, before ? before->seq : 0, as_json, wait->timeout);
}

int run_status(const std::string& config_path, const std::string& id, bool as_json,
               std::optional<FollowOptions> follow) {
  auto config = load_checked_config(config_path, /*needs_callback_secret=*/false);
  if (!config) return kExitError;
  // Events are followed from before the state is read, so none falls between.
  std::optional<WorkflowEvents> events;
  if (follow) {
    auto opened = WorkflowEvents::open(*config, id);
    if (!opened) {
      print_error(opened.error().message);
      return kExitError;
    }
    events.emplace(std::move(*opened));
  }
  std::optional<Error> unreadable;
  const auto state = current_state(*config, id, unreadable);
  if (unreadable) {
    print_error(unreadable->message);
    return kExitError;
  }
  if (!state) {
    print_error("no workflow with id '" + id + "'");
    return kExitError;
  }
  print_state(*state, as_json);
  if (!follow) return kExitOk;
  if (auto code = exit_code_of(state->status)) return *code;
  return follow_events(*events, id, state->seq, as_json, follow->timeout);
}

int run_cancel(const std::string& config_path, const std::string& id, const std::string& reason,
               AnswerWait wait, bool as_json) {
  auto config = load_checked_config(config_path);
  if (!config) return kExitError;
  const json::object command{{"type", "cancel"}, {"id", id}, {"reason", reason}};
  if (wait) {
    // A cancel of a workflow that is not running changes nothing and
    // publishes nothing: say so now rather than wait for an answer.
    std::optional<Error> unreadable;
    const auto state = current_state(*config, id, unreadable);
    if (!unreadable && !state) {
      print_error("no workflow with id '" + id + "'");
      return kExitError;
    }
    if (state && is_terminal(state->status)) {
      print_answer(id, "cancel",
                   Answer{kExitOk, "no_op",
                          "nothing to cancel: " + id + " already ended " + to_string(state->status),
                          json::object{{"state", to_string(state->status)}}},
                   as_json);
      return kExitOk;
    }
  }
  return send_and_report(*config, id, command, wait, as_json,
                         [&](const json::object& event) -> std::optional<Answer> {
                           const std::string type = string_field(event, "type");
                           if (type == "workflow_canceled") {
                             return Answer{kExitOk, "accepted", "canceled: " + id, {}};
                           }
                           // It ended on its own before the cancel was read.
                           if (type == "workflow_succeeded" || type == "workflow_failed") {
                             const std::string state = type.substr(9);
                             return Answer{kExitOk, "no_op",
                                           "nothing to cancel: " + id + " already ended " + state,
                                           json::object{{"state", state}}};
                           }
                           return std::nullopt;
                         });
}

int run_retry(const std::string& config_path, const std::string& id, AnswerWait wait,
              bool as_json) {
  auto config = load_checked_config(config_path);
  if (!config) return kExitError;
  return send_and_report(*config, id, json::object{{"type", "retry"}, {"id", id}}, wait, as_json,
                         [&](const json::object& event) -> std::optional<Answer> {
                           // A retry is announced as workflow_started, reason "retry".
                           if (string_field(event, "type") != "workflow_started") return std::nullopt;
                           return Answer{kExitOk, "accepted", "retrying: " + id, {}};
                         });
}

int run_signal(const std::string& config_path, const std::string& id, const std::string& name,
               const std::string& value_json, AnswerWait wait, bool as_json) {
  auto config = load_checked_config(config_path);
  if (!config) return kExitError;
  auto value = parse_json_option(value_json, "--value");
  if (!value) {
    print_error(value.error().message);
    return kExitError;
  }
  const json::object command{{"type", "signal"}, {"id", id}, {"name", name}, {"value", *value}};
  return send_and_report(
      *config, id, command, wait, as_json,
      [&](const json::object& event) -> std::optional<Answer> {
        const std::string type = string_field(event, "type");
        if (type == "signal_kept" && string_field(event, "signal") == name) {
          return Answer{kExitOk, "kept",
                        "kept: " + id + " keeps " + name + " until a step waits for it",
                        json::object{{"signal", name}}};
        }
        const std::string step = string_field(event, "step");
        if (type != "step_succeeded" ||
            !steps_waiting_for(*config, string_field(event, "workflow"), name).contains(step)) {
          return std::nullopt;
        }
        return Answer{kExitOk, "delivered",
                      "delivered: step " + step + " of " + id + " received " + name,
                      json::object{{"step", step}}};
      });
}

}  // namespace brickwork::cli

// RunInfo from jobs/runs/get, and the step output of jobs/runs/get-output.
// The legacy `state` is read first because its result_state is finer; the
// newer `status` fills what `state` lacks, so a response with only one of
// them still works.
#include <limits>
#include <vector>

#include "daemon/databricks/api.hpp"
#include "daemon/databricks/client.hpp"
#include "daemon/databricks/parsing.hpp"

namespace brickwork {

namespace {

using databricks_parsing::as_int64;

Error invalid(std::string message) {
  return Error{ErrorKind::kInvalidInput, "bad_run_info", std::move(message)};
}

// Reads an optional string field; wrong type is an error, absence is "".
Result<std::string> string_field(const json::object& o, std::string_view key, std::string_view where) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return std::string();
  if (!v->is_string()) {
    return invalid(std::string(where) + "." + std::string(key) + " is not a string");
  }
  return std::string(v->get_string());
}

Result<const json::object*> object_field(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return static_cast<const json::object*>(nullptr);
  if (!v->is_object()) return invalid(std::string(key) + " is not an object");
  return &v->get_object();
}

}  // namespace

// A task run without a readable run_id is refused rather than skipped: the
// caller picks a task run to read its output, and a silently shorter list
// could make it pick the wrong one.
Result<std::vector<RunTask>> parse_run_tasks(const json::value& body) {
  if (!body.is_object()) return invalid("runs/get response is not a JSON object");
  const json::object& o = body.get_object();
  std::vector<RunTask> tasks;
  const json::value* v = o.if_contains("tasks");
  if (v == nullptr || v->is_null()) return tasks;
  if (!v->is_array()) return invalid("tasks is not an array");
  tasks.reserve(v->get_array().size());
  for (const json::value& item : v->get_array()) {
    const std::string where = "tasks[" + std::to_string(tasks.size()) + "]";
    if (!item.is_object()) return invalid(where + " is not an object");
    const json::value* id = item.get_object().if_contains("run_id");
    if (id == nullptr) return invalid(where + " has no run_id");
    auto rid = as_int64(*id);
    if (!rid) return invalid(where + ".run_id is not an integer");
    auto key = string_field(item.get_object(), "task_key", where);
    if (!key) return key.error();
    auto state = object_field(item.get_object(), "state");
    if (!state) return state.error();
    std::string result_state;
    if (*state != nullptr) {
      auto rs = string_field(**state, "result_state", where + ".state");
      if (!rs) return rs.error();
      result_state = std::move(*rs);
    }
    tasks.push_back(RunTask{*rid, std::move(*key), std::move(result_state)});
  }
  return tasks;
}

bool RunInfo::terminal() const {
  return life_cycle_state == "TERMINATED" || life_cycle_state == "SKIPPED" ||
         life_cycle_state == "INTERNAL_ERROR";
}

bool RunInfo::succeeded() const {
  return terminal() && life_cycle_state != "INTERNAL_ERROR" &&
         (result_state == "SUCCESS" || result_state == "SUCCESS_WITH_FAILURES");
}

Result<RunInfo> parse_run_info(const json::value& body) {
  if (!body.is_object()) return invalid("runs/get response is not a JSON object");
  const json::object& o = body.get_object();
  RunInfo info;

  const json::value* run_id = o.if_contains("run_id");
  if (run_id == nullptr) return invalid("runs/get response has no run_id");
  auto rid = as_int64(*run_id);
  if (!rid) return invalid("run_id is not an integer");
  info.run_id = *rid;
  if (const json::value* job_id = o.if_contains("job_id"); job_id != nullptr && !job_id->is_null()) {
    auto jid = as_int64(*job_id);
    if (!jid) return invalid("job_id is not an integer");
    info.job_id = *jid;
  }
  auto url = string_field(o, "run_page_url", "run");
  if (!url) return url.error();
  info.run_page_url = std::move(*url);
  auto tasks = parse_run_tasks(body);
  if (!tasks) return tasks.error();
  info.tasks = std::move(*tasks);

  auto state = object_field(o, "state");
  if (!state) return state.error();
  auto status = object_field(o, "status");
  if (!status) return status.error();
  if (*state == nullptr && *status == nullptr) return invalid("runs/get response has neither state nor status");

  if (const json::object* s = *state) {
    auto lcs = string_field(*s, "life_cycle_state", "state");
    if (!lcs) return lcs.error();
    auto rs = string_field(*s, "result_state", "state");
    if (!rs) return rs.error();
    auto msg = string_field(*s, "state_message", "state");
    if (!msg) return msg.error();
    info.life_cycle_state = std::move(*lcs);
    info.result_state = std::move(*rs);
    info.state_message = std::move(*msg);
  }

  if (const json::object* st = *status) {
    auto state_name = string_field(*st, "state", "status");
    if (!state_name) return state_name.error();
    auto details = object_field(*st, "termination_details");
    if (!details) return details.error();
    std::string code, type, message;
    if (const json::object* d = *details) {
      auto c = string_field(*d, "code", "status.termination_details");
      if (!c) return c.error();
      auto t = string_field(*d, "type", "status.termination_details");
      if (!t) return t.error();
      auto m = string_field(*d, "message", "status.termination_details");
      if (!m) return m.error();
      code = std::move(*c);
      type = std::move(*t);
      message = std::move(*m);
    }
    if (info.life_cycle_state.empty()) {
      const std::string& s = *state_name;
      if (s == "WAITING") {
        info.life_cycle_state = "WAITING_FOR_RETRY";
      } else if (s == "TERMINATED" && type == "INTERNAL_ERROR") {
        info.life_cycle_state = "INTERNAL_ERROR";
      } else if (s == "TERMINATED" && (code == "SKIPPED" || code == "DISABLED")) {
        info.life_cycle_state = "SKIPPED";
      } else {
        info.life_cycle_state = s;
      }
    }
    if (info.result_state.empty() && *state_name == "TERMINATED") {
      if (code == "SUCCESS" || code == "SUCCESS_WITH_FAILURES") {
        info.result_state = code;
      } else if (code == "CANCELED" || code == "USER_CANCELED") {
        info.result_state = "CANCELED";
      } else if (code == "SKIPPED" || code == "DISABLED") {
        // skipped: no result, like the legacy state of a skipped run
      } else if (!code.empty() || !type.empty()) {
        info.result_state = type == "SUCCESS" ? "SUCCESS" : "FAILED";
      }
    }
    if (info.state_message.empty()) info.state_message = std::move(message);
  }
  if (info.life_cycle_state.empty()) return invalid("run has no life_cycle_state");
  // A failed run's message becomes its step's error, repeated in step_failed.
  info.state_message = storable_text(info.state_message, kMaxErrorTextBytes);
  return info;
}

json::object output_from_run_output(const json::object& get_output_body) {
  const json::value* notebook = get_output_body.if_contains("notebook_output");
  if (notebook == nullptr || !notebook->is_object()) return {};
  const json::value* result = notebook->get_object().if_contains("result");
  if (result == nullptr || !result->is_string()) return {};
  const json::string& text = result->get_string();
  // dbutils.notebook.exit() takes a string; a notebook that means to return
  // structure serializes a JSON object, anything else is kept as text.
  boost::system::error_code ec;
  json::value parsed = parse_json(std::string_view(text), ec);
  if (!ec && parsed.is_object()) {
    replace_nul(parsed);  // "\\u0000" in the text is U+0000 once parsed
    return std::move(parsed.get_object());
  }
  return json::object{{"result", text}};
}

}  // namespace brickwork

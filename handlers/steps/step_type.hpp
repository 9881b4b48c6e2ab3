#pragma once
// One interface for every step type (run_job, submit_run, sql, ...). Each type
// lives in its own file and is registered in registry.cpp.
#include <boost/json.hpp>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "daemon/core/result.hpp"
#include "daemon/engine/engine.hpp"

namespace brickwork {

class DatabricksApi;
class NamedDatabases;

// Everything a step's action may need, prepared by the shell.
struct StepContext {
  const WorkflowState& workflow;
  const StepDefinition& definition;
  const StepState& step;
  int32_t attempt = 0;
  // Values for {{ ... }} templates: input, workflow, steps (see templates.hpp).
  const json::object& template_scope;
  std::string callback_token;     // brickwork_token for this attempt
  std::string idempotency_token;  // for run-now / submit (<= 64 chars)
};

// The outside world as step types see it. Pointers may be null when a service
// is not configured; a step type that needs one fails the attempt clearly.
struct StepServices {
  DatabricksApi* databricks = nullptr;
  NamedDatabases* databases = nullptr;  // the databases under `databases:`
  std::vector<std::string> allowed_file_dirs = {};  // files.allowed_dirs
};

class StepType {
 public:
  virtual ~StepType() = default;
  // The action key in YAML, e.g. "run_job".
  virtual std::string_view action_key() const = 0;
  // Whether its steps need Databricks credentials: without them, `check`
  // fails and the daemon does not start.
  virtual bool calls_databricks() const { return false; }
  // Whether executing it moves a large body (an upload): it then runs in the
  // transfer lane (databricks.max_transfers), apart from short calls.
  virtual bool is_transfer() const { return false; }
  // Checks the action's fields (`step.action`) at configuration time and
  // fills in what the engine needs: `step.plan` (default: performed by the
  // runtime through execute/poll/cancel) and any defaults of the step's
  // common fields. Returns a message on error.
  virtual std::optional<std::string> compile(StepDefinition& step) const = 0;
  // Checks what the action names elsewhere in the configuration (a database
  // under `databases:`), once all of it is loaded. Returns a message on error.
  virtual std::optional<std::string> check_references(const StepDefinition& step,
                                                      const Config& config) const {
    (void)step;
    (void)config;
    return std::nullopt;
  }
  // Performs the action for one attempt. A transient Error makes the shell try
  // again later (so this must be safe to repeat); any other Error fails the attempt.
  virtual Result<StepOutcome> execute(const StepContext& context, StepServices& services) const = 0;
  // Checks on a waiting attempt. Same error rules as execute.
  virtual Result<StepOutcome> poll(const StepContext& context, StepServices& services) const = 0;
  // Stops what the attempt has in flight (best effort, safe to repeat).
  virtual Status cancel(const StepContext& context, StepServices& services) const = 0;
};

// The step types brickwork knows, by action key; the configuration loader
// reads them through the StepCatalog interface.
class StepRegistry final : public StepCatalog {
 public:
  // All built-in step types, registered in registry.cpp.
  static const StepRegistry& builtin();
  // A registry with the built-in types, to add more to (tests, extensions).
  static StepRegistry with_builtin_types();

  const StepType* find(std::string_view action_key) const;
  // Rejects a duplicate key (an invariant: crash).
  void add(std::unique_ptr<StepType> type);
  std::vector<std::string> keys() const;

  // StepCatalog
  std::vector<std::string> action_keys() const override { return keys(); }
  std::optional<std::string> compile(StepDefinition& step) const override;
  std::optional<std::string> check_references(const StepDefinition& step,
                                              const Config& config) const override;

 private:
  std::map<std::string, std::unique_ptr<StepType>, std::less<>> types_;
};

}  // namespace brickwork

#pragma once
// One interface for every step type (run_job, submit_run, sql, ...). Each type
// lives in its own file and is registered in registry.cpp (docs/STEPS.md
// "Writing a step type").
//
// Bind, then execute: `compile` checks the action once, at configuration
// time, and returns its typed form (a BoundAction of the type's own), kept
// with the step's definition; execute, poll and cancel read that
// (context.action<T>()) and never parse the action's JSON again. The shell
// (the effect runner) calls them through execute_step / poll_step /
// cancel_step, which bind a definition read back from the store and check
// once that a type needing Databricks has it.
#include <boost/json.hpp>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "daemon/core/result.hpp"
#include "daemon/engine/engine.hpp"

namespace brickwork {

class DatabricksApi;
class NamedDatabases;
class Workspaces;
namespace http {
class Client;
}

// A step's action as its type checked it: each type derives its own, with
// the fields it reads (values that hold {{ templates }} stay JSON, rendered
// when the step runs).
struct BoundAction {
  virtual ~BoundAction() = default;
};
using BoundActionPtr = std::shared_ptr<const BoundAction>;

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
  // The action as compile bound it; set by execute_step / poll_step / cancel_step.
  const BoundAction* bound = nullptr;

  // The bound action as the type's own struct (a mismatch is a bug: throws).
  template <class Action>
  const Action& action() const {
    const auto* typed = dynamic_cast<const Action*>(bound);
    if (typed == nullptr) throw std::logic_error("step " + definition.name + ": action not bound");
    return *typed;
  }
};

// The outside world as step types see it. Pointers may be null when a service
// is not configured; a step type that needs one fails the attempt clearly.
struct StepServices {
  // The workspace of the step being performed: the shell sets it from
  // `workspaces` by the step's `workspace:` (null: not configured).
  DatabricksApi* databricks = nullptr;
  NamedDatabases* databases = nullptr;  // the databases under `databases:`
  std::vector<std::string> allowed_file_dirs = {};  // files.allowed_dirs
  // Plain HTTPS (or HTTP to loopback) for types that call other services:
  // synchronous, thread-safe, keep-alive per host (daemon/databricks/http.hpp).
  http::Client* http = nullptr;
  // Every workspace by name; null: `databricks` serves every step (tests).
  const Workspaces* workspaces = nullptr;
};

class StepType {
 public:
  virtual ~StepType() = default;
  // The action key in YAML, e.g. "run_job".
  virtual std::string_view action_key() const = 0;
  // Whether its steps need Databricks credentials: without them, `check`
  // fails and the daemon does not start, and the shell never calls the type
  // without a workspace.
  virtual bool calls_databricks() const { return false; }
  // Whether executing it moves a large body (an upload): it then runs in the
  // transfer lane (databricks.max_transfers), apart from short calls.
  virtual bool is_transfer() const { return false; }
  // Checks the action's fields (`step.action`) at configuration time and
  // returns their typed form (bind_nothing() when the type reads none). It
  // may fill in what the engine needs: `step.plan` (default: performed by
  // the runtime through execute/poll/cancel) and defaults of the step's
  // common fields. An Error's message says what is wrong.
  virtual Result<BoundActionPtr> compile(StepDefinition& step) const = 0;
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
  // Checks on a waiting attempt (one execute answered kStarted). Same error
  // rules as execute. A type that never waits leaves it.
  virtual Result<StepOutcome> poll(const StepContext& context, StepServices& services) const;
  // Stops what the attempt has in flight (best effort, safe to repeat). A
  // type with nothing to stop leaves it.
  virtual Status cancel(const StepContext& context, StepServices& services) const;
};

// compile's result for a type whose action has nothing to read.
BoundActionPtr bind_nothing();
// compile's error: `message` says what is wrong with the action.
Error compile_error(std::string message);

// The shell's side of the seam: each binds the step's action (the one kept
// with its definition, or bound again for a definition read back from the
// store, whose typed action is not stored), checks once that a type needing
// Databricks has a workspace, and calls the type. A definition that no
// longer binds fails the call (kPermanent, invalid_step).
Result<StepOutcome> execute_step(const StepType& type, StepContext context, StepServices& services);
Result<StepOutcome> poll_step(const StepType& type, StepContext context, StepServices& services);
// Nothing to stop without a workspace (or a bindable action): ok.
Status cancel_step(const StepType& type, StepContext context, StepServices& services);

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

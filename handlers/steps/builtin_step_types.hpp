#pragma once
// The one list of built-in step types, read by registry.cpp (and by the
// configuration fuzzer, which needs the action keys without linking the
// types). Adding a type: its own file in handlers/steps/ defining
// `std::unique_ptr<StepType> make_<name>_step()`, its test, and one entry here.
#define BRICKWORK_BUILTIN_STEP_TYPES(X) \
  X(run_job)                            \
  X(submit_run)                         \
  X(sql)                                \
  X(upload)                             \
  X(delta_share)                        \
  X(postgres)                           \
  X(sleep)                              \
  X(wait_for_signal)                    \
  X(emit)


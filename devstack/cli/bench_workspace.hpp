#pragma once
// `brickwork bench-workspace` (docs/PERFORMANCE.md, "A real workspace"): one
// daemon, with default settings, against a simulator paced like a real
// workspace: 200 ms per call, run-now limited to 20/s and runs/get to
// 100/s, Files API uploads of 40 s. Measures what issue 17 asks of it:
// 300 workflows waiting on long runs polled every 2 s; 12 uploads started
// together beside 100 one-step workflows (time until all done for each);
// the share of run-now calls answered 429; the most calls in flight at once;
// and how long SIGTERM takes with a call that never answers. A few minutes.
#include <string>

namespace brickwork {

struct WorkspaceBenchOptions {
  bool smoke = false;         // small sizes, short uploads: well under a minute
  std::string daemon_binary;  // empty: this program
  bool keep = false;          // keep the working directory (config, daemon logs)
};

int run_workspace_bench(const WorkspaceBenchOptions& options);

}  // namespace brickwork

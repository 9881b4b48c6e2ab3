#pragma once
// The purge measure of `brickwork bench` (docs/PERFORMANCE.md): intake of new
// workflows while retention deletes many finished ones, against intake
// without it, and the longest a purge batch holds its rows of `workflows`.
#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "daemon/core/time.hpp"

namespace brickwork {

struct PurgeMeasure {
  int64_t finished = 0;            // finished workflows seeded, then purged
  double rate_without = 0;         // intake, workflows/s, nothing purging
  double rate_while_purging = 0;   // intake, workflows/s, a purge running
  double purge_seconds = 0;        // the whole purge, definitions included
  double intake_seconds = 0;       // the intake it ran beside
  int64_t purged = 0;
  int32_t batches = 0;
  Duration longest_hold{0};        // the longest batch, first statement to commit
};

// What the bench gives the measure: an intake of its usual size under a
// phase name (its rate, or nothing when it failed), and a pause until the
// server is quiet.
struct PurgeMeasureHooks {
  std::function<std::optional<double>(const std::string& phase)> intake;
  std::function<void()> settle;
};

// Seeds `finished` succeeded workflows of one step each that ended 40 days
// ago, measures intake without a purge, then with one (retention's own
// batches, `batch_size` workflows each, on their own connection) running
// beside it. Prints progress; an error message on failure.
std::optional<PurgeMeasure> measure_intake_while_purging(const std::string& postgres_url,
                                                         int64_t finished, int32_t batch_size,
                                                         const PurgeMeasureHooks& hooks,
                                                         std::string& error);

// The measure's rows of the bench table: {measure, value, required, verdict}.
std::vector<std::array<std::string, 4>> purge_rows(const PurgeMeasure& measure);

}  // namespace brickwork

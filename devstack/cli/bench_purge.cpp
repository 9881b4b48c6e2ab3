#include "devstack/cli/bench_purge.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <pqxx/pqxx>
#include <thread>

#include "daemon/store/retention.hpp"

namespace brickwork {
namespace {

using SteadyClock = std::chrono::steady_clock;

double seconds_since(SteadyClock::time_point from) {
  return std::chrono::duration<double>(SteadyClock::now() - from).count();
}

std::string fixed(double v, int digits) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, v);
  return text;
}

// Finished workflows as retention finds them: one definition, one step each,
// ended 40 days ago; inserted by the 100k so no transaction grows large.
void seed(const std::string& url, int64_t count) {
  pqxx::connection c(url);
  {
    pqxx::work tx(c);
    tx.exec("INSERT INTO definitions (hash, definition) VALUES ('bench-purge', '{}')"
            " ON CONFLICT (hash) DO NOTHING");
    tx.commit();
  }
  constexpr int64_t kChunk = 100000;
  for (int64_t from = 1; from <= count; from += kChunk) {
    const int64_t to = std::min(count, from + kChunk - 1);
    pqxx::work tx(c);
    tx.exec_params(
        "INSERT INTO workflows (id, workflow, definition_hash, input, status, seq, created_at,"
        " updated_at)"
        " SELECT 'purge-' || g, 'bench_one', 'bench-purge', '{}', 'succeeded', 4,"
        " now() - interval '40 days', now() - interval '40 days'"
        " FROM generate_series($1::bigint, $2::bigint) g",
        from, to);
    tx.exec_params(
        "INSERT INTO steps (workflow_id, name, position, status, attempt, finished_at)"
        " SELECT 'purge-' || g, 'run', 0, 'succeeded', 1, now() - interval '40 days'"
        " FROM generate_series($1::bigint, $2::bigint) g",
        from, to);
    tx.commit();
  }
  pqxx::nontransaction(c).exec("ANALYZE workflows; ANALYZE steps");
}

}  // namespace

std::optional<PurgeMeasure> measure_intake_while_purging(const std::string& postgres_url,
                                                         int64_t finished, int32_t batch_size,
                                                         const PurgeMeasureHooks& hooks,
                                                         std::string& error) {
  PurgeMeasure m;
  m.finished = finished;
  std::cout << "  purge: seeding " << finished << " finished workflows...\n" << std::flush;
  const auto seeded_at = SteadyClock::now();
  try {
    seed(postgres_url, finished);
  } catch (const std::exception& e) {
    error = std::string("cannot seed finished workflows: ") + e.what();
    return std::nullopt;
  }
  std::cout << "    in " << fixed(seconds_since(seeded_at), 1) << " s\n";

  hooks.settle();
  std::cout << "  purge: intake without a purge...\n" << std::flush;
  const auto without = hooks.intake("pg0");
  if (!without) return std::nullopt;
  m.rate_without = *without;
  std::cout << "    " << fixed(*without, 0) << " workflows/s\n";

  hooks.settle();
  std::cout << "  purge: intake while " << finished << " finished workflows are purged...\n"
            << std::flush;
  auto purger = WorkflowPurger::open(postgres_url);
  const PurgeCutoff cutoff{WorkflowStatus::kSucceeded, now_ms() - std::chrono::hours(24 * 30)};
  Result<PurgeTotals> totals = Error{ErrorKind::kInternal, "not_run", "the purge did not run"};
  const auto purge_started = SteadyClock::now();
  std::vector<int64_t> holds;  // ms, in batch order
  std::thread purge([&] {
    totals = purge_finished(*purger, {cutoff}, batch_size, nullptr,
                            [&](WorkflowStatus, const PurgeBatch& batch) {
                              holds.push_back(batch.held.count());
                            });
    m.purge_seconds = seconds_since(purge_started);
  });
  const auto intake_started = SteadyClock::now();
  const auto with = hooks.intake("pg1");
  m.intake_seconds = seconds_since(intake_started);
  purge.join();
  if (!with) return std::nullopt;
  if (!totals) {
    error = "the purge failed: " + totals.error().message;
    return std::nullopt;
  }
  m.rate_while_purging = *with;
  m.purged = totals->total_workflows();
  m.batches = totals->batches;
  m.longest_hold = totals->longest_hold;
  std::cout << "    " << fixed(*with, 0) << " workflows/s; the purge deleted " << m.purged
            << " in " << fixed(m.purge_seconds, 1) << " s (" << m.batches
            << " batches, longest " << m.longest_hold.count() << " ms) beside "
            << fixed(m.intake_seconds, 1) << " s of intake\n";
  if (!holds.empty()) {
    // Spikes or growth: where in the purge the long batches were.
    std::vector<int64_t> sorted = holds;
    std::sort(sorted.begin(), sorted.end());
    const auto at = [&](double p) {
      return sorted[std::min(sorted.size() - 1, static_cast<size_t>(p * static_cast<double>(sorted.size())))];
    };
    std::cout << "    batch holds: p50 " << at(0.5) << " ms, p99 " << at(0.99) << " ms; over 100 ms:";
    int shown = 0;
    for (size_t i = 0; i < holds.size() && shown < 12; ++i) {
      if (holds[i] < 100) continue;
      std::cout << " #" << i + 1 << " (" << holds[i] << " ms)";
      ++shown;
    }
    std::cout << (shown == 0 ? " none\n" : "\n");
  }
  if (m.purged < finished) {
    error = "the purge deleted " + std::to_string(m.purged) + " of " + std::to_string(finished);
    return std::nullopt;
  }
  return m;
}

std::vector<std::array<std::string, 4>> purge_rows(const PurgeMeasure& m) {
  const double ratio = m.rate_without > 0 ? m.rate_while_purging / m.rate_without : 0;
  const std::string n = std::to_string(m.finished);
  return {
      {"intake while purging " + n + " finished workflows (purge " + fixed(m.purge_seconds, 1) +
           " s beside " + fixed(m.intake_seconds, 1) + " s of intake)",
       fixed(m.rate_while_purging, 0) + " workflows/s",
       ">= 0.8 of the rate without purging (" + fixed(0.8 * m.rate_without, 0) + "/s)",
       fixed(100 * ratio, 0) + "% " + (ratio >= 0.8 ? "PASS" : "FAIL")},
      {"longest lock a purge batch holds on workflows (" + std::to_string(m.batches) +
           " batches)",
       std::to_string(m.longest_hold.count()) + " ms", "< 100 ms",
       m.longest_hold < Duration(100) ? "PASS" : "FAIL"},
  };
}

}  // namespace brickwork

#include "daemon/core/databricks_apis.hpp"

#include <iterator>

namespace brickwork {

namespace {

const char* const kApiNames[] = {
    "jobs/run-now",         "jobs/runs/submit",     "jobs/runs/get",        "jobs/runs/get-output",
    "jobs/runs/cancel",     "jobs/list",            "fs/files",             "sql/statements",
    "database/credentials", "postgres/credentials", "unity-catalog/shares", "unity-catalog/recipients"};

}  // namespace

std::string databricks_api_name(std::string_view path_and_query) {
  std::string_view path = path_and_query.substr(0, path_and_query.find('?'));
  if (path.rfind("/api/", 0) != 0) return "";
  // "/api/2.x/<rest>": the longest known name `rest` is, or starts with
  // (for a jobs name, only exactly: runs/get is not runs/get-output).
  path.remove_prefix(5);
  const size_t slash = path.find('/');
  if (slash == std::string_view::npos) return "other";
  const std::string_view rest = path.substr(slash + 1);
  std::string_view best;
  for (std::string_view name : kApiNames) {
    const bool is_jobs = name.rfind("jobs/", 0) == 0;
    const bool match = rest == name || (!is_jobs && rest.size() > name.size() &&
                                        rest.rfind(name, 0) == 0 && rest[name.size()] == '/');
    if (match && name.size() > best.size()) best = name;
  }
  return best.empty() ? "other" : std::string(best);
}

const std::vector<std::string>& databricks_limit_api_names() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> names(std::begin(kApiNames), std::end(kApiNames));
    names.emplace_back("other");
    return names;
  }();
  return kNames;
}

const std::map<std::string, double>& default_databricks_limits() {
  // Below the published per-workspace limits where there is one (run-now
  // 20/s, runs/submit 35/s, runs/get 100/s), so a second client or a person
  // in the UI leaves room; a guess where Databricks publishes none.
  static const std::map<std::string, double> kDefaults = {
      {"jobs/run-now", 15},         {"jobs/runs/submit", 25},     {"jobs/runs/get", 80},
      {"jobs/runs/get-output", 20}, {"jobs/runs/cancel", 15},     {"jobs/list", 10},
      {"fs/files", 20},             {"sql/statements", 30},       {"database/credentials", 10},
      {"postgres/credentials", 10}, {"unity-catalog/shares", 20}, {"unity-catalog/recipients", 20},
      {"other", 20}};
  return kDefaults;
}

std::map<std::string, double> databricks_limits_with(const std::map<std::string, double>& overrides) {
  std::map<std::string, double> limits = default_databricks_limits();
  for (const auto& [api, rate] : overrides) limits[api] = rate;
  return limits;
}

CallPriority priority_of(std::string_view method, std::string_view api,
                         std::string_view path_and_query) {
  if (method != "GET") return CallPriority::kWork;
  if (api == "jobs/runs/get") return CallPriority::kPoll;
  // GET sql/statements/{id}: a statement's status; its result chunks are work.
  if (api == "sql/statements") {
    const std::string_view path = path_and_query.substr(0, path_and_query.find('?'));
    return path.find("/result/") == std::string_view::npos ? CallPriority::kPoll
                                                           : CallPriority::kWork;
  }
  return CallPriority::kWork;
}

}  // namespace brickwork

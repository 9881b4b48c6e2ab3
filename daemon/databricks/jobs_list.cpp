// jobs/list pages. The server's name filter is case-insensitive, so the
// page may hold jobs whose names differ in case; only exact names count.
#include "daemon/databricks/client.hpp"
#include "daemon/databricks/parsing.hpp"

namespace brickwork {

namespace {

Error bad_page(std::string message) {
  return Error{ErrorKind::kInvalidInput, "bad_response", "jobs/list: " + std::move(message)};
}

}  // namespace

Result<JobsListPage> parse_jobs_list_page(const json::value& body, std::string_view name) {
  if (!body.is_object()) return bad_page("response is not a JSON object");
  JobsListPage page;
  auto token = databricks_parsing::next_page_token(body, "jobs/list");
  if (!token) return token.error();
  page.next_page_token = std::move(*token);

  const json::value* jobs = body.get_object().if_contains("jobs");
  if (jobs == nullptr || jobs->is_null()) return page;
  if (!jobs->is_array()) return bad_page("jobs is not an array");
  size_t index = 0;
  for (const json::value& item : jobs->get_array()) {
    const std::string where = "jobs[" + std::to_string(index++) + "]";
    if (!item.is_object()) return bad_page(where + " is not an object");
    const json::value* settings = item.get_object().if_contains("settings");
    if (settings == nullptr || settings->is_null()) continue;
    if (!settings->is_object()) return bad_page(where + ".settings is not an object");
    const json::value* n = settings->get_object().if_contains("name");
    if (n == nullptr || n->is_null()) continue;
    if (!n->is_string()) return bad_page(where + ".settings.name is not a string");
    if (std::string_view(n->get_string()) != name) continue;
    const json::value* id = item.get_object().if_contains("job_id");
    auto job_id = id != nullptr ? databricks_parsing::as_int64(*id) : std::nullopt;
    if (!job_id) return bad_page(where + " has no integer job_id");
    page.matching_job_ids.push_back(*job_id);
  }
  return page;
}

}  // namespace brickwork

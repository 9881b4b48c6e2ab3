#pragma once
// A DatabricksApi for tests where only cancel_calls() matters (shutdown,
// workspace registries): every call fails "unused"; cancel_calls() runs the
// test's callback.
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "daemon/databricks/api.hpp"

namespace brickwork::testing {

class CancelOnlyApi final : public DatabricksApi {
 public:
  explicit CancelOnlyApi(std::function<void()> on_cancel) : on_cancel_(std::move(on_cancel)) {}
  Result<int64_t> run_now(const RunNowRequest&) override { return unused(); }
  Result<int64_t> submit_run(const json::object&) override { return unused(); }
  Result<RunInfo> get_run(int64_t) override { return unused(); }
  Status cancel_run(int64_t) override { return unused(); }
  Result<std::vector<int64_t>> find_jobs_by_name(const std::string&) override { return unused(); }
  Result<json::object> get_run_output(int64_t) override { return unused(); }
  Result<json::value> call(const std::string&, const std::string&, const json::value*,
                           bool) override {
    return unused();
  }
  Status upload_file(const FileUpload&) override { return unused(); }
  std::string host() const override { return "http://127.0.0.1:1"; }
  void cancel_calls() override { on_cancel_(); }

 private:
  static Error unused() { return Error{ErrorKind::kPermanent, "unused", "not in this test"}; }
  std::function<void()> on_cancel_;
};

}  // namespace brickwork::testing

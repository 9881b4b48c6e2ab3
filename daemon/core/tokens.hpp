#pragma once
// Tokens derived from the daemon's callbacks.secret with HMAC-SHA256, so no
// producer can forge a completion and a replayed run-now returns the same run.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace brickwork {

class TokenMinter {
 public:
  explicit TokenMinter(std::string secret) : secret_(std::move(secret)) {}

  // brickwork_token handed to the job of (workflow, step, attempt):
  // "<attempt>.<43 chars base64url HMAC>". The attempt travels in clear (the
  // MAC covers it) so a token is checked before anything is looked up: a
  // forged event costs no database work and learns nothing about which
  // workflows exist.
  std::string callback_token(std::string_view workflow_id, std::string_view step,
                             int32_t attempt) const;
  // The attempt `token` was issued for, when it is a genuine token of
  // (workflow, step); compared in constant time.
  std::optional<int32_t> verify_callback_token(std::string_view token,
                                               std::string_view workflow_id,
                                               std::string_view step) const;
  // idempotency_token for jobs/run-now and runs/submit: "bw1-" + 40 hex chars
  // (Databricks allows 64). The same attempt always yields the same token.
  std::string idempotency_token(std::string_view workflow_id, std::string_view step,
                                int32_t attempt) const;

 private:
  std::string mac(std::string_view purpose, std::string_view workflow_id, std::string_view step,
                  int32_t attempt) const;
  std::string secret_;
};

}  // namespace brickwork

#pragma once
// Tokens derived from the daemon's callbacks.secret with HMAC-SHA256, so no
// producer can forge a completion and a replayed run-now returns the same run.
// During a rotation, callbacks.previous_secrets still verify the tokens they
// made; new callback tokens use the current secret.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace brickwork {

class TokenMinter {
 public:
  explicit TokenMinter(std::string secret, std::vector<std::string> previous_secrets = {});

  // brickwork_token handed to the job of (workflow, step, attempt):
  // "<attempt>.<43 chars base64url HMAC>". The attempt travels in clear (the
  // MAC covers it) so a token is checked before anything is looked up: a
  // forged event costs no database work and learns nothing about which
  // workflows exist.
  std::string callback_token(std::string_view workflow_id, std::string_view step,
                             int32_t attempt) const;
  // The attempt `token` was issued for, when it is a genuine token of
  // (workflow, step) under any of the secrets; compared in constant time.
  std::optional<int32_t> verify_callback_token(std::string_view token, std::string_view workflow_id,
                                               std::string_view step) const;

  // The current secret's key id (key_id_of): recorded with an attempt when
  // it starts, so its idempotency token survives a rotation.
  const std::string& key_id() const { return keys_.front().id; }
  // Whether `key_id` names the current secret or a previous one.
  bool has_key(std::string_view key_id) const;
  // idempotency_token for jobs/run-now and runs/submit: "bw1-" + 40 hex chars
  // (Databricks allows 64), keyed by the secret named `key_id`: the current
  // one when `key_id` is empty (an attempt recorded before key ids) or no
  // longer configured. The same attempt and key always yield the same token.
  std::string idempotency_token(std::string_view workflow_id, std::string_view step,
                                int32_t attempt, std::string_view key_id = {}) const;

 private:
  struct Key {
    std::string id;
    std::string secret;
  };
  const Key& key_named(std::string_view key_id) const;
  static std::string mac(const Key& key, std::string_view purpose, std::string_view workflow_id,
                         std::string_view step, int32_t attempt);
  static std::string callback_token(const Key& key, std::string_view workflow_id,
                                    std::string_view step, int32_t attempt);
  std::vector<Key> keys_;  // the current secret first
};

}  // namespace brickwork

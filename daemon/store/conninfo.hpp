#pragma once
// The password of `postgres.url`, kept out of every message. libpq repeats
// parts of a connection string in its errors (a password with a stray `%`
// comes back whole in "invalid percent-encoded token"), and those errors
// reach logs and the CLI.
#include <string>
#include <string_view>
#include <vector>

namespace brickwork {

// Removes the password of one connection string from any text. Built from the
// string itself, not from libpq's reading of it, so it works on strings that
// libpq rejects too.
class PasswordRedactor {
 public:
  PasswordRedactor() = default;
  // Learns the passwords in `conninfo` (a postgresql:// URI or a keyword/value
  // string): the userinfo password and every `password=` value, each as
  // written and percent-decoded (or unquoted), and libpq's own reading when it
  // can parse the string.
  explicit PasswordRedactor(std::string_view conninfo);

  // `text` with every learned password replaced by "<redacted>", and beyond
  // those, the value of every `password=...` and the password of every
  // `scheme://user:password@`, so a password from elsewhere (the environment,
  // a service file) is caught when libpq shows it in one of these forms.
  std::string redact(std::string_view text) const;

 private:
  std::vector<std::string> passwords_;  // longest first, so no tail of one survives
};

}  // namespace brickwork

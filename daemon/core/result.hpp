#pragma once
// Expected failures (a broker, a database, an HTTP call) travel as values with
// a typed kind, so callers can decide to retry by kind, never blindly.
#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace brickwork {

enum class ErrorKind {
  kTransient,     // worth retrying later: 429, 503, timeouts, connection loss
  kPermanent,     // the request's own fault or a definitive refusal: do not retry
  kInvalidInput,  // bad bytes or bad fields from outside
  kNotFound,
  kConflict,
  kInternal,      // a bug or an unexpected state; logged loudly
};

struct Error {
  ErrorKind kind = ErrorKind::kInternal;
  std::string code;     // machine-readable, e.g. "INVALID_PARAMETER_VALUE", "http_503"
  std::string message;  // human-readable; never contains a secret

  bool transient() const { return kind == ErrorKind::kTransient; }
};

inline const char* to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kTransient: return "transient";
    case ErrorKind::kPermanent: return "permanent";
    case ErrorKind::kInvalidInput: return "invalid_input";
    case ErrorKind::kNotFound: return "not_found";
    case ErrorKind::kConflict: return "conflict";
    case ErrorKind::kInternal: return "internal";
  }
  return "internal";
}

// A value or an Error. Small on purpose: std::expected is C++23.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { assert(!ok()); return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result for operations that produce nothing but may fail.
struct Done {};
using Status = Result<Done>;
inline Status ok_status() { return Done{}; }

}  // namespace brickwork

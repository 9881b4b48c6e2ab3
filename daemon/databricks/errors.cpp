// Databricks error bodies and Retry-After: the classification every retry
// decision of the client rests on, kept apart so it reads (and is tested) on
// its own.
#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

#include "daemon/databricks/client.hpp"
#include "daemon/databricks/parsing.hpp"

namespace brickwork {

namespace {

using databricks_parsing::kMaxErrorCodeBytes;
using databricks_parsing::trim;

std::string number_text(const json::value& v) {
  if (v.is_int64()) return std::to_string(v.get_int64());
  if (v.is_uint64()) return std::to_string(v.get_uint64());
  if (v.is_double()) return std::to_string(static_cast<int64_t>(v.get_double()));
  return {};
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool is_retriable_message(std::string_view message) {
  static constexpr std::array<std::string_view, 9> kPatterns = {
      "UnknownWorkerEnvironmentException",
      "does not have any associated worker environments",
      "There is no worker environment with id",
      "Unknown worker environment",
      "ClusterNotReadyException",
      "Timed out after ",
      "deadline exceeded",
      "Please try again later or try a faster operation.",
      "RPC token bucket limit has been exceeded",
  };
  return std::any_of(kPatterns.begin(), kPatterns.end(),
                     [&](std::string_view p) { return message.find(p) != std::string_view::npos; });
}

}  // namespace

std::optional<Duration> parse_retry_after(std::string_view value) {
  const std::string t = trim(value);
  if (t.empty()) return std::nullopt;
  int64_t seconds = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), seconds);
  if (ec != std::errc() || p != t.data() + t.size() || seconds < 0) return std::nullopt;
  return std::chrono::seconds(std::min<int64_t>(seconds, 3600));
}

Error error_from_http(int status, std::string_view reason, std::string_view body) {
  std::string code;
  std::string message;
  boost::system::error_code ec;
  const json::value v = parse_json(body, ec);
  if (!ec && v.is_object()) {
    const json::object& o = v.get_object();
    auto str = [&](const json::object& obj, std::string_view key) -> std::string {
      const json::value* f = obj.if_contains(key);
      return f != nullptr && f->is_string() ? std::string(f->get_string()) : std::string();
    };
    if (const json::value* c = o.if_contains("error_code")) {
      code = c->is_string() ? std::string(c->get_string()) : number_text(*c);
    }
    message = str(o, "message");
    if (const json::value* e = o.if_contains("error")) {
      if (e->is_string()) {
        const std::string description = str(o, "error_description");
        if (!description.empty()) {
          if (code.empty()) code = std::string(e->get_string());
          if (message.empty()) message = description;
        } else if (message.empty()) {
          message = std::string(e->get_string());
        }
      } else if (e->is_object()) {
        const json::object& inner = e->get_object();
        if (code.empty()) code = str(inner, "error_code");
        if (code.empty()) code = str(inner, "code");
        if (message.empty()) message = str(inner, "message");
      }
    }
    if (code.empty()) code = str(o, "errorCode");
    if (message.empty()) message = str(o, "errorSummary");
    if (message.empty()) message = str(o, "detail");  // SCIM
  } else {
    const std::string text = trim(body);
    if (!text.empty() && text.front() == '<') {
      const auto open = text.find("<pre>");
      const auto close = text.find("</pre>");
      if (open != std::string::npos && close != std::string::npos && close > open) {
        message = trim(std::string_view(text).substr(open + 5, close - open - 5));
      }
    } else if (!text.empty()) {
      const auto colon = text.find(": ");
      const bool code_like =
          colon != std::string::npos && colon > 0 &&
          std::all_of(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(colon), [](char ch) {
            return std::isupper(static_cast<unsigned char>(ch)) || ch == '_' ||
                   std::isdigit(static_cast<unsigned char>(ch));
          });
      if (code_like) {
        code = text.substr(0, colon);
        message = trim(std::string_view(text).substr(colon + 2));
      } else {
        message = text;
      }
    }
  }
  if (code.empty()) code = "http_" + std::to_string(status);
  if (message.empty()) {
    message = reason.empty() ? "HTTP " + std::to_string(status) : std::string(reason);
  }
  // Cut at a character boundary, NUL and bad bytes replaced: the text may
  // end up in a step's error in Postgres and in a step_failed event.
  message = storable_text(message, kMaxErrorTextBytes);
  code = storable_text(code, kMaxErrorCodeBytes);

  ErrorKind kind = ErrorKind::kPermanent;
  if (status == 429 || status == 500 || status == 502 || status == 503 || status == 504) {
    kind = ErrorKind::kTransient;
  } else if (status == 404) {
    kind = ErrorKind::kNotFound;
  } else if (status == 409) {
    kind = ErrorKind::kConflict;
  }
  if (code == "REQUEST_LIMIT_EXCEEDED" || code == "TEMPORARILY_UNAVAILABLE" ||
      is_retriable_message(message)) {
    kind = ErrorKind::kTransient;
  } else if (ends_with(code, "DOES_NOT_EXIST") && kind == ErrorKind::kPermanent) {
    // RESOURCE_DOES_NOT_EXIST, and Unity Catalog's SHARE_/RECIPIENT_/TABLE_DOES_NOT_EXIST.
    kind = ErrorKind::kNotFound;
  } else if (ends_with(code, "ALREADY_EXISTS") && kind == ErrorKind::kPermanent) {
    // ALREADY_EXISTS, RESOURCE_ALREADY_EXISTS, SHARE_/RECIPIENT_ALREADY_EXISTS.
    kind = ErrorKind::kConflict;
  }
  return Error{kind, std::move(code), std::move(message)};
}

}  // namespace brickwork

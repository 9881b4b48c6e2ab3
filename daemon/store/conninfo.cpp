#include "daemon/store/conninfo.hpp"

#include "daemon/core/loopback.hpp"
#include "daemon/core/password_source.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <memory>

namespace brickwork {
namespace {

constexpr std::string_view kRedacted = "<redacted>";

struct ConninfoFree {
  void operator()(PQconninfoOption* options) const { PQconninfoFree(options); }
};
struct PqFree {
  void operator()(char* p) const { PQfreemem(p); }
};
using ConninfoOptions = std::unique_ptr<PQconninfoOption, ConninfoFree>;

// libpq's reading of `text`, or its error message.
struct ParsedConninfo {
  ConninfoOptions options;
  std::string error;
};

ParsedConninfo parse_conninfo(const std::string& text) {
  char* raw_error = nullptr;
  ConninfoOptions options(PQconninfoParse(text.c_str(), &raw_error));
  std::unique_ptr<char, PqFree> error(raw_error);
  ParsedConninfo parsed{std::move(options), {}};
  if (!parsed.options) {
    parsed.error = error ? error.get() : "out of memory";
    while (!parsed.error.empty() &&
           std::isspace(static_cast<unsigned char>(parsed.error.back())) != 0) {
      parsed.error.pop_back();
    }
  }
  return parsed;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// As libpq decodes a URI component, but keeping what it would reject: the
// point is to know what a message might show, not to validate.
std::string percent_decoded(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool ends_unquoted_value(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0 || c == '&' || c == '\'' || c == '"';
}

// A value after `password=` at `from`: its extent in `text` and its content
// (quotes and backslash escapes of a keyword/value string removed).
struct PasswordSpan {
  size_t begin = 0;
  size_t end = 0;
  std::string content;
};

PasswordSpan value_at(std::string_view text, size_t from) {
  PasswordSpan v{from, from, {}};
  if (from < text.size() && (text[from] == '\'' || text[from] == '"')) {
    const char quote = text[from];
    size_t i = from + 1;
    for (; i < text.size() && text[i] != quote; ++i) {
      if (text[i] == '\\' && quote == '\'' && i + 1 < text.size()) ++i;
      v.content += text[i];
    }
    v.end = std::min(i + 1, text.size());
    return v;
  }
  size_t i = from;
  while (i < text.size() && !ends_unquoted_value(text[i])) ++i;
  v.end = i;
  v.content = std::string(text.substr(from, i - from));
  return v;
}

// Every `password=` value in `text` ("sslpassword=" too), any case, with
// blanks around the `=` as keyword/value strings allow.
std::vector<PasswordSpan> password_values(std::string_view text) {
  std::vector<PasswordSpan> values;
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  constexpr std::string_view kWord = "password";
  for (size_t at = lower.find(kWord); at != std::string::npos; at = lower.find(kWord, at + 1)) {
    size_t i = at + kWord.size();
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    if (i >= text.size() || text[i] != '=') continue;
    ++i;
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    PasswordSpan v = value_at(text, i);
    if (v.end > v.begin) values.push_back(std::move(v));
  }
  return values;
}

// The password of every `scheme://user:password@`, found as libpq finds it:
// the userinfo ends at the first '@' before any '/'.
std::vector<PasswordSpan> uri_passwords(std::string_view text) {
  std::vector<PasswordSpan> values;
  for (size_t at = text.find("://"); at != std::string::npos; at = text.find("://", at + 3)) {
    const size_t start = at + 3;
    size_t i = start;
    while (i < text.size() && text[i] != '@' && text[i] != '/' && text[i] != '?' &&
           text[i] != '#' && !ends_unquoted_value(text[i])) {
      ++i;
    }
    if (i >= text.size() || text[i] != '@') continue;
    const size_t colon = text.find(':', start);
    if (colon == std::string::npos || colon >= i || colon + 1 == i) continue;
    values.push_back(
        PasswordSpan{colon + 1, i, std::string(text.substr(colon + 1, i - colon - 1))});
  }
  return values;
}

// `text` with each span replaced by the marker; spans may overlap.
std::string replace_spans(std::string_view text, std::vector<PasswordSpan> spans) {
  std::sort(spans.begin(), spans.end(),
            [](const PasswordSpan& a, const PasswordSpan& b) { return a.begin < b.begin; });
  std::string out;
  size_t pos = 0;
  for (const PasswordSpan& s : spans) {
    if (s.end <= pos) continue;
    if (s.begin > pos) out.append(text.substr(pos, s.begin - pos));
    out += kRedacted;
    pos = s.end;
  }
  out.append(text.substr(std::min(pos, text.size())));
  return out;
}

}  // namespace

PasswordRedactor::PasswordRedactor(std::string_view conninfo) {
  auto learn = [this](const std::string& raw) {
    for (std::string p : {raw, percent_decoded(raw)}) {
      if (!p.empty() && p != kRedacted &&
          std::find(passwords_.begin(), passwords_.end(), p) == passwords_.end()) {
        passwords_.push_back(std::move(p));
      }
    }
  };
  for (const PasswordSpan& v : uri_passwords(conninfo)) learn(v.content);
  for (const PasswordSpan& v : password_values(conninfo)) learn(v.content);
  ParsedConninfo parsed = parse_conninfo(std::string(conninfo));
  if (parsed.options) {
    for (const PQconninfoOption* o = parsed.options.get(); o->keyword != nullptr; ++o) {
      if (o->val != nullptr && std::string_view(o->keyword).find("password") != std::string::npos) {
        learn(o->val);
      }
    }
  }
  std::stable_sort(passwords_.begin(), passwords_.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

std::string PasswordRedactor::redact(std::string_view text) const {
  std::string known;
  known.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    auto hit = std::find_if(passwords_.begin(), passwords_.end(), [&](const std::string& p) {
      return text.compare(i, p.size(), p) == 0;
    });
    if (hit != passwords_.end()) {
      known += kRedacted;
      i += hit->size();
    } else {
      known += text[i++];
    }
  }
  std::vector<PasswordSpan> spans = password_values(known);
  for (PasswordSpan& v : uri_passwords(known)) spans.push_back(std::move(v));
  return replace_spans(known, std::move(spans));
}

std::optional<std::string> conninfo_problem(const std::string& url) {
  ParsedConninfo parsed = parse_conninfo(url);
  if (parsed.options) return std::nullopt;
  return "not a connection string libpq can read (" + PasswordRedactor(url).redact(parsed.error) +
         ")";
}

namespace {

// Every host of a comma-separated list is a Unix socket directory or a
// loopback address; no host at all means the default socket.
bool only_local_hosts(const std::string& hosts) {
  size_t from = 0;
  while (from < hosts.size()) {
    const size_t comma = hosts.find(',', from);
    const std::string host = hosts.substr(from, comma - from);
    from = comma == std::string::npos ? hosts.size() : comma + 1;
    if (host.empty() || host.front() == '/' || host.front() == '@') continue;
    if (!is_loopback_host(host)) return false;
  }
  return true;
}

}  // namespace

Result<std::string> store_conninfo(const std::string& url, const StoreTimeouts& timeouts,
                                   const StoreEnvLookup& env) {
  ParsedConninfo parsed = parse_conninfo(url);
  if (!parsed.options) {
    return Error{ErrorKind::kInvalidInput, "config",
                 "postgres.url: not a connection string libpq can read (" +
                     PasswordRedactor(url).redact(parsed.error) + ")"};
  }
  auto getenv = [&](const char* name) -> std::string {
    const char* v = env ? env(name) : std::getenv(name);
    return v == nullptr ? std::string() : std::string(v);
  };
  auto quoted = [](const std::string& value) {
    std::string out = "'";
    for (char c : value) {
      if (c == '\\' || c == '\'') out += '\\';
      out += c;
    }
    return out + "'";
  };

  std::string conninfo;
  bool has_connect_timeout = false;
  bool has_sslmode = false;
  std::string hosts;
  std::optional<std::string> options;
  for (const PQconninfoOption* o = parsed.options.get(); o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    const std::string_view keyword = o->keyword;
    if (keyword == "connect_timeout") has_connect_timeout = true;
    if (keyword == "sslmode") has_sslmode = true;
    if (keyword == "host" || keyword == "hostaddr") hosts += std::string(o->val) + ",";
    if (keyword == "options") {
      options = o->val;
      continue;  // written last, with the statement timeout
    }
    conninfo += (conninfo.empty() ? "" : " ") + std::string(keyword) + "=" + quoted(o->val);
  }
  // A password (a Lakebase token above all) must not cross a network in the
  // clear: TLS unless the server is this machine or the URL/PGSSLMODE says.
  if (!has_sslmode && getenv("PGSSLMODE").empty() && !only_local_hosts(hosts)) {
    conninfo += (conninfo.empty() ? "" : " ") + std::string("sslmode='require'");
  }
  // Values from the environment are libpq's too: they are the user's, not ours to override.
  if (!has_connect_timeout && getenv("PGCONNECT_TIMEOUT").empty()) {
    conninfo += (conninfo.empty() ? "" : " ") + std::string("connect_timeout=") +
                quoted(std::to_string(timeouts.connect_timeout_seconds));
  }
  // `options` in the string hides PGOPTIONS, so start from it when the URL has none.
  std::string server_options = options ? *options : getenv("PGOPTIONS");
  if (server_options.find("statement_timeout") == std::string::npos &&
      server_options.find("statement-timeout") == std::string::npos) {
    server_options += (server_options.empty() ? "" : " ") + std::string("-c statement_timeout=") +
                      timeouts.statement_timeout;
    options = server_options;
  }
  if (options)
    conninfo += (conninfo.empty() ? "" : " ") + std::string("options=") + quoted(*options);
  return conninfo;
}

Result<std::string> with_password(const std::string& conninfo, PasswordSource* source) {
  if (source == nullptr) return conninfo;
  auto password = source->password();
  if (!password) return password.error();
  std::string quoted = "'";
  for (char c : *password) {
    if (c == '\\' || c == '\'') quoted += '\\';
    quoted += c;
  }
  return conninfo + " password=" + quoted + "'";
}

}  // namespace brickwork

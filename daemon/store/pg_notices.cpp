#include "daemon/store/pg_notices.hpp"

#include <string_view>

#include "daemon/core/logging.hpp"

namespace brickwork {

bool PgNoticeLogger::operator()(const char message[]) noexcept {
  try {
    const std::string_view text(message);
    // libpq starts a server's notice with its severity.
    LibraryLevel level = LibraryLevel::kWarn;
    if (text.starts_with("NOTICE") || text.starts_with("INFO") || text.starts_with("LOG")) {
      level = LibraryLevel::kInfo;
    } else if (text.starts_with("DEBUG")) {
      level = LibraryLevel::kDebug;
    }
    log_library_message(level, "libpq", "", text);
  } catch (...) {
    // A notice must never take the connection down.
  }
  return false;  // handled: older handlers (libpqxx's stderr default) stay silent
}

}  // namespace brickwork

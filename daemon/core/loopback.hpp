#pragma once
// The one rule for where plain http:// may go: a loopback host (the local
// Databricks simulator). Used by the configuration loader, to report a bad
// host with its position, and by the HTTP client, to refuse it at any rate.
#include <string_view>

namespace brickwork {

// True for "localhost", 127.0.0.0/8 and ::1 (with or without brackets).
// A name that merely starts with "127." ("127.example.com") is not loopback.
bool is_loopback_host(std::string_view host);

}  // namespace brickwork

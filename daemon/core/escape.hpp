#pragma once
// Text that came from outside (error messages from Databricks, a completion
// event or Postgres; workflow inputs echoed in messages) shown on a terminal
// or written to a line-oriented log. Raw, a newline forges a second log line
// and an escape sequence (ESC [ ... m, or the one-byte CSI 0x9b) recolours,
// moves or clears the operator's terminal.
#include <string>
#include <string_view>

namespace brickwork {

// `text` on one line with nothing a terminal acts on. Each byte keeps its
// meaning and the result can be read back unambiguously:
//   "\\" for a backslash; "\n", "\r", "\t";
//   "\xNN" (two lowercase hex digits, one per byte) for every other C0
//   control and DEL, for C1 controls (U+0080..U+009F, bytes C2 80..C2 9F),
//   for the line and paragraph separators U+2028/U+2029 and the bidirectional
//   embeddings, overrides and isolates (U+202A..U+202E, U+2066..U+2069),
//   which reorder what is displayed, and for each byte that is not part of
//   valid UTF-8.
// Every other character, ASCII or UTF-8, is kept as it is.
std::string escape_control_characters(std::string_view text);

}  // namespace brickwork

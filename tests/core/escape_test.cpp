#include "daemon/core/escape.hpp"

#include <gtest/gtest.h>

namespace brickwork {
namespace {

TEST(Escape, PlainTextAndUtf8AreKept) {
  EXPECT_EQ(escape_control_characters("job 42 failed: \"quota\" (Zürich, 東京, 🙂)"),
            "job 42 failed: \"quota\" (Zürich, 東京, 🙂)");
  EXPECT_EQ(escape_control_characters(""), "");
}

TEST(Escape, LineBreaksAndTabsCannotForgeLines) {
  EXPECT_EQ(escape_control_characters("a\nb\r\nc\td"), "a\\nb\\r\\nc\\td");
  // A forged log line stays on the line it is part of.
  EXPECT_EQ(escape_control_characters("ok\n2026-11-22T10:00:00Z ERROR fake"),
            "ok\\n2026-11-22T10:00:00Z ERROR fake");
}

TEST(Escape, TerminalEscapeSequencesAreDefused) {
  EXPECT_EQ(escape_control_characters("\x1b[31mred\x1b[0m"), "\\x1b[31mred\\x1b[0m");
  EXPECT_EQ(escape_control_characters("\x1b]0;title\x07"), "\\x1b]0;title\\x07");
  EXPECT_EQ(escape_control_characters(std::string("nul\0del\x7f", 8)), "nul\\x00del\\x7f");
  // C1 controls as UTF-8 (U+009B is CSI) and as lone bytes.
  EXPECT_EQ(escape_control_characters("\xc2\x9b"
                                      "31m"),
            "\\xc2\\x9b31m");
  EXPECT_EQ(escape_control_characters("\x9b"
                                      "31m"),
            "\\x9b31m");
  // Line separators and bidirectional overrides reorder or break what is shown.
  EXPECT_EQ(escape_control_characters("a\xe2\x80\xa8"
                                      "b"),
            "a\\xe2\\x80\\xa8b");
  EXPECT_EQ(escape_control_characters("txt.\xe2\x80\xae"
                                      "exe"),
            "txt.\\xe2\\x80\\xaeexe");
  EXPECT_EQ(escape_control_characters("\xe2\x81\xa6"
                                      "x"),
            "\\xe2\\x81\\xa6x");
}

TEST(Escape, InvalidUtf8IsShownByteByByte) {
  EXPECT_EQ(escape_control_characters("a\xff"
                                      "b"),
            "a\\xffb");
  EXPECT_EQ(escape_control_characters("\xc3"), "\\xc3");                    // truncated
  EXPECT_EQ(escape_control_characters("\xc0\xaf"), "\\xc0\\xaf");           // overlong '/'
  EXPECT_EQ(escape_control_characters("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // surrogate
}

TEST(Escape, TheResultIsUnambiguous) {
  // A literal backslash sequence in the input cannot pass for an escape.
  EXPECT_EQ(escape_control_characters("\\n"), "\\\\n");
  EXPECT_NE(escape_control_characters("\\n"), escape_control_characters("\n"));
  EXPECT_EQ(escape_control_characters("C:\\x1b"), "C:\\\\x1b");
}

}  // namespace
}  // namespace brickwork

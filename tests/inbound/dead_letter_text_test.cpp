// Dead letters are themselves UTF-8 JSON, whatever bytes arrived; and the
// parsers' messages say where and what.
#include <gtest/gtest.h>

#include "handlers/inbound/messages.hpp"

namespace brickwork {
namespace {

TEST(InvalidJson, MessageNamesTheByteOffset) {
  auto r = parse_command(R"({"type": "start", "id" 1})");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "invalid_json");
  EXPECT_NE(r.error().message.find("at byte 23"), std::string::npos) << r.error().message;
  auto trailing = parse_command(R"({"type":"retry","id":"a"} x)");
  ASSERT_FALSE(trailing);
  EXPECT_EQ(trailing.error().code, "invalid_json");
  EXPECT_NE(trailing.error().message.find("at byte 26"), std::string::npos)
      << trailing.error().message;
}

TEST(InvalidJson, InvalidUtf8InsideAStringIsInvalidJson) {
  auto r = parse_command(std::string("{\"type\":\"start\",\"id\":\"a\",\"workflow\":\"w\xC0\xAF\"}"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "invalid_json");
}

TEST(Rejections, EchoedTextIsCutAtACharacterBoundary) {
  // 99 ASCII bytes, then a 3-byte character straddling byte 100.
  const std::string type = std::string(99, 'x') + "\xE2\x82\xAC" + "tail";
  auto r = parse_command("{\"type\":\"" + type + "\",\"id\":\"a\"}");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "unknown_type");
  EXPECT_TRUE(is_valid_utf8(r.error().message)) << r.error().message;
  auto event = parse_completion("{\"type\":\"" + type + "\"}");
  ASSERT_FALSE(event);
  EXPECT_TRUE(is_valid_utf8(event.error().message));
}

TEST(DeadLetterText, MessageAndReasonAreAlwaysValidUtf8) {
  const std::string record = dead_letter_json("invalid_json", "bad \xFF byte", "t", 0, 7,
                                              std::nullopt, "{}", TimePoint{});
  ASSERT_TRUE(is_valid_utf8(record));
  auto v = json::parse(record).as_object();
  EXPECT_EQ(v.at("message"), "bad \xEF\xBF\xBD byte");
  EXPECT_TRUE(v.at("key").is_null());
  EXPECT_EQ(v.at("payload"), "{}");
  EXPECT_EQ(v.at("source").at("offset"), 7);
  EXPECT_EQ(v.at("at"), "1970-01-01T00:00:00.000Z");
}

TEST(DeadLetterText, KeyThatIsNotUtf8GoesBase64) {
  auto v = json::parse(dead_letter_json("invalid_json", "m", "t", 0, 0, std::string("\xFF\x01"),
                                        "x", TimePoint{}))
               .as_object();
  EXPECT_FALSE(v.contains("key"));
  EXPECT_EQ(v.at("key_base64"), "/wE=");
}

TEST(DeadLetterText, TruncatedTextStaysText) {
  // A multi-byte character straddles the cut: the payload stays a string.
  std::string payload(kMaxDeadLetterPayloadBytes - 1, 'a');
  payload += "\xF0\x9F\x98\x80";  // U+1F600, 4 bytes
  payload += std::string(100, 'b');
  auto v = json::parse(dead_letter_json("too_large", "m", "t", 0, 0, std::nullopt, payload,
                                        TimePoint{}))
               .as_object();
  ASSERT_TRUE(v.contains("payload"));
  EXPECT_FALSE(v.contains("payload_base64"));
  EXPECT_EQ(v.at("payload").as_string().size(), kMaxDeadLetterPayloadBytes - 1);
  EXPECT_EQ(v.at("payload_truncated"), true);
  EXPECT_EQ(v.at("payload_bytes"), payload.size());
}

TEST(Utf8, BoundariesOfEachForm) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("\x7F"));
  EXPECT_TRUE(is_valid_utf8("\xC2\x80"));          // U+0080, smallest 2-byte
  EXPECT_FALSE(is_valid_utf8("\xC1\xBF"));         // overlong U+007F
  EXPECT_TRUE(is_valid_utf8("\xE0\xA0\x80"));      // U+0800, smallest 3-byte
  EXPECT_FALSE(is_valid_utf8("\xE0\x9F\xBF"));     // overlong U+07FF
  EXPECT_TRUE(is_valid_utf8("\xED\x9F\xBF"));      // U+D7FF
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));     // U+D800, a surrogate
  EXPECT_FALSE(is_valid_utf8("\xED\xBF\xBF"));     // U+DFFF
  EXPECT_TRUE(is_valid_utf8("\xEE\x80\x80"));      // U+E000
  EXPECT_TRUE(is_valid_utf8("\xEF\xBF\xBF"));      // U+FFFF
  EXPECT_TRUE(is_valid_utf8("\xF0\x90\x80\x80"));  // U+10000, smallest 4-byte
  EXPECT_FALSE(is_valid_utf8("\xF0\x8F\xBF\xBF")); // overlong U+FFFF
  EXPECT_TRUE(is_valid_utf8("\xF4\x8F\xBF\xBF"));  // U+10FFFF, the largest
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80")); // U+110000
  EXPECT_FALSE(is_valid_utf8("\xF5\x80\x80\x80"));
  EXPECT_FALSE(is_valid_utf8("\xF8\x88\x80\x80\x80"));  // 5-byte form
  EXPECT_FALSE(is_valid_utf8("\x80"));             // lone continuation
  EXPECT_FALSE(is_valid_utf8("\xE2\x82"));         // truncated at the end
  EXPECT_FALSE(is_valid_utf8("\xE2\x28\xA1"));     // bad continuation
  EXPECT_FALSE(is_valid_utf8("\xFE"));
  EXPECT_TRUE(is_valid_utf8(std::string_view("a\0b", 3)));  // NUL is a character
}

TEST(ParseCompletion, NullOptionalFieldsTakeTheirDefaults) {
  auto r = parse_completion(
      R"({"type":"job_completed","workflow_id":"w-1","step":"s","token":"t","state":"TIMEDOUT",)"
      R"("run_id":null,"output":null,"message":null,"extra":[1,2]})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->state, RunResult::kTimedOut);
  EXPECT_FALSE(r->run_id);
  EXPECT_TRUE(r->output.empty());
  EXPECT_EQ(r->message, "");
}

TEST(ParseCompletion, RunIdMustBeAnInteger) {
  const std::string head =
      R"({"type":"job_completed","workflow_id":"w","step":"s","token":"t","state":"FAILED","run_id":)";
  for (const char* bad : {"1.5", "\"12\"", "true", "1e30", "18446744073709551615"}) {
    auto r = parse_completion(head + bad + "}");
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, "invalid_field") << bad;
  }
}

}  // namespace
}  // namespace brickwork

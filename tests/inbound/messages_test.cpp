#include "handlers/inbound/messages.hpp"

#include "daemon/core/json_limits.hpp"

#include <gtest/gtest.h>

namespace brickwork {
namespace {

std::string reason_of(std::string_view payload) {
  auto parsed = parse_command(payload);
  return parsed ? "ok" : parsed.error().code;
}

TEST(ParseCommand, StartWithInput) {
  auto c = parse_command(
      R"({"type":"start","id":"order-4711","workflow":"daily","input":{"url":"s3://x"},"extra":1})");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->type, "start");
  EXPECT_EQ(c->id, "order-4711");
  EXPECT_EQ(c->workflow, "daily");
  EXPECT_EQ(c->input.at("url"), "s3://x");
}

TEST(ParseCommand, InputDefaultsToEmptyObject) {
  auto c = parse_command(R"({"type":"start","id":"a","workflow":"w"})");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->input.empty());
}

TEST(ParseCommand, CancelRetrySignal) {
  auto cancel = parse_command(R"({"type":"cancel","id":"a","reason":"user asked"})");
  ASSERT_TRUE(cancel);
  EXPECT_EQ(cancel->reason, "user asked");
  ASSERT_TRUE(parse_command(R"({"type":"retry","id":"a"})"));
  auto signal = parse_command(R"({"type":"signal","id":"a","name":"approved","value":{"by":"ana"}})");
  ASSERT_TRUE(signal);
  EXPECT_EQ(signal->name, "approved");
  EXPECT_EQ(signal->value.at("by"), "ana");
}

TEST(ParseCommand, EveryRejectionHasItsReason) {
  EXPECT_EQ(reason_of("{not json"), "invalid_json");
  EXPECT_EQ(reason_of(""), "invalid_json");
  EXPECT_EQ(reason_of(R"({"a":1} trailing)"), "invalid_json");
  EXPECT_EQ(reason_of("[1,2]"), "not_object");
  EXPECT_EQ(reason_of("42"), "not_object");
  EXPECT_EQ(reason_of(R"({"id":"a"})"), "missing_field");
  EXPECT_EQ(reason_of(R"({"type":"start","workflow":"w"})"), "missing_field");
  EXPECT_EQ(reason_of(R"({"type":"start","id":"a"})"), "missing_field");
  EXPECT_EQ(reason_of(R"({"type":"signal","id":"a"})"), "missing_field");
  EXPECT_EQ(reason_of(R"({"type":"start","id":42,"workflow":"w"})"), "invalid_field");
  EXPECT_EQ(reason_of(R"({"type":"start","id":"has space","workflow":"w"})"), "invalid_field");
  EXPECT_EQ(reason_of(R"({"type":"start","id":"","workflow":"w"})"), "invalid_field");
  EXPECT_EQ(reason_of(R"({"type":"start","id":"a","workflow":"w","input":[1]})"), "invalid_field");
  EXPECT_EQ(reason_of(R"({"type":"explode","id":"a"})"), "unknown_type");
  EXPECT_EQ(reason_of(R"({"type":7,"id":"a"})"), "invalid_field");
}

TEST(ParseCommand, IdLimits) {
  EXPECT_EQ(reason_of(R"({"type":"retry","id":")" + std::string(200, 'a') + "\"}"), "ok");
  EXPECT_EQ(reason_of(R"({"type":"retry","id":")" + std::string(201, 'a') + "\"}"),
            "invalid_field");
  EXPECT_EQ(reason_of(R"({"type":"retry","id":"A-z.0_9:x"})"), "ok");
}

TEST(ParseCommand, TooLargeMessageAndInput) {
  const std::string big_input =
      R"({"type":"start","id":"a","workflow":"w","input":{"blob":")" + std::string(kMaxInputBytes, 'x') + "\"}}";
  EXPECT_EQ(reason_of(big_input), "too_large");
  const std::string huge(kMaxMessageBytes + 1, ' ');
  EXPECT_EQ(reason_of(huge), "too_large");
}

TEST(ParseCommand, DeepNestingIsRefusedWithoutCrashing) {
  std::string deep(100000, '[');
  EXPECT_EQ(reason_of(deep), "invalid_json");
  std::string nested = R"({"type":"start","id":"a","workflow":"w","input":)";
  for (int i = 0; i < 200; ++i) nested += R"({"a":)";
  nested += "1";
  for (int i = 0; i < 200; ++i) nested += "}";
  nested += "}";
  EXPECT_EQ(reason_of(nested), "invalid_json");
}

TEST(ParseCompletion, ValidEvent) {
  auto e = parse_completion(
      R"({"type":"job_completed","workflow_id":"w-1","step":"t","token":"tok","state":"SUCCESS","run_id":1234,"output":{"rows":42},"message":"fine"})");
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(e->workflow_id, "w-1");
  EXPECT_EQ(e->step, "t");
  EXPECT_EQ(e->token, "tok");
  EXPECT_EQ(e->state, RunResult::kSuccess);
  EXPECT_EQ(e->run_id, 1234);
  EXPECT_EQ(e->output.at("rows"), 42);
  EXPECT_EQ(e->message, "fine");
}

TEST(ParseCompletion, Rejections) {
  auto reason = [](std::string_view p) {
    auto e = parse_completion(p);
    return e ? "ok" : e.error().code;
  };
  EXPECT_EQ(reason(R"({"type":"job_started"})"), "unknown_type");
  EXPECT_EQ(reason(R"({"type":"job_completed","step":"s","token":"t","state":"SUCCESS"})"),
            "missing_field");
  EXPECT_EQ(reason(R"({"type":"job_completed","workflow_id":"w","step":"s","token":"t","state":"DONE"})"),
            "invalid_field");
  EXPECT_EQ(reason(R"({"type":"job_completed","workflow_id":"w","step":"s","token":"t","state":"FAILED","run_id":"x"})"),
            "invalid_field");
  EXPECT_EQ(reason(R"({"type":"job_completed","workflow_id":"w","step":"s","token":"t","state":"FAILED","output":3})"),
            "invalid_field");
  EXPECT_EQ(reason(R"({"type":"job_completed","workflow_id":"w","step":"s","token":"t","state":"TIMEDOUT"})"),
            "ok");
}

TEST(ExtractId, OnlyAUsableId) {
  EXPECT_EQ(extract_id(R"({"type":"bogus","id":"order-1"})"), "order-1");
  EXPECT_FALSE(extract_id(R"({"type":"start","id":"bad id"})"));
  EXPECT_FALSE(extract_id(R"({"type":"start","id":1})"));
  EXPECT_FALSE(extract_id("not json"));
}

TEST(Utf8, StrictValidation) {
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));  // é € 😀
  EXPECT_FALSE(is_valid_utf8("\xff"));
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xe0\x80\xaf"));      // overlong
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate U+D800
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xe2\x82"));          // truncated
}

TEST(DeadLetter, Utf8PayloadAsTextOtherwiseBase64) {
  const TimePoint at = from_epoch_ms(0);
  auto text = json::parse(dead_letter_json("invalid_json", "bad", "t", 3, 1182, std::string("k"),
                                           "{oops", at));
  EXPECT_EQ(text.at("reason"), "invalid_json");
  EXPECT_EQ(text.at("source").at("partition"), 3);
  EXPECT_EQ(text.at("source").at("offset"), 1182);
  EXPECT_EQ(text.at("key"), "k");
  EXPECT_EQ(text.at("payload"), "{oops");
  EXPECT_EQ(text.at("at"), "1970-01-01T00:00:00.000Z");
  auto binary = json::parse(dead_letter_json("invalid_json", "bad", "t", 0, 0, std::nullopt,
                                             std::string("\xff\x00\x01", 3), at));
  EXPECT_FALSE(binary.as_object().contains("payload"));
  EXPECT_EQ(binary.at("payload_base64"), "/wAB");
}

TEST(DeadLetter, HugePayloadIsTruncatedToFitKafka) {
  const std::string huge(2 * 1024 * 1024, 'x');
  const std::string record =
      dead_letter_json("too_large", "big", "t", 0, 0, std::nullopt, huge, from_epoch_ms(0));
  EXPECT_LT(record.size(), 300u * 1024);
  auto v = json::parse(record);
  EXPECT_EQ(v.at("payload_truncated"), true);
  EXPECT_EQ(v.at("payload_bytes"), huge.size());
}

}  // namespace
}  // namespace brickwork

namespace brickwork {
namespace {

std::string start_with_workflow(size_t bytes) {
  return R"({"type":"start","id":"a","workflow":")" + std::string(bytes, 'w') + "\"}";
}

// Every field a status event or dead letter repeats is capped where it is
// parsed, so nothing brickwork publishes can exceed Kafka's message size.
TEST(InboundLimits, EchoedFieldsAreCapped) {
  EXPECT_EQ(reason_of(start_with_workflow(kMaxNameBytes)), "ok");
  EXPECT_EQ(reason_of(start_with_workflow(kMaxNameBytes + 1)), "too_large");
  EXPECT_EQ(reason_of(start_with_workflow(950'000)), "too_large");
  const std::string cancel = R"({"type":"cancel","id":"a","reason":")";
  EXPECT_EQ(reason_of(cancel + std::string(kMaxReasonBytes, 'r') + "\"}"), "ok");
  EXPECT_EQ(reason_of(cancel + std::string(900'000, 'r') + "\"}"), "too_large");
  const std::string signal = R"({"type":"signal","id":"a","name":")";
  EXPECT_EQ(reason_of(signal + std::string(kMaxNameBytes + 1, 'n') + "\"}"), "too_large");
  EXPECT_EQ(reason_of(signal + R"(go","value":")" + std::string(kMaxSignalValueBytes, 'v') + "\"}"),
            "too_large");
  auto parsed = parse_command(start_with_workflow(950'000));
  ASSERT_FALSE(parsed);
  EXPECT_LT(parsed.error().message.size(), 200u);  // the message names sizes, not the value
}

std::string completion_with(const std::string& fields) {
  return R"({"type":"job_completed","workflow_id":"w","token":"1.t","state":"SUCCESS",)" +
         fields + "}";
}

TEST(InboundLimits, CompletionFields) {
  auto step = parse_completion(completion_with(R"("step":")" + std::string(900'000, 's') + "\""));
  ASSERT_FALSE(step);
  EXPECT_EQ(step.error().code, "too_large");

  // A long message is news (a traceback): kept, cut at the limit.
  auto message = parse_completion(
      completion_with(R"("step":"s","message":")" + std::string(100'000, 'm') + "\""));
  ASSERT_TRUE(message) << message.error().message;
  EXPECT_LE(message->message.size(), kMaxMessageTextBytes);
  EXPECT_TRUE(message->message.ends_with("..."));

  // An output over the limit is flagged, not refused: the token decides first.
  auto output = parse_completion(completion_with(
      R"("step":"s","output":{"x":")" + std::string(kMaxOutputBytes, 'o') + "\"}"));
  ASSERT_TRUE(output) << output.error().message;
  ASSERT_TRUE(output->oversized_output_bytes);
  EXPECT_GT(*output->oversized_output_bytes, kMaxOutputBytes);
  EXPECT_TRUE(output->output.empty());

  auto huge_run_id = parse_completion(completion_with(R"("step":"s","run_id":18446744073709551615)"));
  ASSERT_FALSE(huge_run_id);
  EXPECT_EQ(huge_run_id.error().code, "invalid_field");
}

TEST(InboundLimits, DeadLetterKeyAndMessageAreCapped) {
  const std::string key(900'000, 'k');
  const std::string record = dead_letter_json("invalid_json", std::string(900'000, 'm'), "t", 0, 1,
                                              key, "x", from_epoch_ms(0));
  EXPECT_LT(record.size(), 16u * 1024u);
  const json::object o = json::parse(record).as_object();
  EXPECT_EQ(o.at("key").as_string().size(), kMaxDeadLetterKeyBytes);
  EXPECT_EQ(o.at("key_truncated"), true);
  EXPECT_EQ(o.at("key_bytes").as_int64(), 900'000);
  EXPECT_LE(o.at("message").as_string().size(), kMaxDeadLetterMessageBytes);
  EXPECT_EQ(dead_letter_key(key).size(), kMaxDeadLetterKeyBytes);
}

TEST(InboundLimits, NestingUpToTheCommonLimitIsAccepted) {
  std::string deep = "1";
  // The message object, then kMaxJsonDepth - 1 levels of input: exactly the limit.
  for (size_t i = 0; i < kMaxJsonDepth - 1; ++i) deep = R"({"a":)" + deep + "}";
  EXPECT_EQ(reason_of(R"({"type":"start","id":"a","workflow":"w","input":)" + deep + "}"), "ok");
  EXPECT_EQ(reason_of(R"({"type":"start","id":"a","workflow":"w","input":{"b":)" + deep + "}}"),
            "invalid_json");
}

}  // namespace
}  // namespace brickwork

namespace brickwork {
namespace {

// jsonb refuses U+0000 and Postgres text refuses NUL: such a command must be
// refused where it is parsed, not fail the transaction that would store it.
TEST(TextPostgresRefuses, NulAnywhereInACommandIsInvalidText) {
  EXPECT_EQ(reason_of(R"({"type":"start","id":"a","workflow":"w","input":{"x":"a\u0000b"}})"),
            "invalid_text");
  EXPECT_EQ(reason_of(R"({"type":"start","id":"a","workflow":"w","input":{"deep":[{"k\u0000":1}]}})"),
            "invalid_text");
  EXPECT_EQ(reason_of(R"({"type":"start","id":"a","workflow":"w\u0000"})"), "invalid_text");
  EXPECT_EQ(reason_of(R"({"type":"cancel","id":"a","reason":"\u0000"})"), "invalid_text");
  EXPECT_EQ(reason_of(R"({"type":"signal","id":"a","name":"s","value":{"v":"\u0000"}})"),
            "invalid_text");
  // Other escapes and U+FFFD itself are fine.
  EXPECT_EQ(reason_of(R"({"type":"start","id":"a","workflow":"w","input":{"x":"\u0001\ufffd"}})"),
            "ok");
  // Lone surrogates and invalid UTF-8 never get past the JSON parser.
  EXPECT_EQ(reason_of(R"({"type":"start","id":"a","workflow":"w","input":{"x":"\ud800"}})"),
            "invalid_json");
  EXPECT_EQ(reason_of("{\"type\":\"start\",\"id\":\"a\",\"workflow\":\"w\",\"input\":{\"x\":\"\xff\"}}"),
            "invalid_json");
  // The id is still usable, for the command_rejected event.
  EXPECT_EQ(extract_id(R"({"type":"start","id":"a","workflow":"w","input":{"x":"\u0000"}})"), "a");
}

TEST(TextPostgresRefuses, NulInACompletionsOutputFailsItsStepOtherwiseRefusedOrReplaced) {
  auto output = parse_completion(
      R"({"type":"job_completed","workflow_id":"w","step":"s","token":"t","state":"SUCCESS","output":{"x":"a\u0000b"}})");
  ASSERT_TRUE(output) << output.error().message;
  EXPECT_TRUE(output->output_holds_nul);  // the step then fails with invalid_output
  EXPECT_TRUE(output->output.empty());
  auto message = parse_completion(
      R"({"type":"job_completed","workflow_id":"w","step":"s","token":"t","state":"FAILED","message":"bad\u0000thing"})");
  ASSERT_TRUE(message) << message.error().message;
  EXPECT_FALSE(message->output_holds_nul);
  EXPECT_EQ(message->message, "bad\xEF\xBF\xBDthing");
  auto step = parse_completion(
      R"({"type":"job_completed","workflow_id":"w","step":"s\u0000","token":"t","state":"SUCCESS"})");
  ASSERT_FALSE(step);
  EXPECT_EQ(step.error().code, "invalid_text");
}

// A dead letter's Kafka key is stored as text until it is published.
TEST(TextPostgresRefuses, DeadLetterKeyIsStorableTextAndTheRecordKeepsTheOriginal) {
  const std::string nul_key("k\0y", 3);
  EXPECT_EQ(dead_letter_key(nul_key), "k\xEF\xBF\xBDy");
  EXPECT_EQ(dead_letter_key(std::string("\xff\xfe")), "\xEF\xBF\xBD\xEF\xBF\xBD");
  const json::object o =
      json::parse(dead_letter_json("invalid_json", "m", "t", 0, 1, std::string("\xff"), "x",
                                   from_epoch_ms(0)))
          .as_object();
  EXPECT_EQ(o.at("key_base64"), "/w==");
}

}  // namespace
}  // namespace brickwork

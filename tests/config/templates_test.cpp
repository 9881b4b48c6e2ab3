#include "config/templates.hpp"

#include <gtest/gtest.h>

namespace brickwork {
namespace {

const json::object& scope() {
  static const json::object s = json::parse(R"({
    "input": {"url": "s3://x", "n": 5, "list": ["a", "b"]},
    "workflow": {"id": "order-1", "name": "daily"},
    "steps": {"extract": {"output": {"rows": 42, "ok": true}, "run_id": 1234}}
  })").as_object();
  return s;
}

TEST(Templates, WholeStringTemplateKeepsTheType) {
  auto v = render_templates(json::value("{{ steps.extract.output.rows }}"), scope());
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->is_int64());
  EXPECT_EQ(*v, 42);
  auto b = render_templates(json::value("{{steps.extract.output.ok}}"), scope());
  ASSERT_TRUE(b);
  EXPECT_EQ(*b, true);
}

TEST(Templates, EmbeddedTemplatesBecomeText) {
  auto v = render_templates(json::value("id={{ workflow.id }} rows={{ steps.extract.output.rows }} run={{ steps.extract.run_id }}"),
                            scope());
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, "id=order-1 rows=42 run=1234");
}

TEST(Templates, WalksObjectsAndArraysAndIndexes) {
  auto v = render_templates(json::parse(R"({"a": ["{{ input.url }}", 1], "b": {"c": "{{ input.list.1 }}"}})"),
                            scope());
  ASSERT_TRUE(v);
  EXPECT_EQ(v->at("a").at(0), "s3://x");
  EXPECT_EQ(v->at("a").at(1), 1);
  EXPECT_EQ(v->at("b").at("c"), "b");
}

TEST(Templates, MissingPathIsAnErrorNamingIt) {
  auto v = render_templates(json::value("{{ steps.nope.output.rows }}"), scope());
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message.find("steps.nope.output.rows"), std::string::npos);
  EXPECT_FALSE(render_templates(json::value("{{ input.list.9 }}"), scope()));
  EXPECT_FALSE(render_templates(json::value("{{ }}"), scope()));
}

TEST(Templates, TextWithoutTemplatesIsUntouched) {
  auto v = render_templates(json::value("just {text} and }} {{ unclosed"), scope());
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, "just {text} and }} {{ unclosed");
}

TEST(Templates, PathsAreListed) {
  auto paths = template_paths(json::parse(R"({"a": "{{ input.url }}", "b": ["x {{workflow.id}} y"]})"));
  EXPECT_EQ(paths, (std::vector<std::string>{"input.url", "workflow.id"}));
}

}  // namespace
}  // namespace brickwork

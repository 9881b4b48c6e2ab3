// A new step type in one file: `webhook` POSTs a JSON body to a URL with the
// plain HTTPS client the shell offers (StepServices::http), and one line
// registers it. Nothing else in brickwork knows its name: the loader binds
// its action, the engine runs it, the effect runner calls it.
#include <mutex>

#include "devstack/http_server.hpp"
#include "handlers/steps/action_fields.hpp"
#include "tests/integration/harness.hpp"

namespace brickwork::testing {
namespace {

// webhook: {url: "https://...", body: {...}}: the answer's JSON is the output.
struct WebhookAction final : BoundAction {
  std::string url;  // checked once, at load
  json::value body;  // may hold templates
};

class WebhookStep final : public StepType {
 public:
  std::string_view action_key() const override { return "webhook"; }

  Result<BoundActionPtr> compile(StepDefinition& step) const override {
    if (auto e = unknown_action_key(step.action, "webhook", {"url", "body"})) return compile_error(*e);
    const json::value* url = step.action.if_contains("url");
    if (url == nullptr || !url->is_string()) return compile_error("webhook.url is required");
    if (Status ok = http::check_url(std::string_view(url->as_string())); !ok) {
      return compile_error("webhook.url: " + ok.error().message);
    }
    auto bound = std::make_shared<WebhookAction>();
    bound->url = std::string(url->as_string());
    if (const json::value* body = step.action.if_contains("body")) bound->body = *body;
    return BoundActionPtr(std::move(bound));
  }

  Result<StepOutcome> execute(const StepContext& context, StepServices& services) const override {
    const auto& action = context.action<WebhookAction>();
    auto body = render_value(action.body, context);
    if (!body) return body.error();
    http::Request request;
    request.method = "POST";
    request.url = action.url;
    request.headers = {{"Content-Type", "application/json"},
                       {"Idempotency-Key", context.idempotency_token}};
    request.body = json::serialize(*body);
    request.timeout = std::chrono::seconds(10);
    auto response = services.http->send(request);
    if (!response) return response.error();
    if (response->status >= 500) {
      return Error{ErrorKind::kTransient, "webhook_unavailable", response->reason};
    }
    if (response->status >= 300) {
      return Error{ErrorKind::kPermanent, "webhook_refused", std::to_string(response->status)};
    }
    boost::system::error_code ec;
    json::value answer = json::parse(response->body, ec);
    StepOutcome outcome;
    outcome.output = !ec && answer.is_object() ? answer.as_object() : json::object{};
    return outcome;
  }
};

class WebhookStepType : public EndToEndTest {};

TEST_F(WebhookStepType, OneFileAndOneRegistrationRunAWorkflowToSuccess) {
  std::mutex mutex;
  std::vector<http::ServerRequest> received;
  auto server = http::Server::start("127.0.0.1", 0, [&](const http::ServerRequest& request) {
    std::lock_guard lock(mutex);
    received.push_back(request);
    return http::ServerResponse{200, {}, R"({"accepted": true, "ticket": 17})"};
  });
  ASSERT_TRUE(server) << server.error().message;

  static StepRegistry registry = [] {
    StepRegistry r = StepRegistry::with_builtin_types();
    r.add(std::make_unique<WebhookStep>());  // the one line
    return r;
  }();
  steps_ = &registry;
  start_stack({});
  config(R"(  notify:
    steps:
      - name: call
        webhook:
          url: "http://127.0.0.1:)" + std::to_string((*server)->port()) + R"(/hooks/onboarded"
          body: {client: "{{ input.client }}"}
)");
  start_daemon();
  start_workflow("hook-1", "notify", {{"client", "acme"}});
  auto done = wait_terminal("hook-1");
  ASSERT_TRUE(done);
  ASSERT_EQ(done->status, WorkflowStatus::kSucceeded);
  EXPECT_EQ(done->steps[0].output, (json::object{{"accepted", true}, {"ticket", 17}}));
  std::lock_guard lock(mutex);
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].method, "POST");
  EXPECT_EQ(received[0].target, "/hooks/onboarded");
  EXPECT_EQ(json::parse(received[0].body), (json::value{{"client", "acme"}}));
  EXPECT_FALSE(received[0].header("Idempotency-Key").empty());
}

// Bound once: an action its type refuses never loads, with the type's message.
TEST_F(WebhookStepType, AnActionItsTypeRefusesFailsTheCheck) {
  static StepRegistry registry = [] {
    StepRegistry r = StepRegistry::with_builtin_types();
    r.add(std::make_unique<WebhookStep>());
    return r;
  }();
  StepDefinition step;
  step.name = "call";
  step.type = "webhook";
  step.action = json::object{{"url", "http://example.com/hook"}};
  auto message = registry.compile(step);
  ASSERT_TRUE(message);
  EXPECT_NE(message->find("webhook.url"), std::string::npos) << *message;
  EXPECT_EQ(step.bound, nullptr);
  step.action = json::object{{"url", "https://example.com/hook"}, {"body", json::object{}}};
  EXPECT_FALSE(registry.compile(step));
  ASSERT_NE(step.bound, nullptr);
  EXPECT_EQ(dynamic_cast<const WebhookAction&>(*step.bound).url, "https://example.com/hook");
}

}  // namespace
}  // namespace brickwork::testing

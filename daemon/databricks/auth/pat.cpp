// pat: a personal access token (token, DATABRICKS_TOKEN) sent as it is.
#include "daemon/databricks/auth/strategies.hpp"

namespace brickwork::auth {

namespace {
class PatProvider final : public CredentialsProvider {
 public:
  explicit PatProvider(std::string token) : header_("Bearer " + std::move(token)) {}
  Result<http::Headers> headers() override { return http::Headers{{"Authorization", header_}}; }

 private:
  const std::string header_;  // never logged
};
}  // namespace

CredentialsStrategy pat() {
  return {"pat", [](const AuthAttributes& a, const EnvLookup&) { return missing_of(a, {"token"}); },
          [](const AuthContext& ctx) -> std::unique_ptr<CredentialsProvider> {
            return std::make_unique<PatProvider>(ctx.attr("token"));
          }};
}

}  // namespace brickwork::auth

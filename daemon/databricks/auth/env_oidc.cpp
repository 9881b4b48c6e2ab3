// env-oidc: the ID token is the value of an environment variable
// (DATABRICKS_OIDC_TOKEN, or the one oidc_token_env names), read again at
// every exchange so a rotated token is picked up.
#include "daemon/databricks/auth/strategies.hpp"

namespace brickwork::auth {

namespace {
std::string variable_of(const AuthAttributes& a) {
  const std::string named = attr(a, "oidc_token_env");
  return named.empty() ? "DATABRICKS_OIDC_TOKEN" : named;
}
}  // namespace

CredentialsStrategy env_oidc() {
  return {"env-oidc",
          [](const AuthAttributes& a, const EnvLookup& env) {
            auto value = env ? env(variable_of(a)) : std::nullopt;
            return value && !value->empty() ? std::string() : "an ID token in $" + variable_of(a);
          },
          [](const AuthContext& ctx) -> std::unique_ptr<CredentialsProvider> {
            const std::string variable = variable_of(ctx.attributes);
            return oidc_exchange_provider(
                ctx, "env-oidc token", [env = ctx.env, variable](const std::string&) {
                  auto value = env ? env(variable) : std::nullopt;
                  if (!value || value->empty()) {
                    return Result<std::string>(Error{ErrorKind::kPermanent, "no_id_token",
                                                     "$" + variable + " is empty or unset"});
                  }
                  return Result<std::string>(*value);
                });
          }};
}

}  // namespace brickwork::auth

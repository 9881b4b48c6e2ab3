// file-oidc: the ID token is a file's content (databricks_id_token_filepath,
// DATABRICKS_OIDC_TOKEN_FILEPATH), e.g. a Kubernetes projected service
// account token; read again at every exchange, as the kubelet rotates it.
#include <fstream>
#include <sstream>

#include "daemon/databricks/auth/strategies.hpp"
#include "daemon/databricks/parsing.hpp"

namespace brickwork::auth {

CredentialsStrategy file_oidc() {
  return {"file-oidc",
          [](const AuthAttributes& a, const EnvLookup&) { return missing_of(a, {"databricks_id_token_filepath"}); },
          [](const AuthContext& ctx) -> std::unique_ptr<CredentialsProvider> {
            const std::string path = ctx.attr("databricks_id_token_filepath");
            return oidc_exchange_provider(ctx, "file-oidc token", [path](const std::string&) {
              std::ifstream in(path);
              std::stringstream text;
              text << in.rdbuf();
              const std::string token = databricks_parsing::trim(text.str());
              if (!in || token.empty()) {
                return Result<std::string>(Error{ErrorKind::kTransient, "no_id_token",
                                                 "ID token file " + path +
                                                     " cannot be read or is empty"});
              }
              return Result<std::string>(token);
            });
          }};
}

}  // namespace brickwork::auth

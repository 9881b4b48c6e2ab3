// metadata-service: a local endpoint (metadata_service_url,
// DATABRICKS_METADATA_SERVICE_URL; localhost or 127.0.0.1 only) hands out
// tokens: GET with X-Databricks-Metadata-Version: 1 and X-Databricks-Host,
// answered {access_token, token_type, expires_on}.
#include <boost/url/parse.hpp>

#include "daemon/databricks/auth/strategies.hpp"

namespace brickwork::auth {

namespace {
bool local_url(const std::string& url) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return false;
  const std::string host(parsed->host_address());
  return host == "localhost" || host == "127.0.0.1";
}
}  // namespace

CredentialsStrategy metadata_service() {
  return {"metadata-service",
          [](const AuthAttributes& a, const EnvLookup&) {
            std::string missing = missing_of(a, {"metadata_service_url"});
            if (missing.empty() && !local_url(attr(a, "metadata_service_url"))) {
              missing = "a metadata_service_url on localhost or 127.0.0.1";
            }
            return missing;
          },
          [](const AuthContext& ctx) -> std::unique_ptr<CredentialsProvider> {
            return std::make_unique<BearerProvider>(ctx, "metadata service token", [ctx] {
              http::Request request;
              request.url = ctx.attr("metadata_service_url");
              request.headers = {{"X-Databricks-Metadata-Version", "1"},
                                 {"X-Databricks-Host", ctx.host}};
              auto response = send_token_request(ctx, std::move(request));
              if (!response) return Result<AccessToken>(response.error());
              return parse_token_answer(*response, "metadata service");
            });
          }};
}

}  // namespace brickwork::auth

// The identity providers the simulator plays (simulator.hpp SimulatorIdentity):
// Entra ID, Azure IMDS, the Databricks metadata service, GitHub Actions' ID
// tokens, the RFC 8693 exchange at /oidc/v1/token, Google's token endpoint,
// GCE metadata and IAM Credentials. Every token expires after
// identity.token_ttl, so renewal is exercised.
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <array>
#include <memory>

#include "daemon/core/base64.hpp"
#include "daemon/core/json_limits.hpp"
#include "devstack/simulator_impl.hpp"

namespace brickwork {

namespace {

using simulator_detail::json_response;
using simulator_detail::parse_query;
using simulator_detail::percent_decode;
using SteadyClock = std::chrono::steady_clock;

constexpr const char* kDatabricksResource = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d";
constexpr const char* kManagementResource = "https://management.core.windows.net/";

int64_t epoch_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n));
  return out;
}

std::string hmac_sha256(const std::string& key, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

// An OAuth error body, as Entra ID and Databricks' token endpoint send it.
http::ServerResponse oauth_error(int status, const std::string& error, const std::string& what) {
  return json_response(status, json::object{{"error", error}, {"error_description", what}});
}

// The three parts of a JWT, or nullopt.
std::optional<std::array<std::string_view, 3>> jwt_parts(std::string_view jwt) {
  const auto a = jwt.find('.');
  const auto b = a == std::string_view::npos ? a : jwt.find('.', a + 1);
  if (b == std::string_view::npos) return std::nullopt;
  return std::array<std::string_view, 3>{jwt.substr(0, a), jwt.substr(a + 1, b - a - 1),
                                         jwt.substr(b + 1)};
}

std::optional<json::object> claims_of(std::string_view payload_b64) {
  auto payload = base64_decode(payload_b64);
  if (!payload) return std::nullopt;
  boost::system::error_code ec;
  json::value v = parse_json(*payload, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return v.get_object();
}

bool rs256_verify(const std::string& public_pem, std::string_view data, const std::string& sig) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(public_pem.data(), static_cast<int>(public_pem.size())), &BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  return key && md &&
         EVP_DigestVerifyInit(md.get(), nullptr, EVP_sha256(), nullptr, key.get()) == 1 &&
         EVP_DigestVerify(md.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                          reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
}

std::string string_claim(const json::object& o, const char* name) {
  const json::value* v = o.if_contains(name);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

}  // namespace

std::pair<std::string, int64_t> DatabricksSimulator::Impl::issue(const std::string& kind,
                                                                 bool for_workspace) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token = "sim-" + kind + "-";
  for (int i = 0; i < 32; ++i) token += kHex[token_rng() % 16];
  const int64_t ttl = std::max<int64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(options.identity.token_ttl).count(), 1);
  const auto expires = SteadyClock::now() + std::chrono::seconds(ttl);
  if (for_workspace) {
    issued_tokens[token] = expires;
  } else {
    side_tokens[token] = {kind, expires};
  }
  ++stats.identity_tokens[kind];
  return {token, ttl};
}

std::string DatabricksSimulator::Impl::sign_jwt(const json::object& claims) {
  if (jwt_key.empty()) jwt_key = random_bytes(32);
  const std::string input = base64url(R"({"alg":"HS256","typ":"JWT"})") + "." +
                            base64url(json::serialize(claims));
  return input + "." + base64url(hmac_sha256(jwt_key, input));
}

std::optional<json::object> DatabricksSimulator::Impl::verify_jwt(const std::string& jwt) {
  auto parts = jwt_parts(jwt);
  if (!parts || jwt_key.empty()) return std::nullopt;
  const std::string input = std::string((*parts)[0]) + "." + std::string((*parts)[1]);
  if (base64url(hmac_sha256(jwt_key, input)) != (*parts)[2]) return std::nullopt;
  auto claims = claims_of((*parts)[1]);
  if (!claims) return std::nullopt;
  const json::value* exp = claims->if_contains("exp");
  if (exp == nullptr || !exp->is_int64() || exp->get_int64() <= epoch_seconds()) return std::nullopt;
  return claims;
}

bool DatabricksSimulator::Impl::identity_headers_ok(const http::ServerRequest& req) {
  auto valid_side = [&](const std::string& token, std::initializer_list<const char*> kinds) {
    auto it = side_tokens.find(token);
    if (it == side_tokens.end() || SteadyClock::now() >= it->second.second) return false;
    for (const char* k : kinds) {
      if (it->second.first == k) return true;
    }
    return false;
  };
  if (!req.header("X-Databricks-Azure-Workspace-Resource-Id").empty()) {
    if (!valid_side(req.header("X-Databricks-Azure-SP-Management-Token"),
                    {"entra-management", "imds-management"})) {
      return false;
    }
    ++stats.management_headers;
  }
  const std::string gcp = req.header("X-Databricks-GCP-SA-Access-Token");
  return gcp.empty() || valid_side(gcp, {"google-access-token", "iam-access-token"});
}

http::ServerResponse DatabricksSimulator::Impl::token_exchange(
    const std::map<std::string, std::string>& form) {
  auto get = [&](const char* k) {
    auto it = form.find(k);
    return it == form.end() ? std::string() : it->second;
  };
  if (get("subject_token_type") != "urn:ietf:params:oauth:token-type:jwt") {
    return oauth_error(400, "invalid_request", "subject_token_type must be a JWT");
  }
  auto claims = verify_jwt(get("subject_token"));
  if (!claims) {
    ++stats.unauthorized;
    return oauth_error(401, "invalid_grant",
                       "the subject token is not signed by a trusted issuer, or has expired");
  }
  if (string_claim(*claims, "aud") != base_url + "/oidc/v1/token") {
    return oauth_error(401, "invalid_grant", "the subject token is for another audience");
  }
  if (get("client_id") != options.identity.federation_client_id) {
    ++stats.unauthorized;
    return oauth_error(401, "invalid_client", "no federation policy for this client_id");
  }
  auto [token, ttl] = issue("token-exchange", true);
  return json_response(200, json::object{{"access_token", token},
                                         {"token_type", "Bearer"},
                                         {"expires_in", ttl},
                                         {"scope", "all-apis"}});
}

std::optional<http::ServerResponse> DatabricksSimulator::Impl::identity_route(
    const http::ServerRequest& req, const std::string& path,
    const std::map<std::string, std::string>& query) {
  const SimulatorIdentity& id = options.identity;
  auto azure_answer = [&](const std::string& resource, const char* kind) {
    const bool workspace = resource == kDatabricksResource;
    if (!workspace && resource != kManagementResource) {
      return oauth_error(400, "invalid_resource",
                         "AADSTS500011: The resource principal named " + resource +
                             " was not found in the tenant.");
    }
    auto [token, ttl] = issue(workspace ? kind : std::string(kind) + "-management", workspace);
    // As Entra ID v1 and IMDS answer: numbers as strings.
    return json_response(200, json::object{{"token_type", "Bearer"},
                                           {"expires_in", std::to_string(ttl)},
                                           {"expires_on", std::to_string(epoch_seconds() + ttl)},
                                           {"resource", resource},
                                           {"access_token", token}});
  };

  if (path.rfind("/entra/", 0) == 0 && req.method == "POST") {
    const std::string tenant = path.substr(7, path.find('/', 7) - 7);
    if (path != "/entra/" + tenant + "/oauth2/token") return std::nullopt;
    const auto form = parse_query(req.body);
    auto get = [&](const char* k) {
      auto it = form.find(k);
      return it == form.end() ? std::string() : it->second;
    };
    if (tenant != id.azure_tenant_id) {
      return oauth_error(400, "invalid_request",
                         "AADSTS90002: Tenant '" + tenant + "' not found.");
    }
    if (get("grant_type") != "client_credentials" || get("client_id") != id.azure_client_id ||
        get("client_secret") != id.azure_client_secret) {
      ++stats.unauthorized;
      return oauth_error(401, "invalid_client",
                         "AADSTS7000215: Invalid client secret provided.");
    }
    return azure_answer(get("resource"), "entra");
  }
  if (path == "/metadata/identity/oauth2/token" && req.method == "GET") {
    if (req.header("Metadata") != "true") {
      return oauth_error(400, "invalid_request", "Required metadata header not specified");
    }
    auto resource = query.find("resource");
    return azure_answer(resource == query.end() ? "" : resource->second, "imds");
  }
  if (path == "/metadata-service/token" && req.method == "GET") {
    if (req.header("X-Databricks-Metadata-Version") != "1") {
      return oauth_error(400, "invalid_request", "unsupported metadata version");
    }
    if (req.header("X-Databricks-Host") != base_url) {
      return oauth_error(403, "invalid_request", "this session serves another host");
    }
    auto [token, ttl] = issue("metadata-service", true);
    return json_response(200, json::object{{"access_token", token},
                                           {"token_type", "Bearer"},
                                           {"expires_on", epoch_seconds() + ttl}});
  }
  if (path == "/github/id-token" && req.method == "GET") {
    if (req.header("Authorization") != "Bearer " + id.github_request_token) {
      ++stats.unauthorized;
      return oauth_error(401, "unauthorized", "bad ACTIONS_ID_TOKEN_REQUEST_TOKEN");
    }
    auto audience = query.find("audience");
    const int64_t ttl = std::max<int64_t>(
        std::chrono::duration_cast<std::chrono::seconds>(id.token_ttl).count(), 1);
    ++stats.identity_tokens["github-id-token"];
    return json_response(
        200, json::object{{"value", sign_jwt(json::object{
                                        {"iss", base_url + "/github"},
                                        {"sub", "repo:example/brickwork:ref:refs/heads/main"},
                                        {"aud", audience == query.end() ? "" : audience->second},
                                        {"exp", epoch_seconds() + ttl}})}});
  }
  if (path == "/google/token" && req.method == "POST") {
    const auto form = parse_query(req.body);
    auto assertion = form.find("assertion");
    auto parts = assertion == form.end() ? std::nullopt : jwt_parts(assertion->second);
    auto signature = parts ? base64_decode((*parts)[2]) : std::nullopt;
    auto claims = parts ? claims_of((*parts)[1]) : std::nullopt;
    const std::string input =
        parts ? std::string((*parts)[0]) + "." + std::string((*parts)[1]) : std::string();
    if (!signature || !claims || google_public_pem.empty() ||
        !rs256_verify(google_public_pem, input, *signature) ||
        string_claim(*claims, "iss") != id.google_service_account) {
      ++stats.unauthorized;
      return oauth_error(400, "invalid_grant", "Invalid JWT Signature.");
    }
    const std::string audience = string_claim(*claims, "target_audience");
    if (!audience.empty()) {
      const int64_t ttl = std::max<int64_t>(
          std::chrono::duration_cast<std::chrono::seconds>(id.token_ttl).count(), 1);
      const std::string jwt = sign_jwt(json::object{{"iss", "https://accounts.google.com"},
                                                    {"aud", audience},
                                                    {"email", id.google_service_account},
                                                    {"exp", epoch_seconds() + ttl}});
      issued_tokens[jwt] = SteadyClock::now() + std::chrono::seconds(ttl);
      ++stats.identity_tokens["google-id-token"];
      return json_response(200, json::object{{"id_token", jwt}});
    }
    auto [token, ttl] = issue("google-access-token", false);
    return json_response(
        200, json::object{{"access_token", token}, {"expires_in", ttl}, {"token_type", "Bearer"}});
  }
  if (path == "/computeMetadata/v1/instance/service-accounts/default/token" &&
      req.method == "GET") {
    if (req.header("Metadata-Flavor") != "Google") {
      return http::ServerResponse{403, {{"Content-Type", "text/plain"}}, "Missing Metadata-Flavor"};
    }
    auto [token, ttl] = issue("gce", false);
    return json_response(
        200, json::object{{"access_token", token}, {"expires_in", ttl}, {"token_type", "Bearer"}});
  }
  const std::string iam = "/google/iam/v1/projects/-/serviceAccounts/";
  if (path.rfind(iam, 0) == 0 && req.method == "POST") {
    const std::string rest = percent_decode(path.substr(iam.size()), false);
    const auto colon = rest.rfind(':');
    const std::string account = rest.substr(0, colon);
    const std::string verb = colon == std::string::npos ? "" : rest.substr(colon + 1);
    const std::string bearer = req.header("Authorization");
    auto caller = bearer.rfind("Bearer ", 0) == 0 ? side_tokens.find(bearer.substr(7))
                                                  : side_tokens.end();
    if (caller == side_tokens.end() || SteadyClock::now() >= caller->second.second) {
      ++stats.unauthorized;
      return json_response(401, json::object{{"error", json::object{{"code", 401},
                                                                    {"message", "Request had invalid authentication credentials."},
                                                                    {"status", "UNAUTHENTICATED"}}}});
    }
    if (account != id.google_service_account) {
      return json_response(403, json::object{{"error", json::object{{"code", 403},
                                                                    {"message", "Permission 'iam.serviceAccounts.getOpenIdToken' denied"},
                                                                    {"status", "PERMISSION_DENIED"}}}});
    }
    const int64_t ttl = std::max<int64_t>(
        std::chrono::duration_cast<std::chrono::seconds>(id.token_ttl).count(), 1);
    if (verb == "generateIdToken") {
      boost::system::error_code ec;
      json::value body = parse_json(req.body, ec);
      const std::string audience =
          !ec && body.is_object() ? string_claim(body.get_object(), "audience") : std::string();
      const std::string jwt = sign_jwt(json::object{{"iss", "https://accounts.google.com"},
                                                    {"aud", audience},
                                                    {"email", account},
                                                    {"exp", epoch_seconds() + ttl}});
      issued_tokens[jwt] = SteadyClock::now() + std::chrono::seconds(ttl);
      ++stats.identity_tokens["iam-id-token"];
      return json_response(200, json::object{{"token", jwt}});
    }
    if (verb == "generateAccessToken") {
      auto [token, issued_ttl] = issue("iam-access-token", false);
      return json_response(
          200, json::object{{"accessToken", token},
                            {"expireTime", format_iso8601(now_ms() + std::chrono::seconds(issued_ttl))}});
    }
    return std::nullopt;
  }
  return std::nullopt;
}

std::string DatabricksSimulator::issue_id_token(const std::string& subject, Duration ttl) const {
  std::lock_guard lock(impl_->mu);
  return impl_->sign_jwt(json::object{
      {"iss", impl_->base_url + "/workload-idp"},
      {"sub", subject},
      {"aud", impl_->base_url + "/oidc/v1/token"},
      {"exp", epoch_seconds() + std::chrono::duration_cast<std::chrono::seconds>(ttl).count()}});
}

std::string DatabricksSimulator::google_service_account_key() const {
  std::lock_guard lock(impl_->mu);
  if (impl_->google_key_pem.empty()) {
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_RSA_gen(2048), &EVP_PKEY_free);
    std::unique_ptr<BIO, decltype(&BIO_free)> priv(BIO_new(BIO_s_mem()), &BIO_free);
    std::unique_ptr<BIO, decltype(&BIO_free)> pub(BIO_new(BIO_s_mem()), &BIO_free);
    PEM_write_bio_PrivateKey(priv.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    PEM_write_bio_PUBKEY(pub.get(), key.get());
    auto text = [](BIO* b) {
      char* data = nullptr;
      const long n = BIO_get_mem_data(b, &data);
      return std::string(data, static_cast<size_t>(n));
    };
    impl_->google_key_pem = text(priv.get());
    impl_->google_public_pem = text(pub.get());
  }
  return json::serialize(json::object{{"type", "service_account"},
                                      {"project_id", "sim-project"},
                                      {"private_key_id", "sim-key-1"},
                                      {"private_key", impl_->google_key_pem},
                                      {"client_email", impl_->options.identity.google_service_account},
                                      {"token_uri", impl_->base_url + "/google/token"}});
}

std::map<std::string, std::string> DatabricksSimulator::identity_environment() const {
  std::lock_guard lock(impl_->mu);
  const std::string base = impl_->base_url;
  return {{"AZURE_AUTHORITY_HOST", base + "/entra"},
          {"AZURE_POD_IDENTITY_AUTHORITY_HOST", base},
          {"DATABRICKS_METADATA_SERVICE_URL", base + "/metadata-service/token"},
          {"ACTIONS_ID_TOKEN_REQUEST_URL", base + "/github/id-token?api-version=2.0"},
          {"ACTIONS_ID_TOKEN_REQUEST_TOKEN", impl_->options.identity.github_request_token},
          {"GCE_METADATA_HOST", base.substr(std::string("http://").size())},
          {"BRICKWORK_GOOGLE_IAM_ENDPOINT", base + "/google/iam"}};
}

}  // namespace brickwork

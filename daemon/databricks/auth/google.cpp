// What google-credentials and google-id share: a service account key's signed
// JWT traded at its token_uri (RFC 7523, as Google's auth libraries do), and
// the provider that sends a Google ID token and, beside it, a Google access
// token (X-Databricks-GCP-SA-Access-Token).
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "daemon/core/base64.hpp"
#include "daemon/databricks/auth/strategies.hpp"

namespace brickwork::auth {

namespace {

Result<std::string> rs256(const std::string& pem, const std::string& data) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                                &BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr, &EVP_PKEY_free);
  if (!key) {
    return Error{ErrorKind::kPermanent, "bad_google_credentials",
                 "the service account key's private_key is not a PEM private key"};
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  size_t size = 0;
  if (!md || EVP_DigestSignInit(md.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_DigestSign(md.get(), nullptr, &size,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    return Error{ErrorKind::kPermanent, "bad_google_credentials", "cannot sign with the key"};
  }
  std::string signature(size, '\0');
  if (EVP_DigestSign(md.get(), reinterpret_cast<unsigned char*>(signature.data()), &size,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    return Error{ErrorKind::kPermanent, "bad_google_credentials", "cannot sign with the key"};
  }
  signature.resize(size);
  return signature;
}

std::string field(const json::object& o, const char* name) {
  const json::value* v = o.if_contains(name);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

class GoogleProvider final : public CredentialsProvider {
 public:
  GoogleProvider(const AuthContext& ctx, const std::string& what, GoogleTokenFetch id_token,
                 GoogleTokenFetch access_token)
      : id_(what + " (ID token)", std::move(id_token), ctx.counters),
        access_(what + " (access token)", std::move(access_token), ctx.counters) {}

  Result<http::Headers> headers() override {
    auto id = id_.get();
    if (!id) return id.error();
    http::Headers out{{"Authorization", "Bearer " + id->value}};
    // Only some account-level operations need it, and the identity may not
    // be allowed to mint it: as in the SDKs, its absence is not an error.
    if (auto access = access_.get()) {
      out.emplace_back("X-Databricks-GCP-SA-Access-Token", access->value);
    }
    return out;
  }

  void invalidate() override {
    id_.invalidate();
    access_.invalidate();
  }

 private:
  CachedToken id_;
  CachedToken access_;
};

}  // namespace

std::string google_credentials_json(const std::string& value) {
  if (!value.empty() && value.front() != '{') {
    std::ifstream in(value);
    if (in) {
      std::stringstream text;
      text << in.rdbuf();
      return text.str();
    }
  }
  return value;
}

Result<AccessToken> google_service_account_token(const AuthContext& ctx,
                                                 const std::string& key_json,
                                                 const std::string& audience) {
  boost::system::error_code ec;
  const json::value key = parse_json(key_json, ec);
  const json::object* o = ec ? nullptr : key.if_object();
  if (o == nullptr || field(*o, "client_email").empty() || field(*o, "private_key").empty()) {
    return Error{ErrorKind::kPermanent, "bad_google_credentials",
                 "google_credentials is not a service account key (JSON with client_email and "
                 "private_key)"};
  }
  std::string token_uri = field(*o, "token_uri");
  if (token_uri.empty()) token_uri = "https://oauth2.googleapis.com/token";
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  json::object claims{{"iss", field(*o, "client_email")},
                      {"aud", token_uri},
                      {"iat", now},
                      {"exp", now + 3600}};
  if (!audience.empty()) {
    claims["target_audience"] = audience;
  } else {
    claims["scope"] =
        "https://www.googleapis.com/auth/cloud-platform https://www.googleapis.com/auth/compute";
  }
  json::object header{{"alg", "RS256"}, {"typ", "JWT"}};
  if (!field(*o, "private_key_id").empty()) header["kid"] = field(*o, "private_key_id");
  const std::string signing_input =
      base64url(json::serialize(header)) + "." + base64url(json::serialize(claims));
  auto signature = rs256(field(*o, "private_key"), signing_input);
  if (!signature) return signature.error();
  http::Request request;
  request.method = "POST";
  request.url = token_uri;
  request.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
  request.body = form_encode({{"grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"},
                              {"assertion", signing_input + "." + base64url(*signature)}});
  auto response = send_token_request(ctx, std::move(request));
  if (!response) return response.error();
  return parse_token_answer(*response, "Google token request",
                            audience.empty() ? "access_token" : "id_token");
}

std::unique_ptr<CredentialsProvider> google_provider(const AuthContext& ctx,
                                                     const std::string& what,
                                                     GoogleTokenFetch id_token,
                                                     GoogleTokenFetch access_token) {
  return std::make_unique<GoogleProvider>(ctx, what, std::move(id_token), std::move(access_token));
}

}  // namespace brickwork::auth

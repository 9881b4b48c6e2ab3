#include "daemon/core/secret_box.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <memory>
#include <stdexcept>

#include "daemon/core/key_id.hpp"

namespace brickwork {
namespace {

constexpr std::string_view kKeyLabel = "brickwork sensitive outputs v1";
constexpr int kNonceBytes = 12;
constexpr int kTagBytes = 16;

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

std::string encode_base64(std::string_view raw) {
  std::string out(4 * ((raw.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes(raw),
                                static_cast<int>(raw.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<std::string> decode_base64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::string out(3 * (text.size() / 4), '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes(text),
                                static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  // DecodeBlock counts the padding as zero bytes.
  size_t size = static_cast<size_t>(n);
  if (text.ends_with("==")) size -= 2;
  else if (text.ends_with("=")) size -= 1;
  out.resize(size);
  return out;
}

// AES-256-GCM decryption of nonce | ciphertext | tag; nothing if it does not
// authenticate under `key` and `context`.
std::optional<std::string> decrypt(const unsigned char* key, std::string& raw,
                                   std::string_view context) {
  const size_t text_size = raw.size() - kNonceBytes - kTagBytes;
  auto* in = reinterpret_cast<unsigned char*>(raw.data());
  std::string plaintext(text_size, '\0');
  auto* out = reinterpret_cast<unsigned char*>(plaintext.data());
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int length = 0;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key, in) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &length, bytes(context),
                        static_cast<int>(context.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), out, &length, in + kNonceBytes,
                        static_cast<int>(text_size)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes,
                          in + kNonceBytes + text_size) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), out + length, &length) != 1) {
    return std::nullopt;
  }
  return plaintext;
}

}  // namespace

SecretBox::SecretBox(std::string_view secret, const std::vector<std::string>& previous_secrets) {
  auto add_key = [&](std::string_view from) {
    Key& key = keys_.emplace_back();
    key.id = key_id_of(from);
    unsigned int length = 0;
    HMAC(EVP_sha256(), from.data(), static_cast<int>(from.size()), bytes(kKeyLabel),
         kKeyLabel.size(), key.bytes, &length);
    if (length != sizeof(key.bytes)) {
      throw std::logic_error("HMAC-SHA256 gave an unexpected length");
    }
  };
  add_key(secret);
  for (const auto& previous : previous_secrets) add_key(previous);
}

std::string SecretBox::seal(std::string_view plaintext, std::string_view context) const {
  const Key& key = keys_.front();
  std::string raw(kNonceBytes + plaintext.size() + kTagBytes, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  if (RAND_bytes(out, kNonceBytes) != 1) throw std::runtime_error("no random bytes for a nonce");
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int length = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.bytes, out) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &length, bytes(context),
                        static_cast<int>(context.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), out + kNonceBytes, &length, bytes(plaintext),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out + kNonceBytes + length, &length) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes,
                          out + kNonceBytes + plaintext.size()) != 1) {
    throw std::runtime_error("AES-256-GCM encryption failed");
  }
  return std::string(kPrefix) + key.id + ":" + encode_base64(raw);
}

std::optional<std::string> SecretBox::open(std::string_view sealed,
                                           std::string_view context) const {
  std::string_view key_id;  // empty: sealed before key ids, try every key
  std::string_view encoded;
  if (sealed.starts_with(kPrefix)) {
    const std::string_view named = sealed.substr(kPrefix.size());
    const size_t colon = named.find(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    key_id = named.substr(0, colon);
    encoded = named.substr(colon + 1);
  } else if (sealed.starts_with(kUnnamedPrefix)) {
    encoded = sealed.substr(kUnnamedPrefix.size());
  } else {
    return std::nullopt;
  }
  auto raw = decode_base64(encoded);
  if (!raw || raw->size() < static_cast<size_t>(kNonceBytes + kTagBytes)) return std::nullopt;
  for (const Key& key : keys_) {
    if (!key_id.empty() && key.id != key_id) continue;
    if (auto plaintext = decrypt(key.bytes, *raw, context)) return plaintext;
  }
  return std::nullopt;
}

}  // namespace brickwork

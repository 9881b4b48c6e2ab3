#include "daemon/core/secret_box.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <memory>
#include <stdexcept>

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

}  // namespace

SecretBox::SecretBox(std::string_view secret) {
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), bytes(kKeyLabel),
       kKeyLabel.size(), key_, &length);
  if (length != sizeof(key_)) throw std::logic_error("HMAC-SHA256 gave an unexpected length");
}

std::string SecretBox::seal(std::string_view plaintext, std::string_view context) const {
  std::string raw(kNonceBytes + plaintext.size() + kTagBytes, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  if (RAND_bytes(out, kNonceBytes) != 1) throw std::runtime_error("no random bytes for a nonce");
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int length = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_, out) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &length, bytes(context),
                        static_cast<int>(context.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), out + kNonceBytes, &length, bytes(plaintext),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out + kNonceBytes + length, &length) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes,
                          out + kNonceBytes + plaintext.size()) != 1) {
    throw std::runtime_error("AES-256-GCM encryption failed");
  }
  return std::string(kPrefix) + encode_base64(raw);
}

std::optional<std::string> SecretBox::open(std::string_view sealed,
                                           std::string_view context) const {
  if (!is_sealed(sealed)) return std::nullopt;
  auto raw = decode_base64(sealed.substr(kPrefix.size()));
  if (!raw || raw->size() < static_cast<size_t>(kNonceBytes + kTagBytes)) return std::nullopt;
  const size_t text_size = raw->size() - kNonceBytes - kTagBytes;
  auto* in = reinterpret_cast<unsigned char*>(raw->data());
  std::string plaintext(text_size, '\0');
  auto* out = reinterpret_cast<unsigned char*>(plaintext.data());
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int length = 0;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_, in) != 1 ||
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

}  // namespace brickwork

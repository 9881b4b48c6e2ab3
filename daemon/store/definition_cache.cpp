#include "daemon/store/definition_cache.hpp"

#include <openssl/sha.h>

#include <utility>

namespace brickwork::store_detail {

std::string sha256_hex(std::string_view text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * SHA256_DIGEST_LENGTH);
  for (unsigned char b : digest) {
    out += kHex[b >> 4];
    out += kHex[b & 0xf];
  }
  return out;
}

const WorkflowDefinition* DefinitionCache::find(const std::string& hash) const {
  auto it = parsed_.find(hash);
  return it == parsed_.end() ? nullptr : &it->second;
}

void DefinitionCache::add(const std::string& hash, WorkflowDefinition definition) {
  if (parsed_.size() >= kMaxEntries) parsed_.clear();
  parsed_.emplace(hash, std::move(definition));
}

void DefinitionCache::mark_stored(const std::string& hash) {
  if (stored_.size() >= kMaxEntries) stored_.clear();
  stored_.insert(hash);
}

}  // namespace brickwork::store_detail

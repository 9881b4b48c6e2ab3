// The definition cache alone: what a store remembers of definitions between
// transactions, and the hash that keys them.
#include "daemon/store/definition_cache.hpp"

#include <gtest/gtest.h>

namespace brickwork::store_detail {
namespace {

WorkflowDefinition named(const std::string& name) {
  WorkflowDefinition definition;
  definition.name = name;
  return definition;
}

TEST(DefinitionCache, KeysAreTheSha256OfTheDefinitionText) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(DefinitionCache, FindsWhatWasAddedByItsHash) {
  DefinitionCache cache;
  EXPECT_EQ(cache.find("h1"), nullptr);
  cache.add("h1", named("one"));
  cache.add("h2", named("two"));
  ASSERT_NE(cache.find("h1"), nullptr);
  EXPECT_EQ(cache.find("h1")->name, "one");
  EXPECT_EQ(cache.find("h2")->name, "two");
  // Parsed is not stored: only a committed insert or a read says that.
  EXPECT_FALSE(cache.stored("h1"));
}

TEST(DefinitionCache, ForgetsWhatIsStoredWhenRetentionMayHaveDeletedIt) {
  DefinitionCache cache;
  cache.add("h1", named("one"));
  cache.mark_stored("h1");
  EXPECT_TRUE(cache.stored("h1"));
  cache.forget_stored();
  EXPECT_FALSE(cache.stored("h1"));
  EXPECT_NE(cache.find("h1"), nullptr);  // the parsed definition is still right
}

TEST(DefinitionCache, StaysBoundedWithManyDistinctDefinitions) {
  DefinitionCache cache;
  for (size_t i = 0; i < DefinitionCache::kMaxEntries; ++i) {
    cache.add("h" + std::to_string(i), named("d"));
    cache.mark_stored("h" + std::to_string(i));
  }
  EXPECT_NE(cache.find("h0"), nullptr);
  EXPECT_TRUE(cache.stored("h0"));
  // One more empties each set before it is added.
  cache.add("new", named("n"));
  cache.mark_stored("new");
  EXPECT_EQ(cache.find("h0"), nullptr);
  EXPECT_FALSE(cache.stored("h0"));
  EXPECT_NE(cache.find("new"), nullptr);
  EXPECT_TRUE(cache.stored("new"));
}

}  // namespace
}  // namespace brickwork::store_detail

// Passwords of postgres.url kept out of every message the store builds.
#include "daemon/store/conninfo.hpp"

#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "daemon/store/pg_errors.hpp"

namespace brickwork::testing {
namespace {

TEST(StorePasswords, ClassifyingAnyLibpqMessageRedactsThePassword) {
  const PasswordRedactor passwords("postgresql://u:s3cr%65t%21@db.example:5432/app");
  try {
    throw pqxx::broken_connection(
        "could not connect: password \"s3cret!\" (from s3cr%65t%21) rejected; "
        "conninfo host=db password='other one' user=u; "
        "also postgresql://v:elsewhere@h/d and PGPASSWORD=envpass");
  } catch (...) {
    const store_detail::PgFailure failure =
        store_detail::classify_current_exception("ping", passwords);
    const std::string& m = failure.error.message;
    for (const char* secret : {"s3cret!", "s3cr%65t%21", "other one", "elsewhere", "envpass"}) {
      EXPECT_EQ(m.find(secret), std::string::npos) << secret << " in " << m;
    }
    EXPECT_NE(m.find("ping: could not connect"), std::string::npos) << m;
    EXPECT_NE(m.find("postgresql://v:<redacted>@h/d"), std::string::npos) << m;
    EXPECT_EQ(failure.error.kind, ErrorKind::kTransient);
  }
}

TEST(StorePasswords, RedactorLearnsKeywordValueAndQuotedPasswords) {
  const PasswordRedactor passwords("host=db user=u password='a b\\'c' sslpassword=keypass");
  EXPECT_EQ(passwords.redact("saw a b'c and keypass"), "saw <redacted> and <redacted>");
  // Text without a password is left as it is.
  EXPECT_EQ(passwords.redact("connection to server at \"db\" failed"),
            "connection to server at \"db\" failed");
  EXPECT_EQ(PasswordRedactor().redact("password = 'x y' host=h"), "password = <redacted> host=h");
}

}  // namespace
}  // namespace brickwork::testing

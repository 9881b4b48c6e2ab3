// postgres.url as the store reads it: libpq's parser, the store's timeouts,
// and passwords kept out of every message, against the real server.
#include "daemon/store/conninfo.hpp"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <map>
#include <pqxx/pqxx>
#include <thread>

#include "daemon/store/migrations.hpp"
#include "daemon/store/pg_errors.hpp"
#include "tests/store/store_fixture.hpp"

namespace brickwork::testing {
namespace {

std::string local_url(const std::string& userinfo, const std::string& rest = "/brickwork") {
  return "postgresql://" + userinfo + "@127.0.0.1:" + std::to_string(shared_postgres().port()) +
         rest;
}

// Every way the store reports an error, for one URL.
std::vector<Error> errors_of(Store& store) {
  std::vector<Error> errors;
  if (Status s = store.migrate(); !s) errors.push_back(s.error());
  if (Status s = store.ping(); !s) errors.push_back(s.error());
  if (auto w = store.get_workflow("x"); !w) errors.push_back(w.error());
  if (auto l = store.list_workflows(WorkflowQuery{}); !l) errors.push_back(l.error());
  if (Status s = store.transact([](StoreTx&) {}); !s) errors.push_back(s.error());
  return errors;
}

TEST(StorePasswords, APercentInThePasswordNeverReachesAnErrorMessage) {
  // libpq rejects "%zz" and answers: invalid percent-encoded token: "<the password>".
  const std::string raw = "p%41%zzsecret";
  const std::string decoded = "pA%zzsecret";
  auto store = Store::open(local_url("brickwork:" + raw));
  const std::vector<Error> errors = errors_of(*store);
  ASSERT_EQ(errors.size(), 5u);
  for (const Error& e : errors) {
    EXPECT_EQ(e.message.find(raw), std::string::npos) << e.message;
    EXPECT_EQ(e.message.find(decoded), std::string::npos) << e.message;
    EXPECT_EQ(e.message.find("zzsecret"), std::string::npos) << e.message;
    // A URL libpq cannot read is the configuration's fault: retrying cannot help.
    EXPECT_EQ(e.kind, ErrorKind::kInvalidInput) << e.message;
    EXPECT_NE(e.message.find("postgres.url"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("percent-encoded"), std::string::npos) << e.message;
  }
}

TEST(StorePasswords, APasswordInAQueryParameterIsRedactedToo) {
  auto store =
      Store::open(local_url("brickwork", "/brickwork?password=q%zzhidden&sslmode=disable"));
  for (const Error& e : errors_of(*store)) {
    EXPECT_EQ(e.message.find("zzhidden"), std::string::npos) << e.message;
  }
}

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

// ------------------------------------------------------------------ check

TEST(Conninfo, ProblemNamesLibpqsReasonWithoutThePassword) {
  EXPECT_FALSE(conninfo_problem(local_url("brickwork:fine%21")));
  EXPECT_FALSE(conninfo_problem("host=db user=u password=x"));
  auto bad = conninfo_problem("postgresql://u:p%zzsecret@db/app");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->find("zzsecret"), std::string::npos) << *bad;
  EXPECT_NE(bad->find("percent-encoded"), std::string::npos) << *bad;
  auto garbage = conninfo_problem("host=db password=secret-word nonsense");
  ASSERT_TRUE(garbage);
  EXPECT_EQ(garbage->find("secret-word"), std::string::npos) << *garbage;
  EXPECT_TRUE(conninfo_problem("postgresql://db/app?no_such_option=1"));
}

// ------------------------------------------------------------------ timeouts

std::map<std::string, std::string> keywords(const std::string& conninfo) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  std::map<std::string, std::string> out;
  if (options == nullptr) {
    ADD_FAILURE() << (error ? error : "?");
    PQfreemem(error);
    return out;
  }
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val != nullptr) out[o->keyword] = o->val;
  }
  PQconninfoFree(options);
  return out;
}

const StoreEnvLookup kNoEnvironment = [](const char*) -> const char* { return nullptr; };

TEST(Conninfo, AddsConnectAndStatementTimeoutsKeepingEverythingElse) {
  auto c =
      store_conninfo("postgresql://u:p%20w@db1:5433,db2/app?sslmode=require&application_name=bw",
                     {}, kNoEnvironment);
  ASSERT_TRUE(c) << c.error().message;
  auto k = keywords(*c);
  EXPECT_EQ(k["host"], "db1,db2");
  EXPECT_EQ(k["port"], "5433,");
  EXPECT_EQ(k["user"], "u");
  EXPECT_EQ(k["password"], "p w");
  EXPECT_EQ(k["dbname"], "app");
  EXPECT_EQ(k["sslmode"], "require");
  EXPECT_EQ(k["application_name"], "bw");
  EXPECT_EQ(k["connect_timeout"], "10");
  EXPECT_EQ(k["options"], "-c statement_timeout=30s");
}

// A password must not cross a network in the clear: TLS by default for a
// remote host, unless the URL or PGSSLMODE says otherwise; a local server
// (loopback or a Unix socket) keeps libpq's default.
TEST(Conninfo, RemoteHostsDefaultToRequiredTls) {
  auto remote = store_conninfo("postgresql://u@db.example:5432/app", {}, kNoEnvironment);
  ASSERT_TRUE(remote) << remote.error().message;
  EXPECT_EQ(keywords(*remote)["sslmode"], "require");
  auto chosen = store_conninfo("postgresql://u@db.example/app?sslmode=verify-full", {}, kNoEnvironment);
  ASSERT_TRUE(chosen);
  EXPECT_EQ(keywords(*chosen)["sslmode"], "verify-full");
  for (const char* local : {"postgresql://u@127.0.0.1:5432/app", "postgresql://u@localhost/app",
                            "host=/run/postgresql dbname=app", "dbname=app"}) {
    auto c = store_conninfo(local, {}, kNoEnvironment);
    ASSERT_TRUE(c) << local;
    EXPECT_EQ(keywords(*c).count("sslmode"), 0u) << local;
  }
  auto mixed = store_conninfo("postgresql://u@127.0.0.1,db.example/app", {}, kNoEnvironment);
  ASSERT_TRUE(mixed);
  EXPECT_EQ(keywords(*mixed)["sslmode"], "require");
  auto from_env = store_conninfo("postgresql://u@db.example/app", {},
                                 [](const char* name) -> const char* {
                                   return std::string_view(name) == "PGSSLMODE" ? "disable" : nullptr;
                                 });
  ASSERT_TRUE(from_env);
  EXPECT_EQ(keywords(*from_env).count("sslmode"), 0u);
}

TEST(Conninfo, NeverOverridesWhatTheUserSet) {
  auto c = store_conninfo(
      "postgresql://db/app?connect_timeout=3&options=-c%20statement_timeout%3D5s%20-c%20geqo%3Doff",
      {}, kNoEnvironment);
  ASSERT_TRUE(c) << c.error().message;
  auto k = keywords(*c);
  EXPECT_EQ(k["connect_timeout"], "3");
  EXPECT_EQ(k["options"], "-c statement_timeout=5s -c geqo=off");

  // Other server options are kept and the timeout added to them.
  auto other = store_conninfo("host=db options='-c geqo=off'", {}, kNoEnvironment);
  ASSERT_TRUE(other);
  EXPECT_EQ(keywords(*other)["options"], "-c geqo=off -c statement_timeout=30s");

  // libpq's environment is the user's setting too.
  const std::map<std::string, std::string> env = {{"PGCONNECT_TIMEOUT", "4"},
                                                  {"PGOPTIONS", "-c statement_timeout=9s"}};
  auto from_env = store_conninfo("postgresql://db/app", {}, [&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
  ASSERT_TRUE(from_env);
  EXPECT_EQ(keywords(*from_env).count("connect_timeout"), 0u);
  EXPECT_EQ(keywords(*from_env).count("options"), 0u);

  // PGOPTIONS without a timeout: kept (an explicit options= would hide it) and completed.
  auto pgoptions = store_conninfo("postgresql://db/app", {}, [](const char* name) -> const char* {
    return std::string(name) == "PGOPTIONS" ? "-c geqo=off" : nullptr;
  });
  ASSERT_TRUE(pgoptions);
  EXPECT_EQ(keywords(*pgoptions)["options"], "-c geqo=off -c statement_timeout=30s");
}

TEST(Conninfo, QuotesAndBackslashesSurviveTheRewrite) {
  auto c = store_conninfo("host=db password='it\\'s a \\\\ test'", {}, kNoEnvironment);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(keywords(*c)["password"], "it's a \\ test");
}

TEST(Conninfo, AMalformedUrlIsAConfigurationError) {
  auto c = store_conninfo("postgresql://u:p%zzsecret@db/app");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(c.error().code, "config");
  EXPECT_NE(c.error().message.find("postgres.url"), std::string::npos);
  EXPECT_EQ(c.error().message.find("zzsecret"), std::string::npos) << c.error().message;
}

TEST(Conninfo, TheServerSeesTheStatementTimeout) {
  auto c = store_conninfo(shared_postgres().url(), {}, kNoEnvironment);
  ASSERT_TRUE(c) << c.error().message;
  pqxx::connection conn(*c);
  pqxx::nontransaction tx(conn);
  EXPECT_EQ(tx.exec("SHOW statement_timeout")[0][0].as<std::string>(), "30s");
}

// A statement canceled by statement_timeout is a lock held too long: the
// store reports it as transient, so intake pauses and retries instead of
// dead-lettering the input it could not apply.
TEST_F(StoreTest, AStatementTimeoutIsTransient) {
  auto store = Store::open(pg_->url() + "?options=-c%20statement_timeout%3D200");
  ASSERT_TRUE(store->transact([](StoreTx& tx) { tx.set_input_offset("t", 0, 1); }).ok());
  pqxx::connection holder(pg_->url());
  pqxx::work lock(holder);
  lock.exec("SELECT * FROM input_offsets WHERE topic = 't' FOR UPDATE");
  Status blocked = store->transact([](StoreTx& tx) { (void)tx.input_offset_for_update("t", 0); });
  ASSERT_FALSE(blocked.ok());
  EXPECT_EQ(blocked.error().code, "57014") << blocked.error().message;
  EXPECT_TRUE(blocked.error().transient()) << blocked.error().message;
  lock.abort();
  EXPECT_TRUE(store->transact([](StoreTx& tx) { (void)tx.input_offset_for_update("t", 0); }).ok());
}

// Migrations are exempt: a slow one, or one waiting for another migrator as
// here, must not be canceled half-way by the connection's statement_timeout.
TEST(Migrate, IsNotBoundByTheStatementTimeout) {
  {
    pqxx::connection c(shared_postgres().url());
    pqxx::nontransaction w(c);
    w.exec("DROP DATABASE IF EXISTS migrate_timeout");
    w.exec("CREATE DATABASE migrate_timeout");
  }
  const std::string url = shared_postgres().url("migrate_timeout");
  pqxx::connection other(url);
  pqxx::work other_migrator(other);
  other_migrator.exec_params("SELECT pg_advisory_xact_lock($1)", store_detail::kMigrateLockKey);

  auto store = Store::open(url + "?options=-c%20statement_timeout%3D100");
  Status migrated = ok_status();
  std::thread migrator([&] { migrated = store->migrate(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // six timeouts' worth
  other_migrator.commit();
  migrator.join();
  EXPECT_TRUE(migrated.ok()) << migrated.error().message;
}

}  // namespace
}  // namespace brickwork::testing

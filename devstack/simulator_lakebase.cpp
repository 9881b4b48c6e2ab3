// The simulator's Lakebase credentials (databricks-api.md section 5): each
// token it issues becomes a real Postgres role's password, VALID UNTIL the
// token's expiry, so a store or a postgres step on that role meets what it
// meets on Lakebase: open sessions survive an expiry, new ones need the
// current token.
#include <pqxx/pqxx>
#include <random>

#include "daemon/core/json_limits.hpp"
#include "devstack/simulator_impl.hpp"

namespace brickwork {

http::ServerResponse DatabricksSimulator::Impl::lakebase_credentials(const http::ServerRequest& req,
                                                                     bool autoscaling) {
  using simulator_detail::api_error;
  if (options.lakebase_admin_url.empty()) {
    return api_error(404, "NOT_FOUND", "no database instance is simulated");
  }
  boost::system::error_code ec;
  const json::value body = parse_json(req.body, ec);
  if (ec || !body.is_object()) return api_error(400, "MALFORMED_REQUEST", "Invalid JSON");
  const json::object& o = body.as_object();
  if (autoscaling) {
    const json::value* endpoint = o.if_contains("endpoint");
    if (endpoint == nullptr || !endpoint->is_string()) {
      return api_error(400, "INVALID_PARAMETER_VALUE", "endpoint is required");
    }
  } else {
    const json::value* names = o.if_contains("instance_names");
    if ((names == nullptr || !names->is_array() || names->as_array().empty()) &&
        !o.contains("claims")) {
      return api_error(400, "INVALID_PARAMETER_VALUE",
                       "At least one of instance_names or claims is required");
    }
  }
  std::string token = "dapi-lb-";
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 40; ++i) token += kHex[token_rng() & 15];
  const TimePoint expires = now_ms() + options.lakebase_credential_ttl;
  // Postgres compares VALID UNTIL with whole seconds well enough; round up.
  const std::string until = format_iso8601(expires);
  try {
    pqxx::connection admin(options.lakebase_admin_url);
    pqxx::nontransaction tx(admin);
    tx.exec("ALTER ROLE " + tx.quote_name(options.lakebase_role) + " PASSWORD " + tx.quote(token) +
            " VALID UNTIL " + tx.quote(until));
  } catch (const std::exception& e) {
    return api_error(503, "TEMPORARILY_UNAVAILABLE",
                     std::string("cannot set the database credential: ") + e.what());
  }
  ++stats.credentials_issued;
  return simulator_detail::json_response(
      200, json::object{{"token", token}, {autoscaling ? "expire_time" : "expiration_time", until}});
}

}  // namespace brickwork

// The simulator's Delta Sharing API in Unity Catalog (docs/DATABRICKS.md,
// "Delta Sharing"): shares with their data objects and permissions,
// recipients with their tokens, token rotation, and the public activation
// link. Error codes follow what Databricks documents for these calls
// (SHARE_DOES_NOT_EXIST, RECIPIENT_ALREADY_EXISTS, RESOURCE_ALREADY_EXISTS
// for a table already in a share, ...). Tokens and activation links are
// never logged. As in Unity Catalog, securable names (shares, recipients,
// tables, columns) are looked up without case, each kept as first created;
// partition values and comments are kept and compared exactly.
#include <algorithm>
#include <cctype>

#include "daemon/core/json_limits.hpp"
#include "daemon/core/time.hpp"
#include "devstack/simulator_impl.hpp"

namespace brickwork {
namespace {

using simulator_detail::api_error;
using simulator_detail::json_response;

constexpr std::string_view kUcPrefix = "/api/2.1/unity-catalog/";

std::string uc_name_key(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string uc_text(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

bool token_active(const SimulatedRecipientToken& t, int64_t now) {
  return !t.expiration_time || *t.expiration_time > now;
}

json::object share_json(const SimulatedShare& share, bool include_shared_data) {
  json::object o{{"name", share.name}, {"owner", "simulator"}};
  if (!share.comment.empty()) o["comment"] = share.comment;
  if (include_shared_data) {
    json::array objects;
    for (const auto& object : share.objects) {
      json::object item{{"name", object.name},
                        {"data_object_type", object.data_object_type},
                        {"status", "ACTIVE"}};
      if (!object.partitions.empty()) item["partitions"] = object.partitions;
      objects.push_back(std::move(item));
    }
    o["objects"] = std::move(objects);
  }
  return o;
}

json::object recipient_json(const SimulatedRecipient& r, int64_t now) {
  json::object o{{"name", r.name},
                 {"authentication_type", r.authentication_type},
                 {"owner", "simulator"},
                 {"created_at", r.created_at}};
  if (!r.comment.empty()) o["comment"] = r.comment;
  if (r.authentication_type == "DATABRICKS") {
    o["data_recipient_global_metastore_id"] = r.data_recipient_global_metastore_id;
    return o;
  }
  json::array tokens;
  bool activated = false;
  for (const auto& t : r.tokens) {
    if (t.activation_url.empty()) activated = true;
    if (!token_active(t, now)) continue;
    json::object token{{"id", t.id},
                       {"created_at", t.created_at},
                       {"created_by", "simulator"},
                       {"activation_url", t.activation_url},
                       {"updated_at", t.created_at},
                       {"updated_by", "simulator"}};
    if (t.expiration_time) token["expiration_time"] = *t.expiration_time;
    tokens.push_back(std::move(token));
  }
  o["activated"] = activated;
  o["tokens"] = std::move(tokens);
  return o;
}

json::object permissions_json(const SimulatedShare& share,
                              const std::map<std::string, SimulatedRecipient>& recipients) {
  json::array assignments;
  for (const auto& [principal, privileges] : share.grants) {
    if (privileges.empty()) continue;
    auto r = recipients.find(principal);
    json::array list;
    for (const auto& p : privileges) list.emplace_back(p);
    assignments.push_back(json::object{
        {"principal", r == recipients.end() ? principal : r->second.name},
        {"privileges", std::move(list)}});
  }
  return json::object{{"privilege_assignments", std::move(assignments)}};
}

http::ServerResponse share_missing(const std::string& name) {
  return api_error(404, "SHARE_DOES_NOT_EXIST", "Share '" + name + "' does not exist.");
}

http::ServerResponse recipient_missing(const std::string& name) {
  return api_error(404, "RECIPIENT_DOES_NOT_EXIST", "Recipient '" + name + "' does not exist.");
}

// A share update's partitions: [{values: [{name, op: EQUAL|LIKE, value |
// recipient_property_key}]}]; a message when malformed.
std::optional<std::string> partitions_problem(const json::value& partitions) {
  if (!partitions.is_array()) return "partitions must be an array";
  for (const auto& p : partitions.as_array()) {
    const json::value* values = p.is_object() ? p.as_object().if_contains("values") : nullptr;
    if (values == nullptr || !values->is_array() || values->as_array().empty()) {
      return "each partition needs a non-empty values array";
    }
    for (const auto& v : values->as_array()) {
      if (!v.is_object()) return "a partition value must be an object";
      const json::object& pv = v.as_object();
      const std::string op = uc_text(pv, "op");
      if (uc_text(pv, "name").empty()) return "a partition value needs a name";
      if (op != "EQUAL" && op != "LIKE") return "partition value op must be EQUAL or LIKE";
      if (pv.contains("value") && pv.contains("recipient_property_key")) {
        return "only one of value and recipient_property_key may be set";
      }
    }
  }
  return std::nullopt;
}

// One request's view of the sharing state.
struct SharingCall {
  SimulatedSharing& state;
  std::mt19937_64& rng;
  const std::string& base_url;
  int64_t now;
  const std::string& method;
  const json::object& body;

  std::string hex(int n) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (int i = 0; i < n; ++i) out += kHex[rng() % 16];
    return out;
  }

  SimulatedRecipientToken new_token() {
    const std::string code = hex(32);
    SimulatedRecipientToken t;
    t.id = "tok-" + code.substr(0, 12);
    t.activation_url = base_url + "/delta_sharing/retrieve_config.html?" + code;
    t.created_at = now;
    return t;
  }

  // GET public/data_sharing_activation/{code}: the credential profile, once.
  http::ServerResponse retrieve(const std::string& code) {
    for (auto& [key, r] : state.recipients) {
      for (auto& t : r.tokens) {
        const size_t q = t.activation_url.rfind('?');
        if (q == std::string::npos || t.activation_url.substr(q + 1) != code ||
            !token_active(t, now)) {
          continue;
        }
        t.activation_url.clear();
        ++state.writes["activation.retrieve"];
        return json_response(200, json::object{{"shareCredentialsVersion", 1},
                                               {"bearerToken", hex(40)},
                                               {"endpoint", base_url + "/api/2.0/delta-sharing/"
                                                                       "metastores/simulator"}});
      }
    }
    return api_error(404, "RESOURCE_DOES_NOT_EXIST", "The activation link is invalid or was used.");
  }

  http::ServerResponse create_share() {
    const std::string name = uc_text(body, "name");
    if (name.empty()) {
      return api_error(400, "INVALID_PARAMETER_VALUE", "CreateShare Missing required field: name");
    }
    if (state.shares.count(uc_name_key(name)) != 0) {
      return api_error(409, "SHARE_ALREADY_EXISTS", "Share " + name + " already exists");
    }
    SimulatedShare share;
    share.name = name;
    share.comment = uc_text(body, "comment");
    state.shares[uc_name_key(name)] = share;
    ++state.writes["shares.create"];
    return json_response(200, share_json(share, false));
  }

  // PATCH shares/{name}: every update is checked before any is applied.
  http::ServerResponse update_share(SimulatedShare& share) {
    const json::value* updates = body.if_contains("updates");
    if (updates != nullptr && !updates->is_array()) {
      return api_error(400, "INVALID_PARAMETER_VALUE", "updates must be an array");
    }
    std::vector<SimulatedSharedObject> objects = share.objects;
    for (const auto& u : updates != nullptr ? updates->as_array() : json::array{}) {
      if (auto refused = apply_update(u, objects)) return *refused;
    }
    share.objects = std::move(objects);
    ++state.writes["shares.update"];
    return json_response(200, share_json(share, true));
  }

  static std::optional<http::ServerResponse> apply_update(const json::value& u,
                                                          std::vector<SimulatedSharedObject>& objects) {
    const json::object* update = u.if_object();
    const json::value* dov = update != nullptr ? update->if_contains("data_object") : nullptr;
    if (dov == nullptr || !dov->is_object()) {
      return api_error(400, "INVALID_PARAMETER_VALUE", "an update needs a data_object");
    }
    const json::object& object = dov->as_object();
    const std::string action = uc_text(*update, "action");
    const std::string name = uc_text(object, "name");
    const std::string type = uc_text(object, "data_object_type");
    if (std::count(name.begin(), name.end(), '.') != 2) {
      return api_error(400, "INVALID_PARAMETER_VALUE",
                       "data_object.name must be <catalog>.<schema>.<table>");
    }
    if (!type.empty() && type != "TABLE") {
      return api_error(400, "INVALID_PARAMETER_VALUE", "the simulator shares tables only");
    }
    const json::value* partitions = object.if_contains("partitions");
    if (partitions != nullptr) {
      if (auto problem = partitions_problem(*partitions)) {
        return api_error(400, "INVALID_PARAMETER_VALUE", *problem);
      }
    }
    auto at = std::find_if(objects.begin(), objects.end(),
                           [&](const auto& o) { return uc_name_key(o.name) == uc_name_key(name); });
    if (action == "ADD") {
      if (type.empty()) return api_error(400, "INVALID_PARAMETER_VALUE", "data_object_type is required");
      if (at != objects.end()) {
        return api_error(409, "RESOURCE_ALREADY_EXISTS", "Shared Table '" + name + "' already exists");
      }
      SimulatedSharedObject added;
      added.name = name;
      if (partitions != nullptr) added.partitions = partitions->as_array();
      objects.push_back(std::move(added));
      return std::nullopt;
    }
    if (action != "UPDATE" && action != "REMOVE") {
      return api_error(400, "INVALID_PARAMETER_VALUE", "action must be ADD, REMOVE or UPDATE");
    }
    if (at == objects.end()) {
      return api_error(404, "RESOURCE_DOES_NOT_EXIST", "Shared Table '" + name + "' does not exist");
    }
    if (action == "REMOVE") {
      objects.erase(at);
    } else {
      at->partitions = partitions != nullptr ? partitions->as_array() : json::array{};
    }
    return std::nullopt;
  }

  // PATCH shares/{name}/permissions: SELECT added or removed per recipient.
  http::ServerResponse update_permissions(SimulatedShare& share) {
    const json::value* changes = body.if_contains("changes");
    if (changes != nullptr && !changes->is_array()) {
      return api_error(400, "INVALID_PARAMETER_VALUE", "changes must be an array");
    }
    auto grants = share.grants;
    for (const auto& c : changes != nullptr ? changes->as_array() : json::array{}) {
      const json::object* change = c.if_object();
      const std::string principal = change != nullptr ? uc_text(*change, "principal") : "";
      if (principal.empty()) return api_error(400, "INVALID_PARAMETER_VALUE", "a change needs a principal");
      if (state.recipients.count(uc_name_key(principal)) == 0) return recipient_missing(principal);
      for (const char* key : {"add", "remove"}) {
        const json::value* list = change->if_contains(key);
        if (list == nullptr) continue;
        if (!list->is_array()) return api_error(400, "INVALID_PARAMETER_VALUE", "add/remove must be arrays");
        for (const auto& p : list->as_array()) {
          if (!p.is_string() || p.as_string() != "SELECT") {
            return api_error(400, "INVALID_PARAMETER_VALUE", "a share grants SELECT only");
          }
          auto& privileges = grants[uc_name_key(principal)];
          if (std::string_view(key) == "add") {
            privileges.insert("SELECT");
          } else {
            privileges.erase("SELECT");
          }
        }
      }
    }
    std::erase_if(grants, [](const auto& g) { return g.second.empty(); });
    share.grants = std::move(grants);
    ++state.writes["permissions.update"];
    return json_response(200, permissions_json(share, state.recipients));
  }

  http::ServerResponse shares(const std::vector<std::string>& seg,
                              const std::map<std::string, std::string>& query) {
    if (seg.size() == 1 && method == "GET") {
      json::array list;
      for (const auto& [key, share] : state.shares) list.push_back(share_json(share, false));
      return json_response(200, json::object{{"shares", std::move(list)}});
    }
    if (seg.size() == 1 && method == "POST") return create_share();
    const bool permissions = seg.size() == 3 && seg[2] == "permissions";
    if (seg.size() != 2 && !permissions) return unknown_route();
    if (!(method == "GET" || method == "PATCH" || (method == "DELETE" && !permissions))) {
      return unknown_route();
    }
    auto it = state.shares.find(uc_name_key(seg[1]));
    if (it == state.shares.end()) return share_missing(seg[1]);
    SimulatedShare& share = it->second;
    if (permissions) {
      return method == "PATCH" ? update_permissions(share)
                               : json_response(200, permissions_json(share, state.recipients));
    }
    if (method == "PATCH") return update_share(share);
    if (method == "DELETE") {
      state.shares.erase(it);
      ++state.writes["shares.delete"];
      return json_response(200, json::object{});
    }
    auto q = query.find("include_shared_data");
    return json_response(200, share_json(share, q != query.end() && q->second == "true"));
  }

  http::ServerResponse create_recipient() {
    const std::string name = uc_text(body, "name");
    const std::string type = uc_text(body, "authentication_type");
    const std::string metastore = uc_text(body, "data_recipient_global_metastore_id");
    if (name.empty()) {
      return api_error(400, "INVALID_PARAMETER_VALUE", "CreateRecipient Missing required field: name");
    }
    if (type != "TOKEN" && type != "DATABRICKS") {
      return api_error(400, "INVALID_PARAMETER_VALUE", "authentication_type must be TOKEN or DATABRICKS");
    }
    if ((type == "DATABRICKS") == metastore.empty()) {
      return api_error(400, "INVALID_PARAMETER_VALUE",
                       "data_recipient_global_metastore_id is required for DATABRICKS "
                       "recipients and not allowed for TOKEN recipients");
    }
    if (state.recipients.count(uc_name_key(name)) != 0) {
      return api_error(409, "RECIPIENT_ALREADY_EXISTS", "Recipient " + name + " already exists");
    }
    SimulatedRecipient r;
    r.name = name;
    r.authentication_type = type;
    r.data_recipient_global_metastore_id = metastore;
    r.comment = uc_text(body, "comment");
    r.created_at = now;
    if (type == "TOKEN") r.tokens.push_back(new_token());
    state.recipients[uc_name_key(name)] = r;
    ++state.writes["recipients.create"];
    return json_response(200, recipient_json(r, now));
  }

  // POST recipients/{name}/rotate-token.
  http::ServerResponse rotate(SimulatedRecipient& r) {
    if (r.authentication_type != "TOKEN") {
      return api_error(400, "INVALID_PARAMETER_VALUE",
                       "Only recipients with TOKEN authentication have tokens to rotate");
    }
    const auto seconds =
        simulator_detail::request_int64(body.if_contains("existing_token_expire_in_seconds"));
    if (!seconds || *seconds < 0) {
      return api_error(400, "INVALID_PARAMETER_VALUE", "existing_token_expire_in_seconds must be 0 or more");
    }
    const auto active = std::count_if(r.tokens.begin(), r.tokens.end(),
                                      [&](const auto& t) { return token_active(t, now); });
    if (active >= 2) {
      return api_error(400, "INVALID_PARAMETER_VALUE",
                       "There are already two active tokens for recipient " + r.name);
    }
    // The old token's expiry only ever moves earlier.
    const int64_t expires = now + *seconds * 1000;
    for (auto& t : r.tokens) {
      if (!t.expiration_time || *t.expiration_time > expires) t.expiration_time = expires;
    }
    std::erase_if(r.tokens, [&](const auto& t) { return !token_active(t, now); });
    r.tokens.push_back(new_token());
    ++state.writes["recipients.rotate_token"];
    return json_response(200, recipient_json(r, now));
  }

  http::ServerResponse recipients(const std::vector<std::string>& seg) {
    if (seg.size() == 1 && method == "GET") {
      json::array list;
      for (const auto& [key, r] : state.recipients) list.push_back(recipient_json(r, now));
      return json_response(200, json::object{{"recipients", std::move(list)}});
    }
    if (seg.size() == 1 && method == "POST") return create_recipient();
    const bool rotation = seg.size() == 3 && seg[2] == "rotate-token" && method == "POST";
    if (!rotation && !(seg.size() == 2 && (method == "GET" || method == "DELETE"))) {
      return unknown_route();
    }
    auto it = state.recipients.find(uc_name_key(seg[1]));
    if (it == state.recipients.end()) return recipient_missing(seg[1]);
    if (rotation) return rotate(it->second);
    if (method == "GET") return json_response(200, recipient_json(it->second, now));
    // Deleting a recipient ends its grants on every share.
    for (auto& [key, share] : state.shares) share.grants.erase(it->first);
    state.recipients.erase(it);
    ++state.writes["recipients.delete"];
    return json_response(200, json::object{});
  }

  http::ServerResponse unknown_route() const {
    return api_error(404, "ENDPOINT_NOT_FOUND", "No such Unity Catalog sharing API for " + method);
  }
};

}  // namespace

http::ServerResponse DatabricksSimulator::Impl::unity_catalog_sharing(
    const http::ServerRequest& req, const std::string& path,
    const std::map<std::string, std::string>& query) {
  // Segments below /api/2.1/unity-catalog/, each percent-decoded.
  std::vector<std::string> seg;
  std::string_view rest = std::string_view(path).substr(kUcPrefix.size());
  while (!rest.empty()) {
    const size_t slash = rest.find('/');
    seg.push_back(simulator_detail::percent_decode(rest.substr(0, slash), false));
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  json::object body;
  if ((req.method == "POST" || req.method == "PATCH") && !req.body.empty()) {
    boost::system::error_code ec;
    json::value v = parse_json(req.body, ec);
    if (ec || !v.is_object()) {
      return api_error(400, "MALFORMED_REQUEST", "Invalid JSON given in the body of the request");
    }
    body = std::move(v.as_object());
  }
  SharingCall call{sharing, sharing_rng, base_url, to_epoch_ms(now_ms()), req.method, body};
  if (seg.size() == 3 && seg[0] == "public" && seg[1] == "data_sharing_activation" &&
      req.method == "GET") {
    return call.retrieve(seg[2]);
  }
  if (!seg.empty() && seg[0] == "shares") return call.shares(seg, query);
  if (!seg.empty() && seg[0] == "recipients") return call.recipients(seg);
  return call.unknown_route();
}

}  // namespace brickwork

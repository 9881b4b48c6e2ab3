// delta_share: converges Delta Sharing for one recipient (contract 6.2).
//
//   delta_share:
//     share: "{{ input.client_id }}_usage"            # created if missing
//     tables:                                          # added if missing
//       - name: main.platform.usage
//         partition: {client_space_uid: "{{ input.client_id }}"}
//     recipient: "{{ input.client_id }}"               # TOKEN recipient, created if missing
//     sharing_identifier: "aws:us-west-2:<uuid>"       # instead: a DATABRICKS recipient
//     rotate_token: false                              # true: a new activation link
//     existing_token_expire_in: 1h                     # the old token's grace (default 0s)
//
//   delta_share: {action: revoke, share: ..., recipient: ..., delete_share: false}
//
// Every call reads before it writes, so a retry, a crash halfway or a second
// workflow for the same client converges instead of failing on "already
// exists": the share, each table (with its partition filter: a table shared
// with another filter is UPDATEd to the asked one; tables not named are left
// alone), the recipient and its SELECT grant. A recipient of the other
// authentication type or metastore fails the step with recipient_mismatch.
// Output {"share", "recipient", "activation_url"}, sensitive (contract 6.3):
// the link of the newest token not yet used; null once the recipient has
// downloaded its credential (rotate_token: true issues a new one), for a
// DATABRICKS recipient, and for revoke. A rotation happens at most once per
// workflow: a token issued since the workflow began counts as done.
//
// Unity Catalog looks securable names (shares, recipients, tables, columns)
// up without case, so a share or recipient named "ACME" is the one created
// for "acme". Partition values are compared exactly. brickwork marks what it
// creates with the name as asked (in its comment); a share or recipient
// created under another spelling belongs to another client and fails the
// step with name_collision before anything is written.
#include <algorithm>
#include <cctype>
#include <tuple>

#include "daemon/core/time.hpp"
#include "daemon/databricks/api.hpp"
#include "daemon/databricks/parsing.hpp"
#include "handlers/steps/action_fields.hpp"
#include "handlers/steps/databricks_run.hpp"
#include "handlers/steps/delta_share.hpp"

namespace brickwork {

namespace {

constexpr std::string_view kShares = "/api/2.1/unity-catalog/shares/";
constexpr std::string_view kRecipients = "/api/2.1/unity-catalog/recipients/";
// A token whose created_at is this much before the workflow began still
// counts as issued by it: the daemon's and the workspace's clocks differ.
constexpr int64_t kClockSkewMs = 10'000;

constexpr std::string_view kCreatedAs = "brickwork: created as ";

// Unity Catalog securable names only: they ignore case.
std::string share_name_key(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

const json::value* share_member(const json::value& v, std::string_view key) {
  return v.is_object() ? v.as_object().if_contains(key) : nullptr;
}

std::string share_text(const json::object& o, std::string_view key) {
  const json::value* f = o.if_contains(key);
  return f != nullptr && f->is_string() ? std::string(f->as_string()) : std::string();
}

std::string share_text(const json::value& v, std::string_view key) {
  return v.is_object() ? share_text(v.as_object(), key) : std::string();
}

const json::array& array_of(const json::value& v, std::string_view key) {
  static const json::array kEmpty;
  const json::value* f = share_member(v, key);
  return f != nullptr && f->is_array() ? f->as_array() : kEmpty;
}

// A partition value as the API carries it: text ("" for none).
std::optional<std::string> partition_text(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_bool()) return std::string(v.as_bool() ? "true" : "false");
  if (v.is_number()) return json::serialize(v);
  return std::nullopt;
}

bool is_table_name(std::string_view name) {
  return std::count(name.begin(), name.end(), '.') == 2 && name.front() != '.' &&
         name.back() != '.' && name.find("..") == std::string_view::npos;
}

// Partitions compared as sets: the order the API lists them in is no change.
using PartitionKey = std::vector<std::vector<std::tuple<std::string, std::string, std::string>>>;
PartitionKey partition_key(const json::array& partitions) {
  PartitionKey key;
  for (const auto& p : partitions) {
    std::vector<std::tuple<std::string, std::string, std::string>> values;
    for (const auto& v : array_of(p, "values")) {
      const json::value* value = share_member(v, "value");
      const json::value* property = share_member(v, "recipient_property_key");
      values.emplace_back(share_name_key(share_text(v, "name")), share_text(v, "op"),
                          value != nullptr ? "=" + partition_text(*value).value_or("")
                          : property != nullptr ? "@" + share_text(v, "recipient_property_key")
                                                : std::string("null"));
    }
    std::sort(values.begin(), values.end());
    key.push_back(std::move(values));
  }
  std::sort(key.begin(), key.end());
  return key;
}

// The name a share or recipient was created under: brickwork's mark in its
// comment, else its name as listed.
std::string created_as(const json::value& object) {
  const std::string comment = share_text(object, "comment");
  if (comment.rfind(kCreatedAs, 0) == 0) return comment.substr(kCreatedAs.size());
  return share_text(object, "name");
}

// A share or recipient found under `asked` that was created under another
// spelling: another client's, never to be written for this one.
std::optional<Error> name_collision(std::string_view kind, const std::string& asked,
                                    const json::value& object) {
  const std::string owner = created_as(object);
  if (owner.empty() || owner == asked) return std::nullopt;
  return Error{ErrorKind::kPermanent, "name_collision",
               std::string(kind) + " '" + asked + "' is the " + std::string(kind) + " '" + owner +
                   "' in Unity Catalog, whose names ignore case; it belongs to another client "
                   "and is left as it is: give this one a name that differs in more than case"};
}

std::string share_path(const std::string& share) {
  return std::string(kShares) + databricks_parsing::percent_encode(share);
}

std::string recipient_path(const std::string& recipient) {
  return std::string(kRecipients) + databricks_parsing::percent_encode(recipient);
}

}  // namespace

Result<DeltaShareRequest> delta_share_request(const json::object& action) {
  DeltaShareRequest r;
  r.revoke = share_text(action, "action") == "revoke";
  r.share = share_text(action, "share");
  r.recipient = share_text(action, "recipient");
  if (r.share.empty() || r.recipient.empty()) {
    return invalid_action("delta_share.share and .recipient must render to non-empty names");
  }
  r.sharing_identifier = share_text(action, "sharing_identifier");
  if (const json::value* d = action.if_contains("delete_share"); d != nullptr && d->is_bool()) {
    r.delete_share = d->as_bool();
  }
  if (const json::value* t = action.if_contains("rotate_token"); t != nullptr && t->is_bool()) {
    r.rotate_token = t->as_bool();
  }
  if (const json::value* e = action.if_contains("existing_token_expire_in"); e != nullptr) {
    const auto d = e->is_string() ? parse_duration(std::string_view(e->as_string())) : std::nullopt;
    if (!d) return invalid_action("delta_share.existing_token_expire_in must be a duration");
    r.existing_token_expire_in_seconds = d->count() / 1000;
  }
  const json::value* tables = action.if_contains("tables");
  for (const auto& t : tables != nullptr && tables->is_array() ? tables->as_array() : json::array{}) {
    DeltaShareRequest::Table table;
    table.name = share_text(t, "name");
    if (!is_table_name(table.name)) {
      return invalid_action("delta_share.tables: '" + table.name +
                            "' is not a <catalog>.<schema>.<table> name");
    }
    if (const json::value* partition = share_member(t, "partition");
        partition != nullptr && partition->is_object() && !partition->as_object().empty()) {
      json::array values;
      for (const auto& [column, value] : partition->as_object()) {
        json::object pv{{"name", column}, {"op", "EQUAL"}};
        if (!value.is_null()) {
          auto v = partition_text(value);
          if (!v) return invalid_action("delta_share: partition value of " + std::string(column) +
                                        " must be a string, number or boolean");
          pv["value"] = *v;
        }
        values.push_back(std::move(pv));
      }
      table.partitions.push_back(json::object{{"values", std::move(values)}});
    }
    r.tables.push_back(std::move(table));
  }
  return r;
}

json::array delta_share_updates(const std::vector<DeltaShareRequest::Table>& tables,
                                const json::value& objects) {
  json::array updates;
  for (const auto& table : tables) {
    const json::value* existing = nullptr;
    if (objects.is_array()) {
      for (const auto& o : objects.as_array()) {
        if (share_name_key(share_text(o, "name")) == share_name_key(table.name)) existing = &o;
      }
    }
    json::object data_object{{"name", table.name}, {"data_object_type", "TABLE"}};
    if (existing == nullptr) {
      if (!table.partitions.empty()) data_object["partitions"] = table.partitions;
      updates.push_back(json::object{{"action", "ADD"}, {"data_object", std::move(data_object)}});
    } else if (partition_key(array_of(*existing, "partitions")) != partition_key(table.partitions)) {
      data_object["partitions"] = table.partitions;  // [] shares the whole table again
      updates.push_back(json::object{{"action", "UPDATE"}, {"data_object", std::move(data_object)}});
    }
  }
  return updates;
}

json::value delta_share_activation_url(const json::value& recipient) {
  json::value url;
  int64_t newest = -1;
  for (const auto& t : array_of(recipient, "tokens")) {
    const std::string link = share_text(t, "activation_url");
    const json::value* created = share_member(t, "created_at");
    const int64_t at = created != nullptr ? as_int64(*created).value_or(0) : 0;
    if (!link.empty() && at >= newest) {
      newest = at;
      url = link;
    }
  }
  return url;
}

namespace {

// The Unity Catalog calls of one attempt, each reading before it writes.
class Sharing {
 public:
  Sharing(DatabricksApi& api, const DeltaShareRequest& request, TimePoint workflow_began)
      : api_(api), r_(request), workflow_began_ms_(to_epoch_ms(workflow_began)) {}

  Result<json::object> provision() {
    // A recipient of the wrong kind fails the step before anything is written.
    auto recipient = read_recipient();
    if (!recipient) return recipient.error();
    if (auto s = ensure_share_and_tables(); !s) return s.error();
    if (recipient->is_null()) recipient = create_recipient();
    if (!recipient) return recipient.error();
    if (r_.rotate_token && r_.sharing_identifier.empty() && !issued_since_workflow_began(*recipient)) {
      const json::value body =
          json::object{{"existing_token_expire_in_seconds", r_.existing_token_expire_in_seconds}};
      // Not repeated by the client: each rotation issues another token.
      recipient = api_.call("POST", recipient_path(r_.recipient) + "/rotate-token", &body, false);
      if (!recipient) return recipient.error();
    }
    if (auto g = ensure_grant(); !g) return g.error();
    json::value url = r_.sharing_identifier.empty() ? delta_share_activation_url(*recipient)
                                                    : json::value();
    return json::object{{"share", r_.share}, {"recipient", r_.recipient}, {"activation_url", url}};
  }

  Result<json::object> revoke() {
    if (auto s = check_owner("share", share_path(r_.share), r_.share); !s) return s.error();
    if (auto s = check_owner("recipient", recipient_path(r_.recipient), r_.recipient); !s) {
      return s.error();
    }
    auto permissions = api_.call("GET", share_path(r_.share) + "/permissions", nullptr, true);
    if (!permissions && permissions.error().kind != ErrorKind::kNotFound) return permissions.error();
    if (permissions) {
      for (const auto& a : array_of(*permissions, "privilege_assignments")) {
        if (share_name_key(share_text(a, "principal")) != share_name_key(r_.recipient)) continue;
        json::array held;
        for (const auto& p : array_of(a, "privileges")) held.push_back(p);
        if (held.empty()) continue;
        const json::value body = json::object{
            {"changes", json::array{json::object{{"principal", r_.recipient}, {"remove", held}}}}};
        auto changed = api_.call("PATCH", share_path(r_.share) + "/permissions", &body, true);
        if (!changed) return changed.error();
      }
    }
    if (auto d = delete_if_there(recipient_path(r_.recipient)); !d) return d.error();
    if (r_.delete_share) {
      if (auto d = delete_if_there(share_path(r_.share)); !d) return d.error();
    }
    return json::object{{"share", r_.share}, {"recipient", r_.recipient}, {"activation_url", nullptr}};
  }

 private:
  // GET, or POST then GET when missing; a 409 on POST means another
  // workflow created it meanwhile, which is as good.
  Result<json::value> get_or_create(const std::string& path, const std::string& collection,
                                    const json::value& create_body) {
    auto got = api_.call("GET", path, nullptr, true);
    if (got || got.error().kind != ErrorKind::kNotFound) return got;
    auto created = api_.call("POST", collection, &create_body, true);
    if (!created && created.error().kind != ErrorKind::kConflict) return created.error();
    return api_.call("GET", path, nullptr, true);
  }

  // Fails when what `path` names exists under another spelling of `asked`.
  Status check_owner(std::string_view kind, const std::string& path, const std::string& asked) {
    auto got = api_.call("GET", path, nullptr, true);
    if (!got && got.error().kind == ErrorKind::kNotFound) return ok_status();
    if (!got) return got.error();
    if (auto collision = name_collision(kind, asked, *got)) return *collision;
    return ok_status();
  }

  Status ensure_share_and_tables() {
    const std::string path = share_path(r_.share) + "?include_shared_data=true";
    auto share = get_or_create(
        path, "/api/2.1/unity-catalog/shares",
        json::object{{"name", r_.share}, {"comment", std::string(kCreatedAs) + r_.share}});
    if (!share) return share.error();
    if (auto collision = name_collision("share", r_.share, *share)) return *collision;
    // A table added by someone else between our read and our write comes
    // back as RESOURCE_ALREADY_EXISTS: read again and go on from there.
    for (int round = 0;; ++round) {
      const json::value* objects = share_member(*share, "objects");
      json::array updates = delta_share_updates(r_.tables, objects ? *objects : json::value());
      if (updates.empty()) return ok_status();
      const json::value body = json::object{{"updates", std::move(updates)}};
      auto updated = api_.call("PATCH", share_path(r_.share), &body, true);
      if (updated) return ok_status();
      if (updated.error().kind != ErrorKind::kConflict || round == 2) return updated.error();
      share = api_.call("GET", path, nullptr, true);
      if (!share) return share.error();
    }
  }

  json::object recipient_create_body() const {
    json::object create{{"name", r_.recipient},
                        {"authentication_type", r_.sharing_identifier.empty() ? "TOKEN" : "DATABRICKS"},
                        {"comment", std::string(kCreatedAs) + r_.recipient}};
    if (!r_.sharing_identifier.empty()) {
      create["data_recipient_global_metastore_id"] = r_.sharing_identifier;
    }
    return create;
  }

  // The recipient as it is (null when missing), if it is of the asked kind.
  Result<json::value> read_recipient() {
    auto got = api_.call("GET", recipient_path(r_.recipient), nullptr, true);
    if (!got && got.error().kind == ErrorKind::kNotFound) return json::value();
    if (!got) return got;
    if (auto collision = name_collision("recipient", r_.recipient, *got)) return *collision;
    if (auto mismatch = kind_mismatch(*got)) return *mismatch;
    return got;
  }

  Result<json::value> create_recipient() {
    const json::object create = recipient_create_body();
    auto recipient = get_or_create(recipient_path(r_.recipient),
                                   "/api/2.1/unity-catalog/recipients", json::value(create));
    if (!recipient) return recipient;
    // Created by another meanwhile:
    if (auto collision = name_collision("recipient", r_.recipient, *recipient)) return *collision;
    if (auto mismatch = kind_mismatch(*recipient)) return *mismatch;
    return recipient;
  }

  std::optional<Error> kind_mismatch(const json::value& recipient) const {
    const std::string type = share_text(recipient, "authentication_type");
    const std::string want = r_.sharing_identifier.empty() ? "TOKEN" : "DATABRICKS";
    const std::string metastore = share_text(recipient, "data_recipient_global_metastore_id");
    if (type == want &&
        (want != "DATABRICKS" || metastore == r_.sharing_identifier)) {
      return std::nullopt;
    }
    return Error{ErrorKind::kPermanent, "recipient_mismatch",
                 "recipient " + r_.recipient + " exists as " + type +
                     (type == "DATABRICKS" ? " for metastore " + metastore : std::string()) +
                     ", not as the " + want + " recipient this step asks for"};
  }

  bool issued_since_workflow_began(const json::value& recipient) const {
    for (const auto& t : array_of(recipient, "tokens")) {
      const json::value* created = share_member(t, "created_at");
      if (created != nullptr &&
          as_int64(*created).value_or(0) >= workflow_began_ms_ - kClockSkewMs) {
        return true;
      }
    }
    return false;
  }

  Status ensure_grant() {
    const std::string path = share_path(r_.share) + "/permissions";
    auto permissions = api_.call("GET", path, nullptr, true);
    if (!permissions) return permissions.error();
    for (const auto& a : array_of(*permissions, "privilege_assignments")) {
      if (share_name_key(share_text(a, "principal")) != share_name_key(r_.recipient)) continue;
      for (const auto& p : array_of(a, "privileges")) {
        if (p.is_string() && p.as_string() == "SELECT") return ok_status();
      }
    }
    const json::value body = json::object{
        {"changes", json::array{json::object{{"principal", r_.recipient},
                                             {"add", json::array{"SELECT"}}}}}};
    auto granted = api_.call("PATCH", path, &body, true);
    if (!granted) return granted.error();
    return ok_status();
  }

  Status delete_if_there(const std::string& path) {
    auto deleted = api_.call("DELETE", path, nullptr, true);
    if (!deleted && deleted.error().kind != ErrorKind::kNotFound) return deleted.error();
    return ok_status();
  }

  DatabricksApi& api_;
  const DeltaShareRequest& r_;
  int64_t workflow_began_ms_;
};

std::optional<std::string> check_tables(const json::value& tables) {
  if (!tables.is_array()) return "delta_share.tables must be a list of {name, partition}";
  for (const auto& t : tables.as_array()) {
    if (!t.is_object()) return "delta_share.tables: each entry is {name, partition}";
    if (auto e = unknown_action_key(t.as_object(), "delta_share.tables[]", {"name", "partition"})) {
      return e;
    }
    const json::value* name = t.as_object().if_contains("name");
    if (name == nullptr || !name->is_string()) {
      return "delta_share.tables[].name is required (<catalog>.<schema>.<table>)";
    }
    if (!holds_template(*name) && !is_table_name(std::string_view(name->as_string()))) {
      return "delta_share.tables[].name must be <catalog>.<schema>.<table>, not '" +
             std::string(name->as_string()) + "'";
    }
    if (const json::value* p = t.as_object().if_contains("partition")) {
      if (!p->is_object()) return "delta_share.tables[].partition must map column to value";
      for (const auto& [column, value] : p->as_object()) {
        if (value.is_object() || value.is_array()) {
          return "delta_share.tables[].partition." + std::string(column) + " must be one value";
        }
      }
    }
  }
  return std::nullopt;
}

// delta_share's action, checked: the request itself when the action holds
// no template, else the action, read once rendered.
struct DeltaShareAction final : BoundAction {
  std::optional<DeltaShareRequest> request;
  json::object templated;
};

class DeltaShareStep final : public StepType {
 public:
  std::string_view action_key() const override { return "delta_share"; }
  bool calls_databricks() const override { return true; }

  Result<BoundActionPtr> compile(StepDefinition& step) const override {
    auto message = check(step);
    if (message) return compile_error(*message);
    // Without templates the request is read once, here; with them, each
    // time the step runs, once they are rendered.
    auto bound = std::make_shared<DeltaShareAction>();
    if (has_template(json::value(step.action))) {
      bound->templated = step.action;
    } else {
      auto request = delta_share_request(step.action);
      if (!request) return compile_error(request.error().message);
      bound->request = std::move(*request);
    }
    return BoundActionPtr(std::move(bound));
  }

 private:
  static std::optional<std::string> check(StepDefinition& step) {
    step.plan.sensitive_output = true;  // the activation link is a credential
    const json::object& action = step.action;
    const json::value* mode = action.if_contains("action");
    if (mode != nullptr && !(mode->is_string() && (mode->as_string() == "provision" ||
                                                   mode->as_string() == "revoke"))) {
      return "delta_share.action must be provision (the default) or revoke";
    }
    const bool revoke = mode != nullptr && mode->as_string() == "revoke";
    if (auto e = revoke ? unknown_action_key(action, "delta_share (revoke)",
                                             {"action", "share", "recipient", "delete_share"})
                        : unknown_action_key(action, "delta_share",
                                             {"action", "share", "tables", "recipient",
                                              "sharing_identifier", "rotate_token",
                                              "existing_token_expire_in"})) {
      return e;
    }
    for (const char* required : {"share", "recipient"}) {
      const json::value* v = action.if_contains(required);
      if (v == nullptr || !v->is_string() || v->as_string().empty()) {
        return "delta_share." + std::string(required) + " is required (a name)";
      }
    }
    for (const char* flag : {"delete_share", "rotate_token"}) {
      if (const json::value* v = action.if_contains(flag); v != nullptr && !v->is_bool()) {
        return "delta_share." + std::string(flag) + " must be true or false";
      }
    }
    if (revoke) return std::nullopt;
    if (const json::value* t = action.if_contains("tables")) {
      if (auto e = check_tables(*t)) return e;
    }
    const json::value* id = action.if_contains("sharing_identifier");
    if (id != nullptr && (!id->is_string() || id->as_string().empty())) {
      return "delta_share.sharing_identifier must be the recipient's metastore id";
    }
    const bool rotate = action.contains("rotate_token") && action.at("rotate_token").as_bool();
    if (id != nullptr && rotate) {
      return "delta_share.rotate_token: a DATABRICKS recipient (sharing_identifier) has no token";
    }
    if (const json::value* e = action.if_contains("existing_token_expire_in")) {
      if (!rotate) return "delta_share.existing_token_expire_in needs rotate_token: true";
      if (!e->is_string() || !parse_duration(std::string_view(e->as_string()))) {
        return "delta_share.existing_token_expire_in must be a duration (0s, 1h, ...)";
      }
    }
    return std::nullopt;
  }


 public:
  Result<StepOutcome> execute(const StepContext& context, StepServices& services) const override {
    const auto& action = context.action<DeltaShareAction>();
    std::optional<DeltaShareRequest> rendered_request;
    if (!action.request) {
      auto rendered = render_object(action.templated, context);
      if (!rendered) return rendered.error();
      auto request = delta_share_request(*rendered);
      if (!request) return request.error();
      rendered_request = std::move(*request);
    }
    const DeltaShareRequest& request = action.request ? *action.request : *rendered_request;
    Sharing sharing(*services.databricks, request, context.workflow.created_at);
    auto output = request.revoke ? sharing.revoke() : sharing.provision();
    if (!output) return output.error();
    StepOutcome outcome;
    outcome.output = std::move(*output);
    return outcome;
  }
};

}  // namespace

std::unique_ptr<StepType> make_delta_share_step() { return std::make_unique<DeltaShareStep>(); }

}  // namespace brickwork

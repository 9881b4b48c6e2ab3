#pragma once
// The delta_share step's pure halves (delta_share.cpp), exposed for tests:
// what a rendered action asks for, the share update it needs, and the
// activation link a recipient body gives.
#include <boost/json.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "daemon/core/result.hpp"

namespace brickwork {

namespace json = boost::json;

// What a delta_share action asks for, once rendered.
struct DeltaShareRequest {
  bool revoke = false;
  std::string share;
  std::string recipient;
  std::string sharing_identifier;  // non-empty: a DATABRICKS recipient
  struct Table {
    std::string name;
    json::array partitions;  // the API's form: [] or [{"values": [{name, op: EQUAL, value}]}]
  };
  std::vector<Table> tables;
  bool rotate_token = false;
  int64_t existing_token_expire_in_seconds = 0;
  bool delete_share = false;
};

// Reads a rendered action; an invalid_step Error for names or values the
// templates rendered into something unusable.
Result<DeltaShareRequest> delta_share_request(const json::object& rendered_action);

// The share update that brings `objects` (a share's objects[] from GET with
// include_shared_data=true) to what `tables` asks: ADD the missing, UPDATE
// those shared with other partitions; tables not asked for are left alone.
// Empty when nothing is to change.
json::array delta_share_updates(const std::vector<DeltaShareRequest::Table>& tables,
                                const json::value& objects);

// The activation link of a recipient body: the newest token's non-empty
// activation_url (empty once the recipient retrieved its credential); null
// when there is none.
json::value delta_share_activation_url(const json::value& recipient);

}  // namespace brickwork

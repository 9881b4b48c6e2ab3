// The simulator's YAML description (`brickwork simulator --jobs FILE`):
// kept apart from the HTTP routes, since only the command line reads it.
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <fstream>
#include <sstream>

#include "devstack/simulator.hpp"

namespace brickwork {

namespace {

bool is_known_outcome(const std::string& o) {
  return o == "SUCCESS" || o == "FAILED" || o == "TIMEDOUT" || o == "CANCELED" ||
         o == "INTERNAL_ERROR";
}

struct YamlError {
  std::string message;
};

std::string where(const std::string& source, const YAML::Node& node, const std::string& field) {
  const auto mark = node.Mark();
  std::string out = source;
  if (mark.line >= 0) out += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  return out + ": " + field;
}

json::value yaml_to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      json::object o;
      for (const auto& kv : node) o[kv.first.as<std::string>()] = yaml_to_json(kv.second);
      return o;
    }
    case YAML::NodeType::Sequence: {
      json::array a;
      for (const auto& item : node) a.push_back(yaml_to_json(item));
      return a;
    }
    case YAML::NodeType::Scalar: {
      const std::string s = node.Scalar();
      if (node.Tag() == "!") return json::value(s);  // quoted: always a string
      if (s == "true" || s == "True") return true;
      if (s == "false" || s == "False") return false;
      if (s == "null" || s == "~") return nullptr;
      int64_t i = 0;
      if (auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), i);
          ec == std::errc() && p == s.data() + s.size() && !s.empty()) {
        return i;
      }
      try {
        size_t used = 0;
        const double d = std::stod(s, &used);
        if (used == s.size()) return d;
      } catch (const std::exception&) {
      }
      return json::value(s);
    }
    default:
      return nullptr;
  }
}

Duration duration_field(const std::string& source, const YAML::Node& node, const std::string& field) {
  auto d = parse_duration(node.as<std::string>());
  if (!d) throw YamlError{where(source, node, field) + ": expected a duration like 2s or 500ms"};
  return *d;
}

template <typename T>
void check(const std::string& source, const YAML::Node& node, const std::string& field,
           const Result<T>& parsed) {
  if (!parsed) throw YamlError{where(source, node, field) + ": " + parsed.error().message};
}

// latency: 200ms, or {min: 100ms, max: 500ms}.
void parse_latency(const std::string& source, const YAML::Node& v, SimulatorPace& pace) {
  if (!v.IsMap()) {
    check(source, v, "latency", parse_simulator_latency(v.as<std::string>(), pace));
    return;
  }
  if (!v["min"] || !v["max"] || v.size() != 2) {
    throw YamlError{where(source, v, "latency") + ": expected a duration or {min: .., max: ..}"};
  }
  pace.latency_min = duration_field(source, v["min"], "latency.min");
  pace.latency_max = duration_field(source, v["max"], "latency.max");
  if (pace.latency_max < pace.latency_min) {
    throw YamlError{where(source, v, "latency") + ": max is less than min"};
  }
}

SimulatedJob parse_job(const std::string& source, const YAML::Node& node, const std::string& field) {
  if (!node.IsMap()) throw YamlError{where(source, node, field) + ": expected a mapping"};
  SimulatedJob job;
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    const std::string f = field + "." + key;
    if (key == "job_id") {
      continue;  // read by the caller
    } else if (key == "name") {
      job.name = v.as<std::string>();
    } else if (key == "duration") {
      job.duration = duration_field(source, v, f);
    } else if (key == "outcome") {
      job.outcome = v.as<std::string>();
      if (!is_known_outcome(job.outcome)) {
        throw YamlError{where(source, v, f) +
                        ": expected SUCCESS, FAILED, TIMEDOUT, CANCELED or INTERNAL_ERROR"};
      }
    } else if (key == "output") {
      if (!v.IsMap()) throw YamlError{where(source, v, f) + ": expected a mapping"};
      job.output = yaml_to_json(v).as_object();
    } else if (key == "message") {
      job.message = v.as<std::string>();
    } else if (key == "emit_event") {
      job.emit_event = v.as<bool>();
    } else if (key == "tasks") {
      job.tasks = v.as<int32_t>();
      if (job.tasks < 1 || job.tasks > 1000) {
        throw YamlError{where(source, v, f) + ": expected 1..1000 (the Jobs API's task limit)"};
      }
    } else if (key == "notebook_result") {
      job.notebook_result = v.as<std::string>();
    } else if (key == "task_failures") {
      if (!v.IsMap()) throw YamlError{where(source, v, f) + ": expected {task_key: failures}"};
      for (const auto& failure : v) {
        job.task_failures[failure.first.as<std::string>()] = failure.second.as<int32_t>();
      }
    } else {
      throw YamlError{where(source, kv.first, f) + ": unknown field"};
    }
  }
  return job;
}

}  // namespace

Result<SimulatorOptions> parse_simulator_jobs(const std::string& yaml_text, const std::string& source) {
  try {
    const YAML::Node root = YAML::Load(yaml_text);
    SimulatorOptions options;
    if (!root || root.IsNull()) return options;
    if (!root.IsMap()) throw YamlError{where(source, root, "document") + ": expected a mapping"};
    for (const auto& kv : root) {
      const std::string key = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      if (key == "jobs") {
        if (!v.IsSequence()) throw YamlError{where(source, v, "jobs") + ": expected a list"};
        for (size_t i = 0; i < v.size(); ++i) {
          const std::string field = "jobs[" + std::to_string(i) + "]";
          const YAML::Node item = v[i];
          if (!item.IsMap() || !item["job_id"]) {
            throw YamlError{where(source, item, field) + ": expected a mapping with job_id"};
          }
          const int64_t id = item["job_id"].as<int64_t>();
          if (options.jobs.count(id) != 0) {
            throw YamlError{where(source, item, field) + ": duplicate job_id " + std::to_string(id)};
          }
          options.jobs[id] = parse_job(source, item, field);
        }
      } else if (key == "default_job") {
        options.default_job = parse_job(source, v, "default_job");
      } else if (key == "faults") {
        if (!v.IsMap()) throw YamlError{where(source, v, "faults") + ": expected a mapping"};
        for (const auto& f : v) {
          const std::string fk = f.first.as<std::string>();
          if (fk == "error_rate") {
            options.faults.error_rate = f.second.as<double>();
            if (options.faults.error_rate < 0 || options.faults.error_rate > 1) {
              throw YamlError{where(source, f.second, "faults.error_rate") + ": expected 0..1"};
            }
          } else if (fk == "statuses") {
            options.faults.statuses = f.second.as<std::vector<int>>();
          } else if (fk == "retry_after") {
            if (f.second.IsNull()) {
              options.faults.retry_after.reset();
            } else {
              options.faults.retry_after = duration_field(source, f.second, "faults.retry_after");
            }
          } else if (fk == "seed") {
            options.faults.seed = f.second.as<uint64_t>();
          } else {
            throw YamlError{where(source, f.first, "faults." + fk) + ": unknown field"};
          }
        }
      } else if (key == "latency") {
        parse_latency(source, v, options.pace);
      } else if (key == "limits") {
        if (!v.IsMap()) throw YamlError{where(source, v, "limits") + ": expected a mapping"};
        for (const auto& l : v) {
          const std::string api = l.first.as<std::string>();
          check(source, l.first, "limits." + api,
                parse_simulator_limit(api + "=" + l.second.as<std::string>(), options.pace));
        }
      } else if (key == "transfer_rate") {
        auto rate = parse_simulator_transfer_rate(v.as<std::string>());
        check(source, v, "transfer_rate", rate);
        options.pace.transfer_bytes_per_second = *rate;
      } else if (key == "never_answer") {
        if (!v.IsSequence()) {
          throw YamlError{where(source, v, "never_answer") + ": expected a list of API names"};
        }
        for (const auto& api : v) {
          const std::string name = api.as<std::string>();
          if (!is_simulator_api_name(name)) {
            throw YamlError{where(source, api, "never_answer") + ": unknown API " + name};
          }
          options.pace.never_answer.insert(name);
        }
      } else if (key == "transfer_time") {
        options.pace.transfer_time = duration_field(source, v, "transfer_time");
      } else if (key == "bearer_token") {
        options.bearer_token = v.as<std::string>();
      } else if (key == "port") {
        options.port = v.as<uint16_t>();
      } else if (key == "oauth") {
        if (!v.IsMap()) throw YamlError{where(source, v, "oauth") + ": expected a mapping"};
        if (v["client_id"]) options.oauth_client_id = v["client_id"].as<std::string>();
        if (v["client_secret"]) options.oauth_client_secret = v["client_secret"].as<std::string>();
        if (v["token_ttl"]) options.oauth_token_ttl = duration_field(source, v["token_ttl"], "oauth.token_ttl");
      } else if (key == "identity") {
        // The identity providers (simulator.hpp SimulatorIdentity); their
        // variables are printed at start.
        if (!v.IsMap()) throw YamlError{where(source, v, "identity") + ": expected a mapping"};
        options.identity.enabled = true;
        if (v["token_ttl"]) {
          options.identity.token_ttl = duration_field(source, v["token_ttl"], "identity.token_ttl");
        }
      } else {
        throw YamlError{where(source, kv.first, key) + ": unknown field"};
      }
    }
    return options;
  } catch (const YamlError& e) {
    return Error{ErrorKind::kInvalidInput, "bad_simulator_file", e.message};
  } catch (const YAML::Exception& e) {
    return Error{ErrorKind::kInvalidInput, "bad_simulator_file", source + ": " + e.what()};
  }
}

Result<SimulatorOptions> load_simulator_jobs_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error{ErrorKind::kInvalidInput, "bad_simulator_file", "cannot read " + path};
  std::stringstream text;
  text << in.rdbuf();
  return parse_simulator_jobs(text.str(), path);
}

}  // namespace brickwork

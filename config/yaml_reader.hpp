#pragma once
// How the configuration loader reads YAML: typed scalars (with ${VAR}
// substituted), mappings checked for repeated and unknown keys, YAML to JSON
// for step actions, and errors that name file:line:col, the path of the value
// and what was expected. Internal to the loader (config/*.cpp); callers use
// load_config in config.hpp.
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "daemon/core/result.hpp"
#include "daemon/core/time.hpp"

namespace brickwork::config_detail {

// A string in a step action that holds "{{": checked against the workflow's
// steps after all of them are read.
struct TemplateUse {
  std::string text;
  std::string path;
  YAML::Node node;
};

// Reads the nodes of one file. Every error is kInvalidInput, code "config",
// and its message starts with that file's name.
class YamlReader {
 public:
  explicit YamlReader(std::string file) : file_(std::move(file)) {}

  const std::string& file() const { return file_; }

  // "file:line:col: path: what"; without ":line:col" for a node with no position.
  Error error(const YAML::Node& node, const std::string& path, const std::string& what) const;
  // "file:line:col" of `node`, or the file alone.
  std::string location(const YAML::Node& node) const;
  // "file:line:col: invalid YAML: ..." for a document yaml-cpp cannot parse.
  Error yaml_error(const YAML::Exception& e) const;
  // "file: the configuration is empty".
  Error empty_error() const;

  // What was found where something else was expected. A scalar is described,
  // never quoted: a value misplaced by indentation (`postgres: "postgresql://
  // u:secret@h/db"`) may be a secret, and this message goes to logs.
  static std::string shown(const YAML::Node& node);

  // A scalar, with ${VAR} and ${VAR:-default} substituted (substitute_env).
  Result<std::string> string(const YAML::Node& node, const std::string& path) const;
  // A scalar integer from `min` to `max`.
  Result<int64_t> integer(const YAML::Node& node, const std::string& path, int64_t min,
                          int64_t max) const;
  // A scalar duration: 250ms, 30s, 5m, 2h, 1d.
  Result<Duration> duration(const YAML::Node& node, const std::string& path) const;
  // A scalar size in bytes from `min` to `max`: 1048576, 512KiB, 16MiB, 1GiB.
  Result<int64_t> byte_size(const YAML::Node& node, const std::string& path, int64_t min,
                            int64_t max) const;

  // A mapping whose keys are scalars, each once: yaml-cpp keeps both entries of
  // a repeated key and lookups see only the first, so a repeat would pass
  // silently.
  std::optional<Error> map_node(const YAML::Node& node, const std::string& path) const;
  // Keys of a mapping that are not in `known` are typos: say so.
  std::optional<Error> check_keys(const YAML::Node& map, const std::string& path,
                                  std::initializer_list<const char*> known) const;

  // YAML to JSON for step actions: plain scalars get their YAML 1.2 (core
  // schema) type, quoted ones and `!!str` stay strings; ${VAR} is substituted
  // first, so `job_id: ${JOB_ID}` is a number. Strings holding "{{" are noted
  // in `uses` with their node, to check template paths once all steps are
  // known. Nesting deeper than 64 levels is an error.
  Result<json::value> to_json(const YAML::Node& node, const std::string& path,
                              std::vector<TemplateUse>* uses = nullptr, int depth = 0) const;

 private:
  std::string file_;
};

}  // namespace brickwork::config_detail

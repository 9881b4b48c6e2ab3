#pragma once
// The settings sections of the configuration file: kafka, postgres,
// databricks, callbacks and daemon. Each reads its mapping into the struct
// given, which keeps its defaults for the keys left out, and returns the first
// error (see load_config in config.hpp for the rules). Internal to the loader.
#include <yaml-cpp/yaml.h>

#include <optional>

#include "config/config.hpp"
#include "config/yaml_reader.hpp"
#include "daemon/core/result.hpp"

namespace brickwork::config_detail {

std::optional<Error> load_kafka(const YamlReader& in, const YAML::Node& node, KafkaConfig& kafka);

// `validate` may be empty: then the URL is not checked.
std::optional<Error> load_postgres(const YamlReader& in, const YAML::Node& node,
                                   const ConnectionStringValidator& validate,
                                   PostgresConfig& postgres);

// databases: {NAME: {url}} for postgres steps.
std::optional<Error> load_databases(const YamlReader& in, const YAML::Node& node,
                                    const ConnectionStringValidator& validate,
                                    std::map<std::string, DatabaseConfig>& databases);

// One workspace's settings at `section` ("databricks", or "workspaces.NAME").
std::optional<Error> load_databricks(const YamlReader& in, const YAML::Node& node,
                                     const std::string& section, DatabricksConfig& dbx);

// workspaces: {NAME: {the keys of databricks:}} into config.workspaces; an
// entry named `default` is the default workspace (config.databricks), an
// error when `databricks:` is given too. Sets config.has_default_workspace.
std::optional<Error> load_workspaces(const YamlReader& in, const YAML::Node& node,
                                     bool databricks_given, Config& config);

// callbacks.secret is required, so this reads `root`, the whole document.
std::optional<Error> load_callbacks(const YamlReader& in, const YAML::Node& root,
                                    CallbacksConfig& callbacks);

// files: {allowed_dirs: [absolute directories]}.
std::optional<Error> load_files(const YamlReader& in, const YAML::Node& node, FilesConfig& files);

// retention: {succeeded, failed, canceled: durations, 0 = forever; every; batch_size}.
std::optional<Error> load_retention(const YamlReader& in, const YAML::Node& node,
                                    RetentionConfig& retention);

std::optional<Error> load_daemon(const YamlReader& in, const YAML::Node& node,
                                 DaemonConfig& daemon);

}  // namespace brickwork::config_detail

// The loader's entry points, the top level of the document and workflows_dir;
// the YAML reading, the settings sections and the workflows are in
// yaml_reader.cpp, sections.cpp, workflows_loader.cpp and step_loader.cpp.
#include "config/config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/sections.hpp"
#include "config/workflows_loader.hpp"
#include "config/yaml_reader.hpp"

namespace brickwork {

const StepDefinition* WorkflowDefinition::find_step(std::string_view step_name) const {
  for (const auto* list : {&steps, &on_failure}) {
    for (const auto& step : *list) {
      if (step.name == step_name) return &step;
    }
  }
  return nullptr;
}

bool WorkflowDefinition::is_on_failure_step(std::string_view step_name) const {
  return std::any_of(on_failure.begin(), on_failure.end(),
                     [&](const StepDefinition& s) { return s.name == step_name; });
}

namespace {

bool is_valid_env_name(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

}  // namespace

namespace {

// ${file:PATH} (a file's content) or ${credential:NAME} (the file NAME in
// $CREDENTIALS_DIRECTORY, as systemd's LoadCredential= provides it), without
// one trailing newline. Errors name the file, never its content.
Result<std::string> read_secret_reference(const std::string& body) {
  std::filesystem::path path;
  if (body.rfind("file:", 0) == 0) {
    path = body.substr(5);
    if (path.empty()) {
      return Error{ErrorKind::kInvalidInput, "config", "${file:} needs a path: ${file:/run/secrets/x}"};
    }
  } else {
    const std::string name = body.substr(11);
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
      return Error{ErrorKind::kInvalidInput, "config",
                   "${credential:NAME} needs a credential name (no '/')"};
    }
    const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
    if (dir == nullptr || *dir == '\0') {
      return Error{ErrorKind::kInvalidInput, "config",
                   "${credential:" + name +
                       "} needs $CREDENTIALS_DIRECTORY (systemd sets it with LoadCredential=)"};
    }
    path = std::filesystem::path(dir) / name;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Error{ErrorKind::kInvalidInput, "config", "cannot read " + path.string()};
  }
  std::string content((std::istreambuf_iterator<char>(in)), {});
  if (!content.empty() && content.back() == '\n') content.pop_back();
  if (!content.empty() && content.back() == '\r') content.pop_back();
  return content;
}

}  // namespace

Result<std::string> substitute_env(const std::string& text) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = text.find("${", pos);
    if (start == std::string::npos) break;
    if (start > pos && text[start - 1] == '$') {
      // "$${" is a literal "${".
      out.append(text, pos, start - 1 - pos);
      out += "${";
      pos = start + 2;
      continue;
    }
    out.append(text, pos, start - pos);
    const size_t end = text.find('}', start + 2);
    if (end == std::string::npos) {
      return Error{ErrorKind::kInvalidInput, "config",
                   "unterminated ${ at offset " + std::to_string(start)};
    }
    const std::string body = text.substr(start + 2, end - start - 2);
    if (body.rfind("file:", 0) == 0 || body.rfind("credential:", 0) == 0) {
      auto secret = read_secret_reference(body);
      if (!secret) return secret.error();
      out += *secret;
      pos = end + 1;
      continue;
    }
    const size_t dflt = body.find(":-");
    const std::string name = body.substr(0, dflt);
    if (!is_valid_env_name(name)) {
      // The text is not repeated: it may be part of a secret that holds "${".
      return Error{ErrorKind::kInvalidInput, "config",
                   "the ${ at offset " + std::to_string(start) +
                       " is not a variable reference (expected ${NAME} or ${NAME:-default}; "
                       "$${ is a literal ${)"};
    }
    const char* value = std::getenv(name.c_str());
    if (value != nullptr && (*value != '\0' || dflt == std::string::npos)) {
      out += value;
    } else if (dflt != std::string::npos) {
      out += body.substr(dflt + 2);
    } else {
      return Error{ErrorKind::kInvalidInput, "config",
                   "environment variable " + name + " is not set (use ${" + name +
                       ":-default} for a default)"};
    }
    pos = end + 1;
  }
  out.append(text, pos);
  return out;
}

namespace {

using config_detail::YamlReader;

// Errors of a document, kept up to options.max_errors; each section,
// workflow and step is read on after an error elsewhere.
class ErrorList {
 public:
  explicit ErrorList(size_t max) : max_(max == 0 ? 1 : max) {}
  void add(std::optional<Error> e) {
    if (e) errors_.push_back(std::move(*e));
  }
  std::vector<Error>* sink() { return &errors_; }
  bool empty() const { return errors_.empty(); }
  // The first error alone as it is; several as one message, a line each,
  // at most max_ lines.
  Error combined() const {
    std::vector<std::string> lines;
    for (const Error& e : errors_) {
      for (size_t from = 0;;) {
        const size_t nl = e.message.find('\n', from);
        lines.push_back(e.message.substr(from, nl == std::string::npos ? nl : nl - from));
        if (nl == std::string::npos) break;
        from = nl + 1;
      }
    }
    Error out = errors_.front();
    out.message.clear();
    for (size_t i = 0; i < lines.size() && i < max_; ++i) {
      out.message += (i == 0 ? "" : "\n") + lines[i];
    }
    if (lines.size() > max_) {
      out.message += "\n... and " + std::to_string(lines.size() - max_) +
                     " more error(s) (only the first " + std::to_string(max_) + " are shown)";
    }
    return out;
  }

 private:
  size_t max_;
  std::vector<Error> errors_;
};

// One file holding only `workflows:` (workflows_dir, or check --workflows).
std::optional<Error> load_workflows_only(const std::string& file, const LoadOptions& options,
                                         std::map<std::string, WorkflowDefinition>& workflows,
                                         std::map<std::string, std::string>& defined_at,
                                         ErrorList& errors) {
  const YamlReader sub(file);
  YAML::Node doc;
  try {
    doc = YAML::LoadFile(file);
  } catch (const YAML::Exception& e) {
    return sub.yaml_error(e);
  }
  if (doc.IsNull()) return std::nullopt;
  if (auto e = sub.map_node(doc, "(top level)")) return *e;
  errors.add(sub.check_keys(doc, "", {"workflows"}));
  if (const YAML::Node w = doc["workflows"]) {
    (void)config_detail::load_workflows(sub, options.steps, w, workflows, defined_at, errors.sink());
  }
  return std::nullopt;
}

// The files of workflows_dir (*.yaml, *.yml, in name order), each holding only
// `workflows:`. `defined_at` holds where each workflow came from, across files.
std::optional<Error> load_workflows_dir(const YamlReader& in, const LoadOptions& options,
                                        const YAML::Node& node,
                                        const std::filesystem::path& base_dir,
                                        std::map<std::string, WorkflowDefinition>& workflows,
                                        std::map<std::string, std::string>& defined_at,
                                        ErrorList& errors) {
  auto dir = in.string(node, "workflows_dir");
  if (!dir) return dir.error();
  std::filesystem::path path(*dir);
  if (path.is_relative()) path = base_dir / path;
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec)) {
    return in.error(node, "workflows_dir", "'" + path.string() + "' is not a directory");
  }
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(path, ec)) {
    const auto ext = entry.path().extension();
    if (entry.is_regular_file() && (ext == ".yaml" || ext == ".yml")) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    errors.add(load_workflows_only(file.string(), options, workflows, defined_at, errors));
  }
  return std::nullopt;
}

// The workspace each Lakebase credential names (postgres.lakebase and each
// database's) must be configured.
void check_lakebase_workspaces(const YamlReader& in, const YAML::Node& root, const Config& config,
                               ErrorList& errors) {
  const auto check = [&](const std::optional<LakebaseConfig>& lakebase, const YAML::Node& node,
                         const std::string& path) {
    if (!lakebase) return;
    if (auto problem = workspace_problem(config, lakebase->workspace)) {
      const YAML::Node named = node["workspace"];
      errors.add(in.error(named ? named : node, path + ".workspace", *problem));
    }
  };
  if (root["postgres"]) {
    check(config.postgres.lakebase, root["postgres"]["lakebase"], "postgres.lakebase");
  }
  for (const auto& [name, database] : config.databases) {
    check(database.lakebase, root["databases"][name]["lakebase"],
          "databases." + name + ".lakebase");
  }
}

// The whole document, section by section, in the order the errors are reported.
Result<Config> load_document(const YamlReader& in, const LoadOptions& options,
                             const YAML::Node& root, const std::filesystem::path& base_dir) {
  Config config;
  config.source_path = in.file();
  if (root.IsNull()) return in.empty_error();
  if (auto e = in.map_node(root, "(top level)")) return *e;
  ErrorList errors(options.max_errors);
  errors.add(in.check_keys(root, "",
                           {"kafka", "postgres", "databricks", "workspaces", "callbacks", "daemon",
                            "files", "retention", "databases", "workflows", "workflows_dir"}));
  if (const YAML::Node v = root["kafka"]) {
    errors.add(config_detail::load_kafka(in, v, config.kafka));
  }
  if (const YAML::Node v = root["postgres"]) {
    errors.add(config_detail::load_postgres(in, v, options.validate_postgres_url, config.postgres));
  }
  if (const YAML::Node v = root["databricks"]) {
    errors.add(config_detail::load_databricks(in, v, "databricks", config.databricks));
  }
  if (const YAML::Node v = root["workspaces"]) {
    errors.add(config_detail::load_workspaces(in, v, static_cast<bool>(root["databricks"]), config));
  }
  if (const YAML::Node v = root["databases"]) {
    errors.add(config_detail::load_databases(in, v, options.validate_postgres_url,
                                             config.databases));
  }
  if (options.require_callback_secret) {
    errors.add(config_detail::load_callbacks(in, root, config.callbacks));
  }
  if (const YAML::Node v = root["daemon"]) {
    errors.add(config_detail::load_daemon(in, v, config.daemon));
  }
  if (const YAML::Node v = root["files"]) {
    errors.add(config_detail::load_files(in, v, config.files));
  }
  if (const YAML::Node v = root["retention"]) {
    if (auto e = config_detail::load_retention(in, v, config.retention)) return *e;
  }
  std::map<std::string, std::string> defined_at;
  if (const YAML::Node v = root["workflows"]) {
    (void)config_detail::load_workflows(in, options.steps, v, config.workflows, defined_at,
                                        errors.sink());
  }
  if (const YAML::Node v = root["workflows_dir"]) {
    errors.add(load_workflows_dir(in, options, v, base_dir, config.workflows, defined_at, errors));
  }
  // What steps name elsewhere in the file (databases, ...), now that all is
  // read; a section that had errors would only add errors that follow from them.
  if (errors.empty()) check_lakebase_workspaces(in, root, config, errors);
  if (options.steps != nullptr && errors.empty()) {
    for (const auto& [name, def] : config.workflows) {
      for (const auto* list : {&def.steps, &def.on_failure}) {
        for (const auto& step : *list) {
          if (auto problem = options.steps->check_references(step, config)) {
            errors.add(Error{ErrorKind::kInvalidInput, "config",
                             step.source_location + ": workflows." + name + ", step '" +
                                 step.name + "': " + *problem});
          }
        }
      }
    }
  }
  if (!errors.empty()) return errors.combined();
  return config;
}

Result<Config> load_from_text(const std::string& text, const std::string& source_name,
                              const std::filesystem::path& base_dir, const LoadOptions& options) {
  const YamlReader in(source_name);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return in.yaml_error(e);
  }
  try {
    return load_document(in, options, root, base_dir);
  } catch (const YAML::Exception& e) {
    return in.yaml_error(e);
  }
}

}  // namespace

const DatabricksConfig* find_workspace(const Config& config, std::string_view name) {
  if (name.empty() || name == kDefaultWorkspace) {
    return config.has_default_workspace ? &config.databricks : nullptr;
  }
  auto it = config.workspaces.find(std::string(name));
  return it == config.workspaces.end() ? nullptr : &it->second;
}

std::optional<std::string> workspace_problem(const Config& config, std::string_view name) {
  if (find_workspace(config, name) != nullptr) return std::nullopt;
  std::string configured = config.has_default_workspace ? kDefaultWorkspace : "";
  for (const auto& [named, workspace] : config.workspaces) {
    configured += (configured.empty() ? "" : ", ") + named;
  }
  if (name.empty() || name == kDefaultWorkspace) {
    return "names no workspace, and there is no default workspace (databricks: or "
           "workspaces.default); add workspace: with one of " +
           configured;
  }
  return "unknown workspace '" + std::string(name) + "' (configured: " + configured + ")";
}

Result<Config> load_config(const std::string& path, const LoadOptions& options) {
  std::ifstream in(path);
  if (!in) {
    return Error{ErrorKind::kInvalidInput, "config", path + ": cannot read the configuration file"};
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return load_from_text(buffer.str(), path, std::filesystem::path(path).parent_path(), options);
}

Result<Config> load_config_from_string(const std::string& yaml_text, const std::string& source_name,
                                       const LoadOptions& options) {
  return load_from_text(yaml_text, source_name, std::filesystem::current_path(), options);
}

Result<std::map<std::string, WorkflowDefinition>> load_workflows_file(const std::string& path,
                                                                     const LoadOptions& options) {
  if (!std::ifstream(path)) {
    return Error{ErrorKind::kInvalidInput, "config", path + ": cannot read the workflows file"};
  }
  std::map<std::string, WorkflowDefinition> workflows;
  std::map<std::string, std::string> defined_at;
  ErrorList errors(options.max_errors);
  try {
    errors.add(load_workflows_only(path, options, workflows, defined_at, errors));
  } catch (const YAML::Exception& e) {
    errors.add(config_detail::YamlReader(path).yaml_error(e));
  }
  if (!errors.empty()) return errors.combined();
  return workflows;
}

}  // namespace brickwork

// upload: puts a file into a Unity Catalog volume (Files API).
//
//   upload:
//     path: "/Volumes/main/raw/landing/{{ input.client }}/orders.csv"
//     from_file: "/var/lib/exports/{{ input.client }}.csv"   # streamed from disk, or
//     content: "{{ steps.report.output.csv }}"              # text (an object becomes JSON text)
//     overwrite: false                                      # default: an existing file fails
//
// Output: {"path", "bytes"}. A local file is read in small pieces as it is
// sent, never held whole in memory. With overwrite: false an existing file
// fails the step with code already_exists (not retried).
//
// from_file may name only what the operator allowed: with files.allowed_dirs
// set, the path must resolve (symlinks and ".." followed, when the step runs)
// under one of them; without it, only a literal path of the configuration is
// read. Anything else fails the step with file_not_allowed (not retried).
#include <filesystem>

#include "handlers/steps/action_fields.hpp"
#include "handlers/steps/databricks_run.hpp"

namespace brickwork {
namespace {

// A volume path brickwork will write to: under /Volumes/, no "." or ".."
// segment, no empty segment.
bool is_volume_path(std::string_view path) {
  if (path.rfind("/Volumes/", 0) != 0 || path.back() == '/') return false;
  for (size_t from = 1; from < path.size();) {
    const size_t slash = path.find('/', from);
    const std::string_view segment =
        path.substr(from, (slash == std::string_view::npos ? path.size() : slash) - from);
    if (segment.empty() || segment == "." || segment == "..") return false;
    if (slash == std::string_view::npos) break;
    from = slash + 1;
  }
  return true;
}

bool is_under(const std::filesystem::path& file, const std::filesystem::path& dir) {
  const std::filesystem::path relative = file.lexically_relative(dir);
  return !relative.empty() && *relative.begin() != ".." && relative != ".";
}

Error file_not_allowed(const std::string& why) {
  return Error{ErrorKind::kPermanent, "file_not_allowed", "upload.from_file: " + why};
}

// The file to read for a rendered from_file, resolved as the kernel will
// open it, or why it may not be read.
Result<std::filesystem::path> allowed_file(const std::string& rendered, bool templated,
                                           const std::vector<std::string>& allowed_dirs) {
  if (allowed_dirs.empty()) {
    if (templated) {
      return file_not_allowed("a templated path needs files.allowed_dirs in the configuration");
    }
    return std::filesystem::path(rendered);  // the operator wrote this very path
  }
  std::error_code ec;
  const std::filesystem::path resolved = std::filesystem::weakly_canonical(rendered, ec);
  if (ec) return file_not_allowed("cannot resolve " + rendered);
  for (const auto& dir : allowed_dirs) {
    const std::filesystem::path allowed = std::filesystem::weakly_canonical(dir, ec);
    if (!ec && is_under(resolved, allowed)) return resolved;
  }
  return file_not_allowed(rendered + " resolves to " + resolved.string() +
                          ", outside files.allowed_dirs");
}

// upload's action, checked.
struct UploadAction final : BoundAction {
  json::value path;                      // a volume path, or a template of one
  std::optional<json::value> content;    // text, an object (sent as JSON), or a template
  std::optional<json::value> from_file;  // a local path, or a template of one
  bool from_file_templated = false;      // then files.allowed_dirs decides
  bool overwrite = false;
};

class UploadStep final : public StepType {
 public:
  std::string_view action_key() const override { return "upload"; }
  bool calls_databricks() const override { return true; }
  bool is_transfer() const override { return true; }

  Result<BoundActionPtr> compile(StepDefinition& step) const override {
    const json::object& action = step.action;
    if (auto e = unknown_action_key(action, "upload", {"path", "content", "from_file", "overwrite"})) {
      return compile_error(*e);
    }
    const json::value* path = action.if_contains("path");
    if (path == nullptr || !path->is_string()) return compile_error("upload.path is required (/Volumes/...)");
    if (!holds_template(*path) && !is_volume_path(std::string_view(path->as_string()))) {
      return compile_error("upload.path must be a file under /Volumes/<catalog>/<schema>/<volume>/");
    }
    const json::value* content = action.if_contains("content");
    const json::value* from_file = action.if_contains("from_file");
    if ((content != nullptr) == (from_file != nullptr)) {
      return compile_error("upload needs exactly one of content (text) or from_file (a local path)");
    }
    if (from_file != nullptr && !from_file->is_string()) return compile_error("upload.from_file must be a path");
    auto bound = std::make_shared<UploadAction>();
    if (const json::value* o = action.if_contains("overwrite")) {
      if (!o->is_bool()) return compile_error("upload.overwrite must be true or false");
      bound->overwrite = o->as_bool();
    }
    bound->path = *path;
    if (content != nullptr) bound->content = *content;
    if (from_file != nullptr) {
      bound->from_file = *from_file;
      bound->from_file_templated = holds_template(*from_file);
    }
    return BoundActionPtr(std::move(bound));
  }

  std::optional<std::string> check_references(const StepDefinition& step,
                                              const Config& config) const override {
    const json::value* from_file = step.action.if_contains("from_file");
    if (from_file != nullptr && holds_template(*from_file) && config.files.allowed_dirs.empty()) {
      return "upload.from_file holds a template: list the directories it may read under "
             "files.allowed_dirs (otherwise only a literal path is allowed)";
    }
    return std::nullopt;
  }

  Result<StepOutcome> execute(const StepContext& context, StepServices& services) const override {
    const auto& action = context.action<UploadAction>();
    FileUpload upload;
    auto path = render_value(action.path, context);
    if (!path) return path.error();
    if (!path->is_string() || !is_volume_path(std::string_view(path->as_string()))) {
      return invalid_action("upload.path rendered to something that is not a file under /Volumes/");
    }
    upload.volume_path = std::string(path->as_string());
    upload.overwrite = action.overwrite;
    int64_t bytes = 0;
    if (action.content) {
      auto content = render_value(*action.content, context);
      if (!content) return content.error();
      upload.content = content->is_string() ? std::string(content->as_string())
                                            : json::serialize(*content);
      bytes = static_cast<int64_t>(upload.content->size());
    } else {
      auto file = render_value(*action.from_file, context);
      if (!file) return file.error();
      if (!file->is_string()) return invalid_action("upload.from_file must render to a path");
      auto allowed = allowed_file(std::string(file->as_string()), action.from_file_templated,
                                  services.allowed_file_dirs);
      if (!allowed) return allowed.error();
      upload.local_file = allowed->string();
      std::error_code ec;
      const auto size = std::filesystem::file_size(upload.local_file, ec);
      if (ec || !std::filesystem::is_regular_file(upload.local_file, ec)) {
        return Error{ErrorKind::kPermanent, "file_not_found",
                     "upload.from_file: cannot read " + upload.local_file};
      }
      bytes = static_cast<int64_t>(size);
    }
    Status put = services.databricks->upload_file(upload);
    if (!put && put.error().kind == ErrorKind::kConflict && !upload.overwrite) {
      return Error{ErrorKind::kPermanent, "already_exists",
                   upload.volume_path + " exists and overwrite is false"};
    }
    if (!put) return put.error();
    StepOutcome outcome;
    outcome.output = json::object{{"path", upload.volume_path}, {"bytes", bytes}};
    return outcome;
  }
};

}  // namespace

std::unique_ptr<StepType> make_upload_step() { return std::make_unique<UploadStep>(); }

}  // namespace brickwork

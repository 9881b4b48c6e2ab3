// The simulator's Files API for Unity Catalog volumes (databricks-api.md
// section 4): PUT /api/2.0/fs/files{path}?overwrite=, and HEAD/GET of a put
// file. Only the size and the first 1 MiB of each file are kept.
#include "devstack/simulator_impl.hpp"

namespace brickwork {

http::ServerResponse DatabricksSimulator::Impl::files(
    const http::ServerRequest& req, const std::string& path,
    const std::map<std::string, std::string>& query) {
  using simulator_detail::api_error;
  const std::string volume_path =
      simulator_detail::percent_decode(path.substr(std::string("/api/2.0/fs/files").size()), false);
  if (volume_path.rfind("/Volumes/", 0) != 0) {
    return api_error(400, "INVALID_PARAMETER_VALUE", "path must start with /Volumes/");
  }
  auto existing = stats.files.find(volume_path);
  if (req.method == "PUT") {
    ++stats.file_puts;
    auto o = query.find("overwrite");
    // true or omitted: replace; false: an existing file is a conflict.
    const bool overwrite = o == query.end() || o->second == "true";
    if (o != query.end() && o->second != "true" && o->second != "false") {
      return api_error(400, "INVALID_PARAMETER_VALUE", "overwrite must be true or false");
    }
    if (!overwrite && existing != stats.files.end()) {
      return api_error(409, "ALREADY_EXISTS", "The file being created already exists.");
    }
    stats.files[volume_path] = {static_cast<int64_t>(req.body.size()),
                                req.body.substr(0, std::min<size_t>(req.body.size(), 1u << 20))};
    http::ServerResponse res;
    res.status = 204;
    return res;
  }
  if (req.method == "HEAD" || req.method == "GET") {
    if (existing == stats.files.end()) {
      return api_error(404, "NOT_FOUND", "The file being accessed is not found.");
    }
    http::ServerResponse res;
    res.headers.emplace_back("Content-Type", "application/octet-stream");
    if (req.method == "GET") res.body = existing->second.second;
    return res;
  }
  return api_error(405, "METHOD_NOT_ALLOWED", "use PUT, HEAD or GET");
}

}  // namespace brickwork

#include "static_files.h"

#include <algorithm>
#include <fstream>
#include <map>

#include "http_text.h"

namespace vrm::web {

namespace fs = std::filesystem;
namespace http = boost::beast::http;

const char* contentTypeOf(const fs::path& p) {
  static const std::map<std::string, const char*> kTypes = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".txt", "text/plain; charset=utf-8"}};
  auto it = kTypes.find(p.extension().string());
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

Result<StaticFiles> StaticFiles::open(const std::string& webRoot, std::size_t maxFileBytes) {
  std::error_code fsError;
  fs::path root = fs::canonical(webRoot, fsError);
  if (fsError || !fs::is_directory(root)) {
    return Status::invalid("web root '" + webRoot + "' is not a directory");
  }
  return StaticFiles(std::move(root), maxFileBytes);
}

Response StaticFiles::serve(const std::string& path) const {
  auto notFound = [&] { return errorReply(404, "not-found", "no such file"); };
  fs::path rel;
  for (const auto& part : splitPath(path)) {
    // No "..", no hidden files, no backslashes (they are separators somewhere).
    if (part == "." || part == ".." || part.front() == '.' ||
        part.find('\\') != std::string::npos) {
      return notFound();
    }
    rel /= part;
  }
  if (rel.empty()) return notFound();
  std::error_code ec;
  fs::path full = fs::weakly_canonical(root_ / rel, ec);
  if (ec) return notFound();
  // Symbolic links must not lead outside the root either.
  auto [rootEnd, fullIt] = std::mismatch(root_.begin(), root_.end(), full.begin(), full.end());
  if (rootEnd != root_.end()) return notFound();
  if (!fs::is_regular_file(full, ec)) return notFound();
  auto size = fs::file_size(full, ec);
  if (ec || size > maxFileBytes_) return notFound();
  std::ifstream in(full, std::ios::binary);
  std::string body(size, '\0');
  if (!in.read(body.data(), static_cast<std::streamsize>(size))) {
    return errorReply(500, "internal", "cannot read the file");
  }
  Response res = reply(200, std::move(body), contentTypeOf(full));
  res.set(http::field::cache_control, "no-cache");
  return res;
}

}  // namespace vrm::web

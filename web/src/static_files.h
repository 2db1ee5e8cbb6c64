// The page's static files: GET and HEAD of files under a web root, never outside it (no "..",
// no hidden files, no symbolic link that leads out), up to a size limit.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

#include "responses.h"
#include "vrm/protocol/status.h"

namespace vrm::web {

// "text/html; charset=utf-8" for index.html, ...; application/octet-stream when unknown.
const char* contentTypeOf(const std::filesystem::path& file);

class StaticFiles {
 public:
  // Files under `webRoot`, each up to `maxFileBytes`. Errors: invalid-argument when `webRoot` is
  // not a directory.
  [[nodiscard]] static Result<StaticFiles> open(const std::string& webRoot,
                                                std::size_t maxFileBytes);

  // The file at `path` (decoded, relative to the root): 200 with its content type and
  // "Cache-Control: no-cache" (the page revalidates, so an upgrade shows at once); 404 for
  // anything not a servable regular file; 500 when it cannot be read. Reads the disk on each call.
  Response serve(const std::string& path) const;

 private:
  StaticFiles(std::filesystem::path root, std::size_t maxFileBytes)
      : root_(std::move(root)), maxFileBytes_(maxFileBytes) {}

  std::filesystem::path root_;  // canonical
  std::size_t maxFileBytes_;
};

}  // namespace vrm::web

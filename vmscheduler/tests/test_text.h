// Text helpers of the backends' tests against real guests (qemu, libvirtd): reading a guest's
// console file and counting what it printed.
#pragma once

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace vrm::vmscheduler::testing_text {

// The whole file at `path`; empty when it cannot be read (a console not written yet).
inline std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// How many times `needle` occurs in `text` (overlapping occurrences count).
inline std::size_t countOf(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

}  // namespace vrm::vmscheduler::testing_text

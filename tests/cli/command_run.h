// Test helper: runs a shell command line (popen) and keeps its exit code and what it printed.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace vrm::cli_test {

struct CommandRun {
  int exitCode = -1;  // -1: it could not be started, or was killed by a signal
  std::string out;    // its stdout (and whatever the command line redirects there)
};

inline CommandRun runCommand(const std::string& commandLine) {
  CommandRun r;
  FILE* p = popen(commandLine.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  std::size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace vrm::cli_test

#include "vrm/daemon/service_notifier.h"

#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace vrm::daemon {

ServiceNotifier ServiceNotifier::fromEnvironment() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  const bool active = socket != nullptr && *socket != '\0';
  std::uint64_t usec = 0;
  // > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID (if set) is this process.
  if (sd_watchdog_enabled(0, &usec) <= 0) usec = 0;
  return ServiceNotifier(active, std::chrono::microseconds(active ? usec : 0));
}

Status ServiceNotifier::send(const std::string& state) {
  if (!active_) return Status::ok();
  const int rc = sd_notify(0, state.c_str());
  if (rc < 0) return Status::unavailable("sd_notify: " + std::string(std::strerror(-rc)));
  if (rc == 0) return Status::unavailable("sd_notify: $NOTIFY_SOCKET is not usable");
  return Status::ok();
}

// A STATUS= value is one line: a newline would start another assignment.
static std::string statusLine(const std::string& status) {
  std::string line = status;
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return "STATUS=" + line;
}

Status ServiceNotifier::ready(const std::string& status) {
  return send("READY=1\n" + statusLine(status));
}

Status ServiceNotifier::status(const std::string& status) { return send(statusLine(status)); }

Status ServiceNotifier::reloading(const std::string& status) {
  return send("RELOADING=1\n" + statusLine(status));
}

Status ServiceNotifier::stopping(const std::string& status) {
  return send("STOPPING=1\n" + statusLine(status));
}

Result<bool> ServiceNotifier::keepAlive(SteadyTime now) {
  if (!active_ || watchdogInterval_.count() == 0) return false;
  if (lastKeepAlive_ && now - *lastKeepAlive_ < watchdogInterval_ / 2) return false;
  if (Status s = send("WATCHDOG=1"); !s) return s;
  lastKeepAlive_ = now;
  return true;
}

bool stderrIsJournal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr) return false;
  struct stat st {};
  if (fstat(STDERR_FILENO, &st) != 0) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) return false;
  return dev == static_cast<unsigned long long>(st.st_dev) &&
         ino == static_cast<unsigned long long>(st.st_ino);
}

}  // namespace vrm::daemon

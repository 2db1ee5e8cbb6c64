// Tells the service manager how a daemon is doing: systemd's notify protocol (sd_notify(3)) for
// units of Type=notify, with WatchdogSec= keep-alives.
//
// Contract:
//  * The socket and the watchdog come from the environment systemd sets ($NOTIFY_SOCKET,
//    $WATCHDOG_USEC and $WATCHDOG_PID), read once by fromEnvironment(). Without $NOTIFY_SOCKET
//    (started by hand, by a test, by another supervisor) the notifier is inactive: every call
//    sends nothing and returns ok, so the daemons call it unconditionally.
//  * ready() is called once the daemon serves (vrmd: store recovered, sockets bound; vmschedd:
//    registered with vrmd). Its status text is also the place to name what was bound, so an
//    OS-chosen port (--http 127.0.0.1:0) is discoverable: `systemctl status` shows it, and a
//    test reading the socket parses it.
//  * keepAlive(now) is called from the event loop on every iteration; it sends WATCHDOG=1 when
//    half the watchdog interval has passed since the last one (systemd's advice), so a loop that
//    stops turning gets the unit restarted. `now` is passed in (steady time, not the daemon's
//    possibly scaled clock): tests drive it without sleeping.
//  * Failures to send (a socket that went away) are returned; the daemons log them and go on,
//    as systemd itself treats the protocol as advisory.
// Thread safety: none; one notifier per daemon, used from its event-loop thread.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "vrm/protocol/status.h"

namespace vrm::daemon {

class ServiceNotifier {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;

  // Reads $NOTIFY_SOCKET and the watchdog settings (ignored unless $WATCHDOG_PID is this
  // process). Leaves the environment as it is: a daemon's children are not daemons of the unit.
  static ServiceNotifier fromEnvironment();
  // A notifier that never sends (for code paths that want one regardless).
  static ServiceNotifier inactive() { return ServiceNotifier(false, std::chrono::microseconds(0)); }

  // Whether a service manager listens ($NOTIFY_SOCKET was set).
  bool active() const { return active_; }
  // The watchdog interval systemd enforces (WatchdogSec=); 0 when there is none.
  std::chrono::microseconds watchdogInterval() const { return watchdogInterval_; }

  // READY=1 and STATUS=status. After a reload, tells systemd the reload is over.
  Status ready(const std::string& status);
  // STATUS=status: what the daemon is doing now (one line).
  Status status(const std::string& status);
  // RELOADING=1 and STATUS=status: a reload (SIGHUP) began; ready() ends it.
  Status reloading(const std::string& status);
  // STOPPING=1 and STATUS=status: shutdown began.
  Status stopping(const std::string& status);
  // WATCHDOG=1 when the watchdog is on and half its interval has passed since the last one (or
  // none was sent yet). Returns whether it sent, or why sending failed.
  Result<bool> keepAlive(SteadyTime now);

 private:
  ServiceNotifier(bool active, std::chrono::microseconds watchdogInterval)
      : active_(active), watchdogInterval_(watchdogInterval) {}
  Status send(const std::string& state);

  bool active_;
  std::chrono::microseconds watchdogInterval_;
  std::optional<SteadyTime> lastKeepAlive_;
};

// Whether stderr is connected to systemd's journal ($JOURNAL_STREAM names stderr's device and
// inode). The journal stamps every line itself: daemons then log without their own timestamps.
bool stderrIsJournal();

}  // namespace vrm::daemon

// What vrmd knows of its agents: their hosts, the VMs on each, and whether each is alive
// (registration, heartbeats, lost connections). One of the units of vrmd's core
// (docs/architecture.md); the Manager owns one and applies what it returns.
//
// Contract:
//  * Every change returns a HostChange saying what happened to the host; the Inventory never
//    calls the Manager (or anything else) back. The caller applies it: rebuilds the host's
//    bookings, sends the host's unanswered commands again, drops stray incoming VMs, re-plans
//    around a lost host. A HostChange that says nothing happened may be ignored.
//  * Two sources write the VM lists: the agents' own reports (registration, heartbeats), which
//    replace a host's list, and vrmd's own actions (a migration committed, a clone answered, a
//    VM destroyed), applied at once so that the next admission sees them before the next
//    heartbeat confirms them.
//  * Hosts are only ever added. hosts() is a map whose nodes stay where they are for the
//    inventory's lifetime, so pointers into it stay valid (the planner index keeps some).
//  * Time is the caller's clock, in TimeNs (ns); the Inventory reads no clock itself.
//  * Not thread-safe: one event loop (vrmd's) owns it.
#pragma once

#include <functional>
#include <map>
#include <queue>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "vrm/protocol/reservation.h"
#include "vrm/protocol/status.h"
#include "vrm/protocol/time.h"

namespace vrm::manager {

// What a call did to one host. All false: nothing the caller must act on.
struct HostChange {
  std::string host;
  // What is derived from the host's record and VMs (its bookings, the admission caches) must
  // be derived again: a registration, an inventory that differs from vrmd's view, or one of
  // vrmd's own actions on its VMs. Those report it even when the VM already was as asked: each
  // goes with a change of a reservation that the host's bookings depend on (a move committed, a
  // clone answered), which the caller saves later. A send that failed reports it with wentDown.
  bool bookingsStale = false;
  // The VMs come from the agent's own report, not from vrmd's actions: an incoming VM in it
  // that no move brings in is a leftover to drop.
  bool reported = false;
  // Reachable -> unreachable (a heartbeat timeout, a lost connection, a destination that
  // cannot be reached): promises that depend on the host may need another plan.
  bool wentDown = false;
  // The agent speaks again, after registering, a silence or a lost connection: the commands
  // it has not answered may have been lost and are sent again.
  bool cameBack = false;
  // Guests the agent reports lost (LostVm) that it had not reported before, oldest first. An
  // agent repeats every guest it lost since it started in each report; a guest counts as
  // reported by (VM id, lostAtNs, reason). After a vrmd restart each is new once more.
  std::vector<LostVm> lost;
};

class Inventory {
 public:
  // An agent silent for longer than `heartbeatTimeoutNs` is unreachable.
  explicit Inventory(TimeNs heartbeatTimeoutNs) : heartbeatTimeoutNs_(heartbeatTimeoutNs) {}

  // --- what agents say ---
  // An agent (re-)registers at `nowNs` with its record and VMs: they replace what was known,
  // and the host is reachable and connected. invalid-argument for an empty name or a host
  // without capacity (nothing changes then).
  // `lost`: the guests the agent reports lost (HostChange::lost).
  Result<HostChange> registerHost(const HostRecord& host, const std::vector<VmRecord>& vms,
                                  TimeNs nowNs, const std::vector<LostVm>& lost = {});
  // A heartbeat at `nowNs` with the agent's VMs. not-found when the host has not registered
  // since this inventory was built (the agent must register again). Reports VMs only when they
  // differ from vrmd's view (most heartbeats repeat it).
  Result<HostChange> heartbeat(const std::string& host, const std::vector<VmRecord>& vms,
                               TimeNs nowNs, const std::vector<LostVm>& lost = {});
  // Hosts whose last heartbeat is older than the timeout at `readUntilNs` (the time up to
  // which the caller has read every agent frame; see Manager::agentFramesReadUntil) become
  // unreachable; `nowNs` is for the log. One change per host that went down, oldest first.
  std::vector<HostChange> expireSilent(TimeNs nowNs, TimeNs readUntilNs);
  // When expireSilent() next may have something to do (an early answer, never a late one);
  // kTimeInfinity if no host is heartbeating.
  TimeNs nextSilenceCheckNs() const;

  // --- what vrmd saw of the connection ---
  // A command to the host could not be delivered: nothing is sent there, and nothing settled
  // from what vrmd last heard of it, until the agent speaks again. `why` is for the log.
  // `unreachable`: the host is marked unreachable too (the agent is gone, not just one send);
  // if it was reachable, the change says wentDown and bookingsStale.
  HostChange sendFailed(const std::string& host, const std::string& why, bool unreachable);
  // The host cannot receive (its agent refused an incoming VM as unavailable): unreachable
  // until its agent heartbeats again. Unknown hosts are ignored. Says wentDown only.
  HostChange markUnreachable(const std::string& host);

  // --- vrmd's own actions, ahead of the agents' next reports ---
  // Each reports bookingsStale (see HostChange).
  // VM `vmId` left `from` for `to`, where it now runs (replacing its incoming placeholder).
  // Changes of `from` and `to`, in that order; none when `from` does not hold the VM.
  std::vector<HostChange> moveVm(const std::string& vmId, const std::string& from,
                                 const std::string& to);
  // VM `vmId` on `host` is gone.
  HostChange dropVm(const std::string& host, const std::string& vmId);
  // VM `vmId` on `host` is in `state` now (parked, running, ...). `clearStateFile`: its
  // saved state (an unparked VM's) is no longer there.
  HostChange setVmState(const std::string& host, const std::string& vmId, VmState state,
                        bool clearStateFile = false);
  // A VM vrmd made (a clone) now runs on `vm.host`, as `vm` says. A host that already lists it
  // (a heartbeat while it was being made) gets its state and handle (address, account,
  // sshPort, addressSource) from `vm`, its measured figures kept.
  HostChange addVm(const VmRecord& vm);

  // --- queries ---
  // Every host ever registered, by name (see the contract on stable nodes).
  const std::map<std::string, HostRecord>& hosts() const { return hosts_; }
  // Null if `host` never registered.
  const HostRecord* host(const std::string& host) const;
  // The VMs of `host` as vrmd sees them, each with its host set; empty if none are known.
  const std::vector<VmRecord>& vmsOn(const std::string& host) const;
  // Null if `host` does not list `vmId`. Valid until the next change of `host`.
  const VmRecord* findVm(const std::string& host, const std::string& vmId) const;
  // Every VM, by host name then in the order its host lists them.
  std::vector<VmRecord> allVms() const;
  // The host's agent registered since this inventory was built (after a vrmd restart, hosts
  // are known again only once they register).
  bool registeredSinceStart(const std::string& host) const {
    return registeredSinceStart_.count(host) > 0;
  }
  // The host's agent registered since the start, is heartbeating, and took the last send: a
  // command sent to it now is expected to arrive.
  bool ready(const std::string& host) const;

 private:
  // Replaces the host's VM list by `vms`, each with its host set.
  void replaceVms(const std::string& host, const std::vector<VmRecord>& vms);
  // The guests of `reported` not in the host's last report (HostChange::lost); remembers
  // `reported` as that report. (A guest the agent no longer repeats never comes back, so only
  // the last report is kept.)
  std::vector<LostVm> newlyLost(const std::string& host, const std::vector<LostVm>& reported);

  TimeNs heartbeatTimeoutNs_;
  std::map<std::string, HostRecord> hosts_;
  std::map<std::string, std::vector<VmRecord>> vmsByHost_;
  std::set<std::string> registeredSinceStart_;
  // Hosts a command could not be sent to, until their agent speaks again.
  std::set<std::string> disconnected_;
  // Per host, the lost guests its agent reported last, as (VM id, lostAtNs, reason).
  std::map<std::string, std::set<std::tuple<std::string, TimeNs, std::string>>> lostReported_;
  // (heartbeat time, host) of every registration and heartbeat, oldest first; an entry older
  // than its host's lastHeartbeatNs is stale and skipped.
  std::priority_queue<std::pair<TimeNs, std::string>, std::vector<std::pair<TimeNs, std::string>>,
                      std::greater<>>
      heartbeats_;
};

}  // namespace vrm::manager

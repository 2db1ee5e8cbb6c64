#include "vrm/manager/admission.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "vrm/protocol/units.h"

namespace vrm::manager {
namespace {

// A plan's moves become the reservation's, with new ids (a park is a kPark move).
void adoptPlan(Reservation& r, VacatePlan plan) {
  std::vector<PlannedMove> moves = std::move(plan.moves);
  r.plan = std::move(static_cast<PlanSummary&>(plan));
  r.moves.clear();
  for (auto& m : moves) {
    const MovePurpose purpose =
        m.mode == MoveMode::kPark ? MovePurpose::kPark : MovePurpose::kVacate;
    r.addMove(purpose, std::move(m));
  }
}

}  // namespace

Admission::Admission(const planner::VacatePlanner& planner,
                     const std::map<std::string, HostRecord>& hosts,
                     const std::map<std::string, Reservation>& reservations,
                     BookingProjection& projection, AdmissionIndex& index,
                     const std::vector<double>& vacateErrors, AdmissionOptions options)
    : planner_(planner),
      hosts_(hosts),
      reservations_(reservations),
      projection_(projection),
      index_(index),
      vacateErrors_(vacateErrors),
      options_(options) {}

AdmissionDecision Admission::decide(Reservation candidate, const TemplateSpec& tmpl, TimeNs nowNs) {
  return candidate.request.kind == ReservationKind::kShared
             ? decideShared(std::move(candidate), tmpl, nowNs)
             : decideDedicated(std::move(candidate), tmpl, nowNs);
}

BookingCheck Admission::check(const Reservation& r, const TemplateSpec& tmpl) {
  // The candidate is new (not among the reservations): the projection holds it aside.
  if (r.request.kind == ReservationKind::kShared && r.moves.empty()) {
    if (auto checked = projection_.checkNewShared(r, tmpl)) return *checked;
  }
  if (options_.path == AdmissionPath::kIndexed && r.request.kind == ReservationKind::kDedicated) {
    return projection_.checkNewDedicated(r);
  }
  return projection_.check(r, /*keep=*/false);
}

AdmissionDecision Admission::decideDedicated(Reservation r, const TemplateSpec& tmpl, TimeNs now) {
  const CapacityCalendar& calendar = projection_.bookings();
  const auto& req = r.request;
  auto reject = [&](const std::string& why, TimeNs earliest = 0) {
    r.plan = {};
    r.moves.clear();
    r.clones.clear();
    r.hosts.clear();
    return AdmissionDecision{false, std::move(r), why, earliest};
  };
  const std::size_t wanted = req.hostNames.empty() ? req.hostCount : req.hostNames.size();
  // The clones must fit an emptied host.
  const std::uint64_t cloneMem = tmpl.memoryBytes * req.vmsPerHost;
  const std::uint32_t cloneCores = tmpl.cpuCores * req.vmsPerHost;

  // The hosts come from the index kept across admissions; the request lists no hosts.
  const planner::IndexedCluster* cluster =
      options_.path == AdmissionPath::kIndexed
          ? index_.cluster(r, reservations_.count(r.id) > 0, now, now + options_.planningLatencyNs)
          : nullptr;
  planner::VacateRequest base = cluster ? planner::VacateRequest{} : index_.snapshot(r, now);
  base.reservationStartNs = req.startNs;
  base.reservationEndNs = req.endNs;
  base.cloneTimeNs = tmpl.cloneTimeNs;
  base.marginNs = options_.marginNs;
  base.nowNs = now + options_.planningLatencyNs;
  base.cloneCpuCoresPerHost = cloneCores;
  base.cloneMemoryBytesPerHost = cloneMem;
  base.objective = req.objective == Objective::kDegradation ? planner::VacateObjective::kDegradation
                                                            : planner::VacateObjective::kMakespan;
  base.maxVmTimeNs = req.maxVmTimeNs;
  // One error per completed vacate, not per move (keepVacateError; issue 18).
  base.relativeErrorSamples = vacateErrors_;
  base.quantile = options_.quantile;
  if (req.quantile > 0) base.quantile = req.quantile;  // the request's own (issue 20)
  base.cloneTemplate = req.templateName;               // a planner may know its clones' real time
  // First without suspensions: a host whose VMs all find a destination is preferred; hosts
  // that need some of their VMs parked for the window are tried after them (below).
  base.suspendPolicy = planner::SuspendPolicy::kNever;

  // A copy: the final check below rebuilds hosts, which changes the receiving hosts while
  // candidates are still being tried.
  const std::set<std::string> incoming = projection_.receiving();
  // A host receiving another vacate's VMs cannot be dedicated while they arrive, nor after (this
  // plan would not move them): only when that vacate starts after this window ends. Its start,
  // not the moves' planned starts: a batch starts as soon as the one before is done, so any of
  // its VMs may arrive from the vacate's start on. (Refused outright before issue 18: the week's
  // next candidate after a refused cheapest host was often the destination of a vacate hours
  // after the window.)
  auto receivesBefore = [&](const std::string& host, TimeNs until) {
    if (!incoming.count(host)) return false;
    bool seen = false;
    for (const auto& id : projection_.reservationsTouching(host)) {
      auto it = reservations_.find(id);
      if (it == reservations_.end()) continue;
      for (const auto& move : it->second.moves) {
        const PlannedMove& m = move.planned;
        if (!move.isVacate() || m.toHost != host || m.mode == MoveMode::kPark) continue;
        if (move.progress.state == MoveState::kRunning) return true;
        if (move.progress.state != MoveState::kPlanned || isTerminal(it->second.state)) continue;
        seen = true;
        if (std::max(it->second.plan.latestSafeStartNs, now) < until) return true;
      }
    }
    return !seen;  // receiving for a reason not seen here: refused, as before
  };
  // Shared clones booked on a host during the window keep it from being dedicated.
  auto sharedClonesOn = [&](const std::string& host, TimeNs from) -> std::string {
    for (const auto& id : projection_.reservationsTouching(host)) {
      auto it = reservations_.find(id);
      if (it == reservations_.end() || isTerminal(it->second.state) ||
          it->second.request.kind != ReservationKind::kShared) {
        continue;
      }
      if (projection_.prepareAt(it->second) < req.endNs && from < it->second.request.endNs) {
        for (const auto& c : it->second.clones) {
          if (c.host == host) return id;
        }
      }
    }
    return "";
  };
  auto consider = [&](const std::string& name) -> std::string {
    const HostRecord& h = hosts_.at(name);
    if (!h.reachable) return "host " + name + " is unreachable";
    if (auto owner = calendar.exclusiveOwner(name, req.startNs, req.endNs, r.id)) {
      return "host " + name + " conflicts with reservation " + *owner;
    }
    if (auto owner = sharedClonesOn(name, req.startNs); !owner.empty()) {
      return "host " + name + " conflicts with reservation " + owner;
    }
    if (receivesBefore(name, req.endNs)) {
      return "host " + name + " is receiving VMs of another vacate";
    }
    if (h.memoryBytes < cloneMem || h.cpuCores < cloneCores) {
      return "host " + name + " is too small for " + std::to_string(req.vmsPerHost) + " x " +
             tmpl.name;
    }
    return "";
  };
  // Candidates are tried cheapest vacate first (fewest bytes to move, then by name), each
  // checked when its turn comes: index_.byVacateBytes() keeps every host in that order (the views
  // were just refreshed), since a few candidates usually suffice.
  std::size_t nextNamed = 0;
  auto nextRanked = index_.byVacateBytes().begin();
  if (!req.hostNames.empty()) {
    for (const auto& name : req.hostNames) {
      if (std::string why = consider(name); !why.empty()) return reject(why);
    }
  }
  // The next candidate in that order; empty when none is left.
  auto nextCandidate = [&]() -> std::string {
    if (!req.hostNames.empty()) {
      return nextNamed == req.hostNames.size() ? "" : req.hostNames[nextNamed++];
    }
    while (nextRanked != index_.byVacateBytes().end()) {
      const std::string& name = (nextRanked++)->second;
      // consider() would refuse a receiving host too, after costlier checks.
      if (receivesBefore(name, req.endNs)) continue;
      if (consider(name).empty()) return name;
    }
    return "";
  };

  std::vector<std::string> chosen;
  Result<VacatePlan> plan = Status::rejected("no candidate host");
  std::string lastFailure;
  // Candidates some VM of which has no destination: tried again, parking those VMs (planner
  // SuspendPolicy::kWhenNoRoom, only VMs that allow suspension), once the others are used up.
  std::vector<std::string> needParking;
  bool parkingPass = false;
  auto nextOrParked = [&]() -> std::string {
    if (!parkingPass) {
      std::string c = nextCandidate();
      if (!c.empty()) return c;
      if (needParking.empty()) return "";
      parkingPass = true;
      base.suspendPolicy = planner::SuspendPolicy::kWhenNoRoom;
      std::reverse(needParking.begin(), needParking.end());  // popped from the back, in order
    }
    if (needParking.empty()) return "";
    std::string c = std::move(needParking.back());
    needParking.pop_back();
    return c;
  };
  // The final check (check()) books the whole request; when it fails on a host of the
  // set, that host gives way to the next candidate (issue 18: a booking whose displaced VMs go
  // home was refused outright when the cheapest host could not take them back after its window,
  // though the next host could). Named hosts have no next candidate.
  const MoveId firstMoveId = r.nextMoveId;
  for (;;) {
    for (std::string c = nextOrParked(); !c.empty(); c = nextOrParked()) {
      // Only the VMs of the hosts being vacated matter to the planner (the others are in the
      // hosts' free capacity); listing just those keeps each trial small.
      base.hostsToVacate = chosen;
      base.hostsToVacate.push_back(c);
      base.vms = index_.vmsToVacate(base.hostsToVacate);
      auto p = cluster ? planner_.plan(*cluster, base) : planner_.plan(base);
      if (p) {
        // The vacate window starts before the reservation: the host must be free then too.
        std::optional<std::string> owner =
            calendar.exclusiveOwner(c, p->latestSafeStartNs, req.endNs, r.id);
        if (!owner) {
          if (auto shared = sharedClonesOn(c, p->latestSafeStartNs); !shared.empty())
            owner = shared;
        }
        if (owner) {
          lastFailure = "host " + c + " conflicts with reservation " + *owner;
          if (!req.hostNames.empty()) break;
          continue;
        }
        chosen.push_back(c);
        plan = std::move(p);
        if (chosen.size() == wanted) break;
      } else {
        lastFailure = p.status().message();
        if (!parkingPass && p.status().code() == StatusCode::kRejected) {
          needParking.push_back(c);
          continue;  // named hosts too: the other named hosts may still be planned without parking
        }
        if (!req.hostNames.empty()) break;
      }
    }
    // The first host (by name) that could not be a candidate, for the message.
    std::string firstReason;
    if (chosen.size() < wanted && lastFailure.empty() && req.hostNames.empty()) {
      for (const auto& [name, h] : hosts_) {
        firstReason = consider(name);
        if (!firstReason.empty()) break;
      }
    }
    if (chosen.size() < wanted) {
      std::string why = "not enough capacity: " + std::to_string(chosen.size()) + " of " +
                        std::to_string(wanted) + " hosts can be vacated";
      if (!lastFailure.empty()) {
        why += " (" + lastFailure + ")";
      } else if (!firstReason.empty()) {
        why += " (" + firstReason + ")";
      }
      return reject(why);
    }
    adoptPlan(r, std::move(*plan));
    r.hosts = chosen;
    if (r.plan.latestSafeStartNs < now + options_.planningLatencyNs) {
      // Everything shifts with the start, so this start would be just in time.
      TimeNs earliest = req.startNs + (now + options_.planningLatencyNs - r.plan.latestSafeStartNs);
      // The planned makespan is the quantile one (never below the lower bound), which is what the
      // latest safe start subtracts: say both, or the sum does not add up for the reader.
      std::string planned;
      if (r.plan.makespanQuantileNs > r.plan.makespanNs) {
        planned = " (planned as " + formatDuration(r.plan.makespanQuantileNs) + ": at the " +
                  std::to_string(static_cast<int>(r.plan.quantile * 100 + 0.5)) +
                  " % quantile of the prediction error, never below the " +
                  formatDuration(r.plan.makespanLowerBoundNs) + " lower bound)";
      }
      return reject("vacate cannot finish by the start: moving " + std::to_string(r.moves.size()) +
                        " VMs takes " + formatDuration(r.plan.makespanNs) + planned + ", cloning " +
                        formatDuration(r.plan.cloneTimeNs) + ", margin " +
                        formatDuration(r.plan.marginNs) + "; latest safe start " +
                        formatTime(r.plan.latestSafeStartNs) + " has passed",
                    earliest);
    }
    std::uint32_t k = 0;
    for (const auto& host : r.hosts) {
      for (std::uint32_t i = 0; i < req.vmsPerHost; ++i) {
        ClonePlacement c;
        c.vmId = r.id + "-" + tmpl.name + "-" + std::to_string(++k);
        c.host = host;
        r.clones.push_back(std::move(c));
      }
    }
    // Exact check: with this reservation booked, no host it touches is overbooked at any instant.
    const BookingCheck checked = check(r, tmpl);
    if (checked.ok()) break;
    const std::string& violation = checked.violation;
    if (!req.hostNames.empty()) return reject("not enough capacity: " + violation);
    // The host the check names, if it is one of the set (the others' bookings only follow from
    // the set's plan), else the last one chosen.
    auto refused = std::find(chosen.begin(), chosen.end(), checked.host);
    if (refused == chosen.end()) refused = std::prev(chosen.end());
    spdlog::debug("{}: final check refused host {} ({}); trying the next candidate", r.id, *refused,
                  violation);
    chosen.erase(refused);
    lastFailure = violation;
    plan = Status::rejected("no candidate host");
    r.plan = {};
    r.moves.clear();
    r.clones.clear();
    r.hosts.clear();
    r.nextMoveId = firstMoveId;  // the refused plan's moves were never given out
  }
  std::string hostsText;
  for (const auto& h : r.hosts) hostsText += (hostsText.empty() ? "" : ", ") + h;
  std::string message = "admitted on " + hostsText + "; " + std::to_string(r.moves.size()) +
                        " VMs to move (" + r.plan.strategy + ", predicted " +
                        formatDuration(r.plan.makespanNs) + "); vacate starts at " +
                        formatTime(r.plan.latestSafeStartNs);
  return AdmissionDecision{true, std::move(r), std::move(message), 0};
}

AdmissionDecision Admission::decideShared(Reservation r, const TemplateSpec& tmpl, TimeNs now) {
  const CapacityCalendar& calendar = projection_.bookings();
  const auto& req = r.request;
  const TimeNs begin = req.startNs - tmpl.cloneTimeNs - options_.marginNs;
  if (begin < now + options_.planningLatencyNs) {
    std::string why = "too late to clone: cloning takes " + formatDuration(tmpl.cloneTimeNs) +
                      " plus a margin of " + formatDuration(options_.marginNs);
    const TimeNs earliest = now + options_.planningLatencyNs + tmpl.cloneTimeNs + options_.marginNs;
    return AdmissionDecision{false, std::move(r), std::move(why), earliest};
  }
  const auto& incoming = projection_.receiving();  // brings the calendar up to date
  // Whatever that refresh rebuilt, the index of hosts with room must know before it is asked.
  index_.bookingsChanged(projection_.takeChanges());
  const auto mem = static_cast<std::int64_t>(tmpl.memoryBytes);
  std::uint32_t placed = 0;
  // First fit in host-name order: as many clones on a host as its free capacity over the
  // window holds, asked exactly of the calendar.
  auto place = [&](const std::string& name, const HostRecord& h) {
    if (!h.reachable || incoming.count(name) ||
        calendar.exclusiveOwner(name, begin, req.endNs, r.id)) {
      return;
    }
    Usage free = calendar.free(name, begin, req.endNs);
    while (placed < req.vmCount && free.memoryBytes >= mem && free.cpuCores >= tmpl.cpuCores) {
      free.memoryBytes -= mem;
      free.cpuCores -= tmpl.cpuCores;
      ClonePlacement c;
      c.vmId = r.id + "-" + tmpl.name + "-" + std::to_string(++placed);
      c.host = name;
      r.clones.push_back(std::move(c));
      if (std::find(r.hosts.begin(), r.hosts.end(), name) == r.hosts.end()) {
        r.hosts.push_back(name);
      }
    }
  };
  if (options_.path == AdmissionPath::kIndexed) {
    // Only the hosts that may have room for one clone over the window, still in name order:
    // those it leaves out would take none (HostRoomIndex's contract), so the places are the
    // walk's below.
    auto candidates = index_.hostsWithRoom().candidates(begin, req.endNs, mem, tmpl.cpuCores, now);
    for (const HostRecord* h = candidates.next(); h && placed < req.vmCount;
         h = candidates.next()) {
      place(h->name, *h);
    }
  } else {
    for (const auto& [name, h] : hosts_) {
      if (placed == req.vmCount) break;
      place(name, h);
    }
  }
  auto reject = [&](const std::string& why) {
    r.clones.clear();
    r.hosts.clear();
    return AdmissionDecision{false, std::move(r), why, 0};
  };
  if (placed < req.vmCount) {
    return reject("not enough capacity: room for " + std::to_string(placed) + " of " +
                  std::to_string(req.vmCount) + " x " + tmpl.name);
  }
  r.plan.cloneTimeNs = tmpl.cloneTimeNs;
  r.plan.marginNs = options_.marginNs;
  r.plan.latestSafeStartNs = begin;
  r.plan.strategy = "none";
  if (const BookingCheck checked = check(r, tmpl); !checked.ok()) {
    return reject("not enough capacity: " + checked.violation);
  }
  std::string message = "admitted: " + std::to_string(placed) + " x " + tmpl.name +
                        "; cloning starts at " + formatTime(begin);
  return AdmissionDecision{true, std::move(r), std::move(message), 0};
}

}  // namespace vrm::manager

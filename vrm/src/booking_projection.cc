#include "vrm/manager/booking_projection.h"

#include <algorithm>
#include <memory>

#include "vrm/manager/command_tracker.h"
#include "vrm/manager/inventory.h"
#include "vrm/protocol/units.h"

namespace vrm::manager {
namespace {

// Hosts already overbooked before a reservation is tried (agents reported more than vrmd knew,
// an ended reservation's leftovers), with their bookings then: the reservation may not make
// that overbooking worse (CapacityCalendar::worseThan).
using AlreadyOver = std::map<std::string, std::shared_ptr<const CapacityCalendar::Bookings>>;

const std::set<std::string> kNoReservations;

// What vacate move m books on each NIC it goes through, over its window [start, end) (end >
// start): its average rate, but no more than the share the plan gave it (a move that speeds up
// once others sharing its NIC have finished averages above its share, and averages of
// overlapping moves could add up to more than a NIC the plan never exceeds), nor than the cap
// of a re-plan that started moves alongside it (so that they get their planned shares).
std::int64_t nicRate(const PlannedMove& m, TimeNs start, TimeNs end) {
  double rate = static_cast<double>(m.transferredBytes) / nsToSeconds(end - start);
  if (m.networkLimitBytesPerSec > 0) rate = std::min(rate, m.networkLimitBytesPerSec);
  if (m.replanCapBytesPerSec > 0) rate = std::min(rate, m.replanCapBytesPerSec);
  return static_cast<std::int64_t>(rate);
}

}  // namespace

std::set<std::string> hostsTouchedBy(const Reservation& r) {
  std::set<std::string> hosts(r.hosts.begin(), r.hosts.end());
  for (const auto& m : r.moves) {
    if (!m.isVacate()) continue;  // a teardown move goes between the same hosts
    hosts.insert(m.planned.fromHost);
    hosts.insert(m.planned.toHost);
  }
  for (const auto& c : r.clones) hosts.insert(c.host);
  return hosts;
}

bool stillActing(const Reservation& r) {
  for (const auto& m : r.moves) {
    if (m.progress.state == MoveState::kRunning) return true;
  }
  for (const auto& c : r.clones) {
    if (c.state == CloneState::kCloning) return true;
  }
  return false;
}

BookingProjection::BookingProjection(const Clock& clock, const Inventory& inventory,
                                     const CommandTracker& commands,
                                     const std::map<std::string, Reservation>& reservations,
                                     const std::vector<TemplateSpec>& templates, TimeNs marginNs)
    : clock_(clock),
      inventory_(inventory),
      commands_(commands),
      reservations_(reservations),
      templates_(templates),
      marginNs_(marginNs) {}

const TemplateSpec* BookingProjection::findTemplate(const std::string& name) const {
  for (const auto& t : templates_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const Reservation* BookingProjection::find(const std::string& id) const {
  if (checking_ && checking_->id == id) return checking_;
  auto it = reservations_.find(id);
  return it == reservations_.end() ? nullptr : &it->second;
}

// ---------------------------------------------------------------------------------------------
// A reservation's times

TimeNs BookingProjection::prepareAt(const Reservation& r) const {
  if (r.request.kind == ReservationKind::kDedicated) return r.plan.latestSafeStartNs;
  const TemplateSpec* t = findTemplate(r.request.templateName);
  TimeNs clone = t ? t->cloneTimeNs : 0;
  return r.request.startNs - clone - marginNs_;
}

TimeNs BookingProjection::cloneStart(const Reservation& r) const {
  if (r.request.kind == ReservationKind::kShared) return prepareAt(r);
  return r.plan.latestSafeStartNs + r.plan.makespanNs;
}

TimeNs BookingProjection::clonesFrom(const Reservation& r) const {
  TimeNs from = cloneStart(r);
  // Clones are made once the vacate is done: a move that started late pushes them back, or
  // its VM and the clones would be booked on the host at once.
  for (const auto& m : r.moves) {
    if (m.isVacate() && m.pendingOrRunning()) from = std::max(from, moveWindow(r, m).second);
  }
  return from;
}

std::pair<TimeNs, TimeNs> BookingProjection::moveWindow(const Reservation& r,
                                                        const Move& move) const {
  const auto& m = move.planned;
  TimeNs start = r.plan.latestSafeStartNs + m.startOffsetNs;
  TimeNs end = r.plan.latestSafeStartNs + m.endOffsetNs;
  if (move.progress.actualStartNs) {
    start = move.progress.actualStartNs;
    end = std::max(end, start + (m.endOffsetNs - m.startOffsetNs));
  } else {
    // Not started: it waits for the moves before it, so it is as late as the latest of them
    // (a late first batch would otherwise be booked alongside the batch planned after it).
    TimeNs delay = 0;
    for (const auto& o : r.moves) {
      if (!o.isVacate() || !o.progress.actualStartNs || o.planned.batch > m.batch) continue;
      delay = std::max(
          delay, o.progress.actualStartNs - (r.plan.latestSafeStartNs + o.planned.startOffsetNs));
    }
    start += delay;
    end += delay;
  }
  return {start, end};
}

// ---------------------------------------------------------------------------------------------
// What changed

void BookingProjection::touch(const Reservation& r) {
  for (const auto& h : hostsTouchedBy(r)) {
    stale_.insert(h);
    touching_[h].insert(r.id);
  }
}

void BookingProjection::touchHost(const std::string& host) { stale_.insert(host); }

void BookingProjection::refresh() {
  for (const auto& h : stale_) rebuildHost(h);
  stale_.clear();
}

void BookingProjection::forgetBefore(TimeNs now) {
  if (now <= calendar_.forgottenBefore()) return;
  calendar_.forgetBefore(now);
  std::erase_if(overbooked_, [](const auto& entry) { return entry.second; });
}

BookingChanges BookingProjection::takeChanges() {
  BookingChanges out;
  std::swap(out, changes_);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The bookings

const CapacityCalendar& BookingProjection::calendar() {
  refresh();
  return calendar_;
}

const std::set<std::string>& BookingProjection::receiving() {
  refresh();  // receiving_ is derived host by host with the bookings
  return receiving_;
}

const std::set<std::string>& BookingProjection::reservationsTouching(
    const std::string& host) const {
  auto t = touching_.find(host);
  return t == touching_.end() ? kNoReservations : t->second;
}

bool BookingProjection::overbooked(const std::string& host) {
  auto [it, fresh] = overbooked_.emplace(host, false);
  if (fresh) it->second = calendar_.overbooked(host);
  return it->second;
}

// ---------------------------------------------------------------------------------------------
// Rebuilding a host

void BookingProjection::rebuildHost(const std::string& host) {
  calendar_.clearHost(host);
  overbooked_.erase(host);
  changes_.rebuilt.insert(host);
  bool receiving = false;
  if (const HostRecord* h = inventory_.host(host)) {
    calendar_.setCapacity(
        host, {static_cast<std::int64_t>(h->cpuCores), static_cast<std::int64_t>(h->memoryBytes),
               static_cast<std::int64_t>(h->nicBandwidthBytesPerSec)});
  }
  // VMs leaving this host under a plan stay booked until their move's predicted end; clones
  // until their reservation's end; parked VMs from when a live reservation resumes them (at
  // once when none will: their room must be there for whoever unparks them); everything else
  // forever.
  std::map<std::string, TimeNs> leavesAt;  // the earliest migration away of each VM
  std::map<std::string, TimeNs> cloneUntil;
  // Each live reservation's park of a VM of this host, [park's end, resume): several
  // reservations may park the same VM, one after the other's resume, so they are kept per
  // reservation (keyed by VM alone, each park booked the last one's resume: seed 37 of
  // AdmissionPropertyTest, ParkingTest.TwoReservationsParkingTheSameVmsBookItOnce).
  struct Away {
    TimeNs from, until;
    bool done;  // parked already (from: -infinity)
  };
  std::map<std::string, std::vector<Away>> parkedDuring;
  // Books a VM of the inventory here until `until` but while it is parked. awayNow: parked now,
  // so away until the first resume; otherwise only the parks still to come count (a done park
  // of a running VM is one the inventory has not caught up with). A park of a VM that is not
  // here books nothing: the VM is booked where it is (a stale plan's park, its VM migrated away
  // since, booked its room here too from the resume on: seed 18 of AdmissionPropertyTest).
  auto bookExceptAway = [&](const std::string& vmId, bool awayNow, TimeNs until,
                            const Usage& usage) {
    std::vector<Away> away;
    if (auto p = parkedDuring.find(vmId); p != parkedDuring.end()) {
      for (const Away& a : p->second) {
        if (awayNow || !a.done) away.push_back(a);
      }
    }
    std::sort(away.begin(), away.end(), [](const Away& a, const Away& b) {
      return a.from != b.from ? a.from < b.from : a.until < b.until;
    });
    if (awayNow && !away.empty()) away.front().from = kTimeMinusInfinity;
    TimeNs at = kTimeMinusInfinity;
    for (const Away& a : away) {
      if (a.from > at) {
        const TimeNs to = std::min(a.from, until);
        calendar_.book(host, at, to, usage);
        at = to;
      }
      at = std::max(at, a.until);
      if (at >= until) return;
    }
    calendar_.book(host, at, until, usage);
  };
  std::vector<const Reservation*> touching;
  // Ended (cancelled, failed) reservations whose agents are still acting: a migration or a
  // return that was running, a clone still being made. What those leave behind stays until
  // vrmd sees it gone, so it is booked with no end (fuzz_manager_ops found a failed
  // reservation's clones arriving after the failure on a host promised to another one), a
  // clone until vrmd expects to know (leftoverUntil).
  std::vector<const Reservation*> ended;
  // Their clones here that may exist (being made or destroyed), by VM id: booked until vrmd
  // expects to know them gone (CommandTracker::leftoverGoneBy: answered and destroyed by their
  // commands' deadlines), with no end once nothing says when. Not with no end at once: a cancel
  // while cloning overbooked the host for every later booking (issue 18's week finding 1).
  std::map<std::string, TimeNs> leftoverUntil;
  if (auto t = touching_.find(host); t != touching_.end()) {
    for (const auto& id : t->second) {
      const Reservation* r = find(id);
      if (!r) continue;
      if (!isTerminal(r->state)) {
        touching.push_back(r);
        continue;
      }
      if (stillActing(*r)) ended.push_back(r);
      for (std::size_t i = 0; i < r->clones.size(); ++i) {
        const auto& c = r->clones[i];
        if (c.host != host) continue;
        const bool inFlight = c.state == CloneState::kCloning || c.state == CloneState::kDestroying;
        leftoverUntil[c.vmId] =
            inFlight ? commands_.leftoverGoneBy(r->id, i, clock_.now()) : kTimeInfinity;
      }
    }
  }
  for (const Reservation* r : touching) {
    for (const auto& move : r->moves) {
      if (!move.isVacate()) continue;
      const auto& m = move.planned;
      const MoveState st = move.progress.state;
      if (m.fromHost == host && m.mode != MoveMode::kPark && move.pendingOrRunning()) {
        const TimeNs end = moveWindow(*r, move).second;
        auto [l, first] = leavesAt.emplace(m.vmId, end);
        if (!first) l->second = std::min(l->second, end);
      }
      if (m.toHost == host && m.mode != MoveMode::kPark && move.pendingOrRunning()) {
        receiving = true;
      }
      if (m.mode == MoveMode::kPark && m.fromHost == host && st != MoveState::kSkipped &&
          st != MoveState::kFailed) {
        const bool done = !move.pendingOrRunning();
        parkedDuring[m.vmId].push_back({done ? kTimeMinusInfinity : moveWindow(*r, move).second,
                                        m.resumeAtNs > 0 ? m.resumeAtNs : r->request.endNs, done});
      }
    }
    for (const auto& c : r->clones) {
      if (c.host == host) cloneUntil[c.vmId] = r->request.endNs;
    }
  }
  std::map<std::string, VmState> present;
  {
    for (const auto& v : inventory_.vmsOn(host)) {
      present[v.id] = v.state;
      const Usage usage{v.cpuCores, static_cast<std::int64_t>(v.memoryBytes), 0};
      TimeNs until = kTimeInfinity;
      if (auto l = leavesAt.find(v.id); l != leavesAt.end() && v.state != VmState::kIncoming) {
        until = l->second;  // a parked VM too: resumed, then migrated by a later reservation
      }
      if (auto c = cloneUntil.find(v.id); c != cloneUntil.end()) until = c->second;
      if (auto l = leftoverUntil.find(v.id); l != leftoverUntil.end()) until = l->second;
      if (v.state == VmState::kIncoming) {
        calendar_.book(host, kTimeMinusInfinity, until, usage);
      } else {
        bookExceptAway(v.id, /*awayNow=*/v.state == VmState::kParked, until, usage);
      }
    }
  }
  for (const Reservation* r : touching) {
    // Incoming VMs from the move's start onward (once present, the inventory books them);
    // both NICs for the move's window.
    for (const auto& move : r->moves) {
      if (!move.isVacate() || !move.pendingOrRunning()) continue;
      const auto& m = move.planned;
      const TimeNs start = moveWindow(*r, move).first;
      if (m.mode == MoveMode::kPark) {
        // Parking: the VM is booked here (its inventory entry, above) but while it is parked.
        if (m.toHost == m.fromHost) continue;  // its state stays on the source: no network
      }
      if (m.toHost == host && !present.count(m.vmId)) {
        const VmRecord* vm = inventory_.findVm(m.fromHost, m.vmId);
        calendar_.book(host, start, kTimeInfinity,
                       {vm ? vm->cpuCores : 1, static_cast<std::int64_t>(m.memoryBytes), 0});
      }
      if (m.toHost == host || m.fromHost == host) bookMoveNic(host, *r, move);
    }
    const TemplateSpec* t = findTemplate(r->request.templateName);
    for (const auto& c : r->clones) {
      if (c.host != host || present.count(c.vmId) || !t) continue;
      if (c.state == CloneState::kDestroyed || c.state == CloneState::kFailed) continue;
      calendar_.book(host, clonesFrom(*r), r->request.endNs,
                     {t->cpuCores, static_cast<std::int64_t>(t->memoryBytes), 0});
    }
    if (r->request.kind == ReservationKind::kDedicated &&
        std::find(r->hosts.begin(), r->hosts.end(), host) != r->hosts.end()) {
      calendar_.bookExclusive(host, r->plan.latestSafeStartNs, r->request.endNs, r->id);
    }
    // Displaced VMs that will come home keep their room at home from the window's end on
    // (they stay booked where they went, too, until they leave: conservative, never over).
    if (r->request.returnsDisplaced()) {
      for (const auto& move : r->moves) {
        if (!move.isVacate()) continue;
        const auto& m = move.planned;
        const MoveState st = move.progress.state;
        if (m.fromHost != host || m.mode == MoveMode::kPark) continue;  // parks: above
        if (st != MoveState::kPlanned && st != MoveState::kRunning && st != MoveState::kDone) {
          continue;
        }
        // Still here and leaving: booked until its move ends above, and from the window's end
        // on here. Moved and back here (or coming back): the inventory books it.
        if (st == MoveState::kDone && present.count(m.vmId)) continue;
        bool settled = false;  // its return already ended (done, skipped or failed)
        for (const auto& back : r->moves) {
          if (!back.isVacate() && back.planned.vmId == m.vmId && !back.pendingOrRunning()) {
            settled = true;
          }
        }
        if (settled) continue;
        const VmRecord* vm = inventory_.findVm(m.toHost, m.vmId);
        if (!vm) vm = inventory_.findVm(m.fromHost, m.vmId);
        calendar_.book(host, r->request.endNs, kTimeInfinity,
                       {vm ? vm->cpuCores : 1, static_cast<std::int64_t>(m.memoryBytes), 0});
      }
    }
  }
  // A shell being dropped keeps its room until the agent confirms (inventory or not).
  for (const auto& [vmId, size] : commands_.dropsOn(host)) {
    if (!present.count(vmId)) calendar_.book(host, kTimeMinusInfinity, kTimeInfinity, size);
  }
  for (const Reservation* r : ended) {
    for (const auto& move : r->moves) {
      const PlannedMove& m = move.planned;
      const MoveProgress* p = &move.progress;
      if (p->state != MoveState::kRunning) continue;
      // A park or unpark in flight changes nothing but the VM's state here: its inventory
      // books it (running until parked; parked, with no live reservation, at once).
      if (m.mode == MoveMode::kPark) continue;
      if (move.isVacate() && (m.toHost == host || m.fromHost == host)) {
        bookMoveNic(host, *r, move);  // as while the reservation lived
      }
      if (m.toHost != host) continue;
      receiving = true;
      if (present.count(m.vmId)) continue;  // arrived: the inventory books it
      const VmRecord* vm = inventory_.findVm(m.fromHost, m.vmId);
      calendar_.book(host, p->actualStartNs ? p->actualStartNs : clock_.now(), kTimeInfinity,
                     {vm ? vm->cpuCores : 1, static_cast<std::int64_t>(m.memoryBytes), 0});
    }
    const TemplateSpec* t = findTemplate(r->request.templateName);
    for (std::size_t i = 0; i < r->clones.size(); ++i) {
      const auto& c = r->clones[i];
      if (c.host != host || c.state != CloneState::kCloning || present.count(c.vmId) || !t) {
        continue;
      }
      // Until vrmd knows it will not appear: its agent may make it however late (its answer
      // lost, or after the command's deadline), so past the deadline it is booked with no end
      // until the answer or an inventory settles it (fuzz_manager_ops:
      // finding-failed-reservations-clone-arrives-later); before, until the deadline and its
      // destroy's (leftoverUntil above).
      calendar_.book(host, cloneStart(*r), leftoverUntil[c.vmId],
                     {t->cpuCores, static_cast<std::int64_t>(t->memoryBytes), 0});
    }
  }
  if (receiving) {
    receiving_.insert(host);
  } else {
    receiving_.erase(host);
  }
}

void BookingProjection::bookMoveNic(const std::string& host, const Reservation& r,
                                    const Move& move) {
  const PlannedMove& m = move.planned;
  auto [start, end] = moveWindow(r, move);
  if (end <= start) return;
  calendar_.book(host, start, end, {0, 0, nicRate(m, start, end)});
}

// ---------------------------------------------------------------------------------------------
// Shared clones booked without a rebuild

bool BookingProjection::canBookSharedClones(const Reservation& r) const {
  for (const auto& c : r.clones) {
    if (stale_.count(c.host) || inventory_.findVm(c.host, c.vmId)) return false;
  }
  return true;
}

void BookingProjection::bookSharedClones(const Reservation& r, const TemplateSpec& tmpl,
                                         bool undo) {
  const TimeNs from = cloneStart(r);
  const Usage usage{tmpl.cpuCores, static_cast<std::int64_t>(tmpl.memoryBytes), 0};
  for (const auto& c : r.clones) {
    if (c.state == CloneState::kDestroyed || c.state == CloneState::kFailed) continue;
    if (undo) {
      calendar_.unbook(c.host, from, r.request.endNs, usage);
    } else {
      calendar_.book(c.host, from, r.request.endNs, usage);
    }
    changes_.rebooked.insert(c.host);
  }
}

bool BookingProjection::bookAdmittedShared(const Reservation& r, const TemplateSpec& tmpl) {
  if (!canBookSharedClones(r)) return false;
  // Whether the hosts were overbooked stays as it was: admission checked the clones' window.
  bookSharedClones(r, tmpl, /*undo=*/false);
  for (const auto& h : hostsTouchedBy(r)) touching_[h].insert(r.id);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Checks

std::optional<BookingCheck> BookingProjection::checkNewShared(const Reservation& r,
                                                              const TemplateSpec& tmpl) {
  refresh();
  const std::set<std::string> hosts = hostsTouchedBy(r);
  AlreadyOver alreadyOver;
  for (const auto& h : hosts) {
    if (overbooked(h)) alreadyOver[h] = calendar_.copyOf(h);
  }
  if (!canBookSharedClones(r)) return std::nullopt;
  bookSharedClones(r, tmpl, /*undo=*/false);
  BookingCheck out;
  for (const auto& h : hosts) {
    std::string why;
    auto before = alreadyOver.find(h);
    if (before == alreadyOver.end()
            ? calendar_.overbookedWithin(h, cloneStart(r), r.request.endNs, &why)
            : calendar_.worseThan(h, *before->second, &why)) {
      out = {"host " + h + " would be overbooked: " + why, h};
      break;
    }
  }
  bookSharedClones(r, tmpl, /*undo=*/true);
  return out;
}

BookingCheck BookingProjection::check(const Reservation& r, bool keep) {
  refresh();
  const std::set<std::string> hosts = hostsTouchedBy(r);
  AlreadyOver alreadyOver;
  for (const auto& h : hosts) {
    if (calendar_.overbooked(h)) alreadyOver[h] = calendar_.copyOf(h);
  }
  const bool aside = !reservations_.count(r.id);
  if (aside) checking_ = &r;
  touch(r);
  refresh();
  BookingCheck out;
  for (const auto& h : hosts) {
    std::string why;
    auto before = alreadyOver.find(h);
    if (before == alreadyOver.end() ? calendar_.overbooked(h, &why)
                                    : calendar_.worseThan(h, *before->second, &why)) {
      out = {"host " + h + " would be overbooked: " + why, h};
      break;
    }
  }
  if (aside || !keep || !out.ok()) {
    checking_ = nullptr;
    for (const auto& h : hosts) {
      touching_[h].erase(r.id);
      stale_.insert(h);
    }
    if (!aside) touch(reservations_.at(r.id));
  }
  return out;
}

BookingCheck BookingProjection::checkNewDedicated(const Reservation& r) {
  refresh();
  const std::set<std::string> hosts = hostsTouchedBy(r);
  // Its own hosts (vacated, cloned to) change in several ways: VMs leave, clones and its
  // exclusive window arrive. They are rebuilt with it, as for any reservation.
  std::set<std::string> own(r.hosts.begin(), r.hosts.end());
  for (const auto& m : r.moves) own.insert(m.planned.fromHost);
  for (const auto& c : r.clones) own.insert(c.host);
  // The hosts that only receive its VMs get, from each move's start on, the incoming VM and
  // the NIC rate, exactly as rebuildHost() books them: booked here, checked from the first
  // of them on (overbookedWithin), and taken back, with no rebuild of those hosts.
  struct Added {
    std::string host;
    TimeNs from, to;
    Usage usage;
  };
  std::vector<Added> added;
  std::map<std::string, TimeNs> firstAdded;
  for (const auto& move : r.moves) {
    const auto& m = move.planned;
    if (own.count(m.toHost) || !move.pendingOrRunning()) continue;
    auto [start, end] = moveWindow(r, move);
    if (!inventory_.findVm(m.toHost, m.vmId)) {
      const VmRecord* vm = inventory_.findVm(m.fromHost, m.vmId);
      added.push_back({m.toHost,
                       start,
                       kTimeInfinity,
                       {vm ? vm->cpuCores : 1, static_cast<std::int64_t>(m.memoryBytes), 0}});
    }
    if (end > start) added.push_back({m.toHost, start, end, {0, 0, nicRate(m, start, end)}});
  }
  AlreadyOver alreadyOver;
  for (const auto& h : own) {
    if (calendar_.overbooked(h)) alreadyOver[h] = calendar_.copyOf(h);
  }
  for (const auto& a : added) {
    auto [it, first] = firstAdded.emplace(a.host, a.from);
    if (!first) it->second = std::min(it->second, a.from);
    if (overbooked(a.host) && !alreadyOver.count(a.host)) {
      alreadyOver[a.host] = calendar_.copyOf(a.host);
    }
  }
  checking_ = &r;
  for (const auto& h : own) {
    touching_[h].insert(r.id);
    stale_.insert(h);
  }
  refresh();  // only `own` was stale
  for (const auto& a : added) calendar_.book(a.host, a.from, a.to, a.usage);
  BookingCheck out;
  for (const auto& h : hosts) {  // in name order, as the full check reports the first
    std::string why;
    bool over = false;
    if (auto before = alreadyOver.find(h); before != alreadyOver.end()) {
      over = calendar_.worseThan(h, *before->second, &why);
    } else if (own.count(h)) {
      over = calendar_.overbooked(h, &why);
    } else if (auto f = firstAdded.find(h); f != firstAdded.end()) {
      over = calendar_.overbookedWithin(h, f->second, kTimeInfinity, &why);
    }
    if (over) {
      out = {"host " + h + " would be overbooked: " + why, h};
      break;
    }
  }
  for (const auto& a : added) calendar_.unbook(a.host, a.from, a.to, a.usage);
  checking_ = nullptr;
  for (const auto& h : own) {
    touching_[h].erase(r.id);
    stale_.insert(h);
  }
  return out;
}

}  // namespace vrm::manager

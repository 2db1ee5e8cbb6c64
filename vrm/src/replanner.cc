#include "vrm/manager/replanner.h"

#include <algorithm>
#include <climits>

#include "vrm/protocol/units.h"

namespace vrm::manager {

namespace {

constexpr int kMaxReplans = 3;

// The planned [start, end) of each batch, merged over its moves.
using BatchSpans = std::map<std::uint32_t, std::pair<TimeNs, TimeNs>>;
void addSpan(BatchSpans& spans, const PlannedMove& m) {
  auto [it, inserted] = spans.emplace(m.batch, std::pair{m.startOffsetNs, m.endOffsetNs});
  if (!inserted) {
    it->second.first = std::min(it->second.first, m.startOffsetNs);
    it->second.second = std::max(it->second.second, m.endOffsetNs);
  }
}

}  // namespace

double Assessment::ratioOf(TimeNs timeLeft) const {
  return static_cast<double>(deadlineNs - nowNs) / (static_cast<double>(timeLeft) * quantileScale);
}

TimeNs Assessment::projectedEndNs() const {
  return nowNs + static_cast<TimeNs>(static_cast<double>(timeLeftNs) * quantileScale);
}

RestSelection selectRest(const Reservation& r, std::uint32_t firstBatch,
                         const std::function<bool(const PlannedMove&)>& eligible) {
  RestSelection out;
  BatchSpans spans;
  std::uint32_t keptBatch = 0;
  bool anyKept = false;
  for (const auto& move : r.moves) {
    if (!move.isVacate()) continue;
    const auto& m = move.planned;
    if (m.batch < firstBatch || move.progress.state != MoveState::kPlanned || !eligible(m)) {
      keptBatch = anyKept ? std::max(keptBatch, m.batch) : m.batch;
      anyKept = true;
      continue;
    }
    out.rest.insert(move.id);
    addSpan(spans, m);
  }
  for (const auto& [b, s] : spans) out.oldSpanNs += s.second - s.first;
  out.base = anyKept ? keptBatch + 1 : firstBatch;
  return out;
}

AlongsideSplit splitAlongside(const Reservation& r, std::uint32_t batch) {
  AlongsideSplit out;
  for (const auto& m : r.moves) {
    if (!m.isVacate() || m.planned.batch < batch) continue;
    if (m.progress.state == MoveState::kPlanned) out.rest.insert(m.id);
    // A park in flight is a local save: it shares no NIC and takes no cap.
    if (m.progress.state == MoveState::kRunning && m.planned.mode != MoveMode::kPark) {
      out.running.push_back(m.id);
    }
  }
  return out;
}

NicShares shareNics(const Reservation& r, const std::vector<MoveId>& running,
                    const std::vector<PlannedMove>& firstPlan,
                    const std::map<std::string, HostRecord>& hosts) {
  std::map<std::string, int> runningOn;  // NIC -> running moves through it
  for (MoveId id : running) {
    const Move* m = r.findMove(id);
    ++runningOn[m->planned.fromHost];
    ++runningOn[m->planned.toHost];
  }
  std::map<std::string, int> startingOn;
  for (const auto& m : firstPlan) {
    if (m.batch != 0 || m.mode == MoveMode::kPark) continue;  // a park uses no NIC
    ++startingOn[m.fromHost];
    ++startingOn[m.toHost];
  }
  auto nicOf = [&](const std::string& h) {
    auto it = hosts.find(h);
    return it == hosts.end() ? 0.0 : it->second.nicBandwidthBytesPerSec;
  };
  NicShares out;
  for (const auto& [h, n] : runningOn) {
    auto k = startingOn.find(h);
    if (k == startingOn.end()) continue;  // nothing new shares this NIC
    out.share[h] = nicOf(h) / static_cast<double>(n + k->second);
    out.inUse[h] = out.share[h] * n;
  }
  return out;
}

void Replanner::onProgress(const std::string& reservationId, MoveId move, double fraction) {
  moveFractions_[{reservationId, move}] = {fraction, clock_.now()};
}

void Replanner::forgetProgress(const std::string& reservationId, MoveId move) {
  moveFractions_.erase({reservationId, move});
}

std::optional<std::pair<double, TimeNs>> Replanner::progress(const std::string& reservationId,
                                                             MoveId move) const {
  auto f = moveFractions_.find({reservationId, move});
  if (f == moveFractions_.end()) return std::nullopt;
  return f->second;
}

TimeNs Replanner::moveTimeLeft(const Reservation& r, const Move& move) const {
  const auto& m = move.planned;
  const auto& prog = move.progress;
  const TimeNs predicted = std::max<TimeNs>(m.endOffsetNs - m.startOffsetNs, 0);
  if (prog.state == MoveState::kPlanned) return predicted;
  if (prog.state != MoveState::kRunning) return 0;
  if (prog.actualStartNs <= 0) return predicted;
  // A move with a progress report is projected at its average rate so far (the agents'
  // fraction covers all of its phases); one without is on plan until it overruns, and then
  // assumed to need as long again as it has overrun.
  const TimeNs now = clock_.now();
  const TimeNs elapsed = std::max<TimeNs>(now - prog.actualStartNs, 0);
  auto f = moveFractions_.find({r.id, move.id});
  if (f != moveFractions_.end() && f->second.first >= 0.02) {
    const double total =
        static_cast<double>(f->second.second - prog.actualStartNs) / f->second.first;
    return std::max<TimeNs>(
        static_cast<TimeNs>(static_cast<double>(prog.actualStartNs) + total) - now, 0);
  }
  return elapsed <= predicted ? predicted - elapsed : elapsed - predicted;
}

TimeNs Replanner::projectedTimeLeft(const Reservation& r, std::uint32_t* runningBatch,
                                    bool runningOnly) const {
  std::uint32_t batch = UINT32_MAX;
  for (const auto& m : r.moves) {
    if (m.isVacate() && m.pendingOrRunning()) batch = std::min(batch, m.planned.batch);
  }
  *runningBatch = batch;
  if (batch == UINT32_MAX) return 0;
  // The running batch ends with its slowest move; later batches take their planned spans.
  TimeNs current = 0;
  BatchSpans laterSpans;
  for (const auto& move : r.moves) {
    if (!move.isVacate()) continue;
    const auto& m = move.planned;
    const auto& prog = move.progress;
    if (m.batch == batch) {
      if (runningOnly && prog.state != MoveState::kRunning) continue;
      current = std::max(current, moveTimeLeft(r, move));
    } else if (!runningOnly && m.batch > batch && prog.state == MoveState::kPlanned) {
      addSpan(laterSpans, m);
    }
  }
  TimeNs later = 0;
  for (const auto& [b, span] : laterSpans) later += std::max<TimeNs>(span.second - span.first, 0);
  return current + later;
}

std::optional<Assessment> Replanner::assess(const Reservation& r) {
  const TimeNs now = clock_.now();
  auto [next, first] = nextAssessNs_.emplace(r.id, now + options_.assessPeriodNs);
  if (!first && now < next->second) return std::nullopt;
  next->second = now + options_.assessPeriodNs;

  Assessment a;
  a.nowNs = now;
  a.timeLeftNs = projectedTimeLeft(r, &a.batch);
  if (a.batch == UINT32_MAX || a.timeLeftNs <= 0) return std::nullopt;
  a.quantileScale =
      r.plan.makespanNs > 0 && r.plan.makespanQuantileNs > r.plan.makespanNs
          ? static_cast<double>(r.plan.makespanQuantileNs) / static_cast<double>(r.plan.makespanNs)
          : 1.0;
  a.deadlineNs = r.request.startNs - r.plan.cloneTimeNs;
  a.ratio = a.ratioOf(a.timeLeftNs);
  if (a.ratio > options_.warningRatio) return std::nullopt;
  return a;
}

TimeNs Replanner::nextAssessNs(const std::string& reservationId) const {
  auto a = nextAssessNs_.find(reservationId);
  return a == nextAssessNs_.end() ? kTimeInfinity : a->second;
}

bool Replanner::mayReplan(const std::string& reservationId) const {
  auto n = replans_.find(reservationId);
  return n == replans_.end() || n->second < kMaxReplans;
}

void Replanner::countReplan(const std::string& reservationId) { ++replans_[reservationId]; }

bool Replanner::mayPark(const std::string& reservationId) const {
  auto n = parkReplans_.find(reservationId);
  return n == parkReplans_.end() || n->second < kMaxReplans;
}

void Replanner::countPark(const std::string& reservationId) { ++parkReplans_[reservationId]; }

RunningCaps Replanner::capRunning(const Reservation& r, const std::vector<MoveId>& running,
                                  const std::map<std::string, double>& share, TimeNs now) const {
  RunningCaps out;
  for (MoveId id : running) {
    const Move& move = *r.findMove(id);
    const auto& m = move.planned;
    double cap = 0;
    for (const auto* h : {&m.fromHost, &m.toHost}) {
      if (auto s = share.find(*h); s != share.end()) {
        cap = cap > 0 ? std::min(cap, s->second) : s->second;
      }
    }
    TimeNs left = moveTimeLeft(r, move);
    if (cap > 0) {
      // What is left to send goes at the cap: its predicted end moves out (never in).
      const TimeNs predicted = std::max<TimeNs>(m.endOffsetNs - m.startOffsetNs, 1);
      double done =
          static_cast<double>(now - move.progress.actualStartNs) / static_cast<double>(predicted);
      if (auto f = moveFractions_.find({r.id, id}); f != moveFractions_.end()) {
        done = f->second.first;
      }
      const double bytesLeft =
          static_cast<double>(m.transferredBytes) * (1.0 - std::clamp(done, 0.0, 0.95));
      left = std::max(left, secondsToNs(bytesLeft / cap));
      out.lowestCapBytesPerSec = out.caps.empty() ? cap : std::min(out.lowestCapBytesPerSec, cap);
      out.caps.push_back({id, cap, std::max(m.endOffsetNs, now + left - r.plan.latestSafeStartNs)});
    }
    out.timeLeftNs = std::max(out.timeLeftNs, left);
  }
  return out;
}

std::vector<CapChange> Replanner::capChanges(const Reservation& r) const {
  std::vector<CapChange> out;
  for (const auto& move : r.moves) {
    const auto& m = move.planned;
    if (!move.isVacate() || m.replanCapBytesPerSec <= 0 ||
        move.progress.state != MoveState::kRunning) {
      continue;
    }
    bool shared = false;
    for (const auto& other : r.moves) {
      if (shared) break;
      const auto& o = other.planned;
      if (!other.isVacate() || other.id == move.id || o.batch != m.batch) continue;
      if (!other.pendingOrRunning()) continue;
      shared = o.fromHost == m.fromHost || o.fromHost == m.toHost || o.toHost == m.fromHost ||
               o.toHost == m.toHost;
    }
    const double want = shared ? m.replanCapBytesPerSec : 0.0;
    auto sent = sentCaps_.find({r.id, move.id});
    if (sent != sentCaps_.end() && sent->second == want) continue;
    out.push_back({move.id, want});
  }
  return out;
}

void Replanner::capSent(const std::string& reservationId, MoveId move, double bytesPerSec) {
  sentCaps_[{reservationId, move}] = bytesPerSec;
}

void Replanner::forgetCap(const std::string& reservationId, MoveId move) {
  sentCaps_.erase({reservationId, move});
}

}  // namespace vrm::manager

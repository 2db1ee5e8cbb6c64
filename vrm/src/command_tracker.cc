#include "vrm/manager/command_tracker.h"

#include <algorithm>
#include <iterator>

namespace vrm::manager {
namespace {

// Keeps `id` among the most recent CommandTracker::kGivenUpKept of `ids` (ids only grow).
void remember(std::set<std::uint64_t>& ids, std::uint64_t id) {
  ids.insert(id);
  while (ids.size() > CommandTracker::kGivenUpKept) ids.erase(ids.begin());
}

}  // namespace

std::uint64_t CommandTracker::issue(PendingCommand p) {
  p.command.id = nextId_++;
  const std::uint64_t id = p.command.id;
  if (staging_) {
    staged_.push_back(std::move(p));  // released once its op is stored
  } else {
    outbox_.push_back(p.command);
    pending_[id] = std::move(p);
  }
  return id;
}

void CommandTracker::beginStaging() {
  staged_.clear();
  staging_ = true;
}

void CommandTracker::releaseStaged() {
  staging_ = false;
  for (PendingCommand& p : staged_) {
    outbox_.push_back(p.command);
    const std::uint64_t id = p.command.id;
    pending_[id] = std::move(p);
  }
  staged_.clear();
}

void CommandTracker::discardStaged() {
  staging_ = false;
  staged_.clear();
}

std::vector<AgentCommand> CommandTracker::takeOutbox(TimeNs nowNs) {
  std::vector<AgentCommand> out;
  out.swap(outbox_);
  for (const AgentCommand& cmd : out) {
    auto held = heldSince_.find(cmd.id);
    if (held == heldSince_.end()) continue;
    auto p = pending_.find(cmd.id);
    if (p != pending_.end() && p->second.deadlineNs != kTimeInfinity) {
      p->second.deadlineNs += std::max<TimeNs>(nowNs - held->second, 0);
    }
    heldSince_.erase(held);
  }
  return out;
}

void CommandTracker::holdBack(std::vector<AgentCommand> commands, TimeNs nowNs) {
  for (const AgentCommand& cmd : commands) heldSince_.try_emplace(cmd.id, nowNs);
  commands.insert(commands.end(), std::make_move_iterator(outbox_.begin()),
                  std::make_move_iterator(outbox_.end()));
  outbox_ = std::move(commands);
}

const PendingCommand* CommandTracker::find(std::uint64_t id) const {
  auto it = pending_.find(id);
  return it == pending_.end() ? nullptr : &it->second;
}

std::optional<PendingCommand> CommandTracker::take(std::uint64_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return std::nullopt;
  PendingCommand p = std::move(it->second);
  pending_.erase(it);
  remember(answered_, id);
  return p;
}

bool CommandTracker::inFlight(const std::string& reservationId, CommandStep step,
                              MoveId move) const {
  for (const auto& [id, p] : pending_) {
    if (p.reservationId == reservationId && p.step == step && p.move == move) return true;
  }
  return false;
}

bool CommandTracker::cloneInFlight(const std::string& reservationId, CommandStep step,
                                   std::size_t clone) const {
  for (const auto& [id, p] : pending_) {
    if (p.reservationId == reservationId && p.step == step && p.clone == clone) return true;
  }
  return false;
}

TimeNs CommandTracker::leftoverGoneBy(const std::string& reservationId, std::size_t clone,
                                      TimeNs nowNs) const {
  TimeNs goneBy = kTimeInfinity;
  bool found = false;
  for (const auto& [id, p] : pending_) {
    if (p.reservationId != reservationId || p.clone != clone ||
        (p.step != CommandStep::kClone && p.step != CommandStep::kDestroy)) {
      continue;
    }
    if (p.abandoned || heldSince_.count(id) || p.deadlineNs <= nowNs ||
        p.deadlineNs >= kTimeInfinity - p.undoneWithinNs) {
      return kTimeInfinity;
    }
    const TimeNs by = p.deadlineNs + (p.step == CommandStep::kClone ? p.undoneWithinNs : 0);
    goneBy = found ? std::max(goneBy, by) : by;
    found = true;
  }
  return goneBy;
}

std::vector<std::uint64_t> CommandTracker::overdue(TimeNs nowNs) const {
  std::vector<std::uint64_t> ids;
  for (const auto& [id, p] : pending_) {
    if (heldSince_.count(id)) continue;  // not sent yet: nothing to be late with
    if (p.deadlineNs <= nowNs || p.abandoned) ids.push_back(id);
  }
  return ids;
}

void CommandTracker::setDeadline(std::uint64_t id, TimeNs deadlineNs) {
  if (auto it = pending_.find(id); it != pending_.end()) it->second.deadlineNs = deadlineNs;
}

void CommandTracker::abandon(std::uint64_t id, TimeNs nowNs) {
  auto it = pending_.find(id);
  if (it == pending_.end() || it->second.abandoned) return;
  it->second.deadlineNs = kTimeInfinity;
  it->second.abandoned = true;
  it->second.abandonedNs = nowNs;
}

std::optional<PendingCommand> CommandTracker::giveUp(std::uint64_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return std::nullopt;
  PendingCommand p = std::move(it->second);
  pending_.erase(it);
  givenUp_[id] = p;
  while (givenUp_.size() > kGivenUpKept) givenUp_.erase(givenUp_.begin());
  return p;
}

const PendingCommand* CommandTracker::givenUp(std::uint64_t id) const {
  auto it = givenUp_.find(id);
  return it == givenUp_.end() ? nullptr : &it->second;
}

std::vector<std::uint64_t> CommandTracker::resend(const std::string& host, std::size_t* queued) {
  std::set<std::uint64_t> inOutbox;
  for (const auto& cmd : outbox_) inOutbox.insert(cmd.id);
  std::vector<std::uint64_t> ids;
  std::size_t n = 0;
  for (const auto& [id, p] : pending_) {
    if (p.host != host || inOutbox.count(id)) continue;
    outbox_.push_back(p.command);
    ids.push_back(id);
    ++n;
  }
  for (auto d = drops_.lower_bound({host, ""}); d != drops_.end() && d->first.first == host; ++d) {
    if (inOutbox.count(d->second.commandId)) continue;
    outbox_.push_back(d->second.command);
    ++n;
  }
  if (queued) *queued = n;
  return ids;
}

bool CommandTracker::drop(const std::string& host, const std::string& vmId, const Usage& size) {
  if (drops_.count({host, vmId})) return false;  // already on its way
  AgentCommand cmd;
  cmd.kind = AgentCommand::Kind::kFinishIncoming;
  cmd.host = host;
  cmd.vmId = vmId;
  cmd.commit = false;
  cmd.id = nextId_++;
  drops_[{host, vmId}] = Drop{cmd.id, size, cmd};
  outbox_.push_back(std::move(cmd));
  return true;
}

std::optional<std::string> CommandTracker::settleDrop(const std::string& host,
                                                      std::uint64_t commandId) {
  for (auto it = drops_.lower_bound({host, ""}); it != drops_.end() && it->first.first == host;
       ++it) {
    if (it->second.commandId != commandId) continue;
    std::string vmId = it->first.second;
    drops_.erase(it);
    remember(answered_, commandId);
    return vmId;
  }
  return std::nullopt;
}

std::optional<std::string> CommandTracker::dropHost(std::uint64_t commandId) const {
  for (const auto& [key, d] : drops_) {
    if (d.commandId == commandId) return key.first;
  }
  return std::nullopt;
}

std::vector<std::pair<std::string, Usage>> CommandTracker::dropsOn(const std::string& host) const {
  std::vector<std::pair<std::string, Usage>> out;
  for (auto d = drops_.lower_bound({host, ""}); d != drops_.end() && d->first.first == host; ++d) {
    out.emplace_back(d->first.second, d->second.size);
  }
  return out;
}

}  // namespace vrm::manager

#include "vrm/manager/reservation_registry.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>

namespace vrm::manager {

const Reservation* ReservationDraft::find(const std::string& id) const {
  if (auto d = drafts_.find(id); d != drafts_.end()) return &d->second;
  auto c = committed_.find(id);
  return c == committed_.end() ? nullptr : &c->second;
}

Reservation* ReservationDraft::edit(const std::string& id) {
  if (auto d = drafts_.find(id); d != drafts_.end()) return &d->second;
  auto c = committed_.find(id);
  if (c == committed_.end()) return nullptr;
  order_.push_back(id);
  return &drafts_.emplace(id, c->second).first->second;
}

Reservation& ReservationDraft::add(Reservation reservation) {
  const std::string id = reservation.id;
  if (committed_.count(id) || drafts_.count(id)) {
    throw std::logic_error("ReservationDraft::add: reservation " + id + " exists already");
  }
  order_.push_back(id);
  return drafts_.emplace(id, std::move(reservation)).first->second;
}

std::string AdmitReservation::describe() const {
  return std::string(reservation_.state == ReservationState::kRejected ? "reject " : "admit ") +
         reservation_.id;
}

bool AdmitReservation::perform(ReservationDraft& draft) {
  draft.add(reservation_);
  return true;
}

Status ReservationRegistry::recover() {
  auto loaded = store_.loadReservations();
  if (!loaded) return loaded.status();
  for (auto& r : *loaded) {
    publishedEvents_[r.id] = r.events.size();
    reservations_[r.id] = std::move(r);
  }
  return Status::ok();
}

const Reservation* ReservationRegistry::find(const std::string& id) const {
  auto it = reservations_.find(id);
  return it == reservations_.end() ? nullptr : &it->second;
}

Result<std::vector<std::string>> ReservationRegistry::apply(ReservationOp& op) {
  ReservationDraft draft(reservations_);
  if (!op.perform(draft)) return std::vector<std::string>{};
  std::vector<const Reservation*> batch;
  for (const auto& id : draft.order_) batch.push_back(&draft.drafts_.at(id));
  if (Status s = store_.saveReservations(batch); !s) {
    spdlog::error("cannot store {}: {}; nothing changed", op.describe(), s.toString());
    return s;
  }
  for (const auto& id : draft.order_) {
    Reservation& installed = reservations_[id] = std::move(draft.drafts_.at(id));
    unsaved_.erase(id);
    publishNew(installed);
  }
  return draft.order_;
}

std::vector<std::pair<ReservationEvent, Reservation>> ReservationRegistry::takeEvents() {
  std::vector<std::pair<ReservationEvent, Reservation>> out;
  out.swap(events_);
  return out;
}

Status ReservationRegistry::saveInPlace(const std::string& id) {
  if (batchDepth_ > 0) {
    if (std::find(batch_.begin(), batch_.end(), id) == batch_.end()) batch_.push_back(id);
    return Status::ok();
  }
  return saveTogether({id});
}

Status ReservationRegistry::saveTogether(const std::vector<std::string>& ids) {
  std::vector<const Reservation*> batch;
  std::vector<std::string> present;
  for (const auto& id : ids) {
    auto it = reservations_.find(id);
    if (it == reservations_.end()) {
      unsaved_.erase(id);  // gone from memory (re-admission's scratch): nothing to save
      continue;
    }
    batch.push_back(&it->second);
    present.push_back(id);
  }
  if (batch.empty()) return Status::ok();
  if (Status s = store_.saveReservations(batch); !s) {
    for (const auto& id : present) {
      spdlog::error("cannot persist {}: {}; its commands wait until it is stored", id,
                    s.toString());
      unsaved_[id] = s.message();
    }
    return s;
  }
  for (std::size_t i = 0; i < present.size(); ++i) {
    unsaved_.erase(present[i]);
    publishNew(*batch[i]);
  }
  return Status::ok();
}

void ReservationRegistry::beginBatch(const std::string& cause) {
  if (batchDepth_++ == 0) {
    batchCause_ = cause;
    batch_.clear();
  }
}

Status ReservationRegistry::endBatch() {
  if (batchDepth_ == 0) throw std::logic_error("ReservationRegistry::endBatch without a batch");
  if (--batchDepth_ > 0) return Status::ok();
  std::vector<std::string> ids;
  ids.swap(batch_);
  if (auto c = std::find(ids.begin(), ids.end(), batchCause_); c != ids.end()) {
    std::rotate(ids.begin(), c, c + 1);  // the cause first, the others in order
  }
  return saveTogether(ids);
}

std::vector<std::string> ReservationRegistry::retryUnsaved() {
  std::vector<std::string> ids;
  for (const auto& [id, why] : unsaved_) ids.push_back(id);
  std::vector<std::string> saved;
  for (const auto& id : ids) {
    if (!reservations_.count(id)) {
      unsaved_.erase(id);
    } else if (saveTogether({id})) {
      saved.push_back(id);
    }
  }
  return saved;
}

void ReservationRegistry::publishNew(const Reservation& r) {
  std::size_t& published = publishedEvents_[r.id];
  for (; published < r.events.size(); ++published) events_.emplace_back(r.events[published], r);
}

}  // namespace vrm::manager

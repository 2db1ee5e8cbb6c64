// A minimal stored reservation for tests of the store and the registry.
#pragma once

#include <string>

#include "vrm/protocol/reservation.h"

namespace vrm::manager {

// Admitted, one host ("a"), window [100, 200), template "t", owner "lab", one event.
inline Reservation admittedReservation(const std::string& id) {
  Reservation r;
  r.id = id;
  r.request.owner = "lab";
  r.request.hostCount = 1;
  r.request.startNs = 100;
  r.request.endNs = 200;
  r.request.templateName = "t";
  r.state = ReservationState::kAdmitted;
  r.hosts = {"a"};
  r.events.push_back({1, ReservationState::kAdmitted, "admitted"});
  return r;
}

}  // namespace vrm::manager

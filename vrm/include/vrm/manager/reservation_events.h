// A reservation's history as the units of vrmd's core write it: every state change and every
// note is one event stamped `now`, and updatedNs follows the newest event (what the store's
// "changed since" and the web page's refresh read). The one place this is done, so the Manager,
// the VacateExecutor and the Teardown record alike.
#pragma once

#include <string>

#include "vrm/protocol/reservation.h"
#include "vrm/protocol/time.h"

namespace vrm::manager {

// r enters `to` at `now`, with `message` as the event's text.
inline void recordTransition(Reservation& r, ReservationState to, TimeNs now,
                             const std::string& message) {
  r.state = to;
  r.updatedNs = now;
  r.events.push_back({now, to, message});
}

// An event in r's current state: progress that changes no state.
inline void recordNote(Reservation& r, TimeNs now, const std::string& message) {
  r.updatedNs = now;
  r.events.push_back({now, r.state, message});
}

}  // namespace vrm::manager

// The end of a reservation on the agents: its clones made (preparing) and destroyed (after the
// window, a cancel or a failure), the VMs its vacate parked unparked on their sources, and the
// displaced VMs that go home brought back, one at a time. One of the units of vrmd's core
// (docs/architecture.md); the Manager owns one and applies what it returns.
//
// Contract:
//  * Each call drives one reservation, `r`, changed in place (its clones' states, the teardown
//    moves it creates and their progress, its events, its state when it is ready or done): the
//    ReservationRegistry's compatibility path. It saves nothing: the caller persists r.
//  * Commands are returned, not sent: TeardownEffects::commands, in order, for the Manager to
//    issue (ids, deadlines, staging while an op is performed) before its next call. It calls
//    nothing back.
//  * It reads the inventory (which agents are ready, which VMs they list), the command tracker
//    (which destroys are in flight), the templates and the bookings (a VM goes home only to a
//    host no other reservation holds exclusively and, once r ended early, with room for it),
//    and changes none of them except the projection's refresh.
//  * Time is the injected Clock's, TimeNs (ns).
//  * Not thread-safe: one event loop (vrmd's) owns it.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "vrm/manager/booking_projection.h"
#include "vrm/manager/command_tracker.h"
#include "vrm/manager/inventory.h"
#include "vrm/protocol/cluster.h"
#include "vrm/protocol/reservation.h"
#include "vrm/protocol/time.h"

namespace vrm::manager {

// A command for the reservation driven, to be issued by the caller: for move `move` (kUnpark,
// kPrepareIncoming of a return) or clone `clone` (kClone, kDestroy).
struct TeardownCommand {
  AgentCommand command;
  CommandStep step = CommandStep::kDestroy;
  MoveId move{};
  std::size_t clone = 0;
};

struct TeardownEffects {
  std::vector<TeardownCommand> commands;  // to issue, in order
};

class Teardown {
 public:
  // Every reference must outlive the teardown.
  Teardown(const Clock& clock, const Inventory& inventory, const CommandTracker& commands,
           BookingProjection& projection, const std::vector<TemplateSpec>& templates);

  // Starts destroying r's clones: a pending one is destroyed (never made), a running one whose
  // agent is ready and that has no destroy in flight gets one (the others wait for their agent).
  TeardownEffects start(Reservation& r);
  // A preparing reservation: its pending clones are made where their agents are ready; once
  // every clone runs, r is ready (its clones' addresses in the event).
  TeardownEffects driveClones(Reservation& r);
  // An ending, cancelled or failed reservation: start(), then, once every clone is gone and no
  // vacate move runs, parked VMs unparked (all at once) and displaced VMs returned home (one at
  // a time; Displaced::kReturn); an ending one is done once its clones are gone and those moves
  // ended (a VM that cannot go home stays where it is, noted).
  TeardownEffects drive(Reservation& r);
  // Some move of r's vacate parked (or is parking) its VM: its teardown must unpark it.
  static bool parksVms(const Reservation& r);

 private:
  void start(Reservation& r, TeardownEffects& out);
  // Creates the teardown moves on first call (kUnpark: mode kPark, fromHost == toHost;
  // kReturn) and drives them; true once every one has ended (done, skipped or failed).
  bool driveReturns(Reservation& r, TeardownEffects& out);
  void driveClones(Reservation& r, TeardownEffects& out);
  void driveTeardown(Reservation& r, TeardownEffects& out);
  const TemplateSpec* findTemplate(const std::string& name) const;
  void transition(Reservation& r, ReservationState to, const std::string& message) const;
  void note(Reservation& r, const std::string& message) const;

  const Clock& clock_;
  const Inventory& inventory_;
  const CommandTracker& commands_;
  BookingProjection& projection_;
  const std::vector<TemplateSpec>& templates_;
};

}  // namespace vrm::manager

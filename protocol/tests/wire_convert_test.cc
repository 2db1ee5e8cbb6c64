#include "vrm/protocol/wire_convert.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include "vrm/protocol/codec.h"

namespace vrm::protocol {
namespace {

// Ensures a corrupt store row whose pointers have the wrong kinds (here a ClientRequest's
// submit struct where the reservation's id text belongs) is an invalid-argument error, not an
// exception that would stop vrmd's recovery (found by fuzz_frame).
TEST(WireConvertTest, ParseReservationRejectsPointersOfTheWrongKind) {
  capnp::MallocMessageBuilder b;
  b.initRoot<wire::ClientRequest>().initSubmit().setOwner("lab");
  auto words = capnp::messageToFlatArray(b);
  auto bytes = words.asBytes();
  auto r = parseReservation(bytes.begin(), bytes.size());
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

// Ensures the cost-aware planner's plan fields (suspension, disk sync, broker limits, quantile
// makespan, feasibility, notes) survive the wire and the store, which persist the same message.
TEST(WireConvertTest, PlanFieldsRoundTrip) {
  Reservation r;
  r.id = "r1";
  r.plan.strategy = "batched(4)";
  r.plan.objective = "degradation";
  r.plan.hosts = {"n1", "n2"};
  r.plan.batchSize = 4;
  r.plan.quantile = 0.95;
  r.plan.makespanNs = 10 * kNsPerSec;
  r.plan.makespanQuantileNs = 13 * kNsPerSec;
  r.plan.makespanLowerBoundNs = 9 * kNsPerSec;
  r.plan.maxVmTimeNs = 5 * kNsPerSec;
  r.plan.energyJ = 123.5;
  r.plan.feasible = false;
  r.plan.earliestFeasibleStartNs = 42;
  r.plan.notes = {"VM 'x' is suspended"};
  PlannedMove m;
  m.vmId = "x";
  m.mode = MoveMode::kPark;
  m.resumeAtNs = 7;
  m.diskSyncNs = 8;
  m.networkLimitBytesPerSec = 1.5e8;
  m.diskWriteLimitBytesPerSec = 2e7;
  m.replanCapBytesPerSec = 3.125e7;
  r.addMove(MovePurpose::kPark, m);

  capnp::MallocMessageBuilder b;
  toWire(r, b.initRoot<wire::Reservation>());
  Reservation back = fromWire(b.getRoot<wire::Reservation>().asReader());
  EXPECT_EQ(back.plan.objective, "degradation");
  EXPECT_EQ(back.plan.hosts, r.plan.hosts);
  EXPECT_EQ(back.plan.batchSize, 4u);
  EXPECT_EQ(back.plan.quantile, 0.95);
  EXPECT_EQ(back.plan.makespanQuantileNs, r.plan.makespanQuantileNs);
  EXPECT_EQ(back.plan.makespanLowerBoundNs, r.plan.makespanLowerBoundNs);
  EXPECT_EQ(back.plan.maxVmTimeNs, r.plan.maxVmTimeNs);
  EXPECT_EQ(back.plan.energyJ, 123.5);
  EXPECT_FALSE(back.plan.feasible);
  EXPECT_EQ(back.plan.earliestFeasibleStartNs, 42);
  EXPECT_EQ(back.plan.notes, r.plan.notes);
  ASSERT_EQ(back.moves.size(), 1u);
  EXPECT_EQ(back.moves[0].purpose, MovePurpose::kPark);
  EXPECT_EQ(back.moves[0].planned.mode, MoveMode::kPark);
  EXPECT_EQ(back.moves[0].planned.resumeAtNs, 7);
  EXPECT_EQ(back.moves[0].planned.diskSyncNs, 8);
  EXPECT_EQ(back.moves[0].planned.networkLimitBytesPerSec, 1.5e8);
  EXPECT_EQ(back.moves[0].planned.diskWriteLimitBytesPerSec, 2e7);
  EXPECT_EQ(back.moves[0].planned.replanCapBytesPerSec, 3.125e7);
}

// Ensures the executor's record (at-risk mark, return moves with their progress) and the
// displaced policy survive the wire and the store.
TEST(WireConvertTest, RiskReturnsAndDisplacedPolicyRoundTrip) {
  Reservation r;
  r.id = "r2";
  r.request.displaced = Displaced::kReturn;
  r.atRisk = true;
  r.riskReason = "vacating is projected to end late";
  PlannedMove back;
  back.vmId = "v";
  back.fromHost = "dst";
  back.toHost = "src";
  back.batch = 3;
  Move& home = r.addMove(MovePurpose::kReturn, back);
  home.progress.state = MoveState::kRunning;
  home.progress.actualStartNs = 99;

  capnp::MallocMessageBuilder b;
  toWire(r, b.initRoot<wire::Reservation>());
  Reservation got = fromWire(b.getRoot<wire::Reservation>().asReader());
  EXPECT_EQ(got.request.displaced, Displaced::kReturn);
  EXPECT_TRUE(got.atRisk);
  EXPECT_EQ(got.riskReason, r.riskReason);
  ASSERT_EQ(got.moves.size(), 1u);
  EXPECT_EQ(got.moves[0].purpose, MovePurpose::kReturn);
  EXPECT_EQ(got.moves[0].planned.fromHost, "dst");
  EXPECT_EQ(got.moves[0].planned.toHost, "src");
  EXPECT_EQ(got.moves[0].planned.batch, 3u);
  EXPECT_EQ(got.moves[0].progress.state, MoveState::kRunning);
  EXPECT_EQ(got.moves[0].progress.actualStartNs, 99);
  // On the wire the return is in the reservation's returns, not among the plan's moves.
  EXPECT_EQ(b.getRoot<wire::Reservation>().getReturns().size(), 1u);
  EXPECT_EQ(b.getRoot<wire::Reservation>().getPlan().getMoves().size(), 0u);
}

// Ensures move ids, the next id to give, the purposes of every kind of move, and the explicit
// "late" and "returns done" flags survive the wire and the store.
TEST(WireConvertTest, MoveIdsPurposesAndFlagsRoundTrip) {
  Reservation r;
  r.id = "r3";
  PlannedMove m;
  m.vmId = "a";
  r.addMove(MovePurpose::kVacate, m);
  m.vmId = "b";
  m.mode = MoveMode::kPark;
  r.addMove(MovePurpose::kPark, m);
  r.moves.erase(r.moves.begin());  // a re-plan replaced move 1: its id is not given again
  m.mode = MoveMode::kLive;
  m.vmId = "c";
  r.addMove(MovePurpose::kVacate, m);
  m.mode = MoveMode::kPark;
  m.vmId = "b";
  r.addMove(MovePurpose::kUnpark, m);
  m.mode = MoveMode::kLive;
  m.vmId = "c";
  r.addMove(MovePurpose::kReturn, m);
  r.lateNoted = true;
  r.returnsNoted = true;

  auto got = parseReservation(serializeReservation(r).data(), serializeReservation(r).size());
  ASSERT_TRUE(got.isOk()) << got.status().toString();
  ASSERT_EQ(got->moves.size(), 4u);
  const std::vector<std::pair<std::uint32_t, MovePurpose>> want = {{2, MovePurpose::kPark},
                                                                   {3, MovePurpose::kVacate},
                                                                   {4, MovePurpose::kUnpark},
                                                                   {5, MovePurpose::kReturn}};
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(moveIdValue(got->moves[i].id), want[i].first) << i;
    EXPECT_EQ(got->moves[i].purpose, want[i].second) << i;
  }
  EXPECT_EQ(moveIdValue(got->nextMoveId), 6u);
  EXPECT_TRUE(got->lateNoted);
  EXPECT_TRUE(got->returnsNoted);
}

// Ensures a reservation stored before moves had ids reads back with ids 1..n in order (vacate
// moves, then returns) and a next id after them.
TEST(WireConvertTest, MovesStoredWithoutIdsAreNumberedInOrder) {
  capnp::MallocMessageBuilder b;
  auto w = b.initRoot<wire::Reservation>();
  auto moves = w.initPlan().initMoves(2);
  moves[0].setVmId("a");
  moves[1].setVmId("b");
  w.initReturns(1)[0].setVmId("a");
  Reservation got = fromWire(w.asReader());
  ASSERT_EQ(got.moves.size(), 3u);
  for (std::uint32_t i = 0; i < 3; ++i) EXPECT_EQ(moveIdValue(got.moves[i].id), i + 1);
  EXPECT_EQ(got.moves[2].purpose, MovePurpose::kReturn);
  EXPECT_EQ(moveIdValue(got.nextMoveId), 4u);
}

// Ensures the request's objective and displaced policy are enums past the edge: known names
// parse, "" means the default (makespan; displaced not said), and an unknown name from a client
// is invalid-argument with the reason, while one inside a stored reservation reads as default.
TEST(WireConvertTest, ObjectiveAndDisplacedAreParsedAtTheEdge) {
  capnp::MallocMessageBuilder b;
  auto w = b.initRoot<wire::ReservationRequest>();
  w.setObjective("degradation");
  w.setDisplaced("stay");
  auto ok = requestFromWire(w.asReader());
  ASSERT_TRUE(ok.isOk());
  EXPECT_EQ(ok->objective, Objective::kDegradation);
  EXPECT_EQ(ok->displaced, Displaced::kStay);

  w.setObjective("");
  w.setDisplaced("");
  ok = requestFromWire(w.asReader());
  ASSERT_TRUE(ok.isOk());
  EXPECT_EQ(ok->objective, Objective::kMakespan);
  EXPECT_FALSE(ok->displaced.has_value());

  w.setObjective("fastest");
  auto bad = requestFromWire(w.asReader());
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "objective must be 'makespan' or 'degradation', not 'fastest'");
  EXPECT_EQ(fromWire(w.asReader()).objective, Objective::kMakespan);

  w.setObjective("makespan");
  w.setDisplaced("home");
  bad = requestFromWire(w.asReader());
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().message(), "displaced must be 'stay' or 'return', not 'home'");

  ReservationRequest req;
  req.objective = Objective::kDegradation;
  req.displaced = Displaced::kReturn;
  capnp::MallocMessageBuilder out;
  toWire(req, out.initRoot<wire::ReservationRequest>());
  EXPECT_EQ(toStd(out.getRoot<wire::ReservationRequest>().getObjective()), "degradation");
  EXPECT_EQ(toStd(out.getRoot<wire::ReservationRequest>().getDisplaced()), "return");
}

// Ensures a plan written before these fields existed reads back as feasible (schema default).
TEST(WireConvertTest, OldPlansReadAsFeasible) {
  capnp::MallocMessageBuilder b;
  b.initRoot<wire::Reservation>().initPlan().setStrategy("sequential");
  Reservation back = fromWire(b.getRoot<wire::Reservation>().asReader());
  EXPECT_TRUE(back.plan.feasible);
  EXPECT_EQ(std::string(moveModeName(MoveMode::kPark)), "suspend");
}

// Ensures a VM's allowed migration modes survive the wire, and a VmInfo from an agent that does
// not send them reads as allowing both (schema defaults).
TEST(WireConvertTest, VmAllowedModesRoundTripAndDefaultToAllowed) {
  VmRecord v;
  v.id = "g2";
  v.allowLive = false;
  capnp::MallocMessageBuilder b;
  toWire(v, b.initRoot<wire::VmInfo>());
  VmRecord back = fromWire(b.getRoot<wire::VmInfo>().asReader());
  EXPECT_FALSE(back.allowLive);
  EXPECT_TRUE(back.allowSuspend);

  capnp::MallocMessageBuilder old;
  old.initRoot<wire::VmInfo>().setId("old");
  VmRecord fromOld = fromWire(old.getRoot<wire::VmInfo>().asReader());
  EXPECT_TRUE(fromOld.allowLive);
  EXPECT_TRUE(fromOld.allowSuspend);
}

// Ensures what the agents measure for the migration models (issue 20) crosses the wire, and a
// reservation's makespan quantile does too, with an impossible one rejected at the edge.
TEST(WireConvertTest, MeasuredVmInputsAndRequestQuantileRoundTrip) {
  VmRecord v;
  v.id = "g3";
  v.dirtyRateSamplesBytesPerSec = {1e6, 3e6, 2e6};
  v.modifiedMemoryBytes = 12345;
  v.workload = "memory";
  v.diskDirtyRateBytesPerSec = 7e5;
  capnp::MallocMessageBuilder b;
  toWire(v, b.initRoot<wire::VmInfo>());
  VmRecord back = fromWire(b.getRoot<wire::VmInfo>().asReader());
  EXPECT_EQ(back.dirtyRateSamplesBytesPerSec, v.dirtyRateSamplesBytesPerSec);
  EXPECT_EQ(back.modifiedMemoryBytes, 12345u);
  EXPECT_EQ(back.workload, "memory");
  EXPECT_EQ(back.diskDirtyRateBytesPerSec, 7e5);

  ReservationRequest r;
  r.quantile = 0.99;
  capnp::MallocMessageBuilder rb;
  toWire(r, rb.initRoot<wire::ReservationRequest>());
  auto parsed = requestFromWire(rb.getRoot<wire::ReservationRequest>().asReader());
  ASSERT_TRUE(parsed.isOk()) << parsed.status().toString();
  EXPECT_EQ(parsed->quantile, 0.99);
  rb.getRoot<wire::ReservationRequest>().setQuantile(1.5);
  EXPECT_EQ(requestFromWire(rb.getRoot<wire::ReservationRequest>().asReader()).status().code(),
            StatusCode::kInvalidArgument);
}

// Ensures a clone's handle in the inventory (issue 13: vrmd sets a handle from it after a
// restart) and a lost guest's every field cross the wire; an old agent's VmInfo has none.
TEST(WireConvertTest, InventoryHandlesAndLostVmsRoundTrip) {
  VmRecord v;
  v.id = "c1";
  v.address = "127.0.0.1";
  v.account = "owner";
  v.sshPort = 40022;
  v.addressSource = "user-mode forward";
  capnp::MallocMessageBuilder b;
  toWire(v, b.initRoot<wire::VmInfo>());
  VmRecord back = fromWire(b.getRoot<wire::VmInfo>().asReader());
  EXPECT_EQ(back.address, "127.0.0.1");
  EXPECT_EQ(back.account, "owner");
  EXPECT_EQ(back.sshPort, 40022u);
  EXPECT_EQ(back.addressSource, "user-mode forward");
  capnp::MallocMessageBuilder old;
  old.initRoot<wire::VmInfo>().setId("old");
  VmRecord fromOld = fromWire(old.getRoot<wire::VmInfo>().asReader());
  EXPECT_EQ(fromOld.sshPort, 0u);
  EXPECT_TRUE(fromOld.account.empty());

  LostVm lost{"c1", "r7", VmState::kMigratingOut, "its qemu exited (killed by signal 9)", 42};
  capnp::MallocMessageBuilder lb;
  toWire(lost, lb.initRoot<wire::LostVm>());
  LostVm lostBack = fromWire(lb.getRoot<wire::LostVm>().asReader());
  EXPECT_EQ(lostBack.vmId, "c1");
  EXPECT_EQ(lostBack.reservationId, "r7");
  EXPECT_EQ(lostBack.lastState, VmState::kMigratingOut);
  EXPECT_EQ(lostBack.reason, lost.reason);
  EXPECT_EQ(lostBack.lostAtNs, 42);
  EXPECT_EQ(std::string(vmStateName(VmState::kMigratingOut)), "migrating-out");
}

// Ensures every VM state and every field of a migration observation (the agent writes it, vrmd
// reads it back through AgentResult) survives the wire, and an unknown state reads as running.
TEST(WireConvertTest, VmStatesAndObservationsRoundTrip) {
  for (VmState st : {VmState::kRunning, VmState::kSuspended, VmState::kMigratingOut,
                     VmState::kIncoming, VmState::kCloning, VmState::kParked}) {
    EXPECT_EQ(fromWire(toWire(st)), st);
  }
  EXPECT_EQ(fromWire(static_cast<wire::VmState>(99)), VmState::kRunning);

  MigrationObservation o;
  o.vmId = "vm1";
  o.fromHost = "a";
  o.toHost = "b";
  o.mode = MoveMode::kSuspendCopyResume;
  o.memoryBytes = 1;
  o.nonzeroMemoryBytes = 2;
  o.transferredBytes = 3;
  o.dirtyRateBytesPerSec = 4.5;
  o.bandwidthBytesPerSec = 5.5;
  o.startNs = 6;
  o.endNs = 7;
  o.setupNs = 8;
  o.downtimeNs = 9;
  o.rounds = 10;
  o.saveNs = 11;
  o.copyNs = 12;
  o.restoreNs = 13;
  capnp::MallocMessageBuilder b;
  auto result = b.initRoot<wire::CommandResult>();
  result.setCommandId(42);
  toWire(Status::ok(), result.initStatus());
  toWire(o, result.initMigrated());
  const AgentResult back = fromWire(b.getRoot<wire::CommandResult>().asReader());
  ASSERT_TRUE(back.migrated.has_value());
  const MigrationObservation& m = *back.migrated;
  EXPECT_EQ(m.vmId, "vm1");
  EXPECT_EQ(m.fromHost, "a");
  EXPECT_EQ(m.toHost, "b");
  EXPECT_EQ(m.mode, MoveMode::kSuspendCopyResume);
  EXPECT_EQ(m.memoryBytes, 1u);
  EXPECT_EQ(m.nonzeroMemoryBytes, 2u);
  EXPECT_EQ(m.transferredBytes, 3u);
  EXPECT_EQ(m.dirtyRateBytesPerSec, 4.5);
  EXPECT_EQ(m.bandwidthBytesPerSec, 5.5);
  EXPECT_EQ(m.startNs, 6);
  EXPECT_EQ(m.endNs, 7);
  EXPECT_EQ(m.setupNs, 8);
  EXPECT_EQ(m.downtimeNs, 9);
  EXPECT_EQ(m.rounds, 10u);
  EXPECT_EQ(m.saveNs, 11);
  EXPECT_EQ(m.copyNs, 12);
  EXPECT_EQ(m.restoreNs, 13);
}

// Ensures the commands that carry a bandwidth cap reach the agent with it, through a
// serialized frame: a migrate with its cap, and the set-bandwidth command that changes the cap
// of a running migration (0 lifts it).
TEST(WireConvertTest, BandwidthCommandsRoundTrip) {
  auto roundTrip = [](const AgentCommand& cmd) {
    capnp::MallocMessageBuilder b;
    toWire(cmd, b.initRoot<wire::AgentCommand>());
    auto words = capnp::messageToFlatArray(b);
    return words;
  };
  AgentCommand set;
  set.id = 41;
  set.kind = AgentCommand::Kind::kSetBandwidth;
  set.host = "src";
  set.vmId = "v0";
  set.maxBandwidthBytesPerSec = 3.125e7;
  auto words = roundTrip(set);
  capnp::FlatArrayMessageReader reader(words.asPtr());
  auto in = reader.getRoot<wire::AgentCommand>();
  EXPECT_EQ(in.getCommandId(), 41u);
  ASSERT_EQ(in.which(), wire::AgentCommand::SET_MIGRATION_BANDWIDTH);
  EXPECT_EQ(std::string(in.getSetMigrationBandwidth().getVmId().cStr()), "v0");
  EXPECT_EQ(in.getSetMigrationBandwidth().getMaxBandwidthBytesPerSec(), 3.125e7);
  EXPECT_STREQ(commandKindName(set.kind), "set-bandwidth");

  AgentCommand migrate;
  migrate.id = 42;
  migrate.kind = AgentCommand::Kind::kMigrate;
  migrate.vmId = "v1";
  migrate.destinationHost = "dst";
  migrate.maxBandwidthBytesPerSec = 6.25e7;
  auto migrateWords = roundTrip(migrate);
  capnp::FlatArrayMessageReader migrateReader(migrateWords.asPtr());
  auto m = migrateReader.getRoot<wire::AgentCommand>();
  ASSERT_EQ(m.which(), wire::AgentCommand::MIGRATE);
  EXPECT_EQ(m.getMigrate().getMaxBandwidthBytesPerSec(), 6.25e7);
}

// Ensures park / unpark commands reach the agent as their own kinds, and that a parked VM and a
// park's observation (mode suspend, save and restore phases) survive the wire.
TEST(WireConvertTest, ParkCommandsParkedVmsAndTheirObservationsRoundTrip) {
  for (auto kind : {AgentCommand::Kind::kPark, AgentCommand::Kind::kUnpark}) {
    AgentCommand cmd;
    cmd.id = 42;
    cmd.kind = kind;
    cmd.vmId = "v7";
    capnp::MallocMessageBuilder b;
    toWire(cmd, b.initRoot<wire::AgentCommand>());
    auto r = b.getRoot<wire::AgentCommand>().asReader();
    EXPECT_EQ(r.getCommandId(), 42u);
    if (kind == AgentCommand::Kind::kPark) {
      ASSERT_EQ(r.which(), wire::AgentCommand::PARK);
      EXPECT_EQ(std::string(r.getPark().cStr()), "v7");
    } else {
      ASSERT_EQ(r.which(), wire::AgentCommand::UNPARK);
      EXPECT_EQ(std::string(r.getUnpark().cStr()), "v7");
    }
  }
  EXPECT_STREQ(commandKindName(AgentCommand::Kind::kPark), "park");
  EXPECT_STREQ(commandKindName(AgentCommand::Kind::kUnpark), "unpark");

  VmRecord v;
  v.id = "v7";
  v.state = VmState::kParked;
  v.stateFile = "/var/lib/vrm/park/v7.state";
  capnp::MallocMessageBuilder vb;
  toWire(v, vb.initRoot<wire::VmInfo>());
  VmRecord back = fromWire(vb.getRoot<wire::VmInfo>().asReader());
  EXPECT_EQ(back.state, VmState::kParked);
  EXPECT_EQ(back.stateFile, v.stateFile);

  capnp::MallocMessageBuilder rb;
  auto res = rb.initRoot<wire::CommandResult>();
  res.setCommandId(9);
  auto m = res.initMigrated();
  m.setVmId("v7");
  m.setFromHost("h1");
  m.setToHost("h1");
  m.setMode(wire::MigrationMode::SUSPEND);
  m.setTransferredBytes(123);
  m.setSaveNs(2000);
  m.setRestoreNs(0);
  AgentResult ar = fromWire(res.asReader());
  ASSERT_TRUE(ar.migrated.has_value());
  EXPECT_EQ(ar.migrated->mode, MoveMode::kSuspend);
  EXPECT_EQ(ar.migrated->saveNs, 2000);
  EXPECT_EQ(ar.migrated->transferredBytes, 123u);
  EXPECT_EQ(ar.migrated->fromHost, ar.migrated->toHost);
}

}  // namespace
}  // namespace vrm::protocol

// How vrmd acts on guests its agents report lost (issue 13 item 2: a guest that died while its
// agent was down, or whose QEMU exited under a running one): once per guest, with an event
// naming the VM and the reason; a clone lost after the reservation is ready leaves it at risk
// with the others running, one lost before fails it; the lost guest's unanswered commands fail.
// Also: a handle set from the inventory after a restart of vrmd mid-clone is the agent's.

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "manager_fixture.h"

namespace vrm::manager::testing {
namespace {

class LostVmTest : public ManagerFixture {
 protected:
  void SetUp() override {
    startManager({bmiTemplate()});
    agents_->addHost("node1", 16, 64 * kGiB, {FakeAgents::vm("a1", 8 * kGiB)});
    agents_->addHost("node2", 16, 64 * kGiB, {FakeAgents::vm("b1", 4 * kGiB)});
  }

  // node2 dedicated for two hours from two hours on: b1 moves to node1, one clone on node2.
  Reservation bookNode2() {
    auto req = dedicated(2 * kHour, 2 * kHour, 0);
    req.hostNames = {"node2"};
    auto r = manager_->submit(req);
    EXPECT_TRUE(r.isOk() && r->state == ReservationState::kAdmitted);
    return *r;
  }

  // node2's agent restarts and re-attaches `vm` after all: listed again, nothing reported lost
  // (a new agent process knows only what it found).
  void relist(const VmRecord& vm) {
    agents_->lost.erase("node2");
    agents_->inventory_["node2"].push_back(vm);
    ASSERT_TRUE(manager_
                    ->onRegister(agents_->hosts_["node2"], agents_->inventory_["node2"],
                                 agents_->lostOn("node2"))
                    .isOk());
    agents_->pump();
  }

  VmRecord listedOnNode2(const std::string& vmId) {
    for (const VmRecord& v : agents_->inventory_["node2"]) {
      if (v.id == vmId) return v;
    }
    ADD_FAILURE() << vmId << " is not on node2";
    return {};
  }

  bool destroySent(const std::string& vmId) const {
    return std::any_of(agents_->log.begin(), agents_->log.end(), [&](const AgentCommand& c) {
      return c.kind == AgentCommand::Kind::kDestroy && c.vmId == vmId;
    });
  }

  // node2's agent lost `vmId`: gone from its inventory, listed as lost from now on.
  void lose(const std::string& vmId, VmState lastState, const std::string& reason) {
    auto& inv = agents_->inventory_["node2"];
    auto it = std::find_if(inv.begin(), inv.end(), [&](const VmRecord& v) { return v.id == vmId; });
    LostVm lost;
    lost.vmId = vmId;
    lost.reservationId = it == inv.end() ? "" : it->reservationId;
    lost.lastState = lastState;
    lost.reason = reason;
    lost.lostAtNs = clock_.now();
    if (it != inv.end()) inv.erase(it);
    agents_->lost["node2"].push_back(lost);
  }

  std::size_t eventsWith(const std::string& id, const std::string& text) const {
    const auto r = manager_->get(id);
    return std::count_if(r->events.begin(), r->events.end(), [&](const ReservationEvent& e) {
      return e.message.find(text) != std::string::npos;
    });
  }
};

// A clone lost during the window: one event naming it and the reason (however often the agent
// repeats it, also to a restarted vrmd), the reservation at risk but active (its other clones
// would be destroyed by a failure), no handle for it, and an end that does not wait for it.
TEST_F(LostVmTest, CloneLostDuringTheWindowLeavesTheReservationAtRisk) {
  const Reservation booked = bookNode2();
  runUntil(booked.request.startNs + kNsPerSec, kNsPerSec);
  ASSERT_EQ(manager_->get(booked.id)->state, ReservationState::kActive);
  const std::string clone = manager_->get(booked.id)->clones.at(0).vmId;

  lose(clone, VmState::kRunning, "its qemu was killed by signal 9 while no agent watched it");
  runUntil(clock_.now() + 30 * kNsPerSec, kNsPerSec);  // 30 heartbeats repeating it

  const auto r = manager_->get(booked.id);
  EXPECT_EQ(r->state, ReservationState::kActive);
  EXPECT_EQ(r->clones[0].state, CloneState::kFailed);
  EXPECT_TRUE(r->atRisk);
  EXPECT_NE(r->riskReason.find(clone), std::string::npos) << r->riskReason;
  EXPECT_NE(r->riskReason.find("0 of 1 clones"), std::string::npos) << r->riskReason;
  EXPECT_EQ(eventsWith(booked.id, "lost: host node2 lost VM " + clone +
                                      " (running): its qemu was killed by signal 9"),
            1u);
  EXPECT_EQ(eventsWith(booked.id, "at-risk: clone " + clone), 1u);

  // A restarted vrmd hears of it again (the agent repeats it on registering): nothing new.
  Manager restarted(clock_, *store_, *planner_, templates_);
  ASSERT_TRUE(restarted.recover().isOk());
  for (auto& [name, h] : agents_->hosts_) {
    ASSERT_TRUE(restarted.onRegister(h, agents_->inventory_[name], agents_->lostOn(name)).isOk());
  }
  restarted.tick();
  const auto again = restarted.get(booked.id);
  EXPECT_EQ(again->events.size(), r->events.size());

  manager_->tick();
  runUntil(booked.request.endNs + 10 * kNsPerSec, kNsPerSec);
  EXPECT_EQ(manager_->get(booked.id)->state, ReservationState::kDone);
  for (const auto& c : agents_->log) {
    EXPECT_FALSE(c.kind == AgentCommand::Kind::kDestroy && c.vmId == clone)
        << "nothing to destroy: the guest is gone";
  }
}

// A clone lost while it boots: its clone command fails at once (not sent again, not waited
// for) and so does the reservation, with a reason naming the VM and what happened.
TEST_F(LostVmTest, CloneLostWhileBootingFailsTheReservation) {
  const Reservation booked = bookNode2();
  agents_->hold = {AgentCommand::Kind::kClone};
  runUntil(booked.request.startNs - 30 * kNsPerSec, kNsPerSec);
  ASSERT_EQ(manager_->get(booked.id)->state, ReservationState::kPreparing);
  ASSERT_EQ(agents_->held.size(), 1u);
  const AgentCommand cloneCmd = agents_->held[0];

  // The agent had begun the clone (listed cloning); then its QEMU died.
  VmRecord booting;
  booting.id = cloneCmd.vmId;
  booting.reservationId = booked.id;
  booting.state = VmState::kCloning;
  agents_->inventory_["node2"].push_back(booting);
  agents_->heartbeat();
  lose(cloneCmd.vmId, VmState::kCloning, "its qemu exited with status 1");
  agents_->heartbeat();

  auto r = manager_->get(booked.id);
  EXPECT_EQ(r->state, ReservationState::kFailed);
  EXPECT_NE(r->reason.find("clone " + cloneCmd.vmId + " on node2"), std::string::npos) << r->reason;
  EXPECT_NE(r->reason.find("its qemu exited with status 1"), std::string::npos) << r->reason;

  // The command is settled: a late answer changes nothing, a re-registration resends nothing.
  AgentResult late;
  late.commandId = cloneCmd.id;
  manager_->onResult("node2", late);
  agents_->hold.clear();
  agents_->log.clear();
  ASSERT_TRUE(manager_
                  ->onRegister(agents_->hosts_["node2"], agents_->inventory_["node2"],
                               agents_->lostOn("node2"))
                  .isOk());
  agents_->pump();
  for (const auto& c : agents_->log) EXPECT_NE(c.id, cloneCmd.id) << "clone sent again";
  EXPECT_EQ(manager_->get(booked.id)->state, ReservationState::kFailed);
}

// A displaced VM lost on its source while it migrates: the migration fails (the copy on the
// destination never finished, so it is dropped, not committed) and the reservation says why.
TEST_F(LostVmTest, VmLostMidMigrationIsNotCommittedAtItsDestination) {
  const Reservation booked = bookNode2();
  agents_->hold = {AgentCommand::Kind::kMigrate};
  runUntil(booked.plan.latestSafeStartNs + kNsPerSec, kNsPerSec);
  ASSERT_EQ(agents_->held.size(), 1u);
  ASSERT_EQ(agents_->held[0].vmId, "b1");
  ASSERT_EQ(agents_->count("b1"), 2u);  // on node2, and prepared as incoming on node1

  lose("b1", VmState::kMigratingOut, "its qemu exited (killed by signal 9)");
  agents_->log.clear();
  agents_->heartbeat();
  agents_->pump();

  EXPECT_EQ(agents_->count("b1"), 0u) << "the incoming copy on node1 is dropped";
  for (const auto& c : agents_->log) {
    EXPECT_FALSE(c.kind == AgentCommand::Kind::kFinishIncoming && c.commit)
        << "a migration whose source was lost is never committed";
  }
  EXPECT_EQ(eventsWith(booked.id, "lost: host node2 lost VM b1 (migrating-out)"), 1u);
  const auto r = manager_->get(booked.id);
  EXPECT_EQ(r->state, ReservationState::kFailed);
  EXPECT_NE(r->reason.find("b1"), std::string::npos) << r->reason;
}

// After a restart of vrmd mid-clone, the clone's handle comes from its agent's inventory
// (address, port, account, where they come from), not a guess.
TEST_F(LostVmTest, HandleSetFromTheInventoryAfterARestartIsTheAgents) {
  const Reservation booked = bookNode2();
  agents_->hold = {AgentCommand::Kind::kClone};
  runUntil(booked.request.startNs - 30 * kNsPerSec, kNsPerSec);
  ASSERT_EQ(agents_->held.size(), 1u);
  // The agent made the clone (its record, listed as being made while held, is now running);
  // vrmd died before its answer.
  auto& listed = agents_->inventory_["node2"];
  const auto clone = std::find_if(listed.begin(), listed.end(),
                                  [&](const VmRecord& v) { return v.id == agents_->held[0].vmId; });
  ASSERT_NE(clone, listed.end());
  VmRecord& made = *clone;
  made.state = VmState::kRunning;
  made.address = "127.0.0.1";
  made.sshPort = 40022;
  made.account = "owner";
  made.addressSource = "user-mode network: host node2 forwards 127.0.0.1:40022 to port 22";

  Manager restarted(clock_, *store_, *planner_, templates_);
  ASSERT_TRUE(restarted.recover().isOk());
  FakeAgents again(restarted);
  again.inventory_ = agents_->inventory_;
  for (auto& [name, h] : agents_->hosts_) {
    ASSERT_TRUE(restarted.onRegister(h, again.inventory_[name]).isOk());
  }
  for (int i = 0; i < 60 && restarted.get(booked.id)->state != ReservationState::kReady; ++i) {
    clock_.advance(kNsPerSec);
    again.heartbeat();
    restarted.tick();
    again.pump();
  }
  const auto r = restarted.get(booked.id);
  ASSERT_EQ(r->state, ReservationState::kReady);
  const ClonePlacement& c = r->clones.at(0);
  EXPECT_EQ(c.address, "127.0.0.1");
  EXPECT_EQ(c.port, 40022u);
  EXPECT_EQ(c.account, "owner");
  EXPECT_EQ(c.addressSource, made.addressSource);
  EXPECT_EQ(c.sshCommand(), "ssh -p 40022 owner@127.0.0.1");
}

// A clone's answer sets vrmd's inventory record of it at once, handle and all (vrmctl vms shows
// it before the next heartbeat), also where a heartbeat listed the clone as being made.
TEST_F(LostVmTest, AnsweredCloneIsListedWithItsHandleAtOnce) {
  const Reservation booked = bookNode2();
  agents_->hold = {AgentCommand::Kind::kClone};
  runUntil(booked.request.startNs - 30 * kNsPerSec, kNsPerSec);
  ASSERT_EQ(agents_->held.size(), 1u);
  const AgentCommand cloneCmd = agents_->held[0];
  auto listed = [&]() -> std::optional<VmRecord> {
    for (const VmRecord& v : manager_->vms()) {
      if (v.id == cloneCmd.vmId) return v;
    }
    return std::nullopt;
  };
  ASSERT_TRUE(listed()) << "listed as being made by node2's heartbeats";
  EXPECT_EQ(listed()->state, VmState::kCloning);

  AgentResult answer;
  answer.commandId = cloneCmd.id;
  ClonePlacement made;
  made.vmId = cloneCmd.vmId;
  made.host = "node2";
  made.address = "127.0.0.1";
  made.account = "owner";
  made.port = 40022;
  made.addressSource = "user-mode network: host node2 forwards 127.0.0.1:40022 to port 22";
  answer.cloned = made;
  manager_->onResult("node2", answer);  // no heartbeat since

  const auto vm = listed();
  ASSERT_TRUE(vm);
  EXPECT_EQ(vm->state, VmState::kRunning);
  EXPECT_EQ(vm->address, "127.0.0.1");
  EXPECT_EQ(vm->account, "owner");
  EXPECT_EQ(vm->sshPort, 40022u);
  EXPECT_EQ(vm->addressSource, made.addressSource);
  EXPECT_EQ(manager_->get(booked.id)->clones.at(0).sshCommand(), "ssh -p 40022 owner@127.0.0.1");
}

// A clone whose answer never came, settled at its command's deadline from the agent's inventory
// (expireClone), gets the agent's handle: account, port and where they come from, not a guess.
TEST_F(LostVmTest, LateCloneSettledFromTheInventoryGetsTheAgentsHandle) {
  ManagerOptions options;
  options.slowCommandTimeoutNs = 60 * kNsPerSec;
  startManager({bmiTemplate()}, options);
  agents_->addHost("node1", 16, 64 * kGiB, {FakeAgents::vm("a1", 8 * kGiB)});
  agents_->addHost("node2", 16, 64 * kGiB, {FakeAgents::vm("b1", 4 * kGiB)});
  const Reservation booked = bookNode2();
  agents_->hold = {AgentCommand::Kind::kClone};
  runUntil(booked.request.startNs - 30 * kNsPerSec, kNsPerSec);
  ASSERT_EQ(agents_->held.size(), 1u);
  const std::string cloneId = agents_->held[0].vmId;
  // The agent made the clone and lists it with its handle; its answer is lost.
  auto& inv = agents_->inventory_["node2"];
  auto made =
      std::find_if(inv.begin(), inv.end(), [&](const VmRecord& v) { return v.id == cloneId; });
  ASSERT_NE(made, inv.end());
  made->state = VmState::kRunning;
  made->address = "127.0.0.1";
  made->sshPort = 40023;
  made->account = "owner";
  made->addressSource = "user-mode network: host node2 forwards 127.0.0.1:40023 to port 22";
  const std::string source = made->addressSource;

  runUntilReady(booked.id, 600 * kNsPerSec);
  const auto r = manager_->get(booked.id);
  ASSERT_TRUE(r->state == ReservationState::kReady || r->state == ReservationState::kActive)
      << stateName(r->state) << ": " << r->reason;
  EXPECT_EQ(eventsWith(booked.id, "failed"), 0u);
  const ClonePlacement& c = r->clones.at(0);
  EXPECT_EQ(c.address, "127.0.0.1");
  EXPECT_EQ(c.port, 40023u);
  EXPECT_EQ(c.account, "owner");
  EXPECT_EQ(c.addressSource, source);
  EXPECT_EQ(c.sshCommand(), "ssh -p 40023 owner@127.0.0.1");
}

// A clone an agent restart could not re-attach ("left running, not listed") is lost; when a later
// agent lists it again it is found: running for its owner again (one event, however often it is
// listed), booked and destroyed at the end of the window like any other.
TEST_F(LostVmTest, LostCloneListedAgainRunsAgain) {
  const Reservation booked = bookNode2();
  runUntil(booked.request.startNs + kNsPerSec, kNsPerSec);
  ASSERT_EQ(manager_->get(booked.id)->state, ReservationState::kActive);
  const std::string clone = manager_->get(booked.id)->clones.at(0).vmId;
  const VmRecord record = listedOnNode2(clone);

  lose(clone, VmState::kRunning,
       "qemu pid 4242 does not answer on /run/vrm/c.qmp; left running, not listed");
  runUntil(clock_.now() + 5 * kNsPerSec, kNsPerSec);
  ASSERT_EQ(manager_->get(booked.id)->clones[0].state, CloneState::kFailed);

  agents_->log.clear();
  relist(record);
  runUntil(clock_.now() + 10 * kNsPerSec, kNsPerSec);  // 10 heartbeats listing it
  const auto r = manager_->get(booked.id);
  EXPECT_EQ(r->state, ReservationState::kActive);
  EXPECT_EQ(r->clones[0].state, CloneState::kRunning);
  EXPECT_EQ(r->clones[0].address, record.address);
  EXPECT_EQ(eventsWith(booked.id, "found: host node2 lists VM " + clone +
                                      " again (running), reported lost before; it runs again"),
            1u);
  EXPECT_TRUE(r->atRisk) << "at-risk stays raised, as a record";
  EXPECT_FALSE(destroySent(clone));

  runUntil(booked.request.endNs + 10 * kNsPerSec, kNsPerSec);
  EXPECT_EQ(manager_->get(booked.id)->state, ReservationState::kDone);
  EXPECT_TRUE(destroySent(clone)) << "destroyed at the end of the window";
  EXPECT_EQ(agents_->count(clone), 0u);
}

// A clone lost while it booted failed its reservation; listed again later, it is a leftover
// nobody owns: found (an event) and destroyed.
TEST_F(LostVmTest, LostCloneListedAgainAfterItsReservationFailedIsDestroyed) {
  const Reservation booked = bookNode2();
  agents_->hold = {AgentCommand::Kind::kClone};
  runUntil(booked.request.startNs - 30 * kNsPerSec, kNsPerSec);
  ASSERT_EQ(agents_->held.size(), 1u);
  const std::string clone = agents_->held[0].vmId;
  VmRecord record = listedOnNode2(clone);  // listed as being made
  lose(clone, VmState::kCloning,
       "qemu pid 4242 does not answer on /run/vrm/c.qmp; left running, not listed");
  agents_->heartbeat();
  ASSERT_EQ(manager_->get(booked.id)->state, ReservationState::kFailed);
  agents_->hold.clear();
  agents_->held.clear();

  agents_->log.clear();
  record.state = VmState::kRunning;  // it finished booting while no agent watched
  relist(record);
  runUntil(clock_.now() + 10 * kNsPerSec, kNsPerSec);
  EXPECT_EQ(manager_->get(booked.id)->state, ReservationState::kFailed);
  EXPECT_EQ(eventsWith(booked.id, "found: host node2 lists VM " + clone +
                                      " again (running), reported lost before; the reservation "
                                      "has ended: destroying it"),
            1u);
  EXPECT_TRUE(destroySent(clone));
  EXPECT_EQ(agents_->count(clone), 0u);
  EXPECT_EQ(manager_->get(booked.id)->clones[0].state, CloneState::kDestroyed);
}

}  // namespace
}  // namespace vrm::manager::testing

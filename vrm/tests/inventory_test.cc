#include "vrm/manager/inventory.h"

#include <gtest/gtest.h>

namespace vrm::manager {
namespace {

constexpr TimeNs kTimeout = 30 * kNsPerSec;

HostRecord host(const std::string& name) {
  HostRecord h;
  h.name = name;
  h.cpuCores = 8;
  h.memoryBytes = 16ull << 30;
  h.nicBandwidthBytesPerSec = 125e6;
  return h;
}

VmRecord vm(const std::string& id, VmState state = VmState::kRunning) {
  VmRecord v;
  v.id = id;
  v.cpuCores = 2;
  v.memoryBytes = v.nonzeroMemoryBytes = 2ull << 30;
  v.state = state;
  return v;
}

// A registration is validated, makes the host reachable and ready, sets each VM's host, and
// says the caller must rebuild the host's bookings, resend its commands and check its VMs.
TEST(InventoryTest, RegistrationReplacesTheHostAndAsksForEverything) {
  Inventory inv(kTimeout);
  EXPECT_EQ(inv.registerHost(host(""), {}, 1).status().code(), StatusCode::kInvalidArgument);
  HostRecord empty = host("a");
  empty.nicBandwidthBytesPerSec = 0;
  EXPECT_EQ(inv.registerHost(empty, {}, 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(inv.hosts().empty());

  Result<HostChange> c = inv.registerHost(host("a"), {vm("v1"), vm("v2")}, 5);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->host, "a");
  EXPECT_TRUE(c->bookingsStale);
  EXPECT_TRUE(c->reported);
  EXPECT_TRUE(c->cameBack);
  EXPECT_FALSE(c->wentDown);
  ASSERT_NE(inv.host("a"), nullptr);
  EXPECT_TRUE(inv.host("a")->reachable);
  EXPECT_EQ(inv.host("a")->lastHeartbeatNs, 5);
  EXPECT_TRUE(inv.ready("a"));
  ASSERT_EQ(inv.vmsOn("a").size(), 2u);
  EXPECT_EQ(inv.vmsOn("a")[1].host, "a");

  // Registering again replaces the VM list.
  ASSERT_TRUE(inv.registerHost(host("a"), {vm("v3")}, 6));
  ASSERT_EQ(inv.allVms().size(), 1u);
  EXPECT_EQ(inv.allVms()[0].id, "v3");
}

// A heartbeat repeating the inventory reports nothing; one that differs reports the VMs; a
// heartbeat from a host that has not registered since the start is refused.
TEST(InventoryTest, HeartbeatsReportOnlyChangedInventories) {
  Inventory inv(kTimeout);
  EXPECT_EQ(inv.heartbeat("a", {}, 1).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(inv.registerHost(host("a"), {vm("v1")}, 1));

  Result<HostChange> same = inv.heartbeat("a", {vm("v1")}, 2);
  ASSERT_TRUE(same);
  EXPECT_FALSE(same->bookingsStale || same->reported || same->cameBack || same->wentDown);
  EXPECT_EQ(inv.host("a")->lastHeartbeatNs, 2);

  Result<HostChange> changed = inv.heartbeat("a", {vm("v1", VmState::kParked)}, 3);
  ASSERT_TRUE(changed);
  EXPECT_TRUE(changed->bookingsStale);
  EXPECT_TRUE(changed->reported);
  EXPECT_FALSE(changed->cameBack);
  EXPECT_EQ(inv.findVm("a", "v1")->state, VmState::kParked);
}

// A host silent for longer than the timeout (judged where the caller has read every frame)
// goes down once; its next heartbeat brings it back and asks for its commands again.
TEST(InventoryTest, SilentHostGoesDownAndComesBack) {
  Inventory inv(kTimeout);
  ASSERT_TRUE(inv.registerHost(host("a"), {}, 0));
  ASSERT_TRUE(inv.registerHost(host("b"), {}, 0));
  ASSERT_TRUE(inv.heartbeat("b", {}, 20 * kNsPerSec));
  EXPECT_EQ(inv.nextSilenceCheckNs(), kTimeout + 1);

  EXPECT_TRUE(inv.expireSilent(kTimeout, kTimeout).empty());  // not older than the timeout
  // Frames read only until 10 s: a's heartbeat may still be queued, so a is not judged yet.
  EXPECT_TRUE(inv.expireSilent(40 * kNsPerSec, 10 * kNsPerSec).empty());
  std::vector<HostChange> lost = inv.expireSilent(40 * kNsPerSec, 40 * kNsPerSec);
  ASSERT_EQ(lost.size(), 1u);
  EXPECT_EQ(lost[0].host, "a");
  EXPECT_TRUE(lost[0].wentDown);
  EXPECT_FALSE(lost[0].bookingsStale);  // reachability is not booked
  EXPECT_FALSE(inv.host("a")->reachable);
  EXPECT_FALSE(inv.ready("a"));
  EXPECT_TRUE(inv.expireSilent(41 * kNsPerSec, 41 * kNsPerSec).empty());  // once
  EXPECT_EQ(inv.nextSilenceCheckNs(), 20 * kNsPerSec + kTimeout + 1);     // b's

  Result<HostChange> back = inv.heartbeat("a", {}, 45 * kNsPerSec);
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->cameBack);
  EXPECT_TRUE(inv.host("a")->reachable);
  EXPECT_TRUE(inv.ready("a"));
}

// A failed send disconnects the host until it speaks again; only when it is the agent that is
// gone does the host go down. A host that cannot receive goes down without a disconnection.
TEST(InventoryTest, FailedSendsDisconnectUntilTheAgentSpeaks) {
  Inventory inv(kTimeout);
  ASSERT_TRUE(inv.registerHost(host("a"), {}, 0));

  HostChange drop = inv.sendFailed("a", "gone", /*unreachable=*/false);
  EXPECT_FALSE(drop.wentDown);
  EXPECT_TRUE(inv.host("a")->reachable);
  EXPECT_FALSE(inv.ready("a"));
  Result<HostChange> spoke = inv.heartbeat("a", {}, 1);
  ASSERT_TRUE(spoke);
  EXPECT_TRUE(spoke->cameBack);
  EXPECT_TRUE(inv.ready("a"));

  HostChange down = inv.sendFailed("a", "gone", /*unreachable=*/true);
  EXPECT_TRUE(down.wentDown);
  EXPECT_TRUE(down.bookingsStale);
  EXPECT_FALSE(inv.host("a")->reachable);
  EXPECT_FALSE(inv.sendFailed("a", "gone", true).wentDown);  // already down

  ASSERT_TRUE(inv.registerHost(host("a"), {}, 2));
  HostChange refused = inv.markUnreachable("a");
  EXPECT_TRUE(refused.wentDown);
  EXPECT_FALSE(refused.bookingsStale);
  EXPECT_FALSE(inv.markUnreachable("a").wentDown);
  EXPECT_FALSE(inv.markUnreachable("nobody").wentDown);
}

// vrmd's own actions change its view at once and ask for the hosts' bookings to be rebuilt;
// a migration replaces the destination's incoming placeholder.
TEST(InventoryTest, OwnActionsUpdateTheViewAtOnce) {
  Inventory inv(kTimeout);
  ASSERT_TRUE(inv.registerHost(host("a"), {vm("v1")}, 0));
  ASSERT_TRUE(inv.registerHost(host("b"), {vm("v1", VmState::kIncoming)}, 0));

  EXPECT_TRUE(inv.moveVm("nope", "a", "b").empty());
  std::vector<HostChange> moved = inv.moveVm("v1", "a", "b");
  ASSERT_EQ(moved.size(), 2u);
  EXPECT_EQ(moved[0].host, "a");
  EXPECT_EQ(moved[1].host, "b");
  EXPECT_TRUE(moved[0].bookingsStale && moved[1].bookingsStale);
  EXPECT_FALSE(moved[0].reported || moved[1].reported);
  EXPECT_TRUE(inv.vmsOn("a").empty());
  ASSERT_EQ(inv.vmsOn("b").size(), 1u);
  EXPECT_EQ(inv.vmsOn("b")[0].host, "b");
  EXPECT_EQ(inv.vmsOn("b")[0].state, VmState::kRunning);

  VmRecord parked = vm("v1", VmState::kParked);
  parked.stateFile = "/var/lib/v1.state";
  ASSERT_TRUE(inv.registerHost(host("b"), {parked}, 1));
  EXPECT_TRUE(inv.setVmState("b", "v1", VmState::kRunning, /*clearStateFile=*/true).bookingsStale);
  EXPECT_EQ(inv.findVm("b", "v1")->state, VmState::kRunning);
  EXPECT_TRUE(inv.findVm("b", "v1")->stateFile.empty());

  VmRecord clone = vm("c1");
  clone.host = "a";
  clone.reservationId = "r1";
  EXPECT_TRUE(inv.addVm(clone).bookingsStale);
  EXPECT_TRUE(inv.addVm(clone).bookingsStale);  // still asks: it goes with a clone answered
  EXPECT_EQ(inv.vmsOn("a").size(), 1u);         // but lists it once
  EXPECT_TRUE(inv.dropVm("a", "c1").bookingsStale);
  EXPECT_EQ(inv.findVm("a", "c1"), nullptr);
  EXPECT_TRUE(inv.vmsOn("nobody").empty());
}

// Pointers into hosts() stay valid as hosts are added (the planner index keeps them).
TEST(InventoryTest, HostRecordsStayWhereTheyAre) {
  Inventory inv(kTimeout);
  ASSERT_TRUE(inv.registerHost(host("m"), {}, 0));
  const HostRecord* m = inv.host("m");
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(inv.registerHost(host("h" + std::to_string(i)), {}, 0));
  ASSERT_TRUE(inv.registerHost(host("m"), {}, 1));
  EXPECT_EQ(inv.host("m"), m);
  EXPECT_EQ(m->lastHeartbeatNs, 1);
}

LostVm lostVm(const std::string& id, TimeNs atNs, const std::string& reason = "its qemu exited") {
  LostVm v;
  v.vmId = id;
  v.lastState = VmState::kRunning;
  v.reason = reason;
  v.lostAtNs = atNs;
  return v;
}

std::vector<std::string> idsOf(const std::vector<LostVm>& lost) {
  std::vector<std::string> ids;
  for (const auto& v : lost) ids.push_back(v.vmId + "@" + std::to_string(v.lostAtNs));
  return ids;
}

// Agents repeat every guest they lost in each report: each is reported once, in the agent's
// order, also when its registration repeats it; one the agent no longer lists is forgotten;
// a new inventory (a restarted vrmd) reports each once more.
TEST(InventoryTest, LostGuestsAreReportedOncePerGuest) {
  Inventory inv(kTimeout);
  Result<HostChange> c = inv.registerHost(host("a"), {vm("v2")}, 1, {lostVm("v1", 0)});
  ASSERT_TRUE(c);
  EXPECT_EQ(idsOf(c->lost), std::vector<std::string>{"v1@0"});
  c = inv.heartbeat("a", {vm("v2")}, 2, {lostVm("v1", 0)});
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->lost.empty());
  EXPECT_FALSE(c->bookingsStale) << "the VMs did not change";
  // Same VM lost again later (re-cloned, then lost), a second one, and a duplicate.
  c = inv.heartbeat("a", {}, 3,
                    {lostVm("v1", 0), lostVm("v1", 3), lostVm("v2", 3), lostVm("v2", 3)});
  ASSERT_TRUE(c);
  EXPECT_EQ(idsOf(c->lost), (std::vector<std::string>{"v1@3", "v2@3"}));
  // An agent restart: what it reported before is gone from its list, and comes back only as a
  // new loss (another time or reason).
  c = inv.registerHost(host("a"), {}, 4, {lostVm("v2", 0, "its qemu had exited")});
  ASSERT_TRUE(c);
  EXPECT_EQ(idsOf(c->lost), std::vector<std::string>{"v2@0"});
  c = inv.registerHost(host("a"), {}, 5, {lostVm("v2", 0, "its qemu had exited")});
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->lost.empty()) << "a repeated registration";
  // A heartbeat refused (host not registered) reports nothing.
  EXPECT_EQ(inv.heartbeat("b", {}, 5, {lostVm("x", 1)}).status().code(), StatusCode::kNotFound);

  Inventory restarted(kTimeout);
  c = restarted.registerHost(host("a"), {}, 6, {lostVm("v2", 0, "its qemu had exited")});
  ASSERT_TRUE(c);
  EXPECT_EQ(idsOf(c->lost), std::vector<std::string>{"v2@0"});
}

// A clone's handle in the inventory (account, ssh port, address source) is part of what a
// heartbeat reports: vrmd's view takes it when it changes.
TEST(InventoryTest, HandleFieldsAreReported) {
  Inventory inv(kTimeout);
  ASSERT_TRUE(inv.registerHost(host("a"), {vm("c1")}, 1));
  VmRecord withHandle = vm("c1");
  withHandle.account = "owner";
  withHandle.sshPort = 2222;
  withHandle.addressSource = "user-mode forward";
  Result<HostChange> c = inv.heartbeat("a", {withHandle}, 2);
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->reported);
  ASSERT_NE(inv.findVm("a", "c1"), nullptr);
  EXPECT_EQ(inv.findVm("a", "c1")->sshPort, 2222u);
  EXPECT_EQ(inv.findVm("a", "c1")->account, "owner");
  EXPECT_EQ(inv.findVm("a", "c1")->addressSource, "user-mode forward");
}

// A clone vrmd was told it made is listed at once with the handle its answer gave, also when a
// heartbeat listed it as being made (its measured figures stay).
TEST(InventoryTest, AnsweredCloneTakesItsAnswersHandle) {
  Inventory inv(kTimeout);
  VmRecord booting = vm("c1", VmState::kCloning);
  booting.dirtyRateBytesPerSec = 5e6;
  ASSERT_TRUE(inv.registerHost(host("a"), {booting}, 1));
  VmRecord made = vm("c1");
  made.host = "a";
  made.address = "127.0.0.1";
  made.account = "owner";
  made.sshPort = 40022;
  made.addressSource = "user-mode forward";
  inv.addVm(made);
  VmRecord fresh = made;
  fresh.id = "c2";
  inv.addVm(fresh);
  for (const std::string id : {"c1", "c2"}) {
    const VmRecord* v = inv.findVm("a", id);
    ASSERT_NE(v, nullptr) << id;
    EXPECT_EQ(v->state, VmState::kRunning) << id;
    EXPECT_EQ(v->address, "127.0.0.1") << id;
    EXPECT_EQ(v->account, "owner") << id;
    EXPECT_EQ(v->sshPort, 40022u) << id;
    EXPECT_EQ(v->addressSource, "user-mode forward") << id;
  }
  EXPECT_EQ(inv.findVm("a", "c1")->dirtyRateBytesPerSec, 5e6);
  EXPECT_EQ(inv.vmsOn("a").size(), 2u);
}

}  // namespace
}  // namespace vrm::manager

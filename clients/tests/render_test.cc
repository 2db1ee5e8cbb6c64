#include "vrm/client/render.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace vrm::client {
namespace {

Reservation sample() {
  Reservation r;
  r.id = "r7";
  r.request.owner = "lab-bmi";
  r.request.hostCount = 1;
  r.request.vmsPerHost = 1;
  r.request.startNs = 7200 * kNsPerSec;
  r.request.endNs = 14400 * kNsPerSec;
  r.request.templateName = "bmi-decoder";
  r.state = ReservationState::kReady;
  r.hosts = {"node3"};
  r.plan.strategy = "sequential";
  r.plan.model = "simple";
  r.plan.makespanNs = 20 * kNsPerSec;
  r.plan.latestSafeStartNs = 7000 * kNsPerSec;
  PlannedMove m;
  m.vmId = "web-1";
  m.fromHost = "node3";
  m.toHost = "node1";
  m.endOffsetNs = 20 * kNsPerSec;
  m.transferredBytes = 1 << 30;
  r.addMove(MovePurpose::kVacate, m).progress = {MoveState::kDone, 7000 * kNsPerSec,
                                                 7019 * kNsPerSec};
  r.clones = {{"r7-bmi-decoder-1", "node3", CloneState::kRunning, "r7.node3.sim", "vrm"}};
  r.events = {{1, ReservationState::kAdmitted, "admitted"}};
  return r;
}

// Ensures the JSON carries the fields scripts rely on, with handles only for running clones.
TEST(RenderTest, ReservationJsonHasTheContractFields) {
  auto j = nlohmann::json::parse(reservationJson(sample()));
  EXPECT_EQ(j["id"], "r7");
  EXPECT_EQ(j["state"], "ready");
  EXPECT_EQ(j["hosts"][0], "node3");
  EXPECT_EQ(j["plan"]["moves"][0]["vm"], "web-1");
  EXPECT_EQ(j["plan"]["moves"][0]["state"], "done");
  EXPECT_DOUBLE_EQ(j["plan"]["makespan_s"].get<double>(), 20.0);
  EXPECT_EQ(j["plan"]["latest_safe_start"], "1970-01-01T01:56:40Z");
  ASSERT_EQ(j["handles"].size(), 1u);
  EXPECT_EQ(j["handles"][0]["address"], "r7.node3.sim");
  EXPECT_EQ(j["events"][0]["message"], "admitted");
}

// Ensures a handle with a port carries the ssh line and where its address comes from, in both
// forms, and that a hidden handle (another owner's view, address blanked) is no handle at all.
TEST(RenderTest, HandlesCarryTheSshLineAndHiddenOnesAreOmitted) {
  Reservation r = sample();
  ClonePlacement& c = r.clones[0];
  c.address = "127.0.0.1";
  c.account = "root";
  c.port = 40022;
  c.addressSource = "user-mode forward on node3";
  auto j = nlohmann::json::parse(reservationJson(r));
  ASSERT_EQ(j["handles"].size(), 1u);
  EXPECT_EQ(j["handles"][0]["port"], 40022);
  EXPECT_EQ(j["handles"][0]["ssh"], "ssh -p 40022 root@127.0.0.1");
  EXPECT_EQ(j["handles"][0]["address_source"], "user-mode forward on node3");
  std::string text = reservationText(r, 0);
  EXPECT_NE(text.find("ssh -p 40022 root@127.0.0.1"), std::string::npos) << text;
  EXPECT_NE(text.find("address from user-mode forward on node3"), std::string::npos) << text;

  c.address.clear();  // as hideHandles() leaves it
  c.account.clear();
  c.port = 0;
  c.addressSource.clear();
  j = nlohmann::json::parse(reservationJson(r));
  EXPECT_EQ(j["handles"].size(), 0u);
  EXPECT_EQ(j["clones"].size(), 1u);
  text = reservationText(r, 0);
  EXPECT_EQ(text.find("handles"), std::string::npos) << text;
}

// Ensures the human form shows the plan table, a timeline and the handles.
TEST(RenderTest, ReservationTextShowsPlanTimelineAndHandles) {
  std::string text = reservationText(sample(), 0);
  EXPECT_NE(text.find("latest safe start"), std::string::npos);
  EXPECT_NE(text.find("web-1"), std::string::npos);
  EXPECT_NE(text.find("timeline"), std::string::npos);
  EXPECT_NE(text.find("####"), std::string::npos);
  EXPECT_NE(text.find("r7.node3.sim"), std::string::npos);
}

// Ensures a move that a re-plan of a late vacate put past the plan's makespan is drawn within
// the timeline (vrmctl show aborted on it, a negative string length, in e2e_restart under load).
TEST(RenderTest, TimelineCoversMovesReplannedPastTheMakespan) {
  Reservation r = sample();
  PlannedMove late;
  late.vmId = "db-1";
  late.startOffsetNs = 60 * kNsPerSec;  // the makespan is 20 s
  late.endOffsetNs = 80 * kNsPerSec;
  r.addMove(MovePurpose::kVacate, late);
  const std::string text = reservationText(r, 0);
  EXPECT_NE(text.find("timeline (0 .. 1m 20s)"), std::string::npos) << text;
  EXPECT_NE(text.find("db-1"), std::string::npos);
}

// Ensures vrmctl vms says how to reach a clone whose ssh has a port of its own (a qemu clone's
// forwarded port): ADDRESS is address:port in the table, ssh_port beside address in the JSON.
TEST(RenderTest, VmsShowTheAddressWithItsSshPort) {
  VmRecord forwarded;
  forwarded.id = "r7-sshmem-1";
  forwarded.host = "qa";
  forwarded.address = "127.0.0.1";
  forwarded.sshPort = 40022;
  forwarded.reservationId = "r7";
  VmRecord plain;
  plain.id = "r8-bmi-1";
  plain.host = "node3";
  plain.address = "r8-bmi-1.node3";
  VmRecord none;
  none.id = "web-1";
  none.host = "node1";
  const std::vector<VmRecord> vms = {forwarded, plain, none};
  const std::string table = vmsTable(vms);
  EXPECT_NE(table.find("ADDRESS"), std::string::npos) << table;
  EXPECT_NE(table.find(" 127.0.0.1:40022 "), std::string::npos) << table;
  EXPECT_NE(table.find(" r8-bmi-1.node3 "), std::string::npos) << table;
  EXPECT_EQ(table.find("r8-bmi-1.node3:"), std::string::npos) << table;
  const auto json = nlohmann::json::parse(vmsJson(vms, -1));
  EXPECT_EQ(json[0]["address"], "127.0.0.1");
  EXPECT_EQ(json[0]["ssh_port"], 40022);
  EXPECT_EQ(json[1]["ssh_port"], 0);
}

}  // namespace
}  // namespace vrm::client

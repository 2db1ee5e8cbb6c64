#include "usage_report.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "command_run.h"
#include "output_format.h"

namespace vrm::vrmctl {
namespace {

using nlohmann::json;

constexpr TimeNs kT0 = 1'800'000'000 * kNsPerSec;  // the window's start
constexpr TimeNs kH = 3600 * kNsPerSec;
constexpr TimeNs kS = kNsPerSec;
constexpr std::uint64_t kGiB = 1ULL << 30;

Reservation dedicated(const std::string& id, const std::string& owner,
                      std::vector<std::string> hosts, TimeNs start, TimeNs end,
                      ReservationState state) {
  Reservation r;
  r.id = id;
  r.request.owner = owner;
  r.request.startNs = start;
  r.request.endNs = end;
  r.request.hostCount = static_cast<std::uint32_t>(hosts.size());
  r.hosts = std::move(hosts);
  r.state = state;
  return r;
}

// A done vacate move off `from`, run over [start, start + actual), planned to take `predicted`.
void addDoneMove(Reservation& r, const std::string& from, TimeNs start, TimeNs actual,
                 TimeNs predicted, std::uint64_t bytes) {
  PlannedMove p;
  p.vmId = r.id + "-vm" + std::to_string(r.moves.size());
  p.fromHost = from;
  p.toHost = "elsewhere";
  p.startOffsetNs = 0;
  p.endOffsetNs = predicted;
  p.transferredBytes = bytes;
  Move& m = r.addMove(MovePurpose::kVacate, p);
  m.progress = {MoveState::kDone, start, start + actual};
}

// The fixture, over the window [kT0, kT0 + 10h):
//   r1 alice  node1+node2  [-2h, +1h)  done: 1 h inside x 2 hosts; its vacate ended before
//   r2 alice  node3        [+9h, +12h) admitted: 1 h inside; its vacate ran at +8h: 300 s for
//                          240 s predicted (+25%), 4 GiB planned
//   r3 bob    node1        [+2h, +6h)  cancelled at +3h: 1 h; vacate at +1h: 100 s for 125 s
//                          (-20%), 1 GiB
//   r4 bob    shared, 3 VMs on node2   [+4h, +5h): 3 VM-hours
//   r5 carol  rejected     [+1h, +2h)  counted, held nothing
//   r6 dave   admitted     [+20h, +21h) outside: no row
//   r7 erin   node3        [-2h, +2h)  failed at -1h, before the window: counted, 0 h
std::vector<Reservation> fixture() {
  std::vector<Reservation> rs;
  Reservation r1 =
      dedicated("r1", "alice", {"node1", "node2"}, kT0 - 2 * kH, kT0 + kH, ReservationState::kDone);
  r1.plan.makespanNs = 200 * kS;
  addDoneMove(r1, "node1", kT0 - 3 * kH, 100 * kS, 90 * kS, kGiB);
  addDoneMove(r1, "node2", kT0 - 3 * kH + 50 * kS, 200 * kS, 150 * kS, kGiB);
  rs.push_back(r1);

  Reservation r2 =
      dedicated("r2", "alice", {"node3"}, kT0 + 9 * kH, kT0 + 12 * kH, ReservationState::kAdmitted);
  r2.plan.makespanNs = 240 * kS;
  addDoneMove(r2, "node3", kT0 + 8 * kH, 300 * kS, 240 * kS, 4 * kGiB);
  rs.push_back(r2);

  Reservation r3 =
      dedicated("r3", "bob", {"node1"}, kT0 + 2 * kH, kT0 + 6 * kH, ReservationState::kCancelled);
  r3.plan.makespanNs = 125 * kS;
  addDoneMove(r3, "node1", kT0 + kH, 100 * kS, 125 * kS, kGiB);
  r3.events = {{kT0, ReservationState::kAdmitted, "admitted"},
               {kT0 + 3 * kH, ReservationState::kCancelled, "cancelled by bob"}};
  rs.push_back(r3);

  Reservation r4 =
      dedicated("r4", "bob", {"node2"}, kT0 + 4 * kH, kT0 + 5 * kH, ReservationState::kDone);
  r4.request.kind = ReservationKind::kShared;
  r4.request.vmCount = 3;
  for (int i = 0; i < 3; ++i) {
    ClonePlacement c;
    c.vmId = "r4-" + std::to_string(i);
    c.host = "node2";
    c.state = CloneState::kDestroyed;
    r4.clones.push_back(c);
  }
  rs.push_back(r4);

  rs.push_back(dedicated("r5", "carol", {}, kT0 + kH, kT0 + 2 * kH, ReservationState::kRejected));
  rs.push_back(dedicated("r6", "dave", {"node1"}, kT0 + 20 * kH, kT0 + 21 * kH,
                         ReservationState::kAdmitted));
  Reservation r7 =
      dedicated("r7", "erin", {"node3"}, kT0 - 2 * kH, kT0 + 2 * kH, ReservationState::kFailed);
  r7.events = {{kT0 - kH, ReservationState::kFailed, "host node3 failed"}};
  rs.push_back(r7);
  return rs;
}

const json* rowOf(const json& rows, const std::string& group) {
  for (const auto& row : rows) {
    if (!row["total"].get<bool>() && row["group"] == group) return &row;
  }
  return nullptr;
}

// Ensures the totals: host-hours clipped at both window edges and at a cancel or failure,
// nothing for rejected or outside reservations, VM-hours of shared ones, vacates attributed by
// when they finished, with their prediction error's mean and worst, and counts by state.
TEST(UsageReportTest, TotalsClipAtTheWindowAndAtTheEnd) {
  const json rows =
      usageReportJson(usageReport(fixture(), kT0, kT0 + 10 * kH, ReportGrouping::kNone));
  ASSERT_EQ(rows.size(), 1u) << rows.dump(2);
  const json& t = rows[0];
  EXPECT_TRUE(t["total"].get<bool>());
  EXPECT_EQ(t["by"], "all");
  EXPECT_EQ(t["from"], formatTime(kT0));
  EXPECT_EQ(t["to"], formatTime(kT0 + 10 * kH));
  EXPECT_EQ(t["reservations"], 6) << "r1..r5, r7 overlap; r6 does not";
  EXPECT_DOUBLE_EQ(t["host_hours"].get<double>(), 4.0) << "r1 2 x 1h, r2 1h, r3 1h, r7 0";
  EXPECT_DOUBLE_EQ(t["vm_hours"].get<double>(), 3.0);
  EXPECT_EQ(t["vacates"], 2) << "r2's and r3's; r1's finished before the window";
  EXPECT_DOUBLE_EQ(t["vacate_s"].get<double>(), 400);
  EXPECT_DOUBLE_EQ(t["vacate_predicted_s"].get<double>(), 365);
  EXPECT_DOUBLE_EQ(t["vacate_error_mean"].get<double>(), 0.025);
  EXPECT_DOUBLE_EQ(t["vacate_error_worst"].get<double>(), 0.25);
  EXPECT_EQ(t["vacate_moves"], 2);
  EXPECT_DOUBLE_EQ(t["vacate_move_s"].get<double>(), 400);
  EXPECT_DOUBLE_EQ(t["vacate_move_predicted_s"].get<double>(), 365);
  EXPECT_EQ(t["vacate_planned_bytes"], 5 * kGiB);
  EXPECT_EQ(t["state_done"], 2);
  EXPECT_EQ(t["state_admitted"], 1);
  EXPECT_EQ(t["state_cancelled"], 1);
  EXPECT_EQ(t["state_rejected"], 1);
  EXPECT_EQ(t["state_failed"], 1);
  EXPECT_EQ(t["state_active"], 0) << "every state has its column";
}

// Ensures --by owner and --by host split the same figures: a reservation in its owner's row, or
// in the row of each of its hosts, a move in the row of the host it left; no row for who did
// nothing in the window.
TEST(UsageReportTest, RowsByOwnerAndByHost) {
  const json owners =
      usageReportJson(usageReport(fixture(), kT0, kT0 + 10 * kH, ReportGrouping::kOwner));
  ASSERT_EQ(owners.size(), 5u) << "alice, bob, carol, erin and the total: " << owners.dump(2);
  EXPECT_EQ(rowOf(owners, "dave"), nullptr);
  const json& alice = *rowOf(owners, "alice");
  EXPECT_EQ(alice["by"], "owner");
  EXPECT_EQ(alice["reservations"], 2);
  EXPECT_DOUBLE_EQ(alice["host_hours"].get<double>(), 3.0);
  EXPECT_EQ(alice["vacates"], 1);
  EXPECT_DOUBLE_EQ(alice["vacate_error_mean"].get<double>(), 0.25);
  const json& bob = *rowOf(owners, "bob");
  EXPECT_DOUBLE_EQ(bob["host_hours"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(bob["vm_hours"].get<double>(), 3.0);
  EXPECT_DOUBLE_EQ(bob["vacate_error_worst"].get<double>(), -0.2);
  EXPECT_EQ((*rowOf(owners, "carol"))["state_rejected"], 1);
  EXPECT_TRUE((*rowOf(owners, "carol"))["vacate_error_mean"].is_null());
  EXPECT_EQ(owners.back()["reservations"], 6) << "the total as without --by";

  const json hosts =
      usageReportJson(usageReport(fixture(), kT0, kT0 + 10 * kH, ReportGrouping::kHost));
  ASSERT_EQ(hosts.size(), 4u) << hosts.dump(2);
  const json& node1 = *rowOf(hosts, "node1");
  EXPECT_EQ(node1["reservations"], 2) << "r1, r3";
  EXPECT_DOUBLE_EQ(node1["host_hours"].get<double>(), 2.0);
  EXPECT_EQ(node1["vacates"], 1);
  EXPECT_EQ(node1["vacate_moves"], 1) << "r3's; r1's left before the window";
  EXPECT_EQ(node1["vacate_planned_bytes"], kGiB);
  const json& node2 = *rowOf(hosts, "node2");
  EXPECT_DOUBLE_EQ(node2["host_hours"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(node2["vm_hours"].get<double>(), 3.0);
  const json& node3 = *rowOf(hosts, "node3");
  EXPECT_EQ(node3["reservations"], 2) << "r2, r7";
  EXPECT_DOUBLE_EQ(node3["host_hours"].get<double>(), 1.0);
  EXPECT_EQ(node3["vacate_planned_bytes"], 4 * kGiB);
  EXPECT_EQ(hosts.back()["reservations"], 6) << "the total counts r1 once";
  EXPECT_DOUBLE_EQ(hosts.back()["host_hours"].get<double>(), 4.0);
}

// Ensures a window with nothing in it is a total of zeros, errors null, and no rows.
TEST(UsageReportTest, EmptyWindowIsAllZero) {
  const json rows =
      usageReportJson(usageReport(fixture(), kT0 + 30 * kH, kT0 + 31 * kH, ReportGrouping::kOwner));
  ASSERT_EQ(rows.size(), 1u) << rows.dump(2);
  EXPECT_EQ(rows[0]["reservations"], 0);
  EXPECT_EQ(rows[0]["host_hours"], 0.0);
  EXPECT_TRUE(rows[0]["vacate_error_mean"].is_null());
  EXPECT_TRUE(rows[0]["vacate_error_worst"].is_null());
  EXPECT_EQ(usageReportJson(usageReport({}, kT0, kT0 + kH, ReportGrouping::kHost)).size(), 1u);
  const std::string text = usageReportText(usageReport({}, kT0, kT0 + kH, ReportGrouping::kHost));
  EXPECT_NE(text.find("total"), std::string::npos) << text;
}

// Ensures the text table has a header, a line per row and the total, with the figures of the JSON.
TEST(UsageReportTest, TextTableHasEveryRowAndTheTotal) {
  const std::string text =
      usageReportText(usageReport(fixture(), kT0, kT0 + 10 * kH, ReportGrouping::kOwner));
  std::vector<std::string> lines;
  for (std::size_t at = 0, nl; (nl = text.find('\n', at)) != std::string::npos; at = nl + 1) {
    lines.push_back(text.substr(at, nl - at));
  }
  ASSERT_EQ(lines.size(), 7u) << text;  // title, header, alice, bob, carol, erin, total
  EXPECT_EQ(lines[0],
            "usage from " + formatTime(kT0) + " to " + formatTime(kT0 + 10 * kH) + " by owner");
  EXPECT_EQ(lines[1].rfind("OWNER", 0), 0u) << text;
  EXPECT_EQ(lines[2].rfind("alice", 0), 0u) << text;
  EXPECT_NE(lines[2].find("+25.0%"), std::string::npos) << text;
  EXPECT_NE(lines[2].find("3.00"), std::string::npos) << text;
  EXPECT_EQ(lines[6].rfind("total", 0), 0u) << text;
  EXPECT_NE(lines[6].find("+2.5%"), std::string::npos) << text;
  EXPECT_NE(lines[6].find("cancelled=1"), std::string::npos) << text;
  std::cout << text;
}

// Ensures --by names its groupings, and refuses project (not in vrm yet) with the reason.
TEST(UsageReportTest, GroupingsAreNamed) {
  EXPECT_EQ(*reportGroupingFromName(""), ReportGrouping::kNone);
  EXPECT_EQ(*reportGroupingFromName("owner"), ReportGrouping::kOwner);
  EXPECT_EQ(*reportGroupingFromName("host"), ReportGrouping::kHost);
  auto project = reportGroupingFromName("project");
  ASSERT_FALSE(project);
  EXPECT_NE(project.status().message().find("no projects"), std::string::npos);
  EXPECT_FALSE(reportGroupingFromName("lab"));
}

std::string tempPath(const std::string& name) {
  return ::testing::TempDir() + "/usage_report_test_" + name;
}

// Ensures the report's CSV (vrmctl's -f csv formatter) is read back by Python's csv module and
// its JSON by Python's json module with exactly the report's values, an owner with a comma,
// quotes and a newline in its name included.
TEST(UsageReportTest, CsvAndJsonAreReadBackByPython) {
  auto rs = fixture();
  rs[0].request.owner = rs[1].request.owner = "alice, \"the\" lab\nsecond line";
  const json rows = usageReportJson(usageReport(rs, kT0, kT0 + 10 * kH, ReportGrouping::kOwner));
  auto csv = formatOutput(rows, OutputFormat::kCsv, {});
  ASSERT_TRUE(csv) << csv.status().toString();
  std::ofstream(tempPath("report.csv"), std::ios::binary) << *csv;
  std::ofstream(tempPath("report.json"), std::ios::binary) << rows.dump(2);
  const std::string py =
      std::string(VRM_DEBIAN_PYTHON3) + " -c '" +
      "import csv, json, sys\n"
      "rows = list(csv.DictReader(open(sys.argv[1], newline=\"\")))\n"
      "print(json.dumps({\"csv\": rows, \"json\": json.load(open(sys.argv[2]))}))"
      "' " +
      tempPath("report.csv") + " " + tempPath("report.json");
  const auto run = cli_test::runCommand(py);
  ASSERT_EQ(run.exitCode, 0) << run.out;
  const json back = json::parse(run.out);
  EXPECT_EQ(back["json"], rows);
  ASSERT_EQ(back["csv"].size(), rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(back["csv"][i].size(), rows[i].size()) << "every field a column";
    for (const auto& [key, value] : rows[i].items()) {
      const std::string cell = back["csv"][i][key];
      const std::string expected = value.is_null()     ? ""
                                   : value.is_string() ? value.get<std::string>()
                                                       : value.dump();
      EXPECT_EQ(cell, expected) << "row " << i << " " << key;
    }
  }
  EXPECT_NE(rowOf(back["json"], "alice, \"the\" lab\nsecond line"), nullptr);
}

// Runs the built vrmctl; stdout and stderr together.
cli_test::CommandRun vrmctl(const std::string& args) {
  return cli_test::runCommand(std::string(VRMCTL_PATH) +
                              " --timeout-ms 300 --vrmd tcp://127.0.0.1:9 " + args + " 2>&1");
}

// Ensures vrmctl report's bad input is exit 2 with a typed error naming the flag, before vrmd is
// asked (none listens here), and an unreachable vrmd exit 3, as for every vrmctl command.
TEST(UsageReportTest, VrmctlReportExitCodes) {
  for (const auto& [args, says] : std::vector<std::pair<std::string, std::string>>{
           {"report --from yesterday --to now", "--from: "},
           {"report --from now --to 2030-13-45T00:00", "--to: "},
           {"report --from now --to -1h", "must be after --from"},
           {"report --from 2030-01-02T00:00 --to 2030-01-02T00:00", "must be after --from"},
           {"report --from -1d --to now --by project", "no projects"},
           {"report --from -1d --to now --by lab", "--by: unknown"},
           {"report --from -1d --to now -f yaml --csv", "--csv contradicts"},
           {"report --to now", "--from"}}) {
    const auto run = vrmctl(args);
    EXPECT_EQ(run.exitCode, 2) << args << "\n" << run.out;
    EXPECT_NE(run.out.find(says), std::string::npos) << args << "\n" << run.out;
  }
  const auto typed = vrmctl("--json report --from yesterday --to now");
  EXPECT_EQ(typed.exitCode, 2);
  EXPECT_NE(typed.out.find("\"error\": \"invalid-argument\""), std::string::npos) << typed.out;
  for (const char* ok : {"report --from -1d --to now", "report --from -7d --to now --by host --csv",
                         "report --from 2030-01-01T00:00 --to 2030-02-01T00:00 -f json"}) {
    EXPECT_EQ(vrmctl(ok).exitCode, 3) << ok << ": good input, no vrmd";
  }
}

}  // namespace
}  // namespace vrm::vrmctl

// The week's building blocks: the generated cluster and workload keep their stated shape, the
// journal records what a hypervisor did, and the figures and invariant checks say what their
// definitions (week_report.h) say on small hand-made runs.
#include "week_report.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "journal.h"
#include "vrm/client/render.h"
#include "week_cluster.h"
#include "week_figures.h"
#include "week_workload.h"

namespace vrm::week {
namespace {

constexpr TimeNs kS = kNsPerSec;
constexpr TimeNs kWeek0 = 1'795'392'000 * kS;  // 2026-11-23T00:00:00Z, a Monday

VmSpec vmSpec(const std::string& id, std::uint32_t cores, std::uint64_t memory,
              std::uint64_t nonzero) {
  VmSpec v;
  v.id = id;
  v.cpuCores = cores;
  v.memoryBytes = memory;
  v.nonzeroMemoryBytes = nonzero;
  return v;
}

// The generated cluster parses back as it was written, and has the stated mix.
TEST(WeekClusterTest, YamlRoundTripsAndHasTheMix) {
  const ClusterSpec c = generateCluster({7, 100});
  auto back = parseClusterSpec(clusterYaml(c));
  ASSERT_TRUE(back) << back.status().toString();
  ASSERT_EQ(back->hosts.size(), 100u);
  std::size_t vms = 0, noLive = 0, noSuspend = 0, slowNic = 0;
  for (std::size_t i = 0; i < c.hosts.size(); ++i) {
    const auto& h = back->hosts[i];
    EXPECT_EQ(h.name, c.hosts[i].name);
    EXPECT_EQ(h.memoryBytes, c.hosts[i].memoryBytes);
    ASSERT_EQ(h.vms.size(), c.hosts[i].vms.size());
    slowNic += h.nicBandwidthBytesPerSec < 1e9;
    std::uint64_t mem = 0;
    for (std::size_t k = 0; k < h.vms.size(); ++k) {
      const auto& v = h.vms[k];
      EXPECT_EQ(v.nonzeroMemoryBytes, c.hosts[i].vms[k].nonzeroMemoryBytes);
      EXPECT_LE(v.nonzeroMemoryBytes, v.memoryBytes);
      mem += v.memoryBytes;
      noLive += !v.allowLive;
      noSuspend += !v.allowSuspend;
      EXPECT_FALSE(!v.allowLive && !v.allowSuspend) << v.id << " could not be moved at all";
    }
    vms += h.vms.size();
    EXPECT_LE(mem, h.memoryBytes * 7 / 10) << h.name;
  }
  EXPECT_GT(vms, 500u);
  EXPECT_GT(noLive, 0u);
  EXPECT_GT(noSuspend, 0u);
  EXPECT_GT(slowNic, 5u);
  EXPECT_EQ(clusterYaml(generateCluster({7, 100})), clusterYaml(c)) << "not deterministic";
  EXPECT_NE(clusterYaml(generateCluster({8, 100})), clusterYaml(c));
}

WorkloadOptions weekOptions(std::uint64_t seed) {
  WorkloadOptions o;
  o.seed = seed;
  o.weekStartNs = kWeek0;
  for (const auto& h : generateCluster({seed, 100}).hosts) o.hosts.push_back(h.name);
  return o;
}

// Dedicated bookings are BMI sessions: 1-4 hosts, 1-3 h on the quarter hour in lab hours, booked
// 30 min to 3 days ahead, inside the week; the workload has every kind of action and survives a
// JSON round trip.
TEST(WeekWorkloadTest, BookingsHaveTheStatedShape) {
  const Workload w = generateWorkload(weekOptions(3));
  std::map<ActionKind, int> kinds;
  std::set<std::string> labels;
  int dedicated = 0, aimed = 0;
  TimeNs last = 0;
  for (const auto& a : w.actions) {
    ++kinds[a.kind];
    EXPECT_GE(a.atNs, last) << "actions out of order";
    last = a.atNs;
    aimed += a.duringVacate;
    if (a.kind != ActionKind::kSubmit) continue;
    EXPECT_TRUE(labels.insert(a.label).second) << a.label;
    const auto& r = a.request;
    EXPECT_GE(r.startNs - a.atNs, 10 * 60 * kS) << a.label;
    EXPECT_LT(r.startNs, kWeek0 + 7 * 86400 * kS);
    EXPECT_GE(a.atNs, kWeek0);
    if (r.kind != ReservationKind::kDedicated) continue;
    ++dedicated;
    EXPECT_GE(r.hostCount, 1u);
    EXPECT_LE(r.hostCount, 4u);
    EXPECT_GE(r.endNs - r.startNs, 3600 * kS);
    EXPECT_LE(r.endNs - r.startNs, 3 * 3600 * kS);
    EXPECT_EQ(r.startNs % (15 * 60 * kS), 0) << a.label;
    const TimeNs hour = (r.startNs % (86400 * kS)) / (3600 * kS);
    EXPECT_GE(hour, 7);
    EXPECT_LT(hour, 21);
    EXPECT_GE(r.startNs - a.atNs, 30 * 60 * kS);
    EXPECT_LE(r.startNs - a.atNs, 4 * 86400 * kS);
  }
  EXPECT_GT(dedicated, 80);
  EXPECT_LT(dedicated, 250);
  EXPECT_GT(kinds[ActionKind::kCancel], 5);
  EXPECT_EQ(kinds[ActionKind::kLoseAgent], 4);
  EXPECT_EQ(kinds[ActionKind::kRestartVrmd], 2);
  EXPECT_GE(aimed, 3);
  auto back = parseWorkloadJson(workloadJson(w));
  ASSERT_TRUE(back) << back.status().toString();
  EXPECT_EQ(workloadJson(*back), workloadJson(w));
  EXPECT_EQ(workloadJson(generateWorkload(weekOptions(3))), workloadJson(w));
  EXPECT_FALSE(parseWorkloadJson("{\"seed\": 1}"));
}

// The journal records a migration's source side as the hypervisor saw it: migrating out, then
// gone; the parser reads it back.
TEST(JournalTest, RecordsInventoryChangesOfAMigration) {
  const auto path = std::filesystem::temp_directory_path() / "vrm_week_journal_test.tsv";
  auto journal = Journal::open(path.string());
  ASSERT_TRUE(journal);
  ManualClock clock(100 * kS);
  HostJournal hj("w001", **journal, clock);
  vmscheduler::HypervisorOptions o;
  o.host.name = "w001";
  o.host.cpuCores = 8;
  o.host.memoryBytes = 16ull << 30;
  o.host.nicBandwidthBytesPerSec = 1.25e8;
  o.host.vms.push_back(vmSpec("w001-v1", 2, 1ull << 30, 1ull << 29));
  o.params = {{"ground_truth", "rule"}};
  auto inner = vmscheduler::Hypervisor::create("sim", o);
  ASSERT_TRUE(inner);
  JournalingHypervisor hv(std::move(*inner), hj);
  vmscheduler::MigrationSpec m;
  m.vmId = "w001-v1";
  m.destinationHost = "w002";
  m.destinationEndpoint = "sim://w002";
  m.mode = vmscheduler::MigrationMode::kSuspendCopyResume;
  clock.set(110 * kS);
  ASSERT_TRUE(hv.startMigration(1, m));
  hv.poll(clock.now());
  clock.set(200 * kS);
  hv.poll(clock.now());
  hj.agent(false);
  (*journal)->flush();
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  auto records = parseJournal(text.str());
  ASSERT_TRUE(records) << records.status().toString();
  ASSERT_EQ(records->vms.size(), 3u);
  EXPECT_EQ(records->vms[0].state, "running");
  EXPECT_EQ(records->vms[0].timeNs, 100 * kS);
  EXPECT_EQ(records->vms[1].state, "migrating-out");
  EXPECT_EQ(records->vms[1].timeNs, 110 * kS);
  EXPECT_EQ(records->vms[2].state, "gone");
  EXPECT_EQ(records->vms[2].timeNs, 200 * kS);
  EXPECT_EQ(records->vms[2].cores, 2u);
  ASSERT_EQ(records->agents.size(), 1u);
  EXPECT_FALSE(records->agents[0].up);
  EXPECT_FALSE(parseJournal("vm\t1\tw001\n"));
  std::filesystem::remove(path);
}

// --- a hand-made run: host w001 (two VMs) is vacated for r1, which is on time; r2 is late. ---

ClusterSpec smallCluster() {
  ClusterSpec c;
  for (const char* name : {"w001", "w002", "w003"}) {
    HostSpec h;
    h.name = name;
    h.cpuCores = 16;
    h.memoryBytes = 64ull << 30;
    h.nicBandwidthBytesPerSec = 1.25e9;
    c.hosts.push_back(h);
  }
  c.hosts[0].vms = {vmSpec("w001-v1", 4, 8ull << 30, 4ull << 30),
                    vmSpec("w001-v2", 4, 8ull << 30, 4ull << 30)};
  c.hosts[2].vms = {vmSpec("w003-v1", 4, 8ull << 30, 4ull << 30)};
  return c;
}

JournalVm rec(TimeNs t, const char* host, const char* vm, const char* state, std::string res = "") {
  return {t, host, vm, state, std::move(res), 4, 8ull << 30};
}

ReservationRecord dedicated(const char* id, TimeNs start, std::vector<std::string> hosts) {
  ReservationRecord r;
  r.id = id;
  r.label = std::string("d-") + id;
  r.kind = "dedicated";
  r.state = "done";
  r.startNs = start;
  r.endNs = start + 3600 * kS;
  r.hosts = std::move(hosts);
  r.makespanS = 100;
  r.makespanQuantileS = 120;
  r.cloneTimeS = 90;
  r.marginS = 60;
  r.latestSafeStartNs = start - (90 + 120 + 60) * kS;
  return r;
}

// r1: vacate of w001 from its latest safe start (start - 270 s), last VM gone at start - 190 s
// (after 80 s), ready at start - 100 s: on time, idle lead = 190 - 90 = 100 s.
struct HandMadeRun {
  ClusterSpec cluster = smallCluster();
  std::vector<ReservationRecord> rs;
  JournalRecords journal;
  TimeNs start1 = kWeek0 + 10 * 3600 * kS;
  TimeNs start2 = kWeek0 + 2 * 86400 * kS + 10 * 3600 * kS;

  HandMadeRun() {
    ReservationRecord r1 = dedicated("r1", start1, {"w001"});
    const TimeNs lss = r1.latestSafeStartNs;
    r1.events = {{start1 - 86400 * kS, "admitted", "admitted on w001"},
                 {lss, "vacating", "latest safe start reached"},
                 {start1 - 190 * kS, "preparing", "hosts vacated"},
                 {start1 - 100 * kS, "ready", "ready: ..."},
                 {start1, "active", "started"},
                 {start1 + 3600 * kS, "ending", "window ended"},
                 {start1 + 3700 * kS, "done", "done"}};
    r1.moves = {
        {"w001-v1", "w001", "w002", "live", "done", 0, 0, 50, lss, lss + 50 * kS},
        {"w001-v2", "w001", "w002", "live", "done", 1, 50, 100, lss + 50 * kS, lss + 80 * kS}};
    rs.push_back(r1);
    // r2 on w003: the vacate took 400 s against 120 s at the quantile: ready 60 s late.
    ReservationRecord r2 = dedicated("r2", start2, {"w003"});
    const TimeNs lss2 = r2.latestSafeStartNs;
    r2.events = {{start2 - 86400 * kS, "admitted", "admitted on w003"},
                 {lss2, "vacating", "latest safe start reached"},
                 {lss2 + 400 * kS, "preparing", "hosts vacated"},
                 {lss2 + 490 * kS, "ready", "ready: ..."},
                 {lss2 + 500 * kS, "active", "started"},
                 {start2 + 3600 * kS, "ending", "window ended"},
                 {start2 + 3700 * kS, "done", "done"}};
    r2.moves = {{"w003-v1", "w003", "w002", "live", "done", 0, 0, 100, lss2, lss2 + 400 * kS}};
    rs.push_back(r2);
    // r3: cancelled the day before its start: not counted.
    ReservationRecord r3 = dedicated("r3", start2, {"w002"});
    r3.state = "cancelled";
    r3.reason = "cancelled by lab1";
    r3.events = {{start2 - 3 * 86400 * kS, "admitted", "admitted on w002"},
                 {start2 - 86400 * kS, "cancelled", "cancelled by lab1 while admitted"}};
    rs.push_back(r3);
    // r4: rejected, with its reason.
    ReservationRecord r4 = dedicated("r4", start2, {});
    r4.state = "rejected";
    r4.reason = "host w002 conflicts with reservation r3";
    r4.events = {{start2 - 86400 * kS, "rejected", r4.reason}};
    rs.push_back(r4);

    auto& j = journal.vms;
    j = {rec(kWeek0, "w001", "w001-v1", "running"),
         rec(kWeek0, "w001", "w001-v2", "running"),
         rec(kWeek0, "w003", "w003-v1", "running"),
         rec(lss, "w002", "w001-v1", "incoming"),
         rec(lss, "w001", "w001-v1", "migrating-out"),
         rec(lss + 50 * kS, "w001", "w001-v1", "gone"),
         rec(lss + 50 * kS, "w002", "w001-v1", "running"),
         rec(lss + 50 * kS, "w002", "w001-v2", "incoming"),
         rec(lss + 50 * kS, "w001", "w001-v2", "migrating-out"),
         rec(lss + 80 * kS, "w001", "w001-v2", "gone"),
         rec(lss + 80 * kS, "w002", "w001-v2", "running"),
         rec(start1 - 190 * kS, "w001", "r1-c1", "cloning", "r1"),
         rec(start1 - 100 * kS, "w001", "r1-c1", "running", "r1"),
         rec(start1 + 3650 * kS, "w001", "r1-c1", "gone", "r1"),
         rec(lss2, "w002", "w003-v1", "incoming"),
         rec(lss2, "w003", "w003-v1", "migrating-out"),
         rec(lss2 + 400 * kS, "w003", "w003-v1", "gone"),
         rec(lss2 + 400 * kS, "w002", "w003-v1", "running")};
  }

  // The run as the figures read it: a week from kWeek0.
  WeekInputs inputs() const {
    WeekInputs in;
    in.reservations = rs;
    in.cluster = cluster;
    in.journal = journal;
    in.workload.options.weekStartNs = kWeek0;
    in.workload.options.days = 7;
    return in;
  }
};

// On time means ready by the start; the late one is late by 60 s because its vacate overran;
// the cancelled one is not counted; the rejected one is not admitted.
TEST(WeekReportTest, OnTimeAndMissesFollowTheDefinitions) {
  HandMadeRun run;
  const auto o = dedicatedOutcomes(run.rs, kWeek0);
  ASSERT_EQ(o.size(), 4u);
  EXPECT_TRUE(o[0].counted);
  EXPECT_TRUE(o[0].onTime);
  EXPECT_EQ(o[0].day, 0);
  EXPECT_DOUBLE_EQ(o[0].vacateActualS, 80);
  EXPECT_TRUE(o[1].counted);
  EXPECT_FALSE(o[1].onTime);
  EXPECT_DOUBLE_EQ(o[1].lateByS, 220);  // ready at lss + 490 s = start + 220 s
  EXPECT_NE(o[1].why.find("vacate took 400.0 s against 120.0 s"), std::string::npos) << o[1].why;
  EXPECT_EQ(o[1].day, 2);
  EXPECT_FALSE(o[2].counted);
  EXPECT_FALSE(o[3].counted);
}

// The idle lead runs from the journal's last departure to the start less the clone time; vrmd
// saw the host empty when the last move ended.
TEST(WeekReportTest, IdleLeadIsFromTheHostEmptyingToCloneStart) {
  HandMadeRun run;
  const auto o = dedicatedOutcomes(run.rs, kWeek0);
  std::size_t alreadyEmpty = 99;
  const auto leads = idleLeads(o, run.journal, kWeek0, &alreadyEmpty);
  EXPECT_EQ(alreadyEmpty, 0u);
  ASSERT_EQ(leads.size(), 2u);
  EXPECT_EQ(leads[0].host, "w001");
  EXPECT_DOUBLE_EQ(leads[0].leadS, 190 - 90);
  EXPECT_EQ(leads[0].vrmdEmptyNs, leads[0].emptyNs);
  EXPECT_EQ(leads[1].host, "w003");
  EXPECT_DOUBLE_EQ(leads[1].leadS, -130 - 90);  // emptied at start + 130 s
}

// The hand-made run breaks no invariant; each planted fault is found.
TEST(WeekReportTest, InvariantsHoldAndPlantedFaultsAreFound) {
  HandMadeRun run;
  auto kinds = [&](const HandMadeRun& r) {
    std::set<std::string> k;
    for (const auto& v : checkInvariants(r.rs, r.cluster, r.journal)) k.insert(v.kind);
    return k;
  };
  EXPECT_TRUE(kinds(run).empty());
  {
    HandMadeRun bad;  // a VM as big as the host arrives on w002
    auto big = rec(kWeek0 + kS, "w002", "w009-v1", "running");
    big.cores = 40;
    bad.journal.vms.push_back(big);
    EXPECT_EQ(kinds(bad), std::set<std::string>{"overbooked"});
  }
  {
    HandMadeRun bad;  // w003-v1 leaves its source before anything holds it elsewhere
    bad.journal.vms.erase(bad.journal.vms.begin() + 14);
    EXPECT_TRUE(kinds(bad).count("lost"));
  }
  {
    HandMadeRun bad;  // w001-v1 still running at home after its copy runs on w002
    bad.journal.vms.push_back(rec(kWeek0 + 86400 * kS, "w001", "w001-v1", "running"));
    EXPECT_TRUE(kinds(bad).count("duplicated"));
    EXPECT_TRUE(kinds(bad).count("not-vacated") == 0);
  }
  {
    HandMadeRun bad;  // a VM comes back onto w001 in r1's window
    bad.journal.vms.push_back(rec(run.start1 + 600 * kS, "w001", "w009-v1", "incoming"));
    EXPECT_TRUE(kinds(bad).count("not-vacated"));
  }
  {
    HandMadeRun ok;  // r1 cancelled while ready, before its start: its VMs may come home
    ok.rs[0].state = "cancelled";
    ok.rs[0].reason = "cancelled by lab1";
    ok.rs[0].events.resize(4);
    ok.rs[0].events.push_back({ok.start1 - 50 * kS, "cancelled", "cancelled while ready"});
    ok.journal.vms.push_back(rec(ok.start1 - 10 * kS, "w002", "w001-v1", "migrating-out"));
    ok.journal.vms.push_back(rec(ok.start1 - 10 * kS, "w001", "w001-v1", "incoming"));
    ok.journal.vms.push_back(rec(ok.start1 - 5 * kS, "w002", "w001-v1", "gone"));
    ok.journal.vms.push_back(rec(ok.start1 - 5 * kS, "w001", "w001-v1", "running"));
    EXPECT_TRUE(kinds(ok).empty()) << *kinds(ok).begin();
  }
  {
    HandMadeRun bad;  // a clone outlives its reservation; one reservation never ends
    bad.journal.vms.pop_back();
    bad.journal.vms.erase(bad.journal.vms.begin() + 13);
    bad.rs[0].state = "active";
    bad.rs[2].reason.clear();
    // (w003-v1 never arrives: it is left incoming on w002.)
    EXPECT_EQ(kinds(bad),
              (std::set<std::string>{"clone-left", "not-terminal", "no-reason", "stranded"}));
  }
}

// Reasons of one kind count together whatever hosts, ids, times and sizes they name.
TEST(WeekReportTest, ReasonKindsBlankNames) {
  EXPECT_EQ(reasonKind("host w002 conflicts with reservation r31"),
            reasonKind("host w017 conflicts with reservation r4"));
  EXPECT_EQ(
      reasonKind(
          "vacate cannot finish by the start: needs 12m 04s, w001-v3 at 2026-11-23T10:00:00Z"),
      "vacate cannot finish by the start: needs N N, VM at TIME");
  EXPECT_DOUBLE_EQ(quantileOf({3, 1, 2}, 0.5), 2);
  EXPECT_DOUBLE_EQ(quantileOf({1, 2, 3, 4}, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(quantileOf({}, 0.5), 0);
}

// vrmctl's JSON (the client library's renderer) parses into the records the figures use, with
// planned and actual move times and event times to the millisecond.
TEST(WeekReportTest, ParsesVrmctlJson) {
  Reservation r;
  r.id = "r7";
  r.request.kind = ReservationKind::kDedicated;
  r.request.label = "d0007";
  r.request.startNs = kWeek0 + 3600 * kS;
  r.request.endNs = kWeek0 + 7200 * kS;
  r.state = ReservationState::kDone;
  r.hosts = {"w001"};
  r.plan.makespanNs = 80 * kS;
  r.plan.makespanQuantileNs = 95 * kS;
  r.plan.quantile = 0.95;
  r.plan.cloneTimeNs = 90 * kS;
  r.plan.marginNs = 60 * kS;
  r.plan.latestSafeStartNs = kWeek0 + 3000 * kS;
  PlannedMove m;
  m.vmId = "w001-v1";
  m.fromHost = "w001";
  m.toHost = "w002";
  m.endOffsetNs = 80 * kS;
  Move& move = r.addMove(MovePurpose::kVacate, m);
  move.progress = {MoveState::kDone, kWeek0 + 3000 * kS + 5 * kNsPerMs, kWeek0 + 3091 * kS};
  r.events = {{kWeek0 + 3000 * kS + 5 * kNsPerMs, ReservationState::kVacating, "vacating"}};
  auto parsed = parseReservations(client::reservationsJson({r}));
  ASSERT_TRUE(parsed) << parsed.status().toString();
  ASSERT_EQ(parsed->size(), 1u);
  const auto& p = parsed->front();
  EXPECT_EQ(p.label, "d0007");
  EXPECT_DOUBLE_EQ(p.makespanQuantileS, 95);
  EXPECT_DOUBLE_EQ(p.quantile, 0.95);
  EXPECT_EQ(p.latestSafeStartNs, kWeek0 + 3000 * kS);
  ASSERT_EQ(p.moves.size(), 1u);
  EXPECT_EQ(p.moves[0].actualStartNs, kWeek0 + 3000 * kS + 5 * kNsPerMs);
  EXPECT_EQ(p.moves[0].actualEndNs, kWeek0 + 3091 * kS);
  EXPECT_EQ(p.firstEvent("vacating"), kWeek0 + 3000 * kS + 5 * kNsPerMs);
  EXPECT_FALSE(parseReservations("{}"));
  EXPECT_FALSE(parseReservations("[{\"id\": 1}]"));
}

// The figures of the hand-made run: one on time of two counted, leads of 100 s and -220 s... and
// a table that says so.
TEST(WeekReportTest, FiguresOfTheHandMadeRun) {
  HandMadeRun run;
  const auto f = weekFigures(run.inputs());
  EXPECT_EQ(f["on_time"]["counted"], 2);
  EXPECT_EQ(f["on_time"]["on_time"], 1);
  EXPECT_DOUBLE_EQ(f["on_time"]["on_time_pct"].get<double>(), 50);
  EXPECT_EQ(f["admission"]["dedicated"]["rejected"], 1);
  EXPECT_EQ(f["idle_lead"]["host_vacates"], 2);
  EXPECT_DOUBLE_EQ(f["idle_lead"]["host_hours"].get<double>(), 100.0 / 3600);
  EXPECT_EQ(f["prediction"]["vacates"], 2);
  EXPECT_DOUBLE_EQ(f["prediction"]["first_day"]["median_error_pct"].get<double>(), -20);
  EXPECT_DOUBLE_EQ(f["prediction"]["last_day"]["median_error_pct"].get<double>(), 300);
  EXPECT_DOUBLE_EQ(f["prediction"]["last_day"]["over_quantile_pct"].get<double>(), 100);
  EXPECT_DOUBLE_EQ(f["prediction"]["quantile_over_mean"]["median"].get<double>(), 1.2);
  EXPECT_TRUE(f["invariants"]["ok"].get<bool>());
  const std::string table = figuresTable(f);
  EXPECT_NE(table.find("1 (50.00 %)"), std::string::npos) << table;
  EXPECT_NE(table.find("invariants: all hold"), std::string::npos) << table;
}

// A result vrmd's log says it ignored for a command it had forgotten breaks the invariants.
TEST(WeekReportTest, ResultsForUnknownCommandsAreAViolation) {
  HandMadeRun run;
  WeekInputs in = run.inputs();
  in.unknownResults = 3;
  const auto f = weekFigures(in);
  EXPECT_FALSE(f["invariants"]["ok"].get<bool>());
  EXPECT_EQ(f["invariants"]["by_kind"]["unknown-result"], 1);
  EXPECT_NE(f["invariants"]["violations"][0]["detail"].get<std::string>().find("ignored 3 results"),
            std::string::npos);
}

// A timing miss while a host's agent was lost says so and how long, and the on-time rate
// without such misses leaves it out; agentDownS counts only the part inside the interval, and
// an agent still down at the end counts until then.
TEST(WeekReportTest, MissWhileAnAgentWasLostSaysSo) {
  HandMadeRun run;
  const TimeNs lss2 = run.rs[1].latestSafeStartNs;
  run.journal.agents = {{lss2 - 100 * kS, "w003", false},
                        {lss2 + 300 * kS, "w003", true},
                        {lss2 + 1000 * kS, "w003", false}};
  EXPECT_DOUBLE_EQ(agentDownS(run.journal, "w003", lss2, lss2 + 490 * kS), 300);
  EXPECT_DOUBLE_EQ(agentDownS(run.journal, "w003", lss2 + 900 * kS, lss2 + 1200 * kS), 200);
  EXPECT_DOUBLE_EQ(agentDownS(run.journal, "w001", lss2, lss2 + 490 * kS), 0);
  const auto f = weekFigures(run.inputs());
  ASSERT_EQ(f["on_time"]["misses"].size(), 1u);
  const auto& miss = f["on_time"]["misses"][0];
  EXPECT_DOUBLE_EQ(miss["agent_lost_s"].get<double>(), 300);
  EXPECT_NE(miss["why"].get<std::string>().find("the agent of w003 was lost for 300 s of it"),
            std::string::npos)
      << miss["why"];
  EXPECT_EQ(f["on_time"]["misses_with_agent_lost"], 1);
  EXPECT_DOUBLE_EQ(f["on_time"]["timing_on_time_without_lost_agents_pct"].get<double>(), 100);
}

}  // namespace
}  // namespace vrm::week

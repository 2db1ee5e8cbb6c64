// The "sim" backend: an in-process simulated host, for tests, the demo and laptops.
//
// Capacity and initial VMs come from a HostSpec. Time is measured only against the `now` given
// to poll(). A clone takes exactly bootTimeNs. A migration's duration comes from its ground truth,
// chosen by the parameter `ground-truth` (parameters are named as in every backend,
// backend/params.h; the older `ground_truth`, `disk_rate`, `state_file` still work):
//   "precopy" (default)  a stochastic pre-copy simulation (sim_ground_truth.h) that is not one of
//       the planner's models, so model error is visible; deterministic for a given `seed`
//       (parameter, unsigned integer, default 1): the n-th migration of a VM on a host with the
//       same seed always takes the same time, a different seed gives different draws.
//   "rule"  the fixed rule, for tests that need exact times:
//       migration = setup 0.5 s + nonzero memory / bandwidth
//                   (+ live: one extra pass of dirty rate x copy time bytes, capped at memory)
//                   + commit 0.1 s;  downtime = commit (+ suspend-copy-resume: the whole copy).
// bandwidth = min(NIC, maxBandwidth if > 0) is a migration's cap in both; setMigrationBandwidth()
// changes it for the rest of a running migration, from the last poll on. Migrations leaving
// this host at the same time share its NIC: while k of them are sending, each gets a max-min
// fair share of the NIC (equal shares; what one capped by its own limit cannot use goes to the
// others), recomputed whenever one starts or stops sending, and a pre-copy round that gets less
// bandwidth lasts longer and so dirties more. Two equal migrations started together thus take
// about twice as long as one. Setup and commit do not use the NIC. Only this host's outgoing
// transfers are modelled: each sim host is its own process, so migrations from several hosts
// into one do not slow each other down. Progress phases are
// "setup", "copy" (the pre-copy rounds, or the whole copy of suspend-copy-resume) and "commit"
// (stop-and-copy and resume). The MigrationObservation holds what the ground truth measured:
// setup, downtime, bytes, rounds (pre-copy rounds + the stop-and-copy), mean goodput over the
// copy (bytes / sending time) and the mean dirty rate seen during pre-copy.
// `state-file` (parameter, a path; default none) keeps the host's VMs in that file, rewritten
// after every change and read at start when it exists, so they outlive a restart of the agent
// as a real hypervisor's do: a VM that was migrating out is running again (its migration died
// with the agent), a clone that was booting is gone, a prepared incoming VM is still prepared.
// Parking (startPark) takes setup 0.5 s + non-zero memory / `disk-rate` (parameter, bytes per
// second, default 200 MB/s: a local SSD's sequential write), unparking commit 0.1 s + the same
// read back; the VM's state file is named "sim://<host>/park/<vm>" and kept in `state-file`.
// While a park runs the VM is migrating-out (busy); while an unpark runs it is incoming (its
// cores and memory held).
// An operation starts at the first poll() after it was requested (that is when the sim first
// learns the time). The simulation advances from event to event (a segment of some migration
// ending), so the outcome does not depend on how often poll() is called; nextEventTime() is
// the next such event or tenth of forecast progress.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "backend/vm_table.h"
#include "sim_ground_truth.h"
#include "vrm/vmscheduler/hypervisor.h"

namespace vrm::vmscheduler {

class SimHypervisor final : public Hypervisor {
 public:
  static constexpr TimeNs kSetupNs = 500 * kNsPerMs;
  static constexpr TimeNs kCommitNs = 100 * kNsPerMs;

  // Errors: invalid-argument when the spec has no name or capacity, or its VMs do not fit.
  static Result<std::unique_ptr<Hypervisor>> create(const HypervisorOptions& options);

  std::string_view backendName() const override { return "sim"; }
  HostInfo hostInfo() const override { return host_; }
  std::string migrationEndpoint() const override;
  std::vector<VmInfo> inventory() const override;

  Result<std::string> prepareIncoming(const VmInfo& vm) override;
  Status finishIncoming(const std::string& vmId, bool commit) override;
  Status startMigration(OperationId op, const MigrationSpec& spec) override;
  Status setMigrationBandwidth(const std::string& vmId, double maxBytesPerSec) override;
  Status suspend(const std::string& vmId) override;
  Status resume(const std::string& vmId) override;
  Status startClone(OperationId op, const CloneSpec& spec) override;
  Status startPark(OperationId op, const std::string& vmId) override;
  Status startUnpark(OperationId op, const std::string& vmId) override;
  Status destroy(const std::string& vmId) override;
  std::vector<OperationEvent> poll(TimeNs now) override;
  TimeNs nextEventTime() const override;

 private:
  struct Operation {
    bool isMigration = true;
    // Not a migration: a clone, or (when set) a park or an unpark of vmId on this host.
    enum class Local { kNone, kPark, kUnpark } local = Local::kNone;
    std::string vmId;
    bool started = false;
    TimeNs startNs = 0;
    TimeNs totalNs = 0;  // clone: its duration; migration: forecast at the current share
    int lastStep = -1;   // last tenth of progress reported
    // Migration: its ground truth, advanced with the others sharing the NIC; the observation
    // (start filled when started, the rest when done).
    std::optional<sim::MigrationRun> run;
    double capBytesPerSec = 0;  // min(NIC, the migration's limit)
    double forecastBytes = 0;   // transferred bytes, forecast at the current share
    TimeNs setupEndNs = 0;      // when setup ended (set by advanceTo())
    TimeNs commitStartNs = 0;   // when the "commit" phase began (live: the VM paused)
    TimeNs doneNs = -1;         // when the run ended
    // When the current segment ends, fixed while the segment and its share stay the same (so
    // polls in between cannot shift it by rounding).
    TimeNs segmentEndNs = kTimeInfinity;
    int endSegment = -1;
    double endRate = -1;
    MigrationObservation observation;
    // Clone: the VM's previous state is cloning; on success it becomes running with this handle.
    VmHandle handle;
  };

  SimHypervisor(HostInfo host, bool ruleGroundTruth, std::uint64_t seed, double diskRate)
      : host_(std::move(host)),
        ruleGroundTruth_(ruleGroundTruth),
        seed_(seed),
        diskRateBytesPerSec_(diskRate),
        vms_(host_.name) {}
  // The operation in flight on vmId, if any.
  const Operation* operationOn(const std::string& vmId) const;
  std::string parkFile(const std::string& vmId) const;
  // A park / unpark that completes at the next poll() with ok (already parked / running).
  void completeAtOnce(OperationId op);
  Status checkIdle(const VmInfo& vm) const;
  OperationEvent progressOf(OperationId id, const Operation& op, TimeNs now) const;
  OperationEvent complete(OperationId id, Operation& op);
  // NIC share of each started, unfinished migration that is sending now (others: 0).
  std::map<OperationId, double> shares() const;
  // Recomputes segmentEndNs of the running migrations whose segment or share changed.
  void refreshSegmentEnds();
  // When the next segment of any running migration ends (infinity: none).
  TimeNs nextSegmentEndNs() const;
  // Advances every running migration from simNs_ to `now`, event by event.
  void advanceTo(TimeNs now);
  // Refreshes each running migration's forecast total time and bytes at the current shares.
  void updateForecasts();

  // Saves the state file (if any) when a public call returns.
  struct StateSaver {
    const SimHypervisor& sim;
    explicit StateSaver(const SimHypervisor& s) : sim(s) {}
    ~StateSaver() { sim.saveState(); }
  };
  Status loadState();
  void saveState() const;

  HostInfo host_;
  std::string stateFile_;
  bool ruleGroundTruth_ = false;
  std::uint64_t seed_ = 1;
  double diskRateBytesPerSec_ = 200e6;
  std::map<std::string, std::uint64_t> migrationCounts_;  // per VM id, for per-migration seeds
  backend::VmTable<VmInfo> vms_;
  std::map<OperationId, Operation> ops_;
  std::vector<OperationEvent> immediate_;  // completions decided outside poll()
  TimeNs lastPollNs_ = 0;
  TimeNs simNs_ = 0;  // how far the migrations have been advanced
};

}  // namespace vrm::vmscheduler

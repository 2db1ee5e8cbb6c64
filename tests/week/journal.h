// The agents' ground truth: every change of every host's inventory, with its simulated time.
//
// The week's agents (vrm_week_agents) wrap each sim hypervisor in a JournalingHypervisor, which
// forwards every call to the real backend and, after each call that may change the inventory
// (and each poll()), appends what changed to a shared Journal. The report replays the journal
// to check what vrmd cannot vouch for itself: no host ever held more than its capacity, no VM
// was lost or ran twice, dedicated hosts held nothing else in their windows, and when each host
// really became empty.
//
// File format (TSV, one record a line, '#' starts a comment):
//   vm     TIME_NS HOST VM STATE CORES MEMORY_BYTES RESERVATION   (STATE "gone": removed;
//                                                                 RESERVATION "-" for none)
//   agent  TIME_NS HOST up|down                                   (agent lost / back)
// Thread safety: Journal is thread-safe (one per process, shared by the agents' threads);
// HostJournal and JournalingHypervisor belong to their host's thread.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "vrm/protocol/status.h"
#include "vrm/protocol/time.h"
#include "vrm/vmscheduler/hypervisor.h"

namespace vrm::week {

class Journal {
 public:
  // Errors: internal when the file cannot be opened.
  static Result<std::unique_ptr<Journal>> open(const std::string& path);
  void append(const std::string& line);  // one record, without the newline
  void flush();

 private:
  explicit Journal(std::ofstream out) : out_(std::move(out)) {}
  std::mutex mu_;
  std::ofstream out_;
};

// One host's last journalled inventory; outlives the host's agent and hypervisor across an
// agent's loss and return, so the first inventory after a return is diffed against the last one
// before it.
class HostJournal {
 public:
  HostJournal(std::string host, Journal& journal, const Clock& clock)
      : host_(std::move(host)), journal_(journal), clock_(clock) {}
  // Journals the differences between `inventory` and the last one.
  void sync(const std::vector<vmscheduler::VmInfo>& inventory);
  void agent(bool up);

 private:
  struct Seen {
    VmState state;
    std::uint32_t cores;
    std::uint64_t memoryBytes;
    std::string reservationId;
    bool operator==(const Seen&) const = default;
  };
  void record(const std::string& vm, const char* state, const Seen& s);
  std::string host_;
  Journal& journal_;
  const Clock& clock_;
  std::map<std::string, Seen> last_;
};

// A Hypervisor that forwards to `inner` and journals inventory changes (see the top).
class JournalingHypervisor final : public vmscheduler::Hypervisor {
 public:
  JournalingHypervisor(std::unique_ptr<vmscheduler::Hypervisor> inner, HostJournal& journal);

  std::string_view backendName() const override { return inner_->backendName(); }
  vmscheduler::HostInfo hostInfo() const override { return inner_->hostInfo(); }
  std::string migrationEndpoint() const override { return inner_->migrationEndpoint(); }
  std::vector<vmscheduler::VmInfo> inventory() const override { return inner_->inventory(); }
  Result<std::string> prepareIncoming(const vmscheduler::VmInfo& vm) override;
  Status finishIncoming(const std::string& vmId, bool commit) override;
  Status startMigration(vmscheduler::OperationId op,
                        const vmscheduler::MigrationSpec& spec) override;
  Status setMigrationBandwidth(const std::string& vmId, double maxBytesPerSec) override {
    return inner_->setMigrationBandwidth(vmId, maxBytesPerSec);
  }
  Status suspend(const std::string& vmId) override;
  Status resume(const std::string& vmId) override;
  Status startPark(vmscheduler::OperationId op, const std::string& vmId) override;
  Status startUnpark(vmscheduler::OperationId op, const std::string& vmId) override;
  Status startClone(vmscheduler::OperationId op, const vmscheduler::CloneSpec& spec) override;
  Status destroy(const std::string& vmId) override;
  std::vector<vmscheduler::OperationEvent> poll(TimeNs now) override;
  TimeNs nextEventTime() const override { return inner_->nextEventTime(); }

 private:
  template <typename T>
  T synced(T result) {
    journal_.sync(inner_->inventory());
    return result;
  }
  std::unique_ptr<vmscheduler::Hypervisor> inner_;
  HostJournal& journal_;
};

// The journal read back.
struct JournalVm {
  TimeNs timeNs = 0;
  std::string host, vm, state, reservationId;  // reservationId empty for none
  std::uint32_t cores = 0;
  std::uint64_t memoryBytes = 0;
};
struct JournalAgent {
  TimeNs timeNs = 0;
  std::string host;
  bool up = true;
};
struct JournalRecords {
  std::vector<JournalVm> vms;  // in file order (time order per host)
  std::vector<JournalAgent> agents;
};
// Errors: invalid-argument naming the line of a malformed record.
Result<JournalRecords> parseJournal(const std::string& text);

}  // namespace vrm::week

#include "journal.h"

#include <sstream>

namespace vrm::week {

Result<std::unique_ptr<Journal>> Journal::open(const std::string& path) {
  std::ofstream out(path, std::ios::out | std::ios::trunc);
  if (!out) return Status::internal("cannot open journal " + path);
  out << "# vrm week journal: vm TIME_NS HOST VM STATE CORES MEMORY_BYTES RESERVATION | "
         "agent TIME_NS HOST up|down\n";
  return std::unique_ptr<Journal>(new Journal(std::move(out)));
}

void Journal::append(const std::string& line) {
  std::lock_guard lock(mu_);
  out_ << line << '\n';
}

void Journal::flush() {
  std::lock_guard lock(mu_);
  out_.flush();
}

void HostJournal::record(const std::string& vm, const char* state, const Seen& s) {
  journal_.append("vm\t" + std::to_string(clock_.now()) + "\t" + host_ + "\t" + vm + "\t" + state +
                  "\t" + std::to_string(s.cores) + "\t" + std::to_string(s.memoryBytes) + "\t" +
                  (s.reservationId.empty() ? "-" : s.reservationId));
}

void HostJournal::sync(const std::vector<vmscheduler::VmInfo>& inventory) {
  std::map<std::string, Seen> now;
  for (const auto& v : inventory) {
    now.emplace(v.id, Seen{v.state, v.cpuCores, v.memoryBytes, v.reservationId});
  }
  for (const auto& [id, s] : last_) {
    if (!now.count(id)) record(id, "gone", s);
  }
  for (const auto& [id, s] : now) {
    auto it = last_.find(id);
    if (it == last_.end() || !(it->second == s)) record(id, vmscheduler::vmStateName(s.state), s);
  }
  last_ = std::move(now);
}

void HostJournal::agent(bool up) {
  journal_.append("agent\t" + std::to_string(clock_.now()) + "\t" + host_ + "\t" +
                  (up ? "up" : "down"));
}

JournalingHypervisor::JournalingHypervisor(std::unique_ptr<vmscheduler::Hypervisor> inner,
                                           HostJournal& journal)
    : inner_(std::move(inner)), journal_(journal) {
  journal_.sync(inner_->inventory());
}

Result<std::string> JournalingHypervisor::prepareIncoming(const vmscheduler::VmInfo& vm) {
  return synced(inner_->prepareIncoming(vm));
}
Status JournalingHypervisor::finishIncoming(const std::string& vmId, bool commit) {
  return synced(inner_->finishIncoming(vmId, commit));
}
Status JournalingHypervisor::startMigration(vmscheduler::OperationId op,
                                            const vmscheduler::MigrationSpec& spec) {
  return synced(inner_->startMigration(op, spec));
}
Status JournalingHypervisor::suspend(const std::string& vmId) {
  return synced(inner_->suspend(vmId));
}
Status JournalingHypervisor::resume(const std::string& vmId) {
  return synced(inner_->resume(vmId));
}
Status JournalingHypervisor::startPark(vmscheduler::OperationId op, const std::string& vmId) {
  return synced(inner_->startPark(op, vmId));
}
Status JournalingHypervisor::startUnpark(vmscheduler::OperationId op, const std::string& vmId) {
  return synced(inner_->startUnpark(op, vmId));
}
Status JournalingHypervisor::startClone(vmscheduler::OperationId op,
                                        const vmscheduler::CloneSpec& spec) {
  return synced(inner_->startClone(op, spec));
}
Status JournalingHypervisor::destroy(const std::string& vmId) {
  return synced(inner_->destroy(vmId));
}
std::vector<vmscheduler::OperationEvent> JournalingHypervisor::poll(TimeNs now) {
  return synced(inner_->poll(now));
}

Result<JournalRecords> parseJournal(const std::string& text) {
  JournalRecords out;
  std::istringstream in(text);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> f;
    std::string field;
    std::istringstream ls(line);
    while (std::getline(ls, field, '\t')) f.push_back(field);
    auto bad = [&](const std::string& why) {
      return Status::invalid("journal line " + std::to_string(n) + ": " + why);
    };
    try {
      if (f[0] == "vm" && f.size() == 8) {
        JournalVm v;
        v.timeNs = std::stoll(f[1]);
        v.host = f[2];
        v.vm = f[3];
        v.state = f[4];
        v.cores = static_cast<std::uint32_t>(std::stoul(f[5]));
        v.memoryBytes = std::stoull(f[6]);
        v.reservationId = f[7] == "-" ? "" : f[7];
        out.vms.push_back(std::move(v));
      } else if (f[0] == "agent" && f.size() == 4 && (f[3] == "up" || f[3] == "down")) {
        out.agents.push_back({std::stoll(f[1]), f[2], f[3] == "up"});
      } else {
        return bad("not a vm or agent record: '" + line + "'");
      }
    } catch (const std::exception&) {
      return bad("bad number in '" + line + "'");
    }
  }
  return out;
}

}  // namespace vrm::week

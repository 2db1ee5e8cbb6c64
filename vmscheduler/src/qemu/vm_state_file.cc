#include "qemu/vm_state_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "qemu/qemu_support.h"

namespace vrm::vmscheduler::qemu {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kSuffix = ".vm.json";

// The closed sets, by the names the logs use.
std::optional<VmState> stateNamed(const std::string& name) {
  for (VmState s : {VmState::kRunning, VmState::kSuspended, VmState::kMigratingOut,
                    VmState::kIncoming, VmState::kCloning, VmState::kParked}) {
    if (name == vmStateName(s)) return s;
  }
  return std::nullopt;
}

std::optional<MigrationMode> modeNamed(const std::string& name) {
  for (MigrationMode m :
       {MigrationMode::kLive, MigrationMode::kSuspendCopyResume, MigrationMode::kPark}) {
    if (name == moveModeName(m)) return m;
  }
  return std::nullopt;
}

// Reads fields of one JSON object, remembering the first that is missing or mistyped.
class FieldReader {
 public:
  explicit FieldReader(const json& object) : object_(object) {}

  template <class T>
  T get(const char* key) {
    auto it = object_.find(key);
    if (it == object_.end()) {
      fail(std::string("field '") + key + "' is missing");
      return T();
    }
    try {
      return it->template get<T>();
    } catch (const json::exception&) {
      fail(std::string("field '") + key + "' has the wrong type");
      return T();
    }
  }
  void fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
  }
  const std::string& error() const { return error_; }

 private:
  const json& object_;
  std::string error_;
};

// The port of "ADDRESS:PORT" (how a clone's address was written from its forwarded SSH port),
// 0 for anything else ("unix:PATH", "", a bare address).
int portOfAddress(const std::string& address) {
  if (address.starts_with("unix:")) return 0;
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size() || address.size() - colon > 6) {
    return 0;
  }
  int port = 0;
  for (std::size_t k = colon + 1; k < address.size(); ++k) {
    if (address[k] < '0' || address[k] > '9') return 0;
    port = port * 10 + (address[k] - '0');
  }
  return port <= 65535 ? port : 0;
}

}  // namespace

std::string vmStateFilePath(const std::string& dir, const std::string& vmId) {
  return dir + "/" + vmId + kSuffix;
}

nlohmann::json vmInfoFields(const VmInfo& i) {
  return {{"id", i.id},
          {"cpu_cores", i.cpuCores},
          {"memory_bytes", i.memoryBytes},
          {"disk_bytes", i.diskBytes},
          {"reservation", i.reservationId},
          {"address", i.address},
          {"template", i.templateName},
          {"allow_live", i.allowLive},
          {"allow_suspend", i.allowSuspend}};
}

std::string encodeVmState(const VmStateRecord& r) {
  json d = vmInfoFields(r.info);
  d.update({{"state", vmStateName(r.info.state)},
            {"pid", r.pid},
            {"qmp", r.qmpPath},
            {"serial", r.serialPath},
            {"log", r.logPath},
            {"disk_path", r.diskPath},
            {"incoming_port", r.incomingPort},
            {"keep_paused", r.keepPaused},
            {"ssh_forward_port", r.sshForwardPort}});
  if (r.cloneHandle) {
    d["handle"] = {{"address", r.cloneHandle->address},
                   {"port", r.cloneHandle->port},
                   {"account", r.cloneHandle->account},
                   {"address_source", r.cloneHandle->addressSource}};
  }
  if (r.migration) {
    d["migration"] = {{"op", r.migration->opId},
                      {"mode", moveModeName(r.migration->mode)},
                      {"destination", r.migration->destinationHost},
                      {"was_running", r.migration->wasRunning},
                      {"start_ns", r.migration->startNs}};
  }
  if (r.clone) d["clone"] = {{"op", r.clone->opId}, {"start_ns", r.clone->startNs}};
  return d.dump() + "\n";
}

Result<VmStateRecord> decodeVmState(const std::string& text, const std::string& path) {
  auto corrupt = [&](const std::string& why) {
    return Status::invalid("vm state file " + path + " is corrupt: " + why);
  };
  const json d = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (d.is_discarded()) return corrupt("not JSON");
  if (!d.is_object()) return corrupt("not a JSON object");
  FieldReader f(d);
  VmStateRecord r;
  VmInfo& i = r.info;
  i.id = f.get<std::string>("id");
  const std::string state = f.get<std::string>("state");
  i.cpuCores = f.get<std::uint32_t>("cpu_cores");
  i.memoryBytes = f.get<std::uint64_t>("memory_bytes");
  i.diskBytes = f.get<std::uint64_t>("disk_bytes");
  i.reservationId = f.get<std::string>("reservation");
  i.address = f.get<std::string>("address");
  i.templateName = f.get<std::string>("template");
  i.allowLive = f.get<bool>("allow_live");
  i.allowSuspend = f.get<bool>("allow_suspend");
  r.pid = f.get<pid_t>("pid");
  r.qmpPath = f.get<std::string>("qmp");
  r.serialPath = f.get<std::string>("serial");
  r.logPath = f.get<std::string>("log");
  r.diskPath = f.get<std::string>("disk_path");
  r.incomingPort = f.get<int>("incoming_port");
  r.keepPaused = f.get<bool>("keep_paused");
  if (d.contains("ssh_forward_port")) {
    r.sshForwardPort = f.get<int>("ssh_forward_port");
  } else {
    r.sshForwardPort = portOfAddress(i.address);  // written before the field existed
  }
  if (auto h = d.find("handle"); h != d.end()) {
    if (!h->is_object()) return corrupt("field 'handle' has the wrong type");
    FieldReader g(*h);
    VmHandle handle;
    handle.vmId = i.id;
    handle.address = g.get<std::string>("address");
    handle.port = g.get<std::uint32_t>("port");
    handle.account = g.get<std::string>("account");
    handle.addressSource = g.get<std::string>("address_source");
    if (!g.error().empty()) return corrupt("handle: " + g.error());
    r.cloneHandle = std::move(handle);
  }
  if (auto m = d.find("migration"); m != d.end()) {
    if (!m->is_object()) return corrupt("field 'migration' has the wrong type");
    FieldReader g(*m);
    VmStateRecord::Migration mig;
    mig.opId = g.get<OperationId>("op");
    const std::string mode = g.get<std::string>("mode");
    mig.destinationHost = g.get<std::string>("destination");
    mig.wasRunning = g.get<bool>("was_running");
    mig.startNs = g.get<TimeNs>("start_ns");
    if (!g.error().empty()) return corrupt("migration: " + g.error());
    auto parsed = modeNamed(mode);
    if (!parsed) return corrupt("unknown migration mode '" + mode + "'");
    mig.mode = *parsed;
    r.migration = mig;
  }
  if (auto c = d.find("clone"); c != d.end()) {
    if (!c->is_object()) return corrupt("field 'clone' has the wrong type");
    FieldReader g(*c);
    VmStateRecord::Clone clone;
    clone.opId = g.get<OperationId>("op");
    clone.startNs = g.get<TimeNs>("start_ns");
    if (!g.error().empty()) return corrupt("clone: " + g.error());
    r.clone = clone;
  }
  if (!f.error().empty()) return corrupt(f.error());
  auto parsedState = stateNamed(state);
  if (!parsedState) return corrupt("unknown state '" + state + "'");
  i.state = *parsedState;
  if (!stageableName(i.id)) return corrupt("id '" + i.id + "' cannot name a file");
  if (i.memoryBytes == 0 || i.cpuCores == 0) return corrupt("no cores or no memory");
  if (r.pid <= 0) return corrupt("pid " + std::to_string(r.pid) + " is not a process id");
  if (r.qmpPath.empty()) return corrupt("no QMP socket");
  if (r.sshForwardPort < 0 || r.sshForwardPort > 65535) {
    return corrupt("ssh_forward_port " + std::to_string(r.sshForwardPort) + " is not a port");
  }
  if (r.cloneHandle && r.cloneHandle->port > 65535) {
    return corrupt("handle port " + std::to_string(r.cloneHandle->port) + " is not a port");
  }
  return r;
}

Status writeVmStateFile(const std::string& dir, const VmStateRecord& record) {
  return writeFileAtomically(vmStateFilePath(dir, record.info.id), encodeVmState(record));
}

Result<VmStateRecord> readVmStateFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::notFound("cannot read vm state file " + path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return decodeVmState(text, path);
}

void removeVmStateFile(const std::string& dir, const std::string& vmId) {
  const std::string path = vmStateFilePath(dir, vmId);
  ::unlink(path.c_str());
  ::unlink((path + ".tmp").c_str());
}

VmStateDir readVmStateDir(const std::string& dir) {
  VmStateDir out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 4 && name.ends_with(std::string(kSuffix) + ".tmp")) {
      ::unlink(entry.path().c_str());  // a write the agent did not finish: the old file stands
      continue;
    }
    if (!name.ends_with(kSuffix)) continue;
    auto r = readVmStateFile(entry.path().string());
    if (r && r->info.id + kSuffix != name) {
      r = Status::invalid("vm state file " + entry.path().string() +
                          " is corrupt: it describes vm '" + r->info.id + "'");
    }
    if (r) {
      out.records.push_back(std::move(r).value());
    } else {
      out.errors.push_back({entry.path().string(), r.status()});
    }
  }
  if (ec) out.errors.push_back({dir, Status::internal("cannot list " + dir + ": " + ec.message())});
  return out;
}

}  // namespace vrm::vmscheduler::qemu

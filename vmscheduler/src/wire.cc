#include "wire.h"

#include "vrm/protocol/codec.h"

namespace vrm::vmscheduler::wireconv {

using protocol::toStd;

VmRecord toRecord(const VmInfo& vm, const std::string& host) {
  VmRecord r;
  r.id = vm.id;
  r.host = host;
  r.cpuCores = vm.cpuCores;
  r.memoryBytes = vm.memoryBytes;
  r.nonzeroMemoryBytes = vm.nonzeroMemoryBytes;
  r.dirtyRateBytesPerSec = vm.dirtyRateBytesPerSec;
  r.state = vm.state;
  r.reservationId = vm.reservationId;
  r.address = vm.address;
  r.diskBytes = vm.diskBytes;
  r.templateName = vm.templateName;
  r.allowLive = vm.allowLive;
  r.allowSuspend = vm.allowSuspend;
  r.stateFile = vm.stateFile;
  r.diskDirtyRateBytesPerSec = vm.diskDirtyRateBytesPerSec;
  r.dirtyRateSamplesBytesPerSec = vm.dirtyRateSamplesBytesPerSec;
  r.modifiedMemoryBytes = vm.modifiedMemoryBytes;
  r.workload = vm.workload;
  r.account = vm.account;
  r.sshPort = vm.sshPort;
  r.addressSource = vm.addressSource;
  return r;
}

VmInfo fromRecord(const VmRecord& r) {
  VmInfo vm;
  vm.id = r.id;
  vm.cpuCores = r.cpuCores;
  vm.memoryBytes = r.memoryBytes;
  vm.nonzeroMemoryBytes = r.nonzeroMemoryBytes;
  vm.dirtyRateBytesPerSec = r.dirtyRateBytesPerSec;
  vm.state = r.state;
  vm.reservationId = r.reservationId;
  vm.address = r.address;
  vm.diskBytes = r.diskBytes;
  vm.templateName = r.templateName;
  vm.allowLive = r.allowLive;
  vm.allowSuspend = r.allowSuspend;
  vm.stateFile = r.stateFile;
  vm.diskDirtyRateBytesPerSec = r.diskDirtyRateBytesPerSec;
  vm.dirtyRateSamplesBytesPerSec = r.dirtyRateSamplesBytesPerSec;
  vm.modifiedMemoryBytes = r.modifiedMemoryBytes;
  vm.workload = r.workload;
  vm.account = r.account;
  vm.sshPort = r.sshPort;
  vm.addressSource = r.addressSource;
  return vm;
}

void toWire(const HostInfo& host, wire::HostInfo::Builder out) {
  HostRecord r;
  r.name = host.name;
  r.cpuCores = host.cpuCores;
  r.memoryBytes = host.memoryBytes;
  r.nicBandwidthBytesPerSec = host.nicBandwidthBytesPerSec;
  protocol::toWire(r, out);
}

void toWire(const VmInfo& vm, const std::string& host, wire::VmInfo::Builder out) {
  protocol::toWire(toRecord(vm, host), out);
}

void toWire(const VmHandle& handle, wire::VmHandle::Builder out) {
  out.setVmId(handle.vmId);
  out.setHost(handle.host);
  out.setAddress(handle.address);
  out.setAccount(handle.account);
  out.setPort(handle.port);
  out.setAddressSource(handle.addressSource);
}

MigrationSpec fromWire(wire::MigrateCommand::Reader in) {
  MigrationSpec spec;
  spec.vmId = toStd(in.getVmId());
  spec.destinationHost = toStd(in.getDestinationHost());
  spec.destinationEndpoint = toStd(in.getDestinationEndpoint());
  spec.mode = protocol::fromWire(in.getMode());
  spec.maxBandwidthBytesPerSec = in.getMaxBandwidthBytesPerSec();
  spec.downtimeLimitNs = in.getDowntimeLimitNs();
  return spec;
}

CloneSpec fromWire(wire::CloneCommand::Reader in) {
  CloneSpec spec;
  spec.vmId = toStd(in.getVmId());
  spec.templateName = toStd(in.getTemplate());
  spec.cpuCores = in.getCpuCores();
  spec.memoryBytes = in.getMemoryBytes();
  spec.reservationId = toStd(in.getReservationId());
  spec.bootTimeNs = in.getBootTimeNs();
  spec.sshPublicKey = toStd(in.getSshPublicKey());
  return spec;
}

}  // namespace vrm::vmscheduler::wireconv

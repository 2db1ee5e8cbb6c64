#include "wire.h"

#include "vrm/protocol/codec.h"

namespace vrm::vmscheduler::wireconv {

using protocol::toStd;

wire::StatusCode toWire(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return wire::StatusCode::OK;
    case StatusCode::kRejected:
      return wire::StatusCode::REJECTED;
    case StatusCode::kInvalidArgument:
      return wire::StatusCode::INVALID_ARGUMENT;
    case StatusCode::kNotFound:
      return wire::StatusCode::NOT_FOUND;
    case StatusCode::kUnauthorized:
      return wire::StatusCode::UNAUTHORIZED;
    case StatusCode::kInternal:
      return wire::StatusCode::INTERNAL;
    case StatusCode::kUnavailable:
      return wire::StatusCode::UNAVAILABLE;
  }
  return wire::StatusCode::INTERNAL;
}

StatusCode fromWire(wire::StatusCode code) {
  switch (code) {
    case wire::StatusCode::OK:
      return StatusCode::kOk;
    case wire::StatusCode::REJECTED:
      return StatusCode::kRejected;
    case wire::StatusCode::INVALID_ARGUMENT:
      return StatusCode::kInvalidArgument;
    case wire::StatusCode::NOT_FOUND:
      return StatusCode::kNotFound;
    case wire::StatusCode::UNAUTHORIZED:
      return StatusCode::kUnauthorized;
    case wire::StatusCode::INTERNAL:
      return StatusCode::kInternal;
    case wire::StatusCode::UNAVAILABLE:
      return StatusCode::kUnavailable;
  }
  // A code added to the schema after this agent was built: treat as an internal error.
  return StatusCode::kInternal;
}

void toWire(const Status& status, wire::Status::Builder out) {
  out.setCode(toWire(status.code()));
  out.setMessage(status.message());
}

wire::VmState toWire(VmState state) {
  switch (state) {
    case VmState::kRunning:
      return wire::VmState::RUNNING;
    case VmState::kSuspended:
      return wire::VmState::SUSPENDED;
    case VmState::kMigratingOut:
      return wire::VmState::MIGRATING_OUT;
    case VmState::kIncoming:
      return wire::VmState::INCOMING;
    case VmState::kCloning:
      return wire::VmState::CLONING;
  }
  return wire::VmState::RUNNING;
}

VmState fromWire(wire::VmState state) {
  switch (state) {
    case wire::VmState::RUNNING:
      return VmState::kRunning;
    case wire::VmState::SUSPENDED:
      return VmState::kSuspended;
    case wire::VmState::MIGRATING_OUT:
      return VmState::kMigratingOut;
    case wire::VmState::INCOMING:
      return VmState::kIncoming;
    case wire::VmState::CLONING:
      return VmState::kCloning;
  }
  return VmState::kRunning;
}

wire::MigrationMode toWire(MigrationMode mode) {
  return mode == MigrationMode::kLive ? wire::MigrationMode::LIVE
                                      : wire::MigrationMode::SUSPEND_COPY_RESUME;
}

MigrationMode fromWire(wire::MigrationMode mode) {
  return mode == wire::MigrationMode::SUSPEND_COPY_RESUME ? MigrationMode::kSuspendCopyResume
                                                          : MigrationMode::kLive;
}

void toWire(const HostInfo& host, wire::HostInfo::Builder out) {
  out.setName(host.name);
  out.setCpuCores(host.cpuCores);
  out.setMemoryBytes(host.memoryBytes);
  out.setNicBandwidthBytesPerSec(host.nicBandwidthBytesPerSec);
}

void toWire(const VmInfo& vm, const std::string& host, wire::VmInfo::Builder out) {
  out.setId(vm.id);
  out.setHost(host);
  out.setCpuCores(vm.cpuCores);
  out.setMemoryBytes(vm.memoryBytes);
  out.setNonzeroMemoryBytes(vm.nonzeroMemoryBytes);
  out.setDirtyRateBytesPerSec(vm.dirtyRateBytesPerSec);
  out.setState(toWire(vm.state));
  out.setReservationId(vm.reservationId);
  out.setAddress(vm.address);
  out.setDiskBytes(vm.diskBytes);
  out.setTemplate(vm.templateName);
  out.setAllowLive(vm.allowLive);
  out.setAllowSuspend(vm.allowSuspend);
}

VmInfo fromWire(wire::VmInfo::Reader in) {
  VmInfo vm;
  vm.id = toStd(in.getId());
  vm.cpuCores = in.getCpuCores();
  vm.memoryBytes = in.getMemoryBytes();
  vm.nonzeroMemoryBytes = in.getNonzeroMemoryBytes();
  vm.dirtyRateBytesPerSec = in.getDirtyRateBytesPerSec();
  vm.state = fromWire(in.getState());
  vm.reservationId = toStd(in.getReservationId());
  vm.address = toStd(in.getAddress());
  vm.diskBytes = in.getDiskBytes();
  vm.templateName = toStd(in.getTemplate());
  vm.allowLive = in.getAllowLive();
  vm.allowSuspend = in.getAllowSuspend();
  return vm;
}

void toWire(const MigrationObservation& obs, wire::MigrationObservation::Builder out) {
  out.setVmId(obs.vmId);
  out.setFromHost(obs.fromHost);
  out.setToHost(obs.toHost);
  out.setMode(toWire(obs.mode));
  out.setMemoryBytes(obs.memoryBytes);
  out.setNonzeroMemoryBytes(obs.nonzeroMemoryBytes);
  out.setDirtyRateBytesPerSec(obs.dirtyRateBytesPerSec);
  out.setStartNs(obs.startNs);
  out.setEndNs(obs.endNs);
  out.setSetupNs(obs.setupNs);
  out.setDowntimeNs(obs.downtimeNs);
  out.setTransferredBytes(obs.transferredBytes);
  out.setRounds(obs.rounds);
  out.setBandwidthBytesPerSec(obs.bandwidthBytesPerSec);
  out.setSaveNs(obs.saveNs);
  out.setCopyNs(obs.copyNs);
  out.setRestoreNs(obs.restoreNs);
}

void toWire(const VmHandle& handle, wire::VmHandle::Builder out) {
  out.setVmId(handle.vmId);
  out.setHost(handle.host);
  out.setAddress(handle.address);
  out.setAccount(handle.account);
}

MigrationSpec fromWire(wire::MigrateCommand::Reader in) {
  MigrationSpec spec;
  spec.vmId = toStd(in.getVmId());
  spec.destinationHost = toStd(in.getDestinationHost());
  spec.destinationEndpoint = toStd(in.getDestinationEndpoint());
  spec.mode = fromWire(in.getMode());
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
  return spec;
}

}  // namespace vrm::vmscheduler::wireconv

// What every backend keeps about the VMs of its host, and the checks they share: the table of
// VMs by id with the errors the Hypervisor interface promises (not-found, already exists,
// busy), and the room check (free cores and memory of a host, parked VMs holding neither).
//
// VmTable<Vm> holds a backend's own per-VM record; `Vm` is VmInfo itself or a struct with a
// VmInfo member `info`. Not thread safe (owned by the hypervisor's thread); a value type.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "vrm/vmscheduler/hypervisor.h"

namespace vrm::vmscheduler::backend {

inline const VmInfo& vmInfoOf(const VmInfo& vm) { return vm; }
template <class Vm>
const VmInfo& vmInfoOf(const Vm& vm) {
  return vm.info;
}

// rejected "vm 'ID' is busy (WHAT)".
Status busy(const std::string& vmId, const std::string& what);
// rejected "vm 'ID' is busy (<state>)".
Status busy(const VmInfo& vm);
// not-found "vm 'ID' is not on host 'HOST'".
Status notOnHost(const std::string& vmId, const std::string& host);
// rejected "vm id 'ID' already exists on host 'HOST'".
Status alreadyOnHost(const std::string& vmId, const std::string& host);

// Free cores and memory of a host: its capacity minus every VM added, except parked ones.
class HostRoom {
 public:
  explicit HostRoom(const HostInfo& host) : host_(host) {}
  void add(const VmInfo& vm);
  // ok when `cores` and `memoryBytes` fit; rejected naming what is short, what is needed and
  // what is free ("not enough free memory on host 'h1': need 2 GiB, free 1 GiB").
  Status fits(std::uint32_t cores, std::uint64_t memoryBytes) const;

 private:
  const HostInfo& host_;
  std::uint64_t usedCores_ = 0;
  std::uint64_t usedMemoryBytes_ = 0;
};

// The room check over any list of VMs.
template <class Range>
Status checkRoom(const HostInfo& host, const Range& vms, std::uint32_t cores,
                 std::uint64_t memoryBytes) {
  HostRoom room(host);
  for (const auto& vm : vms) room.add(vmInfoOf(vm));
  return room.fits(cores, memoryBytes);
}

template <class Vm>
class VmTable {
 public:
  using Map = std::map<std::string, Vm>;

  explicit VmTable(std::string host) : host_(std::move(host)) {}

  Vm* find(const std::string& id) {
    auto it = vms_.find(id);
    return it == vms_.end() ? nullptr : &it->second;
  }
  const Vm* find(const std::string& id) const {
    auto it = vms_.find(id);
    return it == vms_.end() ? nullptr : &it->second;
  }
  bool contains(const std::string& id) const { return vms_.count(id) != 0; }
  // not-found for an id that is not here.
  Status missing(const std::string& id) const { return notOnHost(id, host_); }
  // rejected when `id` is here already.
  Status checkAbsent(const std::string& id) const {
    return contains(id) ? alreadyOnHost(id, host_) : Status::ok();
  }
  // Room for `cores` and `memoryBytes` more on `host` beside every VM here but parked ones.
  Status checkRoom(const HostInfo& host, std::uint32_t cores, std::uint64_t memoryBytes) const {
    HostRoom room(host);
    for (const auto& [id, vm] : vms_) room.add(vmInfoOf(vm));
    return room.fits(cores, memoryBytes);
  }
  // Every VM's info, ordered by id.
  std::vector<VmInfo> inventory() const {
    std::vector<VmInfo> out;
    out.reserve(vms_.size());
    for (const auto& [id, vm] : vms_) out.push_back(vmInfoOf(vm));
    return out;
  }

  Vm& add(Vm vm) {
    const std::string id = vmInfoOf(vm).id;
    return vms_.insert_or_assign(id, std::move(vm)).first->second;
  }
  void erase(const std::string& id) { vms_.erase(id); }
  typename Map::iterator erase(typename Map::iterator it) { return vms_.erase(it); }

  typename Map::iterator begin() { return vms_.begin(); }
  typename Map::iterator end() { return vms_.end(); }
  typename Map::const_iterator begin() const { return vms_.begin(); }
  typename Map::const_iterator end() const { return vms_.end(); }
  std::size_t size() const { return vms_.size(); }
  const std::string& host() const { return host_; }

 private:
  std::string host_;
  Map vms_;
};

}  // namespace vrm::vmscheduler::backend

// The libvirt backend's settings and the checks it makes when the agent starts: its parameters
// read into one value (libvirt_hypervisor.h lists them and their defaults), then, once connected,
// the network or bridge and every clone template judged by libvirt itself, so that a wrong
// setting is refused at agent start naming the setting, not at the first clone.
// Thread safety: none of these keeps state; the connection is the caller's.
#pragma once

#include <libvirt/libvirt.h>

#include <cstdint>
#include <map>
#include <string>

#include "backend/params.h"
#include "libvirt_support.h"

namespace vrm::vmscheduler::libvirt_detail {

// How a migration to a libvirt URI treats the VM's disks (the disk-migration setting).
enum class DiskMigration {
  kShared,  // the destination sees the same images (shared storage): only memory is sent
  kCopy,    // share-nothing: libvirt copies every writable local disk (VIR_MIGRATE_NON_SHARED_DISK)
};

// The backend's parameters, as read by readSettings().
struct LibvirtSettings {
  std::string uri;
  std::string templateDir;                             // template-xml-dir, empty: none
  std::map<std::string, std::string> inlineTemplates;  // template.NAME, by NAME
  std::string stageDir;                                // stage-dir (created by readSettings)
  std::string migrationUri;
  std::string parkDir;  // park-dir, else stage-dir
  bool threaded = false;
  CloneNic nic;
  AddressSource addressSource = AddressSource::kNone;
  TimeNs addressTimeoutNs = 120 * kNsPerSec;
  std::string account = "vrm";
  TimeNs migrationTimeoutNs = 600 * kNsPerSec;  // 0: none
  std::uint64_t maxRounds = 60;                 // 0: none
  DiskMigration diskMigration = DiskMigration::kShared;
  std::string diskDir;  // disk-dir, as libvirtd sees it; empty: none
};

// Reads every parameter and checks what can be checked without libvirt: values, combinations,
// the template dir. Creates the stage dir (libvirtd writes incoming save images into it, but does
// not create it). Leaves `params` finished. Errors: invalid-argument naming the setting.
Result<LibvirtSettings> readSettings(backend::BackendParams& params);

// The XML of clone template `name`: the inline one, else <templateDir>/<name>.xml. Errors:
// invalid-argument "no clone template ... on host `host`".
Result<std::string> templateXml(const LibvirtSettings& settings, const std::string& name,
                                const std::string& host);

// The checks made once connected on `conn`: the network exists and is active; the bridge exists
// (where the driver lists host interfaces); every template (inline and in the dir) is defined
// under a probe name and undefined at once, and the networks it names are checked likewise; with
// a disk-dir, a storage pool over it exists and is active (a transient dir pool is made when
// none is), because libvirt creates an incoming share-nothing VM's disks only in a pool whose
// target is the disk's directory.
// Errors: invalid-argument naming the setting with libvirt's reason; unauthorized when the
// connection may not define domains (read-only).
Status checkConnected(virConnectPtr conn, const LibvirtSettings& settings, const std::string& host,
                      const backend::BackendParams& params);

}  // namespace vrm::vmscheduler::libvirt_detail

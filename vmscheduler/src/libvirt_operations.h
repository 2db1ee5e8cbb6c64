// The long operations of the libvirt backend, one class each: the blocking libvirt calls of a
// migration by save image, a migration to a libvirt URI, a park, an unpark and a clone.
//
// Each is built by the facade (libvirt_hypervisor.cc) from values copied at start, so run() can
// execute on a worker thread (threaded mode) or inside poll() (inline mode) alike; run() makes
// only libvirt calls (libvirt connections are thread safe) and returns what it measured, which
// the facade turns into the operation's completion on its own thread.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "libvirt_support.h"

namespace vrm::vmscheduler::libvirt_detail {

// What run() measured; status not ok when the operation failed.
struct WorkResult {
  Status status;
  TimeNs elapsedNs = 0;
  MigrationObservation migration;  // measured fields only
  VmHandle clone;
};

class LibvirtWork {
 public:
  virtual ~LibvirtWork() = default;
  virtual WorkResult run() = 0;
};

// Suspend-copy-resume through a save image at `path` that the destination restores; the
// domain is undefined here afterwards.
class SaveMigrationWork final : public LibvirtWork {
 public:
  SaveMigrationWork(virConnectPtr conn, std::string vmId, std::string host, std::string path)
      : conn_(conn), vmId_(std::move(vmId)), host_(std::move(host)), path_(std::move(path)) {}
  WorkResult run() override;

 private:
  virConnectPtr conn_;
  std::string vmId_, host_, path_;
};

// virDomainMigrateToURI3, peer to peer and persistent at the destination, live or not, at the
// bandwidth cap read from `maxBandwidth` when it starts (bytes/s, 0 = unlimited).
class UriMigrationWork final : public LibvirtWork {
 public:
  UriMigrationWork(virConnectPtr conn, std::string vmId, std::string host, std::string uri,
                   bool live, std::shared_ptr<std::atomic<double>> maxBandwidth,
                   TimeNs downtimeLimitNs)
      : conn_(conn),
        vmId_(std::move(vmId)),
        host_(std::move(host)),
        uri_(std::move(uri)),
        live_(live),
        maxBandwidth_(std::move(maxBandwidth)),
        downtimeLimitNs_(downtimeLimitNs) {}
  WorkResult run() override;

 private:
  virConnectPtr conn_;
  std::string vmId_, host_, uri_;
  bool live_;
  std::shared_ptr<std::atomic<double>> maxBandwidth_;
  TimeNs downtimeLimitNs_;
};

// Saves the domain to `path` (defining a transient one first, so its parked record survives).
class ParkWork final : public LibvirtWork {
 public:
  ParkWork(virConnectPtr conn, std::string vmId, std::string host, std::string path)
      : conn_(conn), vmId_(std::move(vmId)), host_(std::move(host)), path_(std::move(path)) {}
  WorkResult run() override;

 private:
  virConnectPtr conn_;
  std::string vmId_, host_, path_;
};

// Restores the domain from its park image at `path`, then removes the image.
class UnparkWork final : public LibvirtWork {
 public:
  UnparkWork(virConnectPtr conn, std::string vmId, std::string path)
      : conn_(conn), vmId_(std::move(vmId)), path_(std::move(path)) {}
  WorkResult run() override;

 private:
  virConnectPtr conn_;
  std::string vmId_, path_;
};

// Defines `domainXml`, tags it with `metadata` (tagsXml()) and starts it; the handle's address
// is the first lease libvirt knows, else `fallbackAddress`.
class CloneWork final : public LibvirtWork {
 public:
  CloneWork(virConnectPtr conn, std::string vmId, std::string host, std::string domainXml,
            std::string metadata, std::string fallbackAddress)
      : conn_(conn),
        vmId_(std::move(vmId)),
        host_(std::move(host)),
        domainXml_(std::move(domainXml)),
        metadata_(std::move(metadata)),
        fallbackAddress_(std::move(fallbackAddress)) {}
  WorkResult run() override;

 private:
  virConnectPtr conn_;
  std::string vmId_, host_, domainXml_, metadata_, fallbackAddress_;
};

}  // namespace vrm::vmscheduler::libvirt_detail

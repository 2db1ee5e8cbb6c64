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
  AddressSource addressSource = AddressSource::kNone;  // where clone.address came from
};

// The connection a long operation runs on: the facade's (inline mode, and libvirt's test driver,
// where test:///FILE gives every connection a node of its own), or one the work opens to `uri` for
// itself and closes when done (worker mode): libvirt holds back a connection's other calls while
// it runs a peer-to-peer migration on it (job statistics, the bandwidth cap and cancelling would
// wait until the migration ended), so the facade's connection must stay free.
struct WorkConnection {
  virConnectPtr shared = nullptr;
  std::string uri;  // non-empty: open a connection of its own
};

// A WorkConnection made usable; closes the connection it opened.
class OpenedConnection {
 public:
  // Errors: unavailable with libvirt's reason when `c.uri` cannot be opened.
  static Result<OpenedConnection> open(const WorkConnection& c);
  OpenedConnection(OpenedConnection&& o) noexcept
      : conn_(std::exchange(o.conn_, nullptr)), owned_(o.owned_) {}
  OpenedConnection& operator=(OpenedConnection&&) = delete;
  OpenedConnection(const OpenedConnection&) = delete;
  ~OpenedConnection();
  virConnectPtr get() const { return conn_; }

 private:
  OpenedConnection(virConnectPtr conn, bool owned) : conn_(conn), owned_(owned) {}
  virConnectPtr conn_;
  bool owned_;
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
  SaveMigrationWork(WorkConnection conn, std::string vmId, std::string host, std::string path)
      : conn_(std::move(conn)),
        vmId_(std::move(vmId)),
        host_(std::move(host)),
        path_(std::move(path)) {}
  WorkResult run() override;

 private:
  WorkConnection conn_;
  std::string vmId_, host_, path_;
};

// What a migration to a libvirt URI does with the VM's local disks (localDisksOf()).
struct DiskCopy {
  bool copy = false;  // disk-migration=copy: VIR_MIGRATE_NON_SHARED_DISK with those disks
  // Applied to each copied disk (blkio write_bytes_sec, live) before the migration starts: libvirt
  // 9.0 holds back block tuning while a migration job runs, so the cap cannot follow later.
  double writeLimitBytesPerSec = 0;
};

// virDomainMigrateToURI3, peer to peer and persistent at the destination, live or not, at the
// bandwidth cap read from `maxBandwidth` when it starts (bytes/s, 0 = unlimited); with
// `disks.copy`, the local disks go with it (libvirt mirrors them over NBD at the same cap, then
// sends the memory).
class UriMigrationWork final : public LibvirtWork {
 public:
  UriMigrationWork(WorkConnection conn, std::string vmId, std::string host, std::string uri,
                   bool live, std::shared_ptr<std::atomic<double>> maxBandwidth,
                   TimeNs downtimeLimitNs, DiskCopy disks)
      : conn_(std::move(conn)),
        vmId_(std::move(vmId)),
        host_(std::move(host)),
        uri_(std::move(uri)),
        live_(live),
        maxBandwidth_(std::move(maxBandwidth)),
        downtimeLimitNs_(downtimeLimitNs),
        disks_(disks) {}
  WorkResult run() override;

 private:
  WorkConnection conn_;
  std::string vmId_, host_, uri_;
  bool live_;
  std::shared_ptr<std::atomic<double>> maxBandwidth_;
  TimeNs downtimeLimitNs_;
  DiskCopy disks_;
};

// Saves the domain to `path` (defining a transient one first, so its parked record survives).
class ParkWork final : public LibvirtWork {
 public:
  ParkWork(WorkConnection conn, std::string vmId, std::string host, std::string path)
      : conn_(std::move(conn)),
        vmId_(std::move(vmId)),
        host_(std::move(host)),
        path_(std::move(path)) {}
  WorkResult run() override;

 private:
  WorkConnection conn_;
  std::string vmId_, host_, path_;
};

// Restores the domain from its park image at `path`, then removes the image.
class UnparkWork final : public LibvirtWork {
 public:
  UnparkWork(WorkConnection conn, std::string vmId, std::string path)
      : conn_(std::move(conn)), vmId_(std::move(vmId)), path_(std::move(path)) {}
  WorkResult run() override;

 private:
  WorkConnection conn_;
  std::string vmId_, path_;
};

// How a clone's address is found once it runs.
struct AddressWait {
  AddressSource source = AddressSource::kNone;
  std::string mac;       // of the clone's NIC
  std::string where;     // for messages: "the DHCP lease of network 'vrm-net'"
  TimeNs timeoutNs = 0;  // a clone without an address after this fails
  TimeNs intervalNs = 250 * kNsPerMs;
};

// Defines `domainXml`, tags it with `tags` and starts it, then asks `wait.source` for its address
// until it has one (kept in its tags), the domain stops, or the timeout passes; a clone that fails
// after its define is destroyed and undefined (never handed back unreachable). The handle's
// account is `account`.
class CloneWork final : public LibvirtWork {
 public:
  CloneWork(WorkConnection conn, std::string vmId, std::string host, std::string domainXml,
            Tags tags, AddressWait wait, std::string account)
      : conn_(std::move(conn)),
        vmId_(std::move(vmId)),
        host_(std::move(host)),
        domainXml_(std::move(domainXml)),
        tags_(std::move(tags)),
        wait_(std::move(wait)),
        account_(std::move(account)) {}
  WorkResult run() override;

 private:
  WorkConnection conn_;
  std::string vmId_, host_, domainXml_;
  Tags tags_;
  AddressWait wait_;
  std::string account_;
};

}  // namespace vrm::vmscheduler::libvirt_detail

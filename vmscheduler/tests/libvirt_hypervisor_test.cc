// Tests of the libvirt backend against libvirt's in-process test driver: one node file per
// simulated host (test:///path/node.xml gives each connection a fresh node of its own).
#include "libvirt_hypervisor.h"

#include <gtest/gtest.h>
#include <libvirt/libvirt.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>

#include "vrm/vmscheduler/hypervisor.h"

namespace vrm::vmscheduler {
namespace {

namespace fs = std::filesystem;
constexpr std::uint64_t kMiB = 1024 * 1024;
constexpr TimeNs kStart = 1'000 * kNsPerSec;

constexpr const char* kTemplate =
    "<domain type='test'><name>{{name}}</name><memory unit='KiB'>{{memory_kib}}</memory>"
    "<vcpu>{{vcpus}}</vcpu><os><type>hvm</type></os></domain>";

// A plain domain XML, as `virsh dumpxml` would give, used as a template without placeholders.
constexpr const char* kPlainTemplate =
    "<domain type='test'>\n  <name>golden</name>\n"
    "  <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>\n"
    "  <memory unit='GiB'>8</memory>\n  <currentMemory unit='GiB'>8</currentMemory>\n"
    "  <vcpu placement='static'>4</vcpu>\n  <os><type>hvm</type></os>\n</domain>\n";

// A fresh directory per test, removed at the end.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "vrm-libvirt-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Writes a test-driver node file with 8 cores, 16 GiB and `domains` (running VMs).
std::string writeNode(const fs::path& dir, const std::string& name,
                      const std::vector<std::string>& domains, const std::string& extra = "") {
  const fs::path file = dir / (name + ".xml");
  std::ofstream out(file);
  out << "<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>8</cores><threads>1</threads>"
         "<active>8</active><mhz>2000</mhz><model>i686</model></cpu>"
         "<memory>16777216</memory>";
  for (const auto& d : domains) {
    out << "<domain type='test'><name>" << d
        << "</name><memory unit='KiB'>1048576</memory><vcpu>2</vcpu><os><type>hvm</type></os>"
           "</domain>";
  }
  out << extra << "</node>";
  return "test://" + file.string();
}

std::unique_ptr<Hypervisor> makeLibvirt(const std::string& host,
                                        std::map<std::string, std::string> params) {
  HypervisorOptions options;
  options.host.name = host;
  options.host.nicBandwidthBytesPerSec = 1e9;
  options.params = std::move(params);
  auto hv = Hypervisor::create("libvirt", options);
  EXPECT_TRUE(hv.isOk()) << hv.status().toString();
  return hv.isOk() ? std::move(hv).value() : nullptr;
}

std::optional<VmInfo> findVm(const std::vector<VmInfo>& vms, const std::string& id) {
  auto it = std::find_if(vms.begin(), vms.end(), [&](const VmInfo& v) { return v.id == id; });
  if (it == vms.end()) return std::nullopt;
  return *it;
}

std::optional<OperationEvent> completionAt(Hypervisor& hv, OperationId op, TimeNs now) {
  for (auto& e : hv.poll(now)) {
    if (e.opId == op && e.kind == OperationEvent::Kind::kCompleted) return e;
  }
  return std::nullopt;
}

CloneSpec cloneSpec(const std::string& id, const std::string& templ = "small") {
  return CloneSpec{id, templ, 2, 512 * kMiB, "r1", 0};
}

// Ensures the inventory lists the node's domains with their cores, memory and state, and the
// host's capacity comes from the node.
TEST(LibvirtHypervisorTest, InventoryListsTheNodesDomains) {
  TempDir dir;
  auto hv = makeLibvirt("h1", {{"uri", writeNode(dir.path(), "h1", {"vm1", "vm2"})}});
  ASSERT_TRUE(hv);
  EXPECT_EQ(hv->backendName(), "libvirt");
  EXPECT_EQ(hv->hostInfo().name, "h1");
  EXPECT_EQ(hv->hostInfo().cpuCores, 8u);
  EXPECT_EQ(hv->hostInfo().memoryBytes, 16 * 1024 * kMiB);
  EXPECT_DOUBLE_EQ(hv->hostInfo().nicBandwidthBytesPerSec, 1e9);
  const auto vms = hv->inventory();
  ASSERT_EQ(vms.size(), 2u);
  EXPECT_EQ(vms[0].id, "vm1");
  EXPECT_EQ(vms[0].cpuCores, 2u);
  EXPECT_EQ(vms[0].memoryBytes, 1024 * kMiB);
  EXPECT_EQ(vms[0].state, VmState::kRunning);
  EXPECT_EQ(vms[1].id, "vm2");
  EXPECT_EQ(hv->nextEventTime(), kTimeInfinity);
}

// Ensures a clone from an inline template is defined, tagged and started, reported by poll(),
// listed with its reservation and template, repeated idempotently, and refused on a clash. With
// no network setting nobody is asked for its address: the handle has none (never a guess).
TEST(LibvirtHypervisorTest, CloneDefinesAndStartsFromTemplate) {
  TempDir dir;
  auto hv =
      makeLibvirt("h1", {{"uri", writeNode(dir.path(), "h1", {})}, {"template.small", kTemplate}});
  ASSERT_TRUE(hv);
  ASSERT_TRUE(hv->startClone(4, cloneSpec("r1-0")).isOk());
  EXPECT_EQ(findVm(hv->inventory(), "r1-0")->state, VmState::kCloning);
  EXPECT_LE(hv->nextEventTime(), kStart);
  auto done = completionAt(*hv, 4, kStart);
  ASSERT_TRUE(done);
  ASSERT_TRUE(done->status.isOk()) << done->status.toString();
  ASSERT_TRUE(done->clone);
  EXPECT_EQ(done->clone->vmId, "r1-0");
  EXPECT_EQ(done->clone->host, "h1");
  EXPECT_EQ(done->clone->address, "");
  EXPECT_EQ(done->clone->account, "vrm");
  auto vm = findVm(hv->inventory(), "r1-0");
  ASSERT_TRUE(vm);
  EXPECT_EQ(vm->state, VmState::kRunning);
  EXPECT_EQ(vm->cpuCores, 2u);
  EXPECT_EQ(vm->memoryBytes, 512 * kMiB);
  EXPECT_EQ(vm->reservationId, "r1");
  EXPECT_EQ(vm->templateName, "small");

  ASSERT_TRUE(hv->startClone(5, cloneSpec("r1-0")).isOk());  // vrmd retries: same handle
  auto again = completionAt(*hv, 5, kStart + 1);
  ASSERT_TRUE(again && again->clone);
  EXPECT_EQ(again->clone->address, "");
  CloneSpec other = cloneSpec("r1-0");
  other.reservationId = "r2";
  EXPECT_EQ(hv->startClone(6, other).code(), StatusCode::kRejected);
  EXPECT_EQ(hv->inventory().size(), 1u);
}

// Ensures a plain domain XML in template_xml_dir works as a template: the clone gets the VM id
// as name, a fresh uuid, and the requested memory and cores.
TEST(LibvirtHypervisorTest, CloneFromTemplateDirRewritesPlainXml) {
  TempDir dir;
  fs::create_directories(dir.path() / "templates");
  std::ofstream(dir.path() / "templates" / "golden.xml") << kPlainTemplate;
  auto hv = makeLibvirt("h1", {{"uri", writeNode(dir.path(), "h1", {})},
                               {"template_xml_dir", (dir.path() / "templates").string()}});
  ASSERT_TRUE(hv);
  ASSERT_TRUE(hv->startClone(1, cloneSpec("a", "golden")).isOk());
  ASSERT_TRUE(hv->startClone(2, cloneSpec("b", "golden")).isOk());  // same template, new uuid
  auto events = hv->poll(kStart);
  ASSERT_EQ(events.size(), 2u);
  for (const auto& e : events) EXPECT_TRUE(e.status.isOk()) << e.status.toString();
  auto a = findVm(hv->inventory(), "a");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->memoryBytes, 512 * kMiB);
  EXPECT_EQ(a->cpuCores, 2u);
  EXPECT_EQ(a->templateName, "golden");
  EXPECT_TRUE(findVm(hv->inventory(), "b"));

  const std::string xml = libvirt_detail::instantiateTemplate(kPlainTemplate, cloneSpec("c"));
  EXPECT_NE(xml.find("<name>c</name>"), std::string::npos) << xml;
  EXPECT_EQ(xml.find("<uuid>"), std::string::npos) << xml;
  EXPECT_NE(xml.find("<memory unit='KiB'>524288</memory>"), std::string::npos) << xml;
  EXPECT_NE(xml.find("<vcpu placement='static'>2</vcpu>"), std::string::npos) << xml;
}

// Ensures suspend and resume map to libvirt and are idempotent, resume starts a shut-off
// domain, and destroy removes the VM.
TEST(LibvirtHypervisorTest, SuspendResumeStartDestroy) {
  TempDir dir;
  const std::string uri = writeNode(dir.path(), "h1", {"vm1"});
  auto hv = makeLibvirt("h1", {{"uri", uri}});
  ASSERT_TRUE(hv);
  ASSERT_TRUE(hv->suspend("vm1").isOk());
  EXPECT_EQ(findVm(hv->inventory(), "vm1")->state, VmState::kSuspended);
  ASSERT_TRUE(hv->suspend("vm1").isOk());
  ASSERT_TRUE(hv->resume("vm1").isOk());
  EXPECT_EQ(findVm(hv->inventory(), "vm1")->state, VmState::kRunning);
  ASSERT_TRUE(hv->resume("vm1").isOk());

  ASSERT_TRUE(hv->destroy("vm1").isOk());
  EXPECT_FALSE(findVm(hv->inventory(), "vm1"));
  EXPECT_EQ(hv->destroy("vm1").code(), StatusCode::kNotFound);
}

// Ensures a defined but shut-off domain is listed as suspended, suspending it again is a no-op,
// and resume() starts it (virDomainCreate).
TEST(LibvirtHypervisorTest, ResumeStartsAShutOffDomain) {
  TempDir dir;
  const fs::path file = dir.path() / "h1.xml";
  std::ofstream(file)
      << "<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>8</cores><threads>1</threads>"
         "<active>8</active><mhz>2000</mhz><model>i686</model></cpu><memory>16777216</memory>"
         "<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>"
         "<name>off</name><memory unit='KiB'>1048576</memory><vcpu>1</vcpu>"
         "<os><type>hvm</type></os><test:runstate>5</test:runstate></domain></node>";
  auto hv = makeLibvirt("h1", {{"uri", "test://" + file.string()}});
  ASSERT_TRUE(hv);
  EXPECT_EQ(findVm(hv->inventory(), "off")->state, VmState::kSuspended);
  ASSERT_TRUE(hv->suspend("off").isOk());
  ASSERT_TRUE(hv->resume("off").isOk());
  EXPECT_EQ(findVm(hv->inventory(), "off")->state, VmState::kRunning);
  ASSERT_TRUE(hv->destroy("off").isOk());
  EXPECT_TRUE(hv->inventory().empty());
}

// Ensures a migration between two test-driver hosts works as save on the source and restore on
// the destination, through the ordinary prepareIncoming / startMigration / finishIncoming
// sequence, and that the source reports a complete suspend-copy-resume observation.
TEST(LibvirtHypervisorTest, SaveOnOneHostRestoreOnAnotherIsAMigration) {
  TempDir dir;
  fs::create_directory(dir.path() / "state");
  auto a =
      makeLibvirt("a", {{"uri", writeNode(dir.path(), "a", {})}, {"template.small", kTemplate}});
  auto b = makeLibvirt("b", {{"uri", writeNode(dir.path(), "b", {})},
                             {"state_dir", (dir.path() / "state").string()}});
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->startClone(1, cloneSpec("r1-0")).isOk());
  ASSERT_TRUE(completionAt(*a, 1, kStart));
  const VmInfo vm = *findVm(a->inventory(), "r1-0");

  auto endpoint = b->prepareIncoming(vm);
  ASSERT_TRUE(endpoint.isOk()) << endpoint.status().toString();
  EXPECT_EQ(*endpoint, "save:" + (dir.path() / "state" / "r1-0.vrmsave").string());
  EXPECT_EQ(findVm(b->inventory(), "r1-0")->state, VmState::kIncoming);

  MigrationSpec spec{"r1-0", "b", *endpoint, MigrationMode::kLive, 0, 0};
  ASSERT_TRUE(a->startMigration(2, spec).isOk());
  EXPECT_EQ(findVm(a->inventory(), "r1-0")->state, VmState::kMigratingOut);
  EXPECT_EQ(a->suspend("r1-0").code(), StatusCode::kRejected);
  auto done = completionAt(*a, 2, kStart + kNsPerSec);
  ASSERT_TRUE(done);
  ASSERT_TRUE(done->status.isOk()) << done->status.toString();
  ASSERT_TRUE(done->migration);
  const MigrationObservation& obs = *done->migration;
  EXPECT_EQ(obs.vmId, "r1-0");
  EXPECT_EQ(obs.fromHost, "a");
  EXPECT_EQ(obs.toHost, "b");
  EXPECT_EQ(obs.mode, MigrationMode::kSuspendCopyResume);  // what really happened
  EXPECT_EQ(obs.memoryBytes, 512 * kMiB);
  EXPECT_EQ(obs.rounds, 1u);
  EXPECT_GT(obs.transferredBytes, 0u);  // the save image
  EXPECT_EQ(obs.startNs, kStart + kNsPerSec);
  EXPECT_GE(obs.endNs, obs.startNs + obs.setupNs + obs.downtimeNs);
  EXPECT_GT(obs.bandwidthBytesPerSec, 0);
  EXPECT_FALSE(findVm(a->inventory(), "r1-0"));

  ASSERT_TRUE(b->finishIncoming("r1-0", true).isOk());
  auto arrived = findVm(b->inventory(), "r1-0");
  ASSERT_TRUE(arrived);
  EXPECT_EQ(arrived->state, VmState::kRunning);
  EXPECT_EQ(arrived->reservationId, "r1");  // metadata travels in the save image
  EXPECT_EQ(arrived->templateName, "small");
  EXPECT_FALSE(fs::exists(dir.path() / "state" / "r1-0.vrmsave"));
  EXPECT_EQ(b->finishIncoming("r1-0", true).code(), StatusCode::kRejected);  // not incoming
}

// Ensures a dropped incoming VM frees its place, and committing one that never arrived is
// rejected.
TEST(LibvirtHypervisorTest, IncomingThatNeverArrives) {
  TempDir dir;
  auto b = makeLibvirt(
      "b", {{"uri", writeNode(dir.path(), "b", {})}, {"state_dir", dir.path().string()}});
  ASSERT_TRUE(b);
  VmInfo vm;
  vm.id = "x";
  vm.cpuCores = 1;
  vm.memoryBytes = 256 * kMiB;
  ASSERT_TRUE(b->prepareIncoming(vm).isOk());
  EXPECT_EQ(b->prepareIncoming(vm).status().code(), StatusCode::kRejected);  // already incoming
  EXPECT_EQ(b->finishIncoming("x", true).code(), StatusCode::kRejected);
  ASSERT_TRUE(b->finishIncoming("x", false).isOk());
  EXPECT_TRUE(b->inventory().empty());
  vm.memoryBytes = 32 * 1024 * kMiB;
  EXPECT_EQ(b->prepareIncoming(vm).status().code(), StatusCode::kRejected);  // no room

  TempDir other;
  auto nowhere = makeLibvirt("c", {{"uri", writeNode(other.path(), "c", {})}});
  ASSERT_TRUE(nowhere);
  vm.memoryBytes = 256 * kMiB;
  EXPECT_EQ(nowhere->prepareIncoming(vm).status().code(), StatusCode::kRejected);
}

// Ensures live migration to a libvirt URI is attempted with virDomainMigrateToURI3, and that
// the test driver's refusal comes back as a typed failure with libvirt's message while the VM
// stays where it was.
TEST(LibvirtHypervisorTest, UriMigrationFailureIsTyped) {
  TempDir dir;
  auto a = makeLibvirt("a", {{"uri", writeNode(dir.path(), "a", {"vm1"})}});
  ASSERT_TRUE(a);
  MigrationSpec spec{"vm1", "b", "test:///default", MigrationMode::kLive, 1e8, 300 * kNsPerMs};
  ASSERT_TRUE(a->startMigration(1, spec).isOk());
  auto done = completionAt(*a, 1, kStart);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status.code(), StatusCode::kRejected);
  EXPECT_NE(done->status.message().find("migrat"), std::string::npos) << done->status.message();
  EXPECT_FALSE(done->migration);
  EXPECT_EQ(findVm(a->inventory(), "vm1")->state, VmState::kRunning);
}

// Ensures a migration's cap can be changed through the backend: before the work starts the
// new cap is the one it migrates with; with nothing migrating the errors are typed. A running
// migration's cap is changed with virDomainMigrateSetMaxSpeed, which libvirt's test driver does
// not implement: the call is refused there (VIR_ERR_NO_SUPPORT, a rejected Status), so the
// running case is exercised only against real hypervisors (the qemu backend's slow tests use
// migrate-set-parameters the same way).
TEST(LibvirtHypervisorTest, MigrationBandwidthCanBeChanged) {
  TempDir dir;
  auto a = makeLibvirt("a", {{"uri", writeNode(dir.path(), "a", {"vm1"})}});
  ASSERT_TRUE(a);
  EXPECT_EQ(a->setMigrationBandwidth("ghost", 1e8).code(), StatusCode::kNotFound);
  EXPECT_EQ(a->setMigrationBandwidth("vm1", 1e8).code(), StatusCode::kRejected);
  EXPECT_EQ(a->setMigrationBandwidth("vm1", -1).code(), StatusCode::kInvalidArgument);
  MigrationSpec spec{"vm1", "b", "test:///default", MigrationMode::kLive, 0, 0};
  ASSERT_TRUE(a->startMigration(1, spec).isOk());
  EXPECT_TRUE(a->setMigrationBandwidth("vm1", 5e7).isOk());  // not started yet: taken as is
  auto done = completionAt(*a, 1, kStart);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status.code(), StatusCode::kRejected);  // the test driver cannot migrate

  virConnectPtr conn = virConnectOpen("test:///default");
  ASSERT_NE(conn, nullptr);
  virDomainPtr dom = virDomainLookupByName(conn, "test");
  ASSERT_NE(dom, nullptr);
  EXPECT_LT(virDomainMigrateSetMaxSpeed(dom, 10, 0), 0);
  EXPECT_EQ(libvirt_detail::lastError("set speed").code(), StatusCode::kRejected);
  virDomainFree(dom);
  virConnectClose(conn);
}

// Ensures with threads=on the libvirt calls run on workers and complete through poll().
TEST(LibvirtHypervisorTest, WorkerThreadsCompleteThroughPoll) {
  TempDir dir;
  auto hv = makeLibvirt(
      "h1",
      {{"uri", writeNode(dir.path(), "h1", {})}, {"template.small", kTemplate}, {"threads", "on"}});
  ASSERT_TRUE(hv);
  (void)hv->poll(kStart);
  ASSERT_TRUE(hv->startClone(1, cloneSpec("w")).isOk());
  EXPECT_EQ(hv->nextEventTime(), kStart + kNsPerSec);  // look again in a second
  static_cast<LibvirtHypervisor&>(*hv).waitForWorkers();
  auto done = completionAt(*hv, 1, kStart + 1);
  ASSERT_TRUE(done);
  EXPECT_TRUE(done->status.isOk()) << done->status.toString();
  EXPECT_EQ(findVm(hv->inventory(), "w")->state, VmState::kRunning);
  EXPECT_EQ(hv->nextEventTime(), kTimeInfinity);
}

// Ensures expected failures are typed: unknown VMs are not-found, unknown templates, parameters
// and unusable URIs are invalid-argument, and templates libvirt refuses are invalid-argument when
// the agent starts, naming the template and carrying libvirt's message.
TEST(LibvirtHypervisorTest, ErrorsAreTyped) {
  TempDir dir;
  const std::string uri = writeNode(dir.path(), "h1", {});
  auto hv = makeLibvirt("h1", {{"uri", uri}});
  ASSERT_TRUE(hv);
  EXPECT_EQ(hv->suspend("ghost").code(), StatusCode::kNotFound);
  EXPECT_EQ(hv->resume("ghost").code(), StatusCode::kNotFound);
  EXPECT_EQ(hv->destroy("ghost").code(), StatusCode::kNotFound);
  EXPECT_EQ(hv->finishIncoming("ghost", true).code(), StatusCode::kNotFound);
  EXPECT_EQ(
      hv->startMigration(1, {"ghost", "h2", "save:/tmp/x", MigrationMode::kLive, 0, 0}).code(),
      StatusCode::kNotFound);
  EXPECT_EQ(hv->startClone(2, cloneSpec("c", "nosuch")).code(), StatusCode::kInvalidArgument);

  auto expectRefused = [&](const std::string& name, const std::string& xml,
                           const std::string& libvirtSays) {
    HypervisorOptions options;
    options.host.name = "h1";
    options.params = {{"uri", uri}, {"template." + name, xml}};
    auto bad = Hypervisor::create("libvirt", options);
    ASSERT_FALSE(bad.isOk()) << name;
    EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument) << bad.status().toString();
    EXPECT_NE(bad.status().message().find("template." + name), std::string::npos)
        << bad.status().message();
    EXPECT_NE(bad.status().message().find(libvirtSays), std::string::npos)
        << bad.status().message();
  };
  expectRefused("broken", "<domain>garbage", "garbage");
  expectRefused("incomplete", "<domain type='test'><name>{{name}}</name></domain>", "os <type>");
  EXPECT_TRUE(hv->inventory().empty()) << "the checks leave nothing defined";

  for (const auto& params : std::vector<std::map<std::string, std::string>>{
           {},
           {{"uri", "test://" + (dir.path() / "missing.xml").string()}},
           {{"uri", "nosuchdriver:///"}},
           {{"uri", "test:///default"}, {"colour", "blue"}},
           {{"uri", "test:///default"}, {"threads", "maybe"}},
           {{"uri", "test:///default"}, {"template_xml_dir", "/nonexistent/dir"}},
           {{"uri", "test:///default"}, {"network", "default"}, {"bridge", "br0"}},
           {{"uri", "test:///default"}, {"address-source", "lease"}},
           {{"uri", "test:///default"}, {"address-source", "dns"}},
           {{"uri", "test:///default"}, {"network", "no-such-net"}},
           {{"uri", "test:///default"}, {"address-timeout", "soon"}},
           {{"uri", "test:///default"}, {"disk-migration", "rsync"}}}) {
    HypervisorOptions options;
    options.host.name = "h1";
    options.params = params;
    auto bad = Hypervisor::create("libvirt", options);
    ASSERT_FALSE(bad.isOk());
    EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument) << bad.status().toString();
  }
}

// Ensures a share-nothing migration copies exactly the disks that are the VM's own: file and block
// disks, not CD-ROMs, read-only, shareable or network disks.
TEST(LibvirtHypervisorTest, LocalDisksAreTheWritableFileAndBlockDisks) {
  const std::string xml =
      "<domain><devices>"
      "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
      "<source file='/i/a.qcow2'/><target dev='vda' bus='virtio'/></disk>"
      "<disk type='block' device='disk'><source dev='/dev/sdb'/><target dev='vdb'/></disk>"
      "<disk type='file' device='cdrom'><source file='/i/x.iso'/><target dev='hdc'/>"
      "<readonly/></disk>"
      "<disk type='file' device='disk'><source file='/i/ro.img'/><target dev='vdc'/>"
      "<readonly/></disk>"
      "<disk type='file' device='disk'><source file='/i/s.img'/><target dev='vdd'/>"
      "<shareable/></disk>"
      "<disk type='network' device='disk'><source protocol='nbd' name='x'/>"
      "<target dev='vde'/></disk>"
      "</devices></domain>";
  EXPECT_EQ(libvirt_detail::localDisksOf(xml), (std::vector<std::string>{"vda", "vdb"}));
}

// Ensures the disk-migration setting is checked at start: a value other than shared or copy is
// an invalid-argument naming the setting and the value; copy with a disk-dir is accepted.
TEST(LibvirtHypervisorTest, DiskMigrationSettingIsChecked) {
  TempDir dir;
  HypervisorOptions options;
  options.host.name = "h1";
  options.params = {{"uri", writeNode(dir.path(), "h1", {})}, {"disk-migration", "rsync"}};
  auto bad = Hypervisor::create("libvirt", options);
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("disk-migration"), std::string::npos)
      << bad.status().message();
  EXPECT_NE(bad.status().message().find("rsync"), std::string::npos) << bad.status().message();
  options.params["disk-migration"] = "copy";
  options.params["disk-dir"] = dir.path().string();
  auto good = Hypervisor::create("libvirt", options);
  EXPECT_TRUE(good.isOk()) << good.status().toString();
}

// Ensures a clone on the host's libvirt network: the template (without a NIC) gets a virtio NIC
// on that network with a MAC that is a function of the VM id, and the handle's address is the
// one the network's lease source reports for that MAC, kept in the domain's metadata (a new
// agent lists it).
TEST(LibvirtHypervisorTest, CloneOnANetworkGetsItsNicAndItsLeaseAddress) {
  TempDir dir;
  const std::string uri =
      writeNode(dir.path(), "h1", {},
                "<network><name>lab</name><bridge name='virbr9'/><forward/>"
                "<ip address='192.168.9.1' netmask='255.255.255.0'><dhcp>"
                "<range start='192.168.9.10' end='192.168.9.99'/></dhcp></ip></network>");
  auto hv = makeLibvirt("h1", {{"uri", uri}, {"network", "lab"}, {"template.small", kTemplate}});
  ASSERT_TRUE(hv);
  Status started = hv->startClone(1, cloneSpec("net-1"));
  ASSERT_TRUE(started.isOk()) << started.toString();
  auto done = completionAt(*hv, 1, kStart);
  ASSERT_TRUE(done && done->clone) << (done ? done->status.toString() : "no completion");
  auto& lv = dynamic_cast<LibvirtHypervisor&>(*hv);
  auto xml = lv.domainXml("net-1");
  ASSERT_TRUE(xml.isOk()) << xml.status().toString();
  const std::string mac = libvirt_detail::macFor("net-1");
  EXPECT_EQ(mac, libvirt_detail::macFor("net-1"));
  EXPECT_NE(mac, libvirt_detail::macFor("net-2"));
  EXPECT_EQ(mac.rfind("52:54:00:", 0), 0u);
  EXPECT_NE(xml->find("<mac address='" + mac + "'/>"), std::string::npos) << *xml;
  EXPECT_NE(xml->find("<source network='lab'"), std::string::npos) << *xml;
  // The test driver's lease source makes addresses up on the network's subnet.
  EXPECT_EQ(done->clone->address.rfind("192.168.9.", 0), 0u) << done->clone->address;
  EXPECT_EQ(findVm(hv->inventory(), "net-1")->address, done->clone->address);  // its metadata
  EXPECT_TRUE(hv->destroy("net-1").isOk());
}

// Ensures the template rewriting for networks: a template's own NIC keeps its network and gets the
// clone's MAC, a bridge NIC is added where the template has none, and the networks a template
// names are found.
TEST(LibvirtHypervisorTest, TemplateNicsGetTheClonesMac) {
  using namespace libvirt_detail;
  const std::string own =
      "<domain type='qemu'><devices><interface type='network'><source network='lab'/>"
      "</interface></devices></domain>";
  const std::string withMac = withNic(own, {CloneNic::Kind::kBridge, "br0"}, "52:54:00:01:02:03");
  EXPECT_NE(withMac.find("<interface type='network'><mac address='52:54:00:01:02:03'/>"),
            std::string::npos)
      << withMac;
  EXPECT_EQ(withMac.find("br0"), std::string::npos) << withMac;
  EXPECT_EQ(networksOf(withMac), std::vector<std::string>{"lab"});
  const std::string bridged = withNic("<domain type='kvm'><devices></devices></domain>",
                                      {CloneNic::Kind::kBridge, "br0"}, "52:54:00:01:02:03");
  EXPECT_NE(bridged.find("<interface type='bridge'><source bridge='br0'/>"), std::string::npos)
      << bridged;
  EXPECT_TRUE(networksOf(bridged).empty());
}

// Ensures destroying a VM still cloning (not yet started by poll) completes its clone as rejected.
TEST(LibvirtHypervisorTest, DestroyWhileCloningCompletesTheClone) {
  TempDir dir;
  auto hv =
      makeLibvirt("h1", {{"uri", writeNode(dir.path(), "h1", {})}, {"template.small", kTemplate}});
  ASSERT_TRUE(hv);
  ASSERT_TRUE(hv->startClone(1, cloneSpec("c")).isOk());
  ASSERT_TRUE(hv->destroy("c").isOk());
  auto done = completionAt(*hv, 1, kStart);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status.code(), StatusCode::kRejected);
  EXPECT_TRUE(hv->inventory().empty());
}

// Ensures completed-job statistics (as QEMU reports them) fill the observation: setup,
// downtime, bytes, rounds, goodput over the sending time, and dirty rate in bytes.
TEST(LibvirtHypervisorTest, JobStatsFillTheObservation) {
  // The typed-parameter helpers reset libvirt's per-thread error, which needs the library
  // initialised; run alone, this test opens no connection that would do it.
  ASSERT_EQ(virInitialize(), 0);
  virTypedParameterPtr params = nullptr;
  int n = 0;
  int cap = 0;
  virTypedParamsAddULLong(&params, &n, &cap, VIR_DOMAIN_JOB_TIME_ELAPSED, 5'000);
  virTypedParamsAddULLong(&params, &n, &cap, VIR_DOMAIN_JOB_SETUP_TIME, 1'000);
  virTypedParamsAddULLong(&params, &n, &cap, VIR_DOMAIN_JOB_DOWNTIME, 120);
  virTypedParamsAddULLong(&params, &n, &cap, VIR_DOMAIN_JOB_DATA_PROCESSED, 4'000'000'000ull);
  virTypedParamsAddULLong(&params, &n, &cap, VIR_DOMAIN_JOB_MEMORY_ITERATION, 6);
  virTypedParamsAddULLong(&params, &n, &cap, VIR_DOMAIN_JOB_MEMORY_DIRTY_RATE, 25'000);
  virTypedParamsAddULLong(&params, &n, &cap, VIR_DOMAIN_JOB_MEMORY_PAGE_SIZE, 4096);
  MigrationObservation obs;
  libvirt_detail::applyJobStats(params, n, obs);
  virTypedParamsFree(params, n);
  EXPECT_EQ(obs.setupNs, 1'000 * kNsPerMs);
  EXPECT_EQ(obs.downtimeNs, 120 * kNsPerMs);
  EXPECT_EQ(obs.transferredBytes, 4'000'000'000u);
  EXPECT_EQ(obs.rounds, 6u);
  EXPECT_DOUBLE_EQ(obs.bandwidthBytesPerSec, 1e9);  // 4 GB over 5 s - 1 s of setup
  EXPECT_DOUBLE_EQ(obs.dirtyRateBytesPerSec, 25'000.0 * 4096);
}

// Ensures parking saves the domain to <park_dir>/<vm>.vrmpark and stops it (listed as parked,
// with that state file, its room free), and unparking restores and runs it and removes the
// image; both are idempotent, and a parked VM cannot be resumed or parked without a park_dir.
TEST(LibvirtHypervisorTest, ParkSavesAndUnparkRestores) {
  TempDir dir;
  const std::string uri = writeNode(dir.path(), "h1", {"vm1", "vm2"});
  auto noDir = makeLibvirt("h1", {{"uri", uri}});
  ASSERT_TRUE(noDir);
  EXPECT_EQ(noDir->startPark(1, "vm1").code(), StatusCode::kRejected);

  auto hv = makeLibvirt("h1", {{"uri", uri},
                               {"park_dir", (dir.path() / "park").string()},
                               {"state_dir", dir.path().string()}});
  ASSERT_TRUE(hv);
  // A 15 GiB VM fits beside vm1 and vm2 (1 GiB each, 16 GiB host) only once vm1 is parked.
  VmInfo big;
  big.id = "big";
  big.cpuCores = 2;
  big.memoryBytes = 15 * 1024 * kMiB;
  EXPECT_EQ(hv->prepareIncoming(big).status().code(), StatusCode::kRejected);
  EXPECT_EQ(hv->startPark(1, "nope").code(), StatusCode::kNotFound);
  ASSERT_TRUE(hv->startPark(2, "vm1").isOk());
  auto parked = completionAt(*hv, 2, kStart);
  ASSERT_TRUE(parked);
  ASSERT_TRUE(parked->status.isOk()) << parked->status.toString();
  ASSERT_TRUE(parked->migration);
  EXPECT_EQ(parked->migration->mode, MigrationMode::kSuspend);
  EXPECT_EQ(parked->migration->fromHost, "h1");
  EXPECT_EQ(parked->migration->toHost, "h1");
  EXPECT_GT(parked->migration->transferredBytes, 0u);
  EXPECT_EQ(parked->migration->restoreNs, 0);
  EXPECT_GE(parked->migration->endNs, parked->migration->startNs);
  const std::string image = (dir.path() / "park" / "vm1.vrmpark").string();
  auto vm1 = findVm(hv->inventory(), "vm1");
  ASSERT_TRUE(vm1);
  EXPECT_EQ(vm1->state, VmState::kParked);
  EXPECT_EQ(vm1->stateFile, image);
  EXPECT_TRUE(fs::exists(image));
  EXPECT_EQ(hv->resume("vm1").code(), StatusCode::kRejected);
  ASSERT_TRUE(hv->startPark(3, "vm1").isOk());  // again: done at once
  auto again = completionAt(*hv, 3, kStart);
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->status.isOk());

  ASSERT_TRUE(hv->prepareIncoming(big).isOk()) << "a parked VM's room is free";
  ASSERT_TRUE(hv->finishIncoming("big", false).isOk());

  ASSERT_TRUE(hv->startUnpark(4, "vm1").isOk());
  auto back = completionAt(*hv, 4, kStart + kNsPerSec);
  ASSERT_TRUE(back);
  ASSERT_TRUE(back->status.isOk()) << back->status.toString();
  ASSERT_TRUE(back->migration);
  EXPECT_EQ(back->migration->saveNs, 0);
  EXPECT_GT(back->migration->transferredBytes, 0u);
  vm1 = findVm(hv->inventory(), "vm1");
  ASSERT_TRUE(vm1);
  EXPECT_EQ(vm1->state, VmState::kRunning);
  EXPECT_TRUE(vm1->stateFile.empty());
  EXPECT_FALSE(fs::exists(image));
  ASSERT_TRUE(hv->startUnpark(5, "vm1").isOk());  // running: done at once
  auto twice = completionAt(*hv, 5, kStart + kNsPerSec);
  ASSERT_TRUE(twice);
  EXPECT_TRUE(twice->status.isOk());
}

// Ensures a parked VM is found parked again by a new agent on the same libvirt (the node of
// test:///default is shared by the process's open connections; one held open here stands in
// for libvirtd, which outlives agents), and can be unparked by it.
TEST(LibvirtHypervisorTest, ParkedVmIsFoundAfterAnAgentRestart) {
  TempDir dir;
  virConnectPtr libvirtd = virConnectOpen("test:///default");
  ASSERT_NE(libvirtd, nullptr);
  // A VM of its own that fits the default node, whose own "test" domain (larger than the node)
  // is removed meanwhile; the node is reset once its last connection closes.
  if (virDomainPtr big = virDomainLookupByName(libvirtd, "test")) {
    (void)virDomainDestroy(big);
    (void)virDomainUndefine(big);
    virDomainFree(big);
  }
  virDomainPtr dom =
      virDomainDefineXML(libvirtd,
                         "<domain type='test'><name>parkme</name><memory unit='KiB'>524288</memory>"
                         "<vcpu>1</vcpu><os><type>hvm</type></os></domain>");
  ASSERT_NE(dom, nullptr);
  ASSERT_EQ(virDomainCreate(dom), 0);
  const std::map<std::string, std::string> params = {{"uri", "test:///default"},
                                                     {"park_dir", dir.path().string()}};
  {
    auto hv = makeLibvirt("h1", params);
    ASSERT_TRUE(hv);
    ASSERT_TRUE(hv->startPark(1, "parkme").isOk());
    auto parked = completionAt(*hv, 1, kStart);
    ASSERT_TRUE(parked);
    ASSERT_TRUE(parked->status.isOk()) << parked->status.toString();
  }
  auto restarted = makeLibvirt("h1", params);
  ASSERT_TRUE(restarted);
  auto vm = findVm(restarted->inventory(), "parkme");
  ASSERT_TRUE(vm);
  EXPECT_EQ(vm->state, VmState::kParked);
  EXPECT_EQ(vm->stateFile, (dir.path() / "parkme.vrmpark").string());
  Status unpark = restarted->startUnpark(2, "parkme");
  ASSERT_TRUE(unpark.isOk()) << unpark.toString();
  EXPECT_EQ(findVm(restarted->inventory(), "parkme")->state, VmState::kIncoming)
      << "inline mode restores at the next poll; until then it is being restored";
  auto back = completionAt(*restarted, 2, kStart);
  ASSERT_TRUE(back);
  ASSERT_TRUE(back->status.isOk()) << back->status.toString();
  EXPECT_EQ(findVm(restarted->inventory(), "parkme")->state, VmState::kRunning);
  ASSERT_TRUE(restarted->destroy("parkme").isOk());  // leave the shared node as it was
  virDomainFree(dom);
  virConnectClose(libvirtd);
}

}  // namespace
}  // namespace vrm::vmscheduler

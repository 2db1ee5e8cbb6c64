// Tests of the libvirt backend against real libvirt daemons (ctest label "slow"): two private
// libvirtd hosts with the QEMU driver (TCG guests), each in network and mount namespaces of its
// own (tests/libvirt/libvirt-hosts.sh), a libvirt network with DHCP on each, and the project's
// test guest with a virtio NIC and the QEMU guest agent (tests/libvirt/build-guest-net.sh).
//
// What the backend reports is checked against libvirt itself (a connection of the test's own)
// and against the guest: memtouch in the guest verifies its own memory every second and prints
// "verify ok" or "CORRUPT" on its serial console, a file in the host's /var/log/libvirt/qemu
// (per host: a migrated guest's console on the destination is a fresh file); the guest prints the
// address its DHCP client configured.
//
// The suite is skipped (with the reason) when the hosts cannot run here: not root, no network
// namespaces, libvirtd not installed (scripts/install-deps.sh installs it).
#include <gtest/gtest.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <thread>

#include "guest_test_support.h"
#include "vrm/vmscheduler/hypervisor.h"

namespace vrm::vmscheduler {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using guest_test::kMiB;
using guest_test::loadAverage;
using guest_test::printObservation;
using guest_test::run;
using testing_text::countOf;
using testing_text::readFile;

// The guest's domain XML: the test guest booted from kernel + initramfs, its console in the
// host's log dir, a guest-agent channel, QEMU through tests/libvirt/qemu-tcg.sh (8 KiB more RAM:
// QEMU 7.2's TCG live migration loses writes to RAM sizes that are multiples of 256 KiB, and
// libvirt rounds sizes to whole MiB). No <interface>: the backend adds one on the host's
// network (its `network` setting).
std::string guestTemplate(int dirtyPagesPerSec) {
  const std::string guest = VRM_GUEST_DIR;
  return "<domain type='qemu'>\n"
         "  <name>{{name}}</name>\n"
         "  <memory unit='KiB'>{{memory_kib}}</memory>\n"
         "  <vcpu>{{vcpus}}</vcpu>\n"
         "  <os>\n"
         "    <type arch='x86_64' machine='pc'>hvm</type>\n"
         "    <kernel>" +
         guest + "/vmlinuz</kernel>\n    <initrd>" + guest +
         "/initrd-net.img</initrd>\n"
         "    <cmdline>console=ttyS0 quiet panic=-1 rdinit=/vrm-net-init memtouch.mb=40 "
         "memtouch.rate=" +
         std::to_string(dirtyPagesPerSec) +
         " memtouch.verify=1</cmdline>\n"
         "  </os>\n"
         "  <on_poweroff>destroy</on_poweroff>\n"
         "  <on_reboot>destroy</on_reboot>\n"
         "  <on_crash>destroy</on_crash>\n"
         "  <devices>\n"
         "    <emulator>" +
         std::string(VRM_LIBVIRT_SCRIPTS) +
         "/qemu-tcg.sh</emulator>\n"
         "    <serial type='file'><source path='/var/log/libvirt/qemu/{{name}}.serial'/></serial>\n"
         "    <channel type='unix'><target type='virtio' "
         "name='org.qemu.guest_agent.0'/></channel>\n"
         "    <memballoon model='none'/>\n"
         "  </devices>\n"
         "</domain>\n";
}

// guestTemplate() with a local qcow2 disk (vda): /var/lib/libvirt/images is each host's own
// (libvirt-hosts.sh mounts DIR/h<i>/lib there), so the hosts share nothing.
std::string diskTemplate() {
  std::string xml = guestTemplate(0);
  xml.insert(xml.find("    <serial"),
             "    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
             "<source file='/var/lib/libvirt/images/{{name}}.qcow2'/>"
             "<target dev='vda' bus='virtio'/></disk>\n");
  return xml;
}

// One private libvirt host, as tests/libvirt/libvirt-hosts.sh describes it in hosts.env.
struct LibvirtHost {
  std::string uri;      // for the agent and the test (unix socket)
  std::string tcpUri;   // for peer-to-peer migration from the other host
  std::string netns;    // its network namespace
  std::string network;  // its libvirt network with DHCP
  fs::path dir;         // DIR/h<i>: its /var/log/libvirt is dir/log
  fs::path console(const std::string& vm) const { return dir / "log" / "qemu" / (vm + ".serial"); }
};

// A connection of the test's own, to check what the backend did from libvirt's side.
class Libvirt {
 public:
  explicit Libvirt(const std::string& uri) : conn_(virConnectOpen(uri.c_str())) {}
  ~Libvirt() {
    if (conn_) virConnectClose(conn_);
  }
  Libvirt(const Libvirt&) = delete;
  Libvirt& operator=(const Libvirt&) = delete;
  explicit operator bool() const { return conn_ != nullptr; }

  // The domain's state (VIR_DOMAIN_RUNNING, ...), or -1 when libvirt has no such domain.
  int state(const std::string& name) const {
    virDomainPtr dom = virDomainLookupByName(conn_, name.c_str());
    if (!dom) return -1;
    int state = 0;
    int reason = 0;
    if (virDomainGetState(dom, &state, &reason, 0) < 0) state = -1;
    virDomainFree(dom);
    return state;
  }
  bool persistent(const std::string& name) const {
    virDomainPtr dom = virDomainLookupByName(conn_, name.c_str());
    if (!dom) return false;
    const bool yes = virDomainIsPersistent(dom) == 1;
    virDomainFree(dom);
    return yes;
  }
  std::string xml(const std::string& name) const {
    virDomainPtr dom = virDomainLookupByName(conn_, name.c_str());
    if (!dom) return {};
    char* text = virDomainGetXMLDesc(dom, 0);
    std::string out = text ? text : "";
    std::free(text);
    virDomainFree(dom);
    return out;
  }
  // The running outgoing migration's bandwidth cap in MiB/s, or -1.
  long maxSpeedMiB(const std::string& name) const {
    virDomainPtr dom = virDomainLookupByName(conn_, name.c_str());
    if (!dom) return -1;
    unsigned long mib = 0;
    const long out = virDomainMigrateGetMaxSpeed(dom, &mib, 0) < 0 ? -1 : static_cast<long>(mib);
    virDomainFree(dom);
    return out;
  }

 private:
  virConnectPtr conn_;
};

class LibvirtdTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto [guestRc, guestOut] =
        run(std::string(VRM_LIBVIRT_SCRIPTS) + "/build-guest-net.sh " + VRM_GUEST_DIR);
    if (guestRc != 0) {
      setupError_ = "tests/libvirt/build-guest-net.sh failed: " + guestOut;
      return;
    }
    hostsDir_ = fs::temp_directory_path() / ("vrm-libvirtd-test-" + std::to_string(getpid()));
    const auto t0 = std::chrono::steady_clock::now();
    auto [rc, out] =
        run(std::string(VRM_LIBVIRT_SCRIPTS) + "/libvirt-hosts.sh start " + hostsDir_.string() +
            " 2 --owner " + std::to_string(getpid()) + " --cache " + VRM_LIBVIRT_CACHE);
    if (rc == 77) {
      skipReason_ = out;
      return;
    }
    if (rc != 0) {
      setupError_ = "tests/libvirt/libvirt-hosts.sh start failed: " + out;
      return;
    }
    std::printf("[ measured ] two private libvirtd hosts up in %.2f s (load %.2f)\n",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                loadAverage());
    std::map<std::string, std::string> env;
    std::istringstream lines(readFile(hostsDir_ / "hosts.env"));
    for (std::string line; std::getline(lines, line);) {
      if (auto eq = line.find('='); eq != std::string::npos) {
        env[line.substr(0, eq)] = line.substr(eq + 1);
      }
    }
    for (int i = 1; i <= 2; ++i) {
      const std::string p = "VRM_LV_H" + std::to_string(i) + "_";
      hosts_[i - 1] = LibvirtHost{env[p + "URI"], env[p + "TCP_URI"], env[p + "NETNS"],
                                  env[p + "NETWORK"], hostsDir_ / ("h" + std::to_string(i))};
    }
  }

  static void TearDownTestSuite() {
    if (hostsDir_.empty()) return;
    run(std::string(VRM_LIBVIRT_SCRIPTS) + "/libvirt-hosts.sh stop " + hostsDir_.string());
    std::error_code ec;
    fs::remove_all(hostsDir_, ec);
  }

  void SetUp() override {
    if (!skipReason_.empty()) GTEST_SKIP() << skipReason_;
    ASSERT_TRUE(setupError_.empty()) << setupError_;
    static int counter = 0;
    root_ = hostsDir_ / ("test" + std::to_string(counter++));
    fs::create_directories(root_);
  }

  void TearDown() override {
    h1_.reset();
    h2_.reset();
  }

  static const LibvirtHost& host(int i) { return hosts_[i - 1]; }

  // The parameters of an agent of libvirt host `i` (1 or 2), plus `extra`.
  std::map<std::string, std::string> params(int i, std::map<std::string, std::string> extra) {
    std::map<std::string, std::string> p = {{"uri", host(i).uri},
                                            {"network", host(i).network},
                                            {"template.idle", guestTemplate(0)},
                                            {"template.dirty", guestTemplate(2000)},
                                            {"address-timeout", "120s"}};
    for (auto& [k, v] : extra) p[k] = v;
    return p;
  }

  static Result<std::unique_ptr<Hypervisor>> create(const std::string& name,
                                                    std::map<std::string, std::string> params) {
    HypervisorOptions o;
    o.host.name = name;
    o.host.nicBandwidthBytesPerSec = 125e6;
    o.params = std::move(params);
    return Hypervisor::create("libvirt", o);
  }

  std::unique_ptr<Hypervisor> make(int i, std::map<std::string, std::string> extra = {}) {
    auto hv = create("h" + std::to_string(i), params(i, std::move(extra)));
    EXPECT_TRUE(hv.isOk()) << hv.status().toString();
    return hv.isOk() ? std::move(hv).value() : nullptr;
  }

  static TimeNs now() { return SystemClock().now(); }

  // Polls the agents until operation `op` completes (or `limit` passes); returns its completion.
  // Progress events are kept in progress_; `onProgress` runs after each.
  std::optional<OperationEvent> runUntilDone(OperationId op, std::chrono::seconds limit,
                                             const std::function<void()>& onProgress = {}) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      for (Hypervisor* hv : {h1_.get(), h2_.get()}) {
        if (!hv) continue;
        for (OperationEvent& e : hv->poll(now())) {
          if (e.opId != op) continue;
          if (e.kind == OperationEvent::Kind::kCompleted) return e;
          progress_.push_back(e);
          if (onProgress) onProgress();
        }
      }
      std::this_thread::sleep_for(50ms);
    }
    return std::nullopt;
  }

  static std::optional<VmInfo> find(Hypervisor& hv, const std::string& id) {
    for (const VmInfo& vm : hv.inventory()) {
      if (vm.id == id) return vm;
    }
    return std::nullopt;
  }
  // What `hv` lists of `id`; a test failure (and an empty VmInfo) when it does not list it.
  static VmInfo vmOn(Hypervisor& hv, const std::string& id) {
    auto vm = find(hv, id);
    if (!vm) ADD_FAILURE() << "vm " << id << " is not listed";
    return vm.value_or(VmInfo{});
  }
  // The state `hv` lists `id` in ("running", ...), or "absent".
  static std::string stateIn(Hypervisor& hv, const std::string& id) {
    auto vm = find(hv, id);
    return vm ? vmStateName(vm->state) : "absent";
  }

  // Clones `id` on `hv` and returns its handle; fails the test if it does not come up in time.
  std::optional<VmHandle> clone(Hypervisor& hv, const std::string& id,
                                const std::string& templateName, OperationId op) {
    CloneSpec spec;
    spec.vmId = id;
    spec.templateName = templateName;
    spec.cpuCores = 1;
    spec.memoryBytes = 128 * kMiB;  // the cloud kernel does not boot in 64 MiB
    spec.reservationId = "r1";
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_TRUE(hv.startClone(op, spec).isOk());
    auto done = runUntilDone(op, 180s);
    EXPECT_TRUE(done.has_value()) << "clone of " << id << " did not finish";
    if (!done) return std::nullopt;
    EXPECT_TRUE(done->status.isOk()) << done->status.toString();
    EXPECT_TRUE(done->clone.has_value());
    if (!done->status.isOk() || !done->clone) return std::nullopt;
    std::printf("[ measured ] clone of %s (define + start + address): %.2f s (load %.2f)\n",
                id.c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                loadAverage());
    return done->clone;
  }

  // Waits until the console of `vm` on libvirt host `i` shows a "verify ok" beyond the first
  // `before` ones and no CORRUPT.
  void expectMemoryIntact(int i, const std::string& vm, std::size_t before = 0) {
    const fs::path path = host(i).console(vm);
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    std::string text;
    while (std::chrono::steady_clock::now() < deadline) {
      text = readFile(path);
      if (text.find("CORRUPT") != std::string::npos) break;
      if (countOf(text, "memtouch: verify ok") > before) break;
      for (Hypervisor* hv : {h1_.get(), h2_.get()}) {
        if (hv) hv->poll(now());
      }
      std::this_thread::sleep_for(100ms);
    }
    EXPECT_EQ(text.find("CORRUPT"), std::string::npos) << text;
    EXPECT_GT(countOf(text, "memtouch: verify ok"), before) << path << ": " << text;
  }

  // The address the guest's DHCP client configured, from its console ("vrm-net: eth0 A/24"),
  // waiting up to 60 s for the line: dnsmasq records the lease (what the backend reports) before
  // the guest has configured it and printed the line, which is late on a loaded machine.
  static std::string addressTheGuestConfigured(int i, const std::string& vm) {
    static const std::regex line("vrm-net: eth0 ([0-9.]+)/");
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    do {
      const std::string text = readFile(host(i).console(vm));
      std::smatch m;
      if (std::regex_search(text, m, line)) return m[1].str();
      std::this_thread::sleep_for(100ms);
    } while (std::chrono::steady_clock::now() < deadline);
    return {};
  }

  inline static std::string skipReason_;
  inline static std::string setupError_;
  inline static fs::path hostsDir_;
  inline static LibvirtHost hosts_[2];
  fs::path root_;
  std::unique_ptr<Hypervisor> h1_, h2_;
  std::vector<OperationEvent> progress_;
};

// Ensures wrong settings are refused when the agent starts, with an error naming the setting and
// carrying libvirt's reason: a libvirtd that is not there, one that allows only reading, a network
// the host does not have, a template that is not domain XML, one the host cannot run (KVM), one
// on a network the host does not have, an unknown address source.
TEST_F(LibvirtdTest, BadSettingsAreRefusedAtAgentStartNamingTheSetting) {
  auto expectRefused = [&](std::map<std::string, std::string> extra, StatusCode code,
                           std::vector<std::string> mentions) {
    auto hv = create("h1", params(1, extra));
    ASSERT_FALSE(hv.isOk()) << "accepted: " << extra.begin()->first;
    EXPECT_EQ(hv.status().code(), code) << hv.status().toString();
    for (const std::string& m : mentions) {
      EXPECT_NE(hv.status().message().find(m), std::string::npos)
          << "'" << m << "' not in: " << hv.status().message();
    }
    std::printf("[ refused  ] %s\n", hv.status().toString().c_str());
  };
  const std::string nobody = (root_ / "nobody-listens").string();
  expectRefused({{"uri", "qemu+unix:///system?socket=" + nobody}}, StatusCode::kInvalidArgument,
                {"uri", nobody, "Failed to connect socket"});
  const std::string readOnly =
      "qemu+unix:///system?socket=" + (host(1).dir / "sock" / "libvirt-sock-ro").string();
  expectRefused({{"uri", readOnly}}, StatusCode::kUnauthorized, {"uri", "read only"});
  expectRefused({{"network", "no-such-net"}}, StatusCode::kInvalidArgument,
                {"network", "no-such-net"});
  expectRefused({{"template.broken", "<domain type='qemu'><name>{{name}}</name>"}},
                StatusCode::kInvalidArgument, {"template.broken"});
  std::string kvm = guestTemplate(0);
  kvm.replace(kvm.find("type='qemu'"), 11, "type='kvm'");
  expectRefused({{"template.kvm", kvm}}, StatusCode::kInvalidArgument, {"template.kvm", "kvm"});
  std::string elsewhere = guestTemplate(0);
  elsewhere.insert(elsewhere.find("    <memballoon"),
                   "    <interface type='network'><source network='lab-net'/></interface>\n");
  expectRefused({{"template.elsewhere", elsewhere}}, StatusCode::kInvalidArgument,
                {"template.elsewhere", "lab-net"});
  expectRefused({{"address-source", "guess"}}, StatusCode::kInvalidArgument,
                {"address-source", "guess"});
  // Nothing was left defined by the checks.
  Libvirt lv(host(1).uri);
  ASSERT_TRUE(lv);
  auto hv = make(1);
  ASSERT_TRUE(hv);
  EXPECT_TRUE(hv->inventory().empty());
}

// Ensures a clone on a libvirt network: defined from the template with a NIC on the host's network
// and a MAC derived from its id, started, and handed back once the network's DHCP lease names its
// address (the one the guest configured); then suspend and resume (libvirt's paused state, memory
// intact), park (a save image; the domain stays defined, shut off) which a restarted agent finds,
// unpark, and destroy (gone from libvirt).
TEST_F(LibvirtdTest, CloneWithLeaseAddressSuspendParkAcrossAgentRestartAndDestroy) {
  h1_ = make(1, {{"park-dir", (root_ / "park").string()}, {"address-source", "lease"}});
  ASSERT_TRUE(h1_);
  Libvirt lv(host(1).uri);
  ASSERT_TRUE(lv);
  auto handle = clone(*h1_, "c1", "dirty", 1);
  ASSERT_TRUE(handle);
  EXPECT_EQ(handle->vmId, "c1");
  EXPECT_EQ(handle->host, "h1");
  EXPECT_EQ(handle->address.rfind("192.168.101.", 0), 0u) << handle->address;
  EXPECT_EQ(handle->address, addressTheGuestConfigured(1, "c1"));
  EXPECT_EQ(lv.state("c1"), VIR_DOMAIN_RUNNING);
  EXPECT_TRUE(lv.persistent("c1"));
  const std::string xml = lv.xml("c1");
  EXPECT_NE(xml.find("<source network='vrm-net'"), std::string::npos) << xml;
  auto vm = find(*h1_, "c1");
  ASSERT_TRUE(vm);
  EXPECT_EQ(vm->state, VmState::kRunning);
  EXPECT_EQ(vm->memoryBytes, 128 * kMiB);
  EXPECT_EQ(vm->reservationId, "r1");
  EXPECT_EQ(vm->templateName, "dirty");
  EXPECT_EQ(vm->address, handle->address);
  expectMemoryIntact(1, "c1");

  ASSERT_TRUE(h1_->suspend("c1").isOk());
  EXPECT_EQ(lv.state("c1"), VIR_DOMAIN_PAUSED);
  EXPECT_EQ(stateIn(*h1_, "c1"), vmStateName(VmState::kSuspended));
  ASSERT_TRUE(h1_->resume("c1").isOk());
  EXPECT_EQ(lv.state("c1"), VIR_DOMAIN_RUNNING);
  expectMemoryIntact(1, "c1", countOf(readFile(host(1).console("c1")), "memtouch: verify ok"));

  ASSERT_TRUE(h1_->startPark(2, "c1").isOk());
  auto parked = runUntilDone(2, 120s);
  ASSERT_TRUE(parked);
  ASSERT_TRUE(parked->status.isOk()) << parked->status.toString();
  ASSERT_TRUE(parked->migration);
  EXPECT_GE(parked->migration->transferredBytes, 40 * kMiB);
  EXPECT_EQ(lv.state("c1"), VIR_DOMAIN_SHUTOFF);
  h1_ = make(1, {{"park-dir", (root_ / "park").string()}});  // the agent restarts
  ASSERT_TRUE(h1_);
  vm = find(*h1_, "c1");
  ASSERT_TRUE(vm);
  EXPECT_EQ(vm->state, VmState::kParked);
  EXPECT_TRUE(fs::exists(vm->stateFile)) << vm->stateFile;
  EXPECT_EQ(vm->address, handle->address);  // kept in the domain's metadata
  const std::size_t before = countOf(readFile(host(1).console("c1")), "memtouch: verify ok");
  ASSERT_TRUE(h1_->startUnpark(3, "c1").isOk());
  auto unparked = runUntilDone(3, 120s);
  ASSERT_TRUE(unparked);
  ASSERT_TRUE(unparked->status.isOk()) << unparked->status.toString();
  std::printf("[ measured ] park of c1: save %.2f s (%.1f MiB); unpark: restore %.2f s\n",
              static_cast<double>(parked->migration->saveNs) / 1e9,
              static_cast<double>(parked->migration->transferredBytes) / kMiB,
              static_cast<double>(unparked->migration->restoreNs) / 1e9);
  EXPECT_EQ(lv.state("c1"), VIR_DOMAIN_RUNNING);
  EXPECT_FALSE(fs::exists(vm->stateFile));
  expectMemoryIntact(1, "c1", before);

  ASSERT_TRUE(h1_->destroy("c1").isOk());
  EXPECT_EQ(lv.state("c1"), -1);
  EXPECT_FALSE(find(*h1_, "c1"));
  EXPECT_EQ(h1_->destroy("c1").code(), StatusCode::kNotFound);
}

// Ensures migration between two libvirt hosts: a clone whose address the guest agent reports;
// refusals with libvirt's reason (the destination is the source itself: same host UUID; a
// destination nobody answers at); a live peer-to-peer migration (virDomainMigrateToURI3) under a
// bandwidth cap that is changed while it runs, with progress and an observation from libvirt's
// job statistics; suspend-copy-resume through libvirt's migration without LIVE; then through a
// save image the destination restores; the dirtying guest's memory intact after each move.
TEST_F(LibvirtdTest, LiveAndSuspendCopyResumeMigrationBetweenTwoLibvirtds) {
  h1_ = make(1, {{"migration-uri", host(1).tcpUri}, {"address-source", "agent"}});
  h2_ = make(2, {{"migration-uri", host(2).tcpUri}});
  ASSERT_TRUE(h1_ && h2_);
  Libvirt lv1(host(1).uri);
  Libvirt lv2(host(2).uri);
  ASSERT_TRUE(lv1 && lv2);
  auto handle = clone(*h1_, "m1", "dirty", 1);
  ASSERT_TRUE(handle);
  EXPECT_EQ(handle->address, addressTheGuestConfigured(1, "m1"));
  EXPECT_EQ(handle->address.rfind("192.168.101.", 0), 0u) << handle->address;

  auto migrate = [&](Hypervisor& from, const std::string& toHost, const std::string& endpoint,
                     MigrationMode mode, double cap, OperationId op) {
    MigrationSpec spec;
    spec.vmId = "m1";
    spec.destinationHost = toHost;
    spec.destinationEndpoint = endpoint;
    spec.mode = mode;
    spec.maxBandwidthBytesPerSec = cap;
    spec.downtimeLimitNs = 300 * kNsPerMs;
    EXPECT_TRUE(from.startMigration(op, spec).isOk());
  };

  // Refused by libvirt: the source itself (same host UUID), and an address nobody answers at.
  migrate(*h1_, "h2", host(1).tcpUri, MigrationMode::kLive, 0, 2);
  auto self = runUntilDone(2, 60s);
  ASSERT_TRUE(self);
  EXPECT_FALSE(self->status.isOk());
  EXPECT_NE(self->status.message().find("same host"), std::string::npos) << self->status.toString();
  std::printf("[ refused  ] %s\n", self->status.toString().c_str());
  migrate(*h1_, "h2", "qemu+tcp://10.250.0.99/system", MigrationMode::kLive, 0, 3);
  auto nowhere = runUntilDone(3, 60s);
  ASSERT_TRUE(nowhere);
  EXPECT_EQ(nowhere->status.code(), StatusCode::kUnavailable) << nowhere->status.toString();
  std::printf("[ refused  ] %s\n", nowhere->status.toString().c_str());
  EXPECT_EQ(stateIn(*h1_, "m1"), vmStateName(VmState::kRunning));
  EXPECT_EQ(lv1.state("m1"), VIR_DOMAIN_RUNNING);

  // A live migration that cannot converge (the guest dirties 7.8 MiB/s, the cap is 1 MiB/s) is
  // cancelled at the agent's migration-timeout and reported; the VM runs on at the source and the
  // destination's definition is gone. (A new agent on h1: the VM outlives the old one.)
  h1_ = make(1, {{"migration-uri", host(1).tcpUri}, {"migration-timeout", "8s"}});
  ASSERT_TRUE(h1_);
  EXPECT_EQ(vmOn(*h1_, "m1").address, handle->address);  // kept in the domain's metadata
  auto endpoint = h2_->prepareIncoming(vmOn(*h1_, "m1"));
  ASSERT_TRUE(endpoint.isOk()) << endpoint.status().toString();
  migrate(*h1_, "h2", *endpoint, MigrationMode::kLive, 1.0 * kMiB, 10);
  auto stuck = runUntilDone(10, 120s);
  ASSERT_TRUE(stuck) << "the migration hung";
  EXPECT_EQ(stuck->status.code(), StatusCode::kRejected) << stuck->status.toString();
  EXPECT_NE(stuck->status.message().find("did not converge"), std::string::npos)
      << stuck->status.toString();
  std::printf("[ refused  ] %s\n", stuck->status.toString().c_str());
  EXPECT_EQ(stateIn(*h1_, "m1"), vmStateName(VmState::kRunning));
  EXPECT_EQ(lv1.state("m1"), VIR_DOMAIN_RUNNING);
  EXPECT_EQ(lv2.state("m1"), -1);
  ASSERT_TRUE(h2_->finishIncoming("m1", false).isOk());
  h1_ = make(1, {{"migration-uri", host(1).tcpUri}});
  ASSERT_TRUE(h1_);

  // Live h1 -> h2 at 24 MiB/s, changed to 16 MiB/s while it runs.
  endpoint = h2_->prepareIncoming(vmOn(*h1_, "m1"));
  ASSERT_TRUE(endpoint.isOk()) << endpoint.status().toString();
  EXPECT_EQ(*endpoint, host(2).tcpUri);
  EXPECT_EQ(stateIn(*h2_, "m1"), vmStateName(VmState::kIncoming));
  migrate(*h1_, "h2", *endpoint, MigrationMode::kLive, 24.0 * kMiB, 4);
  EXPECT_EQ(stateIn(*h1_, "m1"), vmStateName(VmState::kMigratingOut));
  long capSeen = -1;
  auto live = runUntilDone(4, 180s, [&] {
    if (capSeen < 0 && !progress_.empty() && progress_.back().bytesSent > 0) {
      EXPECT_TRUE(h1_->setMigrationBandwidth("m1", 16.0 * kMiB).isOk());
      capSeen = lv1.maxSpeedMiB("m1");
    }
  });
  ASSERT_TRUE(live);
  ASSERT_TRUE(live->status.isOk()) << live->status.toString();
  ASSERT_TRUE(live->migration);
  const MigrationObservation& obs = *live->migration;
  printObservation("live h1->h2, 128 MiB guest writing 7.8 MiB/s, 24 then 16 MiB/s", obs);
  EXPECT_EQ(capSeen, 16);
  ASSERT_FALSE(progress_.empty());
  EXPECT_GT(progress_.back().bytesTotal, 0u);
  EXPECT_EQ(obs.mode, MigrationMode::kLive);
  EXPECT_GE(obs.transferredBytes, 40 * kMiB);
  EXPECT_GE(obs.rounds, 2u);
  EXPECT_GT(obs.downtimeNs, 0);
  EXPECT_LE(obs.bandwidthBytesPerSec, 24.0 * kMiB * 1.25);
  EXPECT_GT(obs.endNs, obs.startNs);
  EXPECT_FALSE(find(*h1_, "m1"));
  EXPECT_EQ(lv1.state("m1"), -1) << "the source's definition is removed";
  ASSERT_TRUE(h2_->finishIncoming("m1", true).isOk());
  EXPECT_EQ(stateIn(*h2_, "m1"), vmStateName(VmState::kRunning));
  EXPECT_EQ(lv2.state("m1"), VIR_DOMAIN_RUNNING);
  EXPECT_TRUE(lv2.persistent("m1"));
  expectMemoryIntact(2, "m1");

  // Suspend-copy-resume h2 -> h1 through libvirt's migration (no LIVE: paused for the copy).
  endpoint = h1_->prepareIncoming(vmOn(*h2_, "m1"));
  ASSERT_TRUE(endpoint.isOk()) << endpoint.status().toString();
  std::error_code ec;
  fs::remove(host(1).console("m1"), ec);  // the restored guest's console starts afresh
  migrate(*h2_, "h1", *endpoint, MigrationMode::kSuspendCopyResume, 0, 5);
  auto scr = runUntilDone(5, 180s);
  ASSERT_TRUE(scr);
  ASSERT_TRUE(scr->status.isOk()) << scr->status.toString();
  ASSERT_TRUE(scr->migration);
  printObservation("suspend-copy-resume h2->h1 (libvirt migration)", *scr->migration);
  EXPECT_EQ(scr->migration->mode, MigrationMode::kSuspendCopyResume);
  EXPECT_GE(scr->migration->transferredBytes, 40 * kMiB);
  ASSERT_TRUE(h1_->finishIncoming("m1", true).isOk());
  EXPECT_EQ(lv1.state("m1"), VIR_DOMAIN_RUNNING);
  EXPECT_EQ(lv2.state("m1"), -1);
  expectMemoryIntact(1, "m1");

  // Through a save image: h2's agent without a migration_uri, with a state_dir (on storage both
  // hosts see) receives by restoring it.
  h2_ = make(2, {{"stage-dir", (root_ / "state").string()}});
  ASSERT_TRUE(h2_);
  endpoint = h2_->prepareIncoming(vmOn(*h1_, "m1"));
  ASSERT_TRUE(endpoint.isOk()) << endpoint.status().toString();
  EXPECT_EQ(endpoint->rfind("save:", 0), 0u) << *endpoint;
  fs::remove(host(2).console("m1"), ec);
  migrate(*h1_, "h2", *endpoint, MigrationMode::kSuspendCopyResume, 0, 6);
  auto saved = runUntilDone(6, 180s);
  ASSERT_TRUE(saved);
  ASSERT_TRUE(saved->status.isOk()) << saved->status.toString();
  printObservation("suspend-copy-resume h1->h2 (save image)", *saved->migration);
  EXPECT_EQ(lv1.state("m1"), -1);
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(h2_->finishIncoming("m1", true).isOk());
  std::printf("[ measured ] restore of m1 on h2: %.2f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  EXPECT_EQ(lv2.state("m1"), VIR_DOMAIN_RUNNING);
  EXPECT_TRUE(lv2.persistent("m1"));
  EXPECT_TRUE(fs::is_empty(root_ / "state"));
  expectMemoryIntact(2, "m1");

  ASSERT_TRUE(h2_->destroy("m1").isOk());
  EXPECT_EQ(lv2.state("m1"), -1);
}

// Ensures a share-nothing migration (disk-migration=copy) between two libvirt hosts: a clone with
// a local 64 MiB qcow2 disk full of a pattern moves live from h1 to h2 with its disk; h2's disk
// pool (disk-dir) lets libvirt create the disk there; the plan's disk write cap is on the disk
// before the copy starts and travels with the domain; h2's copy has the same contents as h1's
// and the guest's memory is intact.
TEST_F(LibvirtdTest, ShareNothingMigrationCopiesTheLocalDiskUnderTheWriteCap) {
  const std::string images = "/var/lib/libvirt/images";  // as the hosts' libvirtds see it
  for (int i : {1, 2}) fs::create_directories(host(i).dir / "lib" / "images");
  auto make2 = [&](int i) {
    return make(i, {{"migration-uri", host(i).tcpUri},
                    {"disk-migration", "copy"},
                    {"disk-dir", images},
                    {"template.disk", diskTemplate()}});
  };
  h1_ = make2(1);
  h2_ = make2(2);
  ASSERT_TRUE(h1_ && h2_);
  Libvirt lv1(host(1).uri);
  Libvirt lv2(host(2).uri);
  ASSERT_TRUE(lv1 && lv2);
  const fs::path source = host(1).dir / "lib" / "images" / "d1.qcow2";
  const fs::path copy = host(2).dir / "lib" / "images" / "d1.qcow2";
  auto [imgRc, imgOut] =
      run("qemu-img create -q -f qcow2 " + source.string() +
          " 64M && qemu-io -f qcow2 -c 'write -q -P 0x5a 0 64M' " + source.string());
  ASSERT_EQ(imgRc, 0) << imgOut;
  ASSERT_TRUE(clone(*h1_, "d1", "disk", 1));
  expectMemoryIntact(1, "d1");
  const std::uint64_t diskBytes = vmOn(*h1_, "d1").diskBytes;  // the qcow2's allocation
  EXPECT_GE(diskBytes, 64 * kMiB);
  EXPECT_LE(diskBytes, 66 * kMiB);

  auto endpoint = h2_->prepareIncoming(vmOn(*h1_, "d1"));
  ASSERT_TRUE(endpoint.isOk()) << endpoint.status().toString();
  MigrationSpec spec;
  spec.vmId = "d1";
  spec.destinationHost = "h2";
  spec.destinationEndpoint = *endpoint;
  spec.mode = MigrationMode::kLive;
  spec.maxBandwidthBytesPerSec = 16.0 * kMiB;
  spec.downtimeLimitNs = 300 * kNsPerMs;
  spec.diskWriteLimitBytesPerSec = 4.0 * kMiB;
  ASSERT_TRUE(h1_->startMigration(2, spec).isOk());
  auto moved = runUntilDone(2, 240s);
  ASSERT_TRUE(moved) << "the migration hung";
  ASSERT_TRUE(moved->status.isOk()) << moved->status.toString();
  ASSERT_TRUE(moved->migration);
  printObservation("share-nothing live h1->h2, 64 MiB disk + 128 MiB guest at 16 MiB/s",
                   *moved->migration);
  EXPECT_GE(moved->migration->transferredBytes, 64 * kMiB) << "the disk was not sent";
  EXPECT_EQ(lv1.state("d1"), -1);
  ASSERT_TRUE(h2_->finishIncoming("d1", true).isOk());
  EXPECT_EQ(lv2.state("d1"), VIR_DOMAIN_RUNNING);
  EXPECT_TRUE(lv2.persistent("d1"));
  const std::string xml = lv2.xml("d1");
  EXPECT_NE(xml.find("<write_bytes_sec>4194304</write_bytes_sec>"), std::string::npos) << xml;
  ASSERT_TRUE(fs::exists(copy)) << "libvirt did not create the disk on h2";
  auto [cmpRc, cmpOut] = run("qemu-img compare -U " + source.string() + " " + copy.string());
  EXPECT_EQ(cmpRc, 0) << cmpOut;
  expectMemoryIntact(2, "d1");
  ASSERT_TRUE(h2_->destroy("d1").isOk());
}

}  // namespace
}  // namespace vrm::vmscheduler

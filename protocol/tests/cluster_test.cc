#include "vrm/protocol/cluster.h"

#include <gtest/gtest.h>

namespace vrm {
namespace {

constexpr const char* kCluster = R"(
defaults:
  nic_bandwidth: 1 Gbit/s
hosts:
  - name: node1
    cpu_cores: 16
    memory: 32 GiB
    vms:
      - {id: web-1, cpu_cores: 2, memory: 2 GiB, nonzero_memory: 1 GiB, dirty_rate: 4 MiB/s}
  - name: node2
    cpu_cores: 8
    memory: 16 GiB
    nic_bandwidth: 10 Gbit/s
templates:
  - {name: bmi-decoder, cpu_cores: 4, memory: 8 GiB, clone_time: 45 s, vms_per_host: 2}
)";

// Ensures a well-formed description parses with units and defaults applied.
TEST(ClusterSpecTest, ParsesHostsVmsAndTemplates) {
  auto spec = parseClusterSpec(kCluster);
  ASSERT_TRUE(spec.isOk()) << spec.status().toString();
  ASSERT_EQ(spec->hosts.size(), 2u);
  EXPECT_DOUBLE_EQ(spec->hosts[0].nicBandwidthBytesPerSec, 125e6);
  EXPECT_DOUBLE_EQ(spec->hosts[1].nicBandwidthBytesPerSec, 1.25e9);
  ASSERT_EQ(spec->hosts[0].vms.size(), 1u);
  EXPECT_EQ(spec->hosts[0].vms[0].nonzeroMemoryBytes, 1u << 30);
  EXPECT_DOUBLE_EQ(spec->hosts[0].vms[0].dirtyRateBytesPerSec, 4.0 * (1 << 20));
  const TemplateSpec* t = spec->findTemplate("bmi-decoder");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->cloneTimeNs, 45 * kNsPerSec);
  EXPECT_EQ(t->vmsPerHost, 2u);
  EXPECT_EQ(spec->findHost("nope"), nullptr);
}

// Ensures each kind of mistake is reported with the path of the entry at fault.
TEST(ClusterSpecTest, ErrorsNameTheEntry) {
  struct Case {
    const char* yaml;
    const char* expect;
  } cases[] = {
      {"hosts: [", "not valid YAML"},
      {"hosts: []", "non-empty list"},
      {"hosts: [{name: a, cpu_cores: 4, memory: 1 GiB}]", "hosts[0].nic_bandwidth"},
      {"hosts: [{name: a, cpu_cores: 4, memory: 1 parsec, nic_bandwidth: 1 Gbit/s}]",
       "hosts[0].memory"},
      {"hosts: [{name: a, cpu_cores: -4, memory: 1 GiB, nic_bandwidth: 1 Gbit/s}]",
       "hosts[0].cpu_cores"},
      {"defaults: {nic_bandwidth: 1 Gbit/s}\nhosts: [{name: a, cpu_cores: 4, memory: 1 GiB}, "
       "{name: a, cpu_cores: 4, memory: 1 GiB}]",
       "duplicate host"},
      {"defaults: {nic_bandwidth: 1 Gbit/s}\nhosts: [{name: a, cpu_cores: 4, memory: 1 GiB, "
       "vms: [{id: v, memory: 2 GiB}]}]",
       "more memory"},
      {"defaults: {nic_bandwidth: 1 Gbit/s}\nhosts: [{name: a, cpu_cores: 4, memory: 4 GiB, "
       "vms: [{id: v, memory: 1 GiB, nonzero_memory: 2 GiB}]}]",
       "nonzero_memory"},
  };
  for (const auto& c : cases) {
    auto spec = parseClusterSpec(c.yaml);
    ASSERT_FALSE(spec.isOk()) << c.yaml;
    EXPECT_EQ(spec.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(spec.status().message().find(c.expect), std::string::npos) << spec.status().message();
  }
}

// Ensures a missing file is not-found, not a crash.
TEST(ClusterSpecTest, MissingFile) {
  auto spec = loadClusterSpec("/nonexistent/cluster.yaml");
  ASSERT_FALSE(spec.isOk());
  EXPECT_EQ(spec.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace vrm

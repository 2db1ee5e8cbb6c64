#include "vrm/manager/replica_options.h"

#include <gtest/gtest.h>

namespace vrm::manager {
namespace {

// Ensures --advertise takes only endpoints others can connect to, and says why not otherwise.
TEST(ReplicaOptionsTest, AdvertisedEndpointMustBeReachable) {
  EXPECT_EQ(*parseAdvertisedEndpoint("tcp://vrm1.lab:5555"), "tcp://vrm1.lab:5555");
  EXPECT_EQ(*parseAdvertisedEndpoint("tcp://10.0.0.7:5555"), "tcp://10.0.0.7:5555");
  struct Case {
    std::string value, why;
  };
  for (const Case& c :
       {Case{"vrm1:5555", "not tcp://HOST:PORT"}, Case{"tcp://vrm1", "no port"},
        Case{"tcp://*:5555", "'*' is not an address"},
        Case{"tcp://0.0.0.0:5555", "'0.0.0.0' is not an address"},
        Case{"tcp://:5555", "'' is not an address"}, Case{"tcp://vrm1:*", "port '*'"},
        Case{"tcp://vrm1:0", "port '0'"}, Case{"tcp://vrm1:70000", "port '70000'"}}) {
    auto parsed = parseAdvertisedEndpoint(c.value);
    ASSERT_FALSE(parsed) << c.value;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find("--advertise " + c.value), std::string::npos)
        << parsed.status().message();
    EXPECT_NE(parsed.status().message().find(c.why), std::string::npos)
        << parsed.status().message();
  }
}

// Ensures --clients is advertised when it is a reachable address, and a wildcard asks for
// --advertise.
TEST(ReplicaOptionsTest, ClientsIsTheDefaultWhenReachable) {
  EXPECT_EQ(*defaultAdvertisedEndpoint("tcp://127.0.0.1:5555"), "tcp://127.0.0.1:5555");
  auto wildcard = defaultAdvertisedEndpoint("tcp://*:5555");
  ASSERT_FALSE(wildcard);
  EXPECT_NE(wildcard.status().message().find("give --advertise"), std::string::npos)
      << wildcard.status().message();
  EXPECT_FALSE(defaultAdvertisedEndpoint("tcp://127.0.0.1:*"));
}

// Ensures --lease-ttl takes whole seconds from 1 s to 300 s, naming the flag otherwise.
TEST(ReplicaOptionsTest, LeaseTtlIsWholeSecondsInRange) {
  EXPECT_EQ(*parseLeaseTtl("3s"), std::chrono::seconds(3));
  EXPECT_EQ(*parseLeaseTtl("5000ms"), std::chrono::seconds(5));
  EXPECT_EQ(*parseLeaseTtl("1min"), std::chrono::seconds(60));
  for (const char* bad : {"0s", "1500ms", "301s", "-3s", "3 parsecs", ""}) {
    auto parsed = parseLeaseTtl(bad);
    ASSERT_FALSE(parsed) << bad;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(parsed.status().message().rfind("--lease-ttl ", 0), 0u) << parsed.status().message();
  }
}

}  // namespace
}  // namespace vrm::manager

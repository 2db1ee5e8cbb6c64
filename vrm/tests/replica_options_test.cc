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

// Ensures the leader key's value carries the endpoint and the web URL and reads back, and that
// a value of an endpoint alone (an older vrmd) is an endpoint with no URL.
TEST(ReplicaOptionsTest, LeaderValueRoundTrips) {
  const LeaderAddress both{"tcp://10.0.0.1:5555", "http://10.0.0.1:8080/"};
  EXPECT_EQ(formatLeaderValue(both), "tcp://10.0.0.1:5555 http://10.0.0.1:8080/");
  const LeaderAddress read = parseLeaderValue(formatLeaderValue(both));
  EXPECT_EQ(read.clientEndpoint, both.clientEndpoint);
  EXPECT_EQ(read.httpUrl, both.httpUrl);
  EXPECT_EQ(formatLeaderValue({"tcp://h:1", ""}), "tcp://h:1");
  EXPECT_EQ(parseLeaderValue("tcp://h:1").clientEndpoint, "tcp://h:1");
  EXPECT_EQ(parseLeaderValue("tcp://h:1").httpUrl, "");
  EXPECT_EQ(parseLeaderValue("").clientEndpoint, "") << "no leader known";
}

// Ensures --advertise-http takes http(s)://HOST:PORT others can reach, ending it in '/', and
// names the flag otherwise.
TEST(ReplicaOptionsTest, AdvertisedHttpUrlIsReachable) {
  EXPECT_EQ(*parseAdvertisedHttpUrl("http://vrm1:8080"), "http://vrm1:8080/");
  EXPECT_EQ(*parseAdvertisedHttpUrl("https://vrm1:443/"), "https://vrm1:443/");
  for (const char* bad : {"vrm1:8080", "ftp://vrm1:21", "http://0.0.0.0:8080", "http://vrm1",
                          "http://vrm1:0", "http://vrm1:8080/x", "http://"}) {
    auto parsed = parseAdvertisedHttpUrl(bad);
    ASSERT_FALSE(parsed) << bad;
    EXPECT_EQ(parsed.status().message().rfind("--advertise-http ", 0), 0u)
        << parsed.status().message();
  }
}

// Ensures the default web URL is the --http address and port (https with TLS), the advertised
// client endpoint's host for a wildcard address, and that port 0 asks for --advertise-http.
TEST(ReplicaOptionsTest, DefaultAdvertisedHttpUrl) {
  EXPECT_EQ(*defaultAdvertisedHttpUrl("10.0.0.1", 8080, false, "tcp://vrm1:5555"),
            "http://10.0.0.1:8080/");
  EXPECT_EQ(*defaultAdvertisedHttpUrl("0.0.0.0", 8443, true, "tcp://vrm1:5555"),
            "https://vrm1:8443/");
  EXPECT_EQ(*defaultAdvertisedHttpUrl("::1", 80, false, "tcp://vrm1:5555"), "http://[::1]:80/");
  auto zero = defaultAdvertisedHttpUrl("127.0.0.1", 0, false, "tcp://vrm1:5555");
  ASSERT_FALSE(zero);
  EXPECT_NE(zero.status().message().find("--advertise-http"), std::string::npos);
}

}  // namespace
}  // namespace vrm::manager

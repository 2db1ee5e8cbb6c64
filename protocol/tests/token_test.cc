// Ensures the stored form of a web token is the SHA-256 every other tool computes (so an
// operator can check it with sha256sum), and only that form is recognised as a hash.
#include "vrm/protocol/token.h"

#include <gtest/gtest.h>

namespace vrm::protocol {
namespace {

// Ensures known SHA-256 vectors (FIPS 180-2 "abc", and the empty string).
TEST(TokenTest, HashIsSha256InLowercaseHex) {
  EXPECT_EQ(hashBearerToken("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hashBearerToken(""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_TRUE(isBearerTokenHash(hashBearerToken("any-token-0123456789")));
}

// Ensures a clear token, a truncated or upper-case digest, or another prefix is not a hash.
TEST(TokenTest, OnlyTheStoredFormIsAHash) {
  const std::string h = hashBearerToken("abc");
  EXPECT_FALSE(isBearerTokenHash("abc"));
  EXPECT_FALSE(isBearerTokenHash(h.substr(0, h.size() - 1)));
  EXPECT_FALSE(isBearerTokenHash(h + "0"));
  std::string upper = h;
  upper.back() = 'D';
  EXPECT_FALSE(isBearerTokenHash(upper));
  EXPECT_FALSE(isBearerTokenHash("sha512:" + h.substr(7)));
  EXPECT_FALSE(isBearerTokenHash(""));
}

}  // namespace
}  // namespace vrm::protocol

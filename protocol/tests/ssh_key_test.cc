#include "vrm/protocol/ssh_key.h"

#include <gtest/gtest.h>

namespace vrm {
namespace {

// Keys made by ssh-keygen (ed25519 with a comment, ecdsa without).
constexpr const char* kEd25519 =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKDLIabwrbChxMufAdl0KXARt4BoFMMlaai4zxaChfqq alice@lab";
constexpr const char* kEcdsa =
    "ecdsa-sha2-nistp256 "
    "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBIlq78oSFpSUFooapT/"
    "Iz0HDT1GMgPcICM1FuEzha8sYjEHu0J1a3Qv3FDtZI7aVz3TxYo8S9QxFi3N8AHXZcUo=";

// Real public keys pass, with or without a comment and a trailing newline.
TEST(SshKeyTest, AcceptsOpenSshPublicKeys) {
  EXPECT_TRUE(checkSshPublicKey(kEd25519));
  EXPECT_TRUE(checkSshPublicKey(std::string(kEd25519) + "\n"));
  EXPECT_TRUE(checkSshPublicKey(kEcdsa));
  EXPECT_EQ(sshPublicKeyWithoutComment(std::string(kEd25519) + "\n"),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKDLIabwrbChxMufAdl0KXARt4BoFMMlaai4zxaChfqq");
  EXPECT_EQ(sshPublicKeyWithoutComment(kEcdsa), kEcdsa);
}

// What is not one public key is invalid-argument with a reason a person can act on.
TEST(SshKeyTest, RejectsWhatIsNotAPublicKey) {
  auto reason = [](std::string_view key) {
    Status s = checkSshPublicKey(key);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << key;
    return s.message();
  };
  EXPECT_NE(reason("").find("empty"), std::string::npos);
  EXPECT_NE(reason("-----BEGIN OPENSSH PRIVATE KEY-----").find("private key"), std::string::npos);
  EXPECT_NE(reason("hello world").find("key type"), std::string::npos);
  EXPECT_NE(reason("ssh-ed25519").find("no key data"), std::string::npos);
  EXPECT_NE(reason("ssh-ed25519 not*base64").find("base64"), std::string::npos);
  // A valid blob under the wrong type name.
  std::string wrongType = kEd25519;
  wrongType.replace(0, 11, "ssh-rsa");
  EXPECT_NE(reason(wrongType).find("does not match"), std::string::npos);
  EXPECT_NE(reason(std::string(kEd25519) + "\n" + kEcdsa).find("one line"), std::string::npos);
  EXPECT_NE(reason("ssh-rsa " + std::string(kMaxSshPublicKeyBytes, 'A')).find("longer"),
            std::string::npos);
}

}  // namespace
}  // namespace vrm

#include "vrm/client/ssh_key_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace vrm::client {
namespace {

constexpr const char* kKey =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKDLIabwrbChxMufAdl0KXARt4BoFMMlaai4zxaChfqq alice@lab";

std::string writeFile(const std::string& name, const std::string& text) {
  const std::string path =
      ::testing::TempDir() + "/ssh_key_file_test." + std::to_string(::getpid()) + "." + name;
  std::ofstream(path) << text;
  return path;
}

// A .pub file as ssh-keygen writes it gives its one line, without the newline.
TEST(SshKeyFileTest, ReadsAPublicKeyFile) {
  auto key = readSshPublicKeyFile(writeFile("ok.pub", std::string(kKey) + "\n"), "--ssh-key");
  ASSERT_TRUE(key) << key.status().toString();
  EXPECT_EQ(*key, kKey);
}

// Every failure is invalid-argument naming the setting and the file.
TEST(SshKeyFileTest, BadFilesNameTheSetting) {
  const std::string missing = ::testing::TempDir() + "/no-such-key.pub";
  auto r = readSshPublicKeyFile(missing, "--ssh-key");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message().rfind("--ssh-key " + missing + ": cannot read", 0), 0u)
      << r.status().message();

  const std::string priv =
      writeFile("id", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n");
  r = readSshPublicKeyFile(priv, "--ssh-key");
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("private key"), std::string::npos);

  r = readSshPublicKeyFile(writeFile("two.pub", std::string(kKey) + "\n" + kKey + "\n"),
                           "--ssh-key");
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("one line"), std::string::npos);
}

}  // namespace
}  // namespace vrm::client

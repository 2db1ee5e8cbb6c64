// SSH public keys as owners give them (one line of an OpenSSH .pub file or authorized_keys file,
// without options): checked once at every edge (vrmctl, the web API, vrmd's submit), so a clone
// never comes up with a key its owner cannot log in with.
#pragma once

#include <string>
#include <string_view>

#include "vrm/protocol/status.h"

namespace vrm {

// Longest key line accepted, in bytes. An RSA 16384-bit key is about 2.8 kB; the qemu backend's
// kernel command line (2048 bytes on x86) takes less (qemu_config.h says how much).
inline constexpr std::size_t kMaxSshPublicKeyBytes = 4096;

// OK when `key` is "TYPE BASE64 [comment]" (one line; a trailing newline is allowed) with TYPE
// one of ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256/384/521, sk-ssh-ed25519@openssh.com,
// sk-ecdsa-sha2-nistp256@openssh.com, BASE64 valid and its decoded blob starting with TYPE (as
// every OpenSSH public key blob does). Otherwise invalid-argument saying what is wrong, without
// naming the field: callers prefix their own name for it ("--ssh-key", "ssh_public_key").
// An empty key is invalid too; callers treat "no key" before calling.
[[nodiscard]] Status checkSshPublicKey(std::string_view key);

// The key's "TYPE BASE64" part (no comment, no trailing newline); `key` must have passed
// checkSshPublicKey().
std::string sshPublicKeyWithoutComment(std::string_view key);

}  // namespace vrm

// Reading the owner's SSH public key for a request (vrmctl submit --ssh-key FILE, and any
// program built on the client library).
#pragma once

#include <string>

#include "vrm/protocol/status.h"

namespace vrm::client {

// The key in the file at `path` (an OpenSSH .pub file: one key line, checked with
// checkSshPublicKey()), without its trailing newline, for ReservationRequest::sshPublicKey.
// Errors are invalid-argument starting with `setting` (e.g. "--ssh-key id_ed25519.pub: ..."):
// unreadable file, more than one key, not a public key (a private key file is named as such).
[[nodiscard]] Result<std::string> readSshPublicKeyFile(const std::string& path,
                                                       const std::string& setting);

}  // namespace vrm::client

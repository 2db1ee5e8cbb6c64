// Web bearer tokens as vrmd stores them: never the token itself, only its hash, so that a copy
// of the authorized file does not let anyone in.
//
// The stored form is "sha256:" followed by the SHA-256 of the token in lowercase hex (71
// characters); `vrmctl hash-token` prints it. One unsalted fast hash is enough because tokens
// are random (`vrmctl keygen --token`: 32 characters, about 190 bits): there is no dictionary
// to try against a stolen hash. Do not use a password a person chose as a token.
#pragma once

#include <string>
#include <string_view>

namespace vrm::protocol {

inline constexpr std::string_view kTokenHashPrefix = "sha256:";

// The stored form of `token`. Empty if the digest cannot be computed (an OpenSSL failure),
// which no stored form equals.
std::string hashBearerToken(std::string_view token);

// `text` is a stored form: the prefix and 64 lowercase hex digits.
bool isBearerTokenHash(std::string_view text);

}  // namespace vrm::protocol

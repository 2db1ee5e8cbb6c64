#include "vrm/protocol/token.h"

#include <openssl/evp.h>

namespace vrm::protocol {

std::string hashBearerToken(std::string_view token) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(token.data(), token.size(), digest, &size, EVP_sha256(), nullptr) != 1 ||
      size != 32) {
    return "";
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(kTokenHashPrefix);
  for (unsigned int i = 0; i < size; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xf]);
  }
  return out;
}

bool isBearerTokenHash(std::string_view text) {
  if (text.size() != kTokenHashPrefix.size() + 64 ||
      text.substr(0, kTokenHashPrefix.size()) != kTokenHashPrefix) {
    return false;
  }
  for (char c : text.substr(kTokenHashPrefix.size())) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace vrm::protocol

#include "vrm/protocol/ssh_key.h"

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

namespace vrm {

namespace {

constexpr std::array<std::string_view, 7> kKeyTypes = {"ssh-ed25519",
                                                       "ssh-rsa",
                                                       "ecdsa-sha2-nistp256",
                                                       "ecdsa-sha2-nistp384",
                                                       "ecdsa-sha2-nistp521",
                                                       "sk-ssh-ed25519@openssh.com",
                                                       "sk-ecdsa-sha2-nistp256@openssh.com"};

std::optional<std::vector<std::uint8_t>> decodeBase64(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (in.empty() || in.size() % 4 != 0) return std::nullopt;
  std::vector<std::uint8_t> out;
  std::uint32_t bits = 0;
  int count = 0;
  std::size_t padding = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '=') {
      // Padding only at the end, at most two.
      if (i + 2 < in.size()) return std::nullopt;
      ++padding;
      continue;
    }
    if (padding) return std::nullopt;
    const int v = value(in[i]);
    if (v < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<std::uint32_t>(v);
    if (++count == 4) {
      out.push_back(static_cast<std::uint8_t>(bits >> 16));
      out.push_back(static_cast<std::uint8_t>(bits >> 8));
      out.push_back(static_cast<std::uint8_t>(bits));
      bits = 0;
      count = 0;
    }
  }
  if (padding > 2) return std::nullopt;
  if (count == 2) {
    out.push_back(static_cast<std::uint8_t>(bits >> 4));
  } else if (count == 3) {
    out.push_back(static_cast<std::uint8_t>(bits >> 10));
    out.push_back(static_cast<std::uint8_t>(bits >> 2));
  }
  return out;
}

std::string_view trimNewline(std::string_view key) {
  if (!key.empty() && key.back() == '\n') key.remove_suffix(1);
  if (!key.empty() && key.back() == '\r') key.remove_suffix(1);
  return key;
}

}  // namespace

Status checkSshPublicKey(std::string_view key) {
  key = trimNewline(key);
  if (key.empty()) return Status::invalid("empty SSH public key");
  if (key.size() > kMaxSshPublicKeyBytes) {
    return Status::invalid("SSH public key is longer than " +
                           std::to_string(kMaxSshPublicKeyBytes) + " bytes");
  }
  if (key.find("PRIVATE KEY") != std::string_view::npos) {
    return Status::invalid("that is a private key: give the public one (the .pub file)");
  }
  for (char c : key) {
    if (c == '\n' || c == '\r' || c == '\0') {
      return Status::invalid("SSH public key must be one line (give one key)");
    }
    if (static_cast<unsigned char>(c) < 0x20 && c != '\t') {
      return Status::invalid("SSH public key has a control character");
    }
  }
  const auto space = key.find(' ');
  const std::string_view type = key.substr(0, space);
  bool known = false;
  for (auto t : kKeyTypes) known |= t == type;
  if (!known) {
    return Status::invalid(
        "not an OpenSSH public key: it must start with a key type such as "
        "ssh-ed25519 or ssh-rsa, got '" +
        std::string(type.substr(0, 40)) + "'");
  }
  if (space == std::string_view::npos) return Status::invalid("SSH public key has no key data");
  std::string_view data = key.substr(space + 1);
  data = data.substr(0, data.find(' '));
  auto blob = decodeBase64(data);
  if (!blob) return Status::invalid("SSH public key data is not valid base64");
  // The blob opens with the key type as an SSH string: a 4-byte big-endian length, then the name.
  if (blob->size() < 4) return Status::invalid("SSH public key data is too short");
  const std::size_t n = (std::size_t{(*blob)[0]} << 24) | (std::size_t{(*blob)[1]} << 16) |
                        (std::size_t{(*blob)[2]} << 8) | std::size_t{(*blob)[3]};
  if (n != type.size() || blob->size() < 4 + n ||
      std::string_view(reinterpret_cast<const char*>(blob->data()) + 4, n) != type) {
    return Status::invalid("SSH public key data does not match its type '" + std::string(type) +
                           "'");
  }
  return Status::ok();
}

std::string sshPublicKeyWithoutComment(std::string_view key) {
  key = trimNewline(key);
  const auto space = key.find(' ');
  if (space == std::string_view::npos) return std::string(key);
  const auto second = key.find(' ', space + 1);
  return std::string(key.substr(0, second));
}

}  // namespace vrm

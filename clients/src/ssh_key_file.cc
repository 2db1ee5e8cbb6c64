#include "vrm/client/ssh_key_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "vrm/protocol/ssh_key.h"

namespace vrm::client {

Result<std::string> readSshPublicKeyFile(const std::string& path, const std::string& setting) {
  const std::string what = setting + " " + path + ": ";
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::invalid(what + "cannot read: " + std::strerror(errno));
  std::string text;
  // One byte past the limit is enough to know the file is too long.
  text.resize(kMaxSshPublicKeyBytes + 3);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  if (Status s = checkSshPublicKey(text); !s) return Status::invalid(what + s.message());
  return text;
}

}  // namespace vrm::client

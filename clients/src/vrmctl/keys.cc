// keygen: CURVE key pairs for vrmd, its agents and its clients; bearer tokens for the web API.
// hash-token: the form of a bearer token vrmd's authorized file stores.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>

#include "commands.h"
#include "vrm/protocol/token.h"

namespace vrm::vrmctl {
namespace {

struct KeygenArgs {
  std::vector<std::string> names;
  std::string dir = ".";
  bool overwrite = false;
  bool token = false;
};

// 32 characters of [A-Za-z0-9] from the OS's random source: about 190 bits.
Result<std::string> randomToken() {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  if (!urandom) return Status::unavailable("cannot read /dev/urandom");
  std::string token;
  while (token.size() < 32) {
    unsigned char byte = 0;
    if (!urandom.read(reinterpret_cast<char*>(&byte), 1)) {
      return Status::unavailable("cannot read /dev/urandom");
    }
    if (byte < 248) token.push_back(kAlphabet[byte % 62]);  // 248 = 4 * 62: no modulo bias
  }
  return token;
}

int runKeygen(const Context& ctx, const KeygenArgs& a) {
  if (a.token) {
    if (!a.names.empty()) return ctx.fail(Status::invalid("--token takes no names"));
    auto t = randomToken();
    if (!t) return ctx.fail(t.status());
    std::cout << *t << "\n";
    return kExitOk;
  }
  if (a.names.empty()) return ctx.fail(Status::invalid("name at least one key pair to make"));
  std::error_code ec;
  std::filesystem::create_directories(a.dir, ec);
  if (ec) return ctx.fail(Status::invalid("--dir " + a.dir + ": " + ec.message()));
  for (const auto& name : a.names) {
    if (name.empty() || name.find('/') != std::string::npos) {
      return ctx.fail(Status::invalid("'" + name + "' is not a file name (use --dir DIR)"));
    }
    auto pair = protocol::generateCurveKeyPair();
    if (!pair) return ctx.fail(pair.status());
    const std::string prefix = (std::filesystem::path(a.dir) / name).string();
    if (Status s = protocol::writeCurveKeyPair(*pair, prefix, a.overwrite); !s) return ctx.fail(s);
    std::cout << pair->publicKey << "  " << name << "  (" << prefix << ".key secret, " << prefix
              << ".pub public)\n";
  }
  return kExitOk;
}

// The token from the command line, or else the first line of stdin (which keeps it out of the
// shell's history and the process list: `vrmctl hash-token < file`).
int runHashToken(const Context& ctx, std::string token) {
  if (token.empty() && !std::getline(std::cin, token)) {
    return ctx.fail(Status::invalid("give the token as an argument or on stdin"));
  }
  if (token.size() < 16 || token.find_first_of(" \t\r\n") != std::string::npos) {
    return ctx.fail(Status::invalid(
        "a token is at least 16 characters without spaces (`vrmctl keygen --token` makes one)"));
  }
  const std::string hash = protocol::hashBearerToken(token);
  if (hash.empty()) return ctx.fail(Status::internal("OpenSSL's SHA-256 failed"));
  std::cout << hash << "\n";
  return kExitOk;
}

}  // namespace

void addKeyCommands(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<KeygenArgs>();
  auto* keygen = app.add_subcommand(
      "keygen",
      "make CURVE key pairs: NAME.key (secret, mode 0600) and NAME.pub (public, Z85), and print "
      "each public key for vrmd's authorized file; or --token for a web API token");
  keygen->add_option("name", args->names, "one key pair per name (e.g. vrmd, alice, node1)");
  keygen->add_option("--dir", args->dir, "where to write the files")->capture_default_str();
  keygen->add_flag("--force", args->overwrite, "overwrite existing files");
  keygen->add_flag("--token", args->token, "print a random bearer token instead (web entries)");
  keygen->callback([&ctx, args] { ctx.exitCode = runKeygen(ctx, *args); });

  auto token = std::make_shared<std::string>();
  auto* hash =
      app.add_subcommand("hash-token",
                         "print what vrmd's authorized file stores for a web token (sha256:HEX): "
                         "'web NAME user|admin sha256:HEX'");
  hash->add_option("token", *token, "the token (default: the first line of stdin)");
  hash->callback([&ctx, token] { ctx.exitCode = runHashToken(ctx, *token); });
}

}  // namespace vrm::vrmctl

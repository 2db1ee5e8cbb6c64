// Test helper: an HTTP/1.1 client that sends a request exactly as written (malformed ones too)
// to a server on loopback and reads the answer until the server closes, over plain TCP or TLS.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace vrm::web::http_client {

struct HttpReply {
  int status = 0;
  std::string headers;
  std::string body;
  nlohmann::json parsed() const { return nlohmann::json::parse(body, nullptr, false); }
};

// Splits a whole answer into status, headers and body; a failure when it is not one.
inline HttpReply parseHttpReply(const std::string& all, const std::string& request) {
  HttpReply reply;
  auto split = all.find("\r\n\r\n");
  if (all.size() < 12 || split == std::string::npos) {
    ADD_FAILURE() << "no HTTP reply to: " << request.substr(0, 80);
    return reply;
  }
  reply.status = std::stoi(all.substr(9, 3));
  reply.headers = all.substr(0, split);
  reply.body = all.substr(split + 4);
  return reply;
}

// A TCP connection to 127.0.0.1:port with a 10 s receive timeout; -1 (and a failure) if refused.
inline int connectLoopback(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    ADD_FAILURE() << "cannot connect to port " << port;
    return -1;
  }
  return fd;
}

// Sends `request` as is to 127.0.0.1:port over plain TCP.
inline HttpReply httpRequest(std::uint16_t port, const std::string& request) {
  int fd = connectLoopback(port);
  if (fd < 0) return {};
  std::size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may close early (413); read its answer anyway
    sent += static_cast<std::size_t>(n);
  }
  std::string all;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) all.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return parseHttpReply(all, request);
}

struct TlsOptions {
  std::string trustedCertFile;           // the only certificate (or CA) the client accepts
  std::string serverName = "localhost";  // SNI and the name the certificate must carry
  int maxVersion = 0;                    // e.g. TLS1_1_VERSION to offer only old versions; 0 = any
};

struct HttpsReply {
  bool handshake = false;  // the TLS handshake succeeded, the certificate verified
  std::string handshakeError;
  std::string peerCertificatePem;  // what the server presented
  HttpReply http;
};

// Sends `request` as is to 127.0.0.1:port over TLS (OpenSSL), verifying the server's
// certificate against `tls.trustedCertFile` and its name.
inline HttpsReply httpsRequest(std::uint16_t port, const std::string& request,
                               const TlsOptions& tls) {
  HttpsReply out;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_load_verify_locations(ctx, tls.trustedCertFile.c_str(), nullptr);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (tls.maxVersion) {
    // Old versions are below OpenSSL 3's default security level: allow them on this side, so
    // that only the server can be what refuses them.
    SSL_CTX_set_security_level(ctx, 0);
    SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
    SSL_CTX_set_max_proto_version(ctx, tls.maxVersion);
  }
  int fd = connectLoopback(port);
  if (fd < 0) {
    SSL_CTX_free(ctx);
    return out;
  }
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  SSL_set_tlsext_host_name(ssl, tls.serverName.c_str());
  SSL_set1_host(ssl, tls.serverName.c_str());
  if (SSL_connect(ssl) == 1) {
    out.handshake = true;
    if (X509* cert = SSL_get1_peer_certificate(ssl)) {
      BIO* bio = BIO_new(BIO_s_mem());
      PEM_write_bio_X509(bio, cert);
      char* data = nullptr;
      long len = BIO_get_mem_data(bio, &data);
      out.peerCertificatePem.assign(data, static_cast<std::size_t>(len));
      BIO_free(bio);
      X509_free(cert);
    }
    SSL_write(ssl, request.data(), static_cast<int>(request.size()));
    std::string all;
    char buf[4096];
    int n;
    while ((n = SSL_read(ssl, buf, sizeof buf)) > 0) all.append(buf, static_cast<std::size_t>(n));
    out.http = parseHttpReply(all, request);
  } else {
    out.handshakeError =
        "TLS handshake failed (verify result " + std::to_string(SSL_get_verify_result(ssl)) + ")";
  }
  SSL_free(ssl);
  ::close(fd);
  SSL_CTX_free(ctx);
  return out;
}

}  // namespace vrm::web::http_client

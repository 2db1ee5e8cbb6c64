// The web server's TLS: the server certificate (PEM chain and key) as an OpenSSL context, TLS 1.2
// and later only, and the current one swapped in when vrmd reloads (SIGHUP), so a renewed
// certificate is served without a restart. Connections keep the context they began with.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <mutex>
#include <string>

#include "vrm/protocol/status.h"

namespace vrm::web {

using TlsContext = std::shared_ptr<boost::asio::ssl::context>;

// A server context from `certFile` (the certificate chain, leaf first, PEM) and `keyFile` (its
// private key, PEM, unencrypted). Errors: invalid-argument naming the file and OpenSSL's reason
// (missing, unreadable, not PEM, the key does not match the certificate).
Result<TlsContext> loadServerTls(const std::string& certFile, const std::string& keyFile);

// The context new connections are served with. Thread-safe: vrmd's main thread reloads while the
// serving thread takes.
class TlsCertificate {
 public:
  TlsCertificate(std::string certFile, std::string keyFile, TlsContext loaded)
      : certFile_(std::move(certFile)), keyFile_(std::move(keyFile)), current_(std::move(loaded)) {}

  TlsContext current() const;
  // Reads the files again; on an error the certificate served so far stays (and the error says
  // why the new one was not taken).
  Status reload();

 private:
  const std::string certFile_, keyFile_;
  mutable std::mutex mutex_;
  TlsContext current_;
};

}  // namespace vrm::web

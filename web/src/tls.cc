#include "tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace vrm::web {
namespace ssl = boost::asio::ssl;

namespace {

// OpenSSL's reason ("no such file", "no start line") rather than asio's generic wrapping of it
// ("error:80000002:system library::No such file or directory"). Asio has taken the error off
// OpenSSL's queue and into `ec`.
std::string openSslReason(const boost::system::error_code& ec) {
  ERR_clear_error();
  if (ec.category() != boost::asio::error::get_ssl_category()) return ec.message();
  const char* reason = ERR_reason_error_string(static_cast<unsigned long>(ec.value()));
  return reason ? reason : ec.message();
}

bool isKeyMismatch(const boost::system::error_code& ec) {
  return ec.category() == boost::asio::error::get_ssl_category() &&
         ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH;
}

}  // namespace

Result<TlsContext> loadServerTls(const std::string& certFile, const std::string& keyFile) {
  if (certFile.empty() || keyFile.empty()) {
    return Status::invalid("TLS needs both a certificate file and its key file");
  }
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  // TLS 1.2 and 1.3 only (1.0 and 1.1 are deprecated, RFC 8996); no renegotiation or
  // compression, one ephemeral key per handshake.
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                       ssl::context::single_dh_use | ssl::context::no_compression);
  SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
  boost::system::error_code ec;
  ERR_clear_error();
  if (context->use_certificate_chain_file(certFile, ec)) {
    return Status::invalid("TLS certificate " + certFile + ": " + openSslReason(ec));
  }
  const std::string mismatch =
      "TLS key " + keyFile + " does not belong to the certificate " + certFile;
  if (context->use_private_key_file(keyFile, ssl::context::pem, ec)) {
    // OpenSSL compares the key with the certificate as it loads it.
    if (isKeyMismatch(ec)) return Status::invalid(mismatch);
    return Status::invalid("TLS key " + keyFile + ": " + openSslReason(ec));
  }
  if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
    ERR_clear_error();
    return Status::invalid(mismatch);
  }
  return context;
}

TlsContext TlsCertificate::current() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return current_;
}

Status TlsCertificate::reload() {
  auto loaded = loadServerTls(certFile_, keyFile_);
  if (!loaded) return loaded.status();
  std::lock_guard<std::mutex> lock(mutex_);
  current_ = std::move(*loaded);
  return Status::ok();
}

}  // namespace vrm::web

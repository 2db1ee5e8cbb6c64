// The web server over HTTPS (issue 17 item 3), on loopback with an OS-chosen port, against a real
// OpenSSL client that verifies the certificate. The certificates in data/ are self-signed for
// "localhost" and 127.0.0.1, valid until 2126, made with (one command line)
//   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 36500
//     -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1
//     -keyout NAME.key -out NAME.crt
// (localhost and localhost-renewed: two unrelated pairs, for the reload).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <zmq.hpp>

#include "http_test_client.h"
#include "vrm/web/web_server.h"

namespace vrm::web {
namespace {

using http_client::httpRequest;
using http_client::HttpsReply;
using http_client::httpsRequest;
using http_client::TlsOptions;
namespace fs = std::filesystem;

const fs::path kData = fs::path(VRM_WEB_TEST_DATA);

std::string readFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A web server with TLS whose certificate files are copies in a directory of the test's own (so
// a test may replace them), serving a web root with index.html. No vrmd behind it: static files
// are all these tests ask for.
class WebTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("vrm-web-tls-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "www");
    std::ofstream(dir_ / "www" / "index.html") << "<html>calendar</html>";
    fs::copy_file(kData / "localhost.crt", cert());
    fs::copy_file(kData / "localhost.key", key());
  }
  void TearDown() override {
    if (web_) web_->stop();
    fs::remove_all(dir_);
  }

  fs::path cert() const { return dir_ / "web.crt"; }
  fs::path key() const { return dir_ / "web.key"; }

  WebServerOptions options() const {
    WebServerOptions w;
    w.port = 0;
    w.webRoot = (dir_ / "www").string();
    w.vrmdEndpoint = "inproc://vrm-web-tls-test";
    w.tlsCertFile = cert().string();
    w.tlsKeyFile = key().string();
    return w;
  }
  Status start(WebServerOptions w) {
    web_ = std::make_unique<WebServer>(ctx_, std::move(w));
    return web_->start();
  }
  HttpsReply getOverTls(const std::string& path, const fs::path& trusted, int maxVersion = 0) {
    TlsOptions tls;
    tls.trustedCertFile = trusted.string();
    tls.maxVersion = maxVersion;
    return httpsRequest(web_->port(),
                        "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                        tls);
  }

  zmq::context_t ctx_;
  fs::path dir_;
  std::unique_ptr<WebServer> web_;
};

// Ensures the port speaks HTTPS with the configured certificate, which a verifying client
// accepts for "localhost", and that every answer tells browsers to stay on HTTPS (HSTS).
TEST_F(WebTlsTest, ServesHttpsWithTheCertificateAndHsts) {
  ASSERT_TRUE(start(options()).isOk());
  EXPECT_EQ(web_->url().rfind("https://127.0.0.1:", 0), 0u) << web_->url();
  HttpsReply r = getOverTls("/", kData / "localhost.crt");
  ASSERT_TRUE(r.handshake) << r.handshakeError;
  EXPECT_EQ(r.http.status, 200);
  EXPECT_EQ(r.http.body, "<html>calendar</html>");
  EXPECT_NE(r.http.headers.find("Strict-Transport-Security: max-age=31536000"), std::string::npos)
      << r.http.headers;
  EXPECT_EQ(r.peerCertificatePem, readFile(kData / "localhost.crt"));
  // Errors over HTTPS carry it too.
  HttpsReply missing = getOverTls("/no-such-file", kData / "localhost.crt");
  ASSERT_TRUE(missing.handshake) << missing.handshakeError;
  EXPECT_EQ(missing.http.status, 404);
  EXPECT_NE(missing.http.headers.find("Strict-Transport-Security:"), std::string::npos);
  // A client that trusts another certificate refuses this one: the server is who it says.
  EXPECT_FALSE(getOverTls("/", kData / "localhost-renewed.crt").handshake);
}

// Ensures plain HTTP on the HTTPS port is sent to https:// (same host and target, method kept:
// 308), without HSTS (only meaningful over HTTPS), and a request without a usable Host is refused.
TEST_F(WebTlsTest, PlainHttpIsRedirectedToHttps) {
  ASSERT_TRUE(start(options()).isOk());
  const std::string host = "127.0.0.1:" + std::to_string(web_->port());
  auto r = httpRequest(web_->port(),
                       "GET /api/reservations?owner=lab HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
  EXPECT_EQ(r.status, 308) << r.headers;
  EXPECT_NE(r.headers.find("Location: https://" + host + "/api/reservations?owner=lab"),
            std::string::npos)
      << r.headers;
  EXPECT_NE(r.headers.find("Connection: close"), std::string::npos) << r.headers;
  EXPECT_EQ(r.headers.find("Strict-Transport-Security"), std::string::npos) << r.headers;

  auto noHost = httpRequest(web_->port(), "GET / HTTP/1.0\r\n\r\n");
  EXPECT_EQ(noHost.status, 400);
  EXPECT_NE(noHost.body.find("HTTPS only"), std::string::npos) << noHost.body;
  auto oddHost = httpRequest(web_->port(), "GET / HTTP/1.1\r\nHost: a b@evil\r\n\r\n");
  EXPECT_EQ(oddHost.status, 400) << oddHost.headers;
  // And the port still serves HTTPS afterwards.
  EXPECT_TRUE(getOverTls("/", kData / "localhost.crt").handshake);
}

// Ensures TLS 1.0 and 1.1 are refused by the server (the client offers them and nothing newer),
// while the same client offering up to TLS 1.2 is served.
TEST_F(WebTlsTest, OldTlsVersionsAreRefused) {
  ASSERT_TRUE(start(options()).isOk());
  EXPECT_FALSE(getOverTls("/", kData / "localhost.crt", TLS1_1_VERSION).handshake);
  EXPECT_FALSE(getOverTls("/", kData / "localhost.crt", TLS1_VERSION).handshake);
  HttpsReply tls12 = getOverTls("/", kData / "localhost.crt", TLS1_2_VERSION);
  ASSERT_TRUE(tls12.handshake) << tls12.handshakeError;
  EXPECT_EQ(tls12.http.status, 200);
}

// Ensures a certificate or key that cannot be used stops the start with an error naming the file,
// rather than a server that answers nothing.
TEST_F(WebTlsTest, UnusableCertificatesStopTheStart) {
  WebServerOptions missing = options();
  missing.tlsCertFile = (dir_ / "absent.crt").string();
  Status s = start(missing);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("absent.crt"), std::string::npos) << s.message();

  WebServerOptions mismatched = options();
  mismatched.tlsKeyFile = (kData / "localhost-renewed.key").string();
  s = start(mismatched);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("does not belong to the certificate"), std::string::npos)
      << s.message();

  std::ofstream(dir_ / "garbage.crt") << "not a certificate\n";
  WebServerOptions garbage = options();
  garbage.tlsCertFile = (dir_ / "garbage.crt").string();
  s = start(garbage);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("garbage.crt"), std::string::npos) << s.message();

  WebServerOptions keyOnly = options();
  keyOnly.tlsCertFile.clear();
  s = start(keyOnly);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("both"), std::string::npos) << s.message();
}

// Ensures a renewed certificate is served from the next connection after reloadTls() (vrmd's
// SIGHUP), and a broken file at the next reload keeps the renewed one in service.
TEST_F(WebTlsTest, ReloadServesARenewedCertificateAndKeepsItWhenTheNextFileIsBroken) {
  ASSERT_TRUE(start(options()).isOk());
  ASSERT_TRUE(getOverTls("/", kData / "localhost.crt").handshake);

  fs::copy_file(kData / "localhost-renewed.crt", cert(), fs::copy_options::overwrite_existing);
  fs::copy_file(kData / "localhost-renewed.key", key(), fs::copy_options::overwrite_existing);
  EXPECT_FALSE(getOverTls("/", kData / "localhost-renewed.crt").handshake)
      << "the files alone change nothing until the reload";
  ASSERT_TRUE(web_->reloadTls().isOk());
  HttpsReply renewed = getOverTls("/", kData / "localhost-renewed.crt");
  ASSERT_TRUE(renewed.handshake) << renewed.handshakeError;
  EXPECT_EQ(renewed.peerCertificatePem, readFile(kData / "localhost-renewed.crt"));

  std::ofstream(cert(), std::ios::trunc) << "truncated by a botched renewal\n";
  Status broken = web_->reloadTls();
  EXPECT_EQ(broken.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(broken.message().find(cert().string()), std::string::npos) << broken.message();
  EXPECT_TRUE(getOverTls("/", kData / "localhost-renewed.crt").handshake)
      << "the certificate served before the broken reload stays";
}

// Ensures a server without TLS says so when asked to reload a certificate, and serves plain HTTP.
TEST_F(WebTlsTest, PlainServerHasNoCertificateToReload) {
  WebServerOptions plain = options();
  plain.tlsCertFile.clear();
  plain.tlsKeyFile.clear();
  ASSERT_TRUE(start(plain).isOk());
  EXPECT_EQ(web_->url().rfind("http://", 0), 0u);
  EXPECT_EQ(web_->reloadTls().code(), StatusCode::kInvalidArgument);
  auto r =
      httpRequest(web_->port(), "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.find("Strict-Transport-Security"), std::string::npos);
}

}  // namespace
}  // namespace vrm::web

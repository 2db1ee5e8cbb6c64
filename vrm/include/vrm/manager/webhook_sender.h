// The HTTP half of webhook notifications (notifier.h is the other): POSTs the Notifier's
// WebhookPosts and reports how each fared, on threads of its own, so that vrmd's event loop
// never waits for an endpoint (down, slow, or answering errors).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "vrm/manager/notifier.h"

namespace vrm::manager {

// The plug point (tests fake it). Both calls are quick and safe from the event loop.
class WebhookSender {
 public:
  virtual ~WebhookSender() = default;
  // Queues a post; never waits for the network.
  virtual void send(WebhookPost post) = 0;
  // Outcomes of the posts finished since the last call, in the order they finished. Every post
  // sent gets exactly one outcome (a post the sender is destroyed with gets none).
  virtual std::vector<WebhookPostOutcome> takeOutcomes() = 0;
};

struct HttpWebhookSenderOptions {
  // Posts made at once: a slow endpoint holds one thread up to `timeout`, not the others.
  // Default 4.
  int threads = 4;
  // Whole exchange (resolve, connect, TLS handshake, request, answer) per attempt, real time.
  // Default 10 s.
  std::chrono::milliseconds timeout{10000};
  // https: the CA certificates (PEM file) to check endpoints' certificates against; empty
  // (default) = the system's (OpenSSL's default paths). Certificates are always checked, and
  // the host name too.
  std::string caFile;
};

// HTTP/1.1 (Boost.Beast; https through OpenSSL) from a pool of threads. Outcomes: delivered on
// 2xx; otherwise "HTTP 500", or the network's reason ("connection refused", "timed out after
// 10000 ms", "TLS: certificate verify failed"). Answers are read up to 64 KiB and discarded.
// The etcd client's transport (etcd/src/transport.h) is not reused: it is private to vrm_etcd,
// speaks plain HTTP to etcd members only, and runs while its caller waits.
class HttpWebhookSender final : public WebhookSender {
 public:
  // invalid-argument when caFile cannot be loaded.
  static Result<std::unique_ptr<HttpWebhookSender>> create(HttpWebhookSenderOptions options);
  // Stops the threads after the posts in progress end (each within `timeout`); queued posts
  // are dropped.
  ~HttpWebhookSender() override;

  void send(WebhookPost post) override;
  std::vector<WebhookPostOutcome> takeOutcomes() override;

 private:
  struct Tls;
  explicit HttpWebhookSender(HttpWebhookSenderOptions options, std::unique_ptr<Tls> tls);
  void work();
  WebhookPostOutcome post(const WebhookPost& p);

  HttpWebhookSenderOptions options_;
  std::unique_ptr<Tls> tls_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::deque<WebhookPost> queue_;
  std::vector<WebhookPostOutcome> outcomes_;
  std::vector<std::thread> threads_;
};

}  // namespace vrm::manager

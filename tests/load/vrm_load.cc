// vrm_load: many concurrent clients submitting reservations to a real vrmd over ZeroMQ.
//
//   vrm_load --clients tcp://127.0.0.1:17100 --threads 8 --window 4 --seconds 20
//
// Each thread is one client with its own DEALER socket, keeping --window requests in flight
// (a new submit as soon as a reply arrives). Requests are the generated booking mix
// (tests/scale/generated_cluster.h: 19 of 20 shared, 1 of 20 one-host dedicated), timed from
// send to reply. Prints one line of key=value figures: replies per second, admitted /
// rejected / errors, and client-observed latency p50 / p99 / max in ms.
//
//   vrm_load --clients ... --probe [--hosts-wanted N]
// Sends a cheap request every 5 ms from start until vrmd answers, and prints
// "serving_ms=..."; with --hosts-wanted, then polls the host list until that many hosts are
// registered and reachable ("hosts_ms=..."). Used to time a restart.
//
// With --curve-server KEY --curve-key FILE every socket is a CURVE client of vrmd (the pair in
// FILE listed as an admin `client` in vrmd's authorized file); without, vrmd must be --insecure.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "../scale/generated_cluster.h"
#include "vrm/protocol/codec.h"
#include "vrm/protocol/curve.h"
#include "vrm/protocol/wire_convert.h"

namespace {

using Clock = std::chrono::steady_clock;
using vrm::protocol::toWire;

zmq::message_t submitFrame(std::uint64_t requestId, const vrm::ReservationRequest& r) {
  capnp::MallocMessageBuilder b;
  auto req = b.initRoot<vrm::wire::ClientRequest>();
  req.setRequestId(requestId);
  req.setRequester(r.owner);
  toWire(r, req.initSubmit());
  return vrm::protocol::encodeFrame(b);
}

zmq::message_t getFrame(std::uint64_t requestId, bool hosts) {
  capnp::MallocMessageBuilder b;
  auto req = b.initRoot<vrm::wire::ClientRequest>();
  req.setRequestId(requestId);
  if (hosts) {
    req.setHosts();
  } else {
    req.setGet("r0");  // never exists: an answer (not-found) proves vrmd serves requests
  }
  return vrm::protocol::encodeFrame(b);
}

// The CURVE keys of every socket (--curve-server, --curve-key); none: insecure vrmd.
std::optional<vrm::protocol::CurveClientKeys> gCurve;

void connect(zmq::socket_t& s, const std::string& endpoint) {
  s.set(zmq::sockopt::linger, 0);
  if (gCurve) vrm::protocol::applyCurveClient(s, *gCurve);
  s.connect(endpoint);
}

struct Totals {
  std::mutex mu;
  std::vector<double> latencyMs;
  std::uint64_t admitted = 0, rejected = 0, errors = 0;
  std::string firstError;
};

// One client: --window submits in flight until `deadline`, then drains its replies.
void client(const std::string& endpoint, int thread, int window, Clock::time_point deadline,
            std::uint32_t firstRequest, std::uint32_t stride, zmq::context_t& ctx, Totals& totals) {
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  connect(s, endpoint);
  std::map<std::uint64_t, Clock::time_point> inFlight;
  std::vector<double> lat;
  std::uint64_t admitted = 0, rejected = 0, errors = 0, nextId = 1;
  std::string firstError;
  std::uint32_t n = firstRequest;
  // vrmd's clock is wall-clock time (no --time-scale in scale runs).
  const vrm::TimeNs now = vrm::SystemClock().now();
  auto sendOne = [&] {
    vrm::ReservationRequest r = vrm::scale::generatedRequest(n, now);
    n += stride;
    r.owner = "load" + std::to_string(thread);
    const std::uint64_t id = nextId++;
    inFlight[id] = Clock::now();
    s.send(submitFrame(id, r), zmq::send_flags::none);
  };
  while (static_cast<int>(inFlight.size()) < window) sendOne();
  while (!inFlight.empty()) {
    zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(30000));
    if (!(item.revents & ZMQ_POLLIN)) {
      errors += inFlight.size();  // no answer within 30 s: counted, not waited for
      if (firstError.empty()) firstError = "no reply within 30 s";
      break;
    }
    zmq::message_t msg;
    while (s.recv(msg, zmq::recv_flags::dontwait)) {
      const auto t = Clock::now();
      auto frame = vrm::protocol::decodeFrame(std::move(msg));
      if (!frame) {
        ++errors;
        continue;
      }
      auto reply = frame->root<vrm::wire::ClientReply>();
      if (!reply) {
        ++errors;
        continue;
      }
      auto it = inFlight.find(reply->getRequestId());
      if (it == inFlight.end()) continue;
      lat.push_back(std::chrono::duration<double, std::milli>(t - it->second).count());
      inFlight.erase(it);
      const vrm::Status status = vrm::protocol::fromWire(reply->getStatus());
      if (status.code() == vrm::StatusCode::kOk) {
        ++admitted;
      } else if (status.code() == vrm::StatusCode::kRejected) {
        ++rejected;
      } else {
        ++errors;
        if (firstError.empty()) firstError = status.toString();
      }
      if (t < deadline) sendOne();
    }
  }
  std::lock_guard<std::mutex> lock(totals.mu);
  totals.latencyMs.insert(totals.latencyMs.end(), lat.begin(), lat.end());
  totals.admitted += admitted;
  totals.rejected += rejected;
  totals.errors += errors;
  if (totals.firstError.empty()) totals.firstError = firstError;
}

// Sends `hosts ? HOSTS : GET r0` every 5 ms until a reply satisfies `done`.
template <typename Done>
void probe(zmq::context_t& ctx, const std::string& endpoint, bool hosts, Done done) {
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  connect(s, endpoint);
  std::uint64_t id = 0;
  while (true) {
    s.send(getFrame(++id, hosts), zmq::send_flags::none);
    zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(hosts ? 2000 : 5));
    zmq::message_t msg;
    while (s.recv(msg, zmq::recv_flags::dontwait)) {
      auto frame = vrm::protocol::decodeFrame(std::move(msg));
      if (!frame) continue;
      auto reply = frame->root<vrm::wire::ClientReply>();
      if (reply && reply->getRequestId() == id && done(*reply)) return;
    }
    if (hosts) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vrm_load - concurrent ZeroMQ clients submitting to vrmd"};
  std::string endpoint = "tcp://127.0.0.1:17100";
  int threads = 8, window = 4;
  double seconds = 10;
  std::uint32_t seed = 1000000;
  bool probeMode = false;
  std::size_t hostsWanted = 0;
  app.add_option("--clients", endpoint, "vrmd's client endpoint")->capture_default_str();
  app.add_option("--threads", threads, "concurrent clients (one DEALER each)")
      ->capture_default_str();
  app.add_option("--window", window, "requests in flight per client")->capture_default_str();
  app.add_option("--seconds", seconds, "how long to keep submitting")->capture_default_str();
  app.add_option("--seed", seed, "index of the first generated request")->capture_default_str();
  app.add_flag("--probe", probeMode, "time until vrmd answers (after a restart)");
  app.add_option("--hosts-wanted", hostsWanted, "--probe: then wait for this many reachable hosts");
  std::string curveServer, curveKey;
  app.add_option("--curve-server", curveServer,
                 "vrmd's CURVE public key (Z85 text or a .pub / .key file); needs --curve-key");
  app.add_option("--curve-key", curveKey, "this client's CURVE key pair file (vrmctl keygen)");
  CLI11_PARSE(app, argc, argv);
  if (curveServer.empty() != curveKey.empty()) {
    std::fprintf(stderr, "vrm_load: CURVE needs both --curve-server and --curve-key\n");
    return 2;
  }
  if (!curveServer.empty()) {
    auto server = vrm::protocol::resolvePublicKey(curveServer);
    auto own = vrm::protocol::loadCurveKeyPair(curveKey);
    if (!server || !own) {
      std::fprintf(stderr, "vrm_load: %s\n",
                   (!server ? server.status() : own.status()).toString().c_str());
      return 2;
    }
    gCurve = vrm::protocol::CurveClientKeys{*server, *own};
  }
  zmq::context_t ctx(2);

  if (probeMode) {
    const auto t0 = Clock::now();
    probe(ctx, endpoint, false, [](auto) { return true; });
    const double serving = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    std::printf("serving_ms=%.1f", serving);
    std::fflush(stdout);
    if (hostsWanted > 0) {
      probe(ctx, endpoint, true, [&](vrm::wire::ClientReply::Reader r) {
        if (!r.isHosts()) return false;
        std::size_t reachable = 0;
        for (auto h : r.getHosts()) reachable += h.getReachable();
        return reachable >= hostsWanted;
      });
      std::printf(" hosts_ms=%.1f",
                  std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    std::printf("\n");
    return 0;
  }

  Totals totals;
  const auto t0 = Clock::now();
  const auto deadline =
      t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back(client, endpoint, t, window, deadline, seed + static_cast<std::uint32_t>(t),
                      static_cast<std::uint32_t>(threads), std::ref(ctx), std::ref(totals));
  }
  for (auto& t : pool) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  auto& l = totals.latencyMs;
  std::sort(l.begin(), l.end());
  auto pct = [&](double q) {
    return l.empty() ? 0.0
                     : l[std::min(l.size() - 1,
                                  static_cast<std::size_t>(q * static_cast<double>(l.size())))];
  };
  std::printf(
      "replies=%zu seconds=%.2f per_s=%.1f admitted=%llu rejected=%llu errors=%llu "
      "p50_ms=%.2f p99_ms=%.2f max_ms=%.2f threads=%d window=%d\n",
      l.size(), elapsed, static_cast<double>(l.size()) / elapsed,
      static_cast<unsigned long long>(totals.admitted),
      static_cast<unsigned long long>(totals.rejected),
      static_cast<unsigned long long>(totals.errors), pct(0.5), pct(0.99),
      l.empty() ? 0.0 : l.back(), threads, window);
  if (!totals.firstError.empty())
    std::fprintf(stderr, "first error: %s\n", totals.firstError.c_str());
  return totals.errors == 0 ? 0 : 1;
}

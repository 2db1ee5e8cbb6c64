// vrm_week_driver: plays the week's workload (week_workload.h) against a running vrmd through
// the client library, at the simulated times the workload gives, on the same scaled clock as
// vrmd and the agents: submits and cancels bookings, loses agents (through vrm_week_agents'
// control socket) and kills vrmd (kill -9 of the pid in --vrmd-pid-file; the runner's
// supervisor starts it again on the same store). Actions aimed at a vacate happen at the
// booking's latest safe start plus their offset, the start read from vrmd as it comes near.
// When the last action is done it waits until every booking has ended, then writes every
// reservation as `vrmctl --json list` prints them (--out) and what it did (--log: each action's
// planned and actual time, outcomes, vrmd's down times).
//
//   vrm_week_driver --workload workload.json --vrmd tcp://127.0.0.1:17610
//       --control tcp://127.0.0.1:17615 --vrmd-pid-file vrmd.pid --time-scale 600
//       --clock-origin NS --out reservations.json --log driver.json
#include <signal.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>
#include <zmq.hpp>

#include "vrm/client/client.h"
#include "vrm/client/render.h"
#include "vrm/protocol/units.h"
#include "week_workload.h"

namespace {

using nlohmann::json;
using vrm::TimeNs;
using namespace std::chrono_literals;
namespace week = vrm::week;

struct Booking {
  std::string id;  // vrmd's, once submitted
  bool admitted = false;
  bool vacateFixed = false;  // vacating or later: the latest safe start no longer moves
  TimeNs lssNs = 0;
  TimeNs endNs = 0;
};

class Driver {
 public:
  Driver(week::Workload workload, vrm::client::ClientOptions client, std::string control,
         std::string pidFile, const vrm::Clock& clock)
      : workload_(std::move(workload)),
        client_(client),
        control_(context_, zmq::socket_type::req),
        pidFile_(std::move(pidFile)),
        clock_(clock) {
    control_.set(zmq::sockopt::linger, 0);
    control_.set(zmq::sockopt::rcvtimeo, 5000);
    control_.connect(control);
  }

  int run() {
    std::vector<bool> done(workload_.actions.size(), false);
    std::size_t left = done.size();
    auto lastRefresh = std::chrono::steady_clock::now() - 1s;
    TimeNs nextProgress = workload_.options.weekStartNs;
    while (left > 0) {
      const TimeNs now = clock_.now();
      if (now >= nextProgress) {
        progress(now);
        nextProgress += 6 * 3600 * vrm::kNsPerSec;
      }
      if (std::chrono::steady_clock::now() - lastRefresh > 100ms) {
        refreshAimed(done, now);
        lastRefresh = std::chrono::steady_clock::now();
      }
      TimeNs next = vrm::kTimeInfinity;
      for (std::size_t i = 0; i < done.size(); ++i) {
        if (done[i]) continue;
        const TimeNs due = dueAt(workload_.actions[i]);
        if (due <= now) {
          execute(workload_.actions[i], due);
          done[i] = true;
          --left;
        } else {
          next = std::min(next, due);
        }
      }
      std::this_thread::sleep_for(clock_.realDelayUntil(next, 20ms));
    }
    waitForTheEnd();
    return 0;
  }

  // Every reservation the workload made, as vrmd has it now.
  std::vector<vrm::Reservation> collect() {
    std::vector<vrm::Reservation> out;
    for (const auto& [label, b] : bookings_) {
      if (b.id.empty()) continue;
      for (int attempt = 0; attempt < 20; ++attempt) {
        auto r = client_.get(b.id);
        if (r) {
          out.push_back(*r);
          break;
        }
        std::this_thread::sleep_for(200ms);
      }
    }
    return out;
  }

  json log() const { return log_; }

 private:
  // When the action is due: aimed at an admitted booking's vacate, its latest safe start plus
  // the offset; otherwise its time (the fallback of an aimed one).
  TimeNs dueAt(const week::Action& a) const {
    if (!a.duringVacate) return a.atNs;
    auto it = bookings_.find(a.label);
    if (it == bookings_.end() || !it->second.admitted || it->second.lssNs == 0) {
      // Not submitted yet: wait for it (it is submitted before its fallback time).
      if (it == bookings_.end() && submittedLabels_.count(a.label) == 0) {
        return std::max(a.atNs, clock_.now() + vrm::kNsPerSec);
      }
      return a.atNs;
    }
    return it->second.lssNs + a.afterVacateStartNs;
  }

  // Keeps the latest safe start of the bookings that aimed actions wait for up to date (a
  // re-admission after an agent loss may move it) while it comes near.
  void refreshAimed(const std::vector<bool>& done, TimeNs now) {
    for (std::size_t i = 0; i < done.size(); ++i) {
      const auto& a = workload_.actions[i];
      if (done[i] || !a.duringVacate) continue;
      auto it = bookings_.find(a.label);
      if (it == bookings_.end() || !it->second.admitted || it->second.vacateFixed) continue;
      if (it->second.lssNs - now > 30 * 60 * vrm::kNsPerSec) continue;
      auto r = client_.get(it->second.id);
      if (!r) continue;
      remember(a.label, *r);
    }
  }

  void remember(const std::string& label, const vrm::Reservation& r) {
    Booking& b = bookings_[label];
    b.id = r.id;
    b.admitted = r.state != vrm::ReservationState::kRejected &&
                 r.state != vrm::ReservationState::kCancelled &&
                 r.state != vrm::ReservationState::kFailed;
    b.lssNs = r.plan.latestSafeStartNs;
    b.endNs = r.request.endNs;
    b.vacateFixed = r.state != vrm::ReservationState::kAdmitted;
  }

  void execute(const week::Action& a, TimeNs due) {
    const TimeNs at = clock_.now();
    json entry = {{"kind", week::actionKindName(a.kind)},
                  {"label", a.label},
                  {"due_ns", due},
                  {"at_ns", at},
                  {"late_s", vrm::nsToSeconds(at - due)}};
    switch (a.kind) {
      case week::ActionKind::kSubmit:
        submit(a, entry);
        break;
      case week::ActionKind::kCancel:
        cancel(a, entry);
        break;
      case week::ActionKind::kLoseAgent:
        loseAgent(a, entry);
        break;
      case week::ActionKind::kRestartVrmd:
        restartVrmd(entry);
        break;
    }
    log_["actions"].push_back(entry);
  }

  void submit(const week::Action& a, json& entry) {
    submittedLabels_.insert(a.label);
    for (int attempt = 0; attempt < 60; ++attempt) {
      const auto t0 = std::chrono::steady_clock::now();
      auto r = client_.submit(a.request);
      if (r) {
        entry["id"] = r->id;
        entry["state"] = vrm::stateName(r->state);
        entry["wall_ms"] =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count();
        if (r->state == vrm::ReservationState::kRejected) entry["reason"] = r->reason;
        remember(a.label, *r);
        return;
      }
      if (r.status().code() != vrm::StatusCode::kUnavailable) {
        entry["error"] = r.status().toString();
        return;
      }
      // vrmd did not answer (restarting?): it may have admitted the booking all the same.
      if (auto found = findByLabel(a.request.owner, a.label)) {
        entry["id"] = found->id;
        entry["state"] = vrm::stateName(found->state);
        entry["found_after_timeout"] = true;
        remember(a.label, *found);
        return;
      }
      std::this_thread::sleep_for(200ms);
    }
    entry["error"] = "vrmd did not answer";
  }

  std::optional<vrm::Reservation> findByLabel(const std::string& owner, const std::string& label) {
    vrm::ListFilter f;
    f.owner = owner;
    auto all = client_.list(f);
    if (!all) return std::nullopt;
    for (const auto& r : *all) {
      if (r.request.label == label) return r;
    }
    return std::nullopt;
  }

  void cancel(const week::Action& a, json& entry) {
    auto it = bookings_.find(a.label);
    if (it == bookings_.end() || it->second.id.empty()) {
      entry["skipped"] = "never submitted";
      return;
    }
    for (int attempt = 0; attempt < 60; ++attempt) {
      auto r = client_.cancel(it->second.id);
      if (r) {
        entry["state"] = vrm::stateName(r->state);
        remember(a.label, *r);
        return;
      }
      if (r.status().code() != vrm::StatusCode::kUnavailable) {
        entry["skipped"] = r.status().toString();  // e.g. already ended or rejected
        return;
      }
      std::this_thread::sleep_for(200ms);
    }
    entry["error"] = "vrmd did not answer";
  }

  void loseAgent(const week::Action& a, json& entry) {
    std::string host = a.host;
    if (host.empty()) {
      auto it = bookings_.find(a.label);
      if (it != bookings_.end() && !it->second.id.empty()) {
        if (auto r = client_.get(it->second.id); r && !r->hosts.empty()) {
          host = r->hosts.front();
          if (const auto moves = r->plannedMoves(); !moves.empty()) {
            host = a.role == "destination" ? moves.front().toHost : moves.front().fromHost;
          }
        }
      }
      // Not admitted: the fallback is a host of the workload's choosing.
      if (host.empty() && !workload_.options.hosts.empty()) {
        host = workload_.options
                   .hosts[std::hash<std::string>{}(a.label) % workload_.options.hosts.size()];
      }
    }
    entry["host"] = host;
    entry["duration_s"] = vrm::nsToSeconds(a.durationNs);
    const std::string request = "lose " + host + " " + std::to_string(a.durationNs);
    control_.send(zmq::buffer(request), zmq::send_flags::none);
    zmq::message_t reply;
    if (!control_.recv(reply)) {
      entry["error"] = "the agents did not answer";
      return;
    }
    entry["reply"] = reply.to_string();
  }

  void restartVrmd(json& entry) {
    std::ifstream in(pidFile_);
    long pid = 0;
    if (!(in >> pid) || pid <= 1) {
      entry["error"] = "no pid in " + pidFile_;
      return;
    }
    entry["pid"] = pid;
    const TimeNs killed = clock_.now();
    if (::kill(static_cast<pid_t>(pid), SIGKILL) != 0) {
      entry["error"] = "kill failed";
      return;
    }
    // Down until it answers again (the supervisor starts it on the same store).
    std::this_thread::sleep_for(50ms);
    for (int attempt = 0; attempt < 300; ++attempt) {
      if (client_.serverNow()) break;
      std::this_thread::sleep_for(100ms);
    }
    entry["down_s"] = vrm::nsToSeconds(clock_.now() - killed);
  }

  void progress(TimeNs now) {
    std::size_t admitted = 0;
    for (const auto& [label, b] : bookings_) admitted += b.admitted;
    std::printf(
        "day %.2f: %zu submitted, %zu admitted when submitted\n",
        static_cast<double>(now - workload_.options.weekStartNs) / (86400.0 * vrm::kNsPerSec),
        bookings_.size(), admitted);
    std::fflush(stdout);
  }

  // Waits (bounded) until every booking has ended: the last window plus an hour for teardowns.
  void waitForTheEnd() {
    TimeNs lastEnd = 0;
    for (const auto& a : workload_.actions) {
      if (a.kind == week::ActionKind::kSubmit) lastEnd = std::max(lastEnd, a.request.endNs);
    }
    const TimeNs deadline = lastEnd + 3600 * vrm::kNsPerSec;
    while (clock_.now() < deadline) {
      auto all = client_.list({});
      if (all && clock_.now() > lastEnd) {
        bool open = false;
        for (const auto& r : *all) open = open || !vrm::isTerminal(r.state);
        if (!open) break;
      }
      std::this_thread::sleep_for(500ms);
    }
    // Teardowns of cancelled and failed reservations (returns, destroys) finish within
    // minutes; give them some simulated time before the inventory is judged.
    const TimeNs settle = clock_.now() + 15 * 60 * vrm::kNsPerSec;
    while (clock_.now() < settle) std::this_thread::sleep_for(clock_.realDelayUntil(settle, 100ms));
    log_["ended_ns"] = clock_.now();
  }

  week::Workload workload_;
  zmq::context_t context_;
  vrm::client::Client client_;
  zmq::socket_t control_;
  std::string pidFile_;
  const vrm::Clock& clock_;
  std::map<std::string, Booking> bookings_;  // by label
  std::set<std::string> submittedLabels_;
  json log_ = {{"actions", json::array()}};
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vrm_week_driver - plays the week's workload against vrmd"};
  std::string workloadPath, vrmd = "tcp://127.0.0.1:17610", control = "tcp://127.0.0.1:17615";
  std::string pidFile, outPath = "reservations.json", logPath = "driver.json";
  double scale = 1;
  TimeNs origin = 0;
  int timeoutMs = 3000;
  app.add_option("--workload", workloadPath, "workload file (vrm_week_gen)")->required();
  app.add_option("--vrmd", vrmd, "vrmd's client endpoint")->capture_default_str();
  app.add_option("--control", control, "vrm_week_agents' control endpoint")->capture_default_str();
  app.add_option("--vrmd-pid-file", pidFile, "where the runner keeps vrmd's pid")->required();
  app.add_option("--time-scale", scale, "clock speed-up")->required();
  app.add_option("--clock-origin", origin, "ns where the scaled clock meets real time")->required();
  app.add_option("--out", outPath, "every reservation at the end (vrmctl --json list format)")
      ->capture_default_str();
  app.add_option("--log", logPath, "what the driver did (JSON)")->capture_default_str();
  app.add_option("--timeout-ms", timeoutMs, "per request to vrmd (real time)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  std::ifstream in(workloadPath);
  std::stringstream text;
  text << in.rdbuf();
  auto workload = week::parseWorkloadJson(text.str());
  if (!workload) {
    std::fprintf(stderr, "vrm_week_driver: %s: %s\n", workloadPath.c_str(),
                 workload.status().message().c_str());
    return 2;
  }
  vrm::ScaledClock clock(origin, scale);
  vrm::client::ClientOptions options;
  options.endpoint = vrmd;
  options.timeout = std::chrono::milliseconds(timeoutMs);
  options.requester = "";  // insecure vrmd: an operator, who may cancel any booking
  Driver driver(std::move(*workload), options, control, pidFile, clock);
  const int rc = driver.run();
  const auto all = driver.collect();
  std::ofstream(outPath) << vrm::client::reservationsJson(all) << "\n";
  std::ofstream(logPath) << driver.log().dump(1) << "\n";
  std::printf("driver: %zu reservations written to %s\n", all.size(), outPath.c_str());
  return rc;
}

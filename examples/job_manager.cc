// An example job manager built on the client library (vrm/client.h): it reserves a
// dedicated slot, waits until vrmd hands back the VMs, and "submits" its job to them — here it
// prints the commands it would run. Exit codes follow vrmctl's: 0 ok, 1 rejected or failed,
// 2 bad input, 3 vrmd unreachable.
//
//   job_manager --vrmd tcp://127.0.0.1:5555 --hosts 1 --start +30min --duration 2h \
//               --template bmi-decoder --job "./decode --session 42"
#include <CLI/CLI.hpp>
#include <iostream>

#include "vrm/client.h"
#include "vrm/protocol/curve.h"
#include "vrm/protocol/units.h"

namespace {

int exitCode(const vrm::Status& s) {
  switch (s.code()) {
    case vrm::StatusCode::kOk:
      return 0;
    case vrm::StatusCode::kInvalidArgument:
    case vrm::StatusCode::kNotFound:
      return 2;
    case vrm::StatusCode::kUnavailable:
      return 3;
    default:
      return 1;
  }
}

int fail(const vrm::Status& s) {
  std::cerr << "job_manager: " << s.toString() << "\n";
  return exitCode(s);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"example job manager: reserve a slot, wait for the VMs, run a job on them"};
  vrm::client::ClientOptions options;
  std::string serverKey, clientKey;
  std::uint32_t hosts = 1;
  std::string start = "+30min", duration = "2h", templateName, job = "./run-experiment";
  std::string waitFor = "10min";
  app.add_option("--vrmd", options.endpoint, "vrmd's client endpoint")->envname("VRM_ENDPOINT");
  app.add_option("--owner", options.requester,
                 "owner of the reservation (default: with keys, the name vrmd knows our key by; "
                 "else job-manager)")
      ->envname("VRM_OWNER");
  app.add_option("--server-key", serverKey, "vrmd's CURVE public key (Z85 or a file)")
      ->envname("VRM_SERVER_KEY");
  app.add_option("--client-key", clientKey, "our CURVE key pair file (vrmctl keygen NAME)")
      ->envname("VRM_CLIENT_KEY");
  app.add_option("--hosts", hosts, "dedicated hosts to reserve")->check(CLI::PositiveNumber);
  app.add_option("--start", start, "ISO 8601 or +DURATION (vrmd's clock)");
  app.add_option("--duration", duration, "length of the slot");
  app.add_option("--template", templateName, "VM template")->required();
  app.add_option("--job", job, "the command to run on every VM");
  app.add_option("--wait", waitFor, "how long (real time) to wait for the VMs");
  CLI11_PARSE(app, argc, argv);
  if (!serverKey.empty() || !clientKey.empty()) {
    auto server = vrm::protocol::resolvePublicKey(serverKey);
    if (!server) return fail(server.status());
    auto own = vrm::protocol::loadCurveKeyPair(clientKey);
    if (!own) return fail(own.status());
    options.serverPublicKey = *server;
    options.publicKey = own->publicKey;
    options.secretKey = own->secretKey;
  } else if (options.requester.empty()) {
    options.requester = "job-manager";
  }

  vrm::client::Client client(options);
  auto now = client.serverNow();
  if (!now) return fail(now.status());
  vrm::ReservationRequest request;
  request.owner = options.requester;
  request.hostCount = hosts;
  request.templateName = templateName;
  request.label = "job: " + job;
  auto startNs = vrm::client::parseTimeSpec(start, *now);
  if (!startNs) return fail(startNs.status());
  auto length = vrm::parseDurationNs(duration);
  if (!length) return fail(length.status());
  auto wait = vrm::parseDurationNs(waitFor);
  if (!wait) return fail(wait.status());
  request.startNs = *startNs;
  request.endNs = *startNs + *length;

  auto reservation = client.submit(request);
  if (!reservation) return fail(reservation.status());
  if (reservation->state == vrm::ReservationState::kRejected) {
    std::cerr << "job_manager: rejected: " << reservation->reason << "\n";
    return 1;
  }
  std::cout << reservation->id << " admitted; the vacate starts at "
            << vrm::formatTime(reservation->plan.latestSafeStartNs) << "\n";

  std::size_t shown = 0;
  auto ready =
      client.waitUntilReady(reservation->id, std::chrono::milliseconds(*wait / vrm::kNsPerMs),
                            [&](const vrm::Reservation& r) {
                              for (; shown < r.events.size(); ++shown) {
                                std::cout << "  " << vrm::formatTime(r.events[shown].timeNs) << "  "
                                          << r.events[shown].message << "\n";
                              }
                            });
  if (!ready) return fail(ready.status());
  std::cout << reservation->id << " is " << vrm::stateName(ready->state)
            << "; submitting the job:\n";
  for (const auto& c : ready->clones) {
    if (c.state != vrm::CloneState::kRunning) continue;
    std::cout << "  ssh " << c.account << "@" << c.address << " '" << job << "'   # on " << c.host
              << "\n";
  }
  return 0;
}

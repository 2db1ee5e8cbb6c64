// submit, show, list, cancel, watch.
#include <iostream>
#include <optional>
#include <thread>
#include <zmq.hpp>

#include "commands.h"
#include "vrm/client/render.h"
#include "vrm/client/request_parser.h"
#include "vrm/client/ssh_key_file.h"
#include "vrm/client/time_spec.h"
#include "vrm/protocol/units.h"

namespace vrm::vrmctl {
namespace {

struct SubmitArgs {
  client::RequestDraft draft;  // the flags as given; parsed by the same parser as the web API's
  bool dryRun = false;
  bool wait = false;
  std::string waitTimeout = "10min";
  std::string sshKeyFile;
};

int runSubmit(const Context& ctx, const SubmitArgs& a) {
  client::RequestDraft draft = a.draft;
  draft.owner = ctx.owner;
  draft.dryRun = a.dryRun ? "true" : "";
  if (!a.sshKeyFile.empty()) {
    auto key = client::readSshPublicKeyFile(a.sshKeyFile, "--ssh-key");
    if (!key) return ctx.fail(key.status());
    draft.sshPublicKey = *key;
  }
  client::Client client = ctx.makeClient();
  // Relative times are relative to vrmd's clock, which may run faster than ours.
  auto now = client.serverNow();
  if (!now) return ctx.fail(now.status());
  auto parsed = client::parseRequest(draft, *now);
  if (!parsed) return ctx.fail(Status::invalid(parsed.error().flagMessage()));
  const ReservationRequest& req = *parsed;
  auto r = client.submit(req);
  if (!r) return ctx.fail(r.status());
  if (r->state == ReservationState::kRejected) {
    if (ctx.json) {
      std::cout << client::reservationJson(*r) << "\n";
    } else {
      std::cout << client::reservationText(*r, client.serverNowNs());
    }
    std::cerr << "vrmctl: rejected: " << r->reason << "\n";
    return kExitRejected;
  }
  if (a.wait && !a.dryRun) {
    auto timeout = parseDurationNs(a.waitTimeout);
    if (!timeout) return ctx.fail(Status::invalid("--wait-timeout: " + timeout.status().message()));
    auto ready = client.waitUntilReady(r->id, std::chrono::milliseconds(*timeout / kNsPerMs));
    if (!ready) return ctx.fail(ready.status());
    r = std::move(ready);
  }
  if (ctx.json) {
    std::cout << client::reservationJson(*r) << "\n";
  } else {
    std::cout << client::reservationText(*r, client.serverNowNs());
  }
  return kExitOk;
}

std::string progressBar(const Reservation& r) {
  std::size_t done = 0;
  for (const auto& m : r.moves) {
    if (!m.isVacate()) continue;  // the vacate's progress
    done += m.progress.state == MoveState::kDone || m.progress.state == MoveState::kSkipped;
  }
  std::size_t clones = 0;
  for (const auto& c : r.clones) clones += c.state == CloneState::kRunning;
  const std::size_t vacateMoves = r.vacateMoveCount();
  const std::size_t total = vacateMoves + r.clones.size();
  const std::size_t finished = done + clones;
  const int width = 30;
  int filled = total ? static_cast<int>(width * finished / total) : width;
  return "[" + std::string(filled, '#') + std::string(width - filled, '.') + "] " +
         std::to_string(done) + "/" + std::to_string(vacateMoves) + " moves, " +
         std::to_string(clones) + "/" + std::to_string(r.clones.size()) + " clones";
}

int runWatch(const Context& ctx, const std::string& id, const std::string& until, int intervalMs,
             const std::string& timeoutText) {
  std::optional<ReservationState> stopAt;
  if (!until.empty()) {
    stopAt = stateFromName(until);
    if (!stopAt) return ctx.fail(Status::invalid("--until: unknown state '" + until + "'"));
  }
  auto timeout = parseDurationNs(timeoutText);
  if (!timeout) return ctx.fail(Status::invalid("--timeout: " + timeout.status().message()));
  client::Client client = ctx.makeClient();
  // With vrmd's event stream each notice wakes us to refresh at once; the refresh itself comes
  // from `get`, so a notice lost by PUB/SUB costs latency, never correctness.
  zmq::context_t zctx(1);
  std::optional<zmq::socket_t> sub;
  if (!ctx.eventsEndpoint.empty()) {
    sub.emplace(zctx, zmq::socket_type::sub);
    sub->set(zmq::sockopt::linger, 0);
    if (auto keys = ctx.curveKeys()) protocol::applyCurveClient(*sub, *keys);
    sub->set(zmq::sockopt::subscribe, id + "|");
    sub->connect(ctx.eventsEndpoint);
  }
  std::size_t printed = 0;
  std::string lastBar;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(*timeout);
  while (true) {
    auto r = client.get(id);
    if (!r) return ctx.fail(r.status());
    for (; printed < r->events.size(); ++printed) {
      const auto& e = r->events[printed];
      if (ctx.json) {
        std::cout << eventJsonLine(e) << "\n";
      } else {
        std::cout << formatTime(e.timeNs) << "  " << stateName(e.state) << "  " << e.message
                  << "\n";
      }
    }
    std::string bar = progressBar(*r);
    if (!ctx.json && bar != lastBar &&
        (r->state == ReservationState::kVacating || r->state == ReservationState::kPreparing)) {
      std::cout << "  " << bar << "\n";
      lastBar = bar;
    }
    std::cout.flush();
    const bool reached =
        stopAt && static_cast<int>(r->state) >= static_cast<int>(*stopAt) && !isTerminal(r->state);
    if (reached || isTerminal(r->state)) {
      if (r->state == ReservationState::kFailed || r->state == ReservationState::kRejected) {
        return kExitRejected;
      }
      if (stopAt && !reached && r->state != *stopAt) return kExitRejected;
      return kExitOk;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return ctx.fail(
          Status::unavailable("watch timed out in state " + std::string(stateName(r->state))));
    }
    if (sub) {
      zmq::pollitem_t item{sub->handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(std::max(intervalMs, 1000)));
      zmq::message_t drop;
      while (sub->recv(drop, zmq::recv_flags::dontwait)) {
      }
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(intervalMs));
    }
  }
}

}  // namespace

void addReservationCommands(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<SubmitArgs>();
  auto* submit = app.add_subcommand("submit", "ask for resources over a future window");
  client::RequestDraft& d = args->draft;
  submit->add_option("--hosts", d.hosts, "dedicated: number of hosts to vacate");
  submit->add_option("--host", d.hostNames, "dedicated: this host (repeatable)");
  submit->add_option("--vms", d.vms, "shared: number of VMs, no vacate");
  submit->add_option("--start", d.start, "ISO 8601 time, 'now' or +DURATION")->required();
  submit->add_option("--duration", d.duration, "length of the window (2h, 90min)");
  submit->add_option("--end", d.end, "end of the window instead of --duration");
  submit->add_option("--template", d.templateName, "VM template to clone")->required();
  submit->add_option("--vms-per-host", d.vmsPerHost, "clones per dedicated host");
  submit->add_option("--label", d.label, "free text shown in listings");
  submit->add_option("--ssh-key", args->sshKeyFile,
                     "your SSH public key file (.pub), put into the clones' account");
  submit->add_option("--objective", d.objective,
                     "dedicated: makespan (finish vacating soonest, default) or degradation "
                     "(gentlest on each moved VM)");
  submit->add_option("--max-vm-time", d.maxVmTime,
                     "degradation: bound on each VM's own migration time (e.g. 30s)");
  submit->add_option("--displaced", d.displaced,
                     "dedicated: where the VMs moved off the hosts go after the window: stay "
                     "(default) or return (migrate back home)");
  submit->add_flag("--dry-run", args->dryRun, "admission decision only; books nothing");
  submit->add_flag("--wait", args->wait, "wait until the reservation is ready");
  submit->add_option("--wait-timeout", args->waitTimeout, "with --wait (real time)")
      ->capture_default_str();
  submit->callback([&ctx, args] { ctx.exitCode = runSubmit(ctx, *args); });

  auto id = std::make_shared<std::string>();
  auto* show = app.add_subcommand("show", "a reservation: plan, handles, events");
  show->add_option("id", *id, "reservation id")->required();
  show->callback([&ctx, id] {
    client::Client client = ctx.makeClient();
    std::vector<WebhookDelivery> deliveries;
    auto r = client.get(*id, deliveries);
    if (!r) {
      ctx.exitCode = ctx.fail(r.status());
      return;
    }
    ctx.exitCode = ctx.print(client::reservationJson(*r, deliveries), [&] {
      return client::reservationText(*r, client.serverNowNs()) +
             client::webhookDeliveriesText(deliveries, client.serverNowNs());
    });
  });
  addOutputOptions(*show, ctx);

  auto cancelId = std::make_shared<std::string>();
  auto* cancel = app.add_subcommand("cancel", "cancel a reservation at any state");
  cancel->add_option("id", *cancelId, "reservation id")->required();
  cancel->callback([&ctx, cancelId] {
    client::Client client = ctx.makeClient();
    auto r = client.cancel(*cancelId);
    if (!r) {
      ctx.exitCode = ctx.fail(r.status());
      return;
    }
    std::cout << (ctx.json ? client::reservationJson(*r) + "\n"
                           : r->id + " " + stateName(r->state) + ": " + r->reason + "\n");
  });

  struct ListArgs {
    std::string owner, from, to;
    std::vector<std::string> states;
  };
  auto la = std::make_shared<ListArgs>();
  auto* list = app.add_subcommand("list", "reservations, filtered");
  list->add_option("--owner", la->owner, "only this owner's");
  list->add_option("--state", la->states, "only these states (repeatable)");
  list->add_option("--from", la->from, "overlapping the window from this time");
  list->add_option("--to", la->to, "... to this time");
  list->callback([&ctx, la] {
    ListFilter f;
    f.owner = la->owner;
    for (const auto& s : la->states) {
      auto st = stateFromName(s);
      if (!st) {
        ctx.exitCode = ctx.fail(Status::invalid("--state: unknown state '" + s + "'"));
        return;
      }
      f.states.push_back(*st);
    }
    client::Client client = ctx.makeClient();
    if (!la->from.empty() || !la->to.empty()) {
      auto now = client.serverNow();
      if (!now) {
        ctx.exitCode = ctx.fail(now.status());
        return;
      }
      for (auto [text, out] : {std::pair{&la->from, &f.fromNs}, std::pair{&la->to, &f.toNs}}) {
        if (text->empty()) continue;
        auto t = client::parseTimeSpec(*text, *now);
        if (!t) {
          ctx.exitCode = ctx.fail(t.status());
          return;
        }
        *out = *t;
      }
    }
    auto rs = client.list(f);
    if (!rs) {
      ctx.exitCode = ctx.fail(rs.status());
      return;
    }
    ctx.exitCode =
        ctx.print(client::reservationsJson(*rs), [&] { return client::reservationsTable(*rs); });
  });
  addOutputOptions(*list, ctx);

  struct WatchArgs {
    std::string id, until, timeout = "1h";
    int intervalMs = 100;
  };
  auto wa = std::make_shared<WatchArgs>();
  auto* watch = app.add_subcommand("watch", "follow a reservation's events as they happen");
  watch->add_option("id", wa->id, "reservation id")->required();
  watch->add_option("--until", wa->until, "stop once this state is reached (default: the end)");
  watch
      ->add_option("--interval-ms", wa->intervalMs,
                   "poll interval without --events (with it: the fallback is 1 s)")
      ->capture_default_str();
  watch->add_option("--timeout", wa->timeout, "give up after this long (real time)")
      ->capture_default_str();
  watch->callback(
      [&ctx, wa] { ctx.exitCode = runWatch(ctx, wa->id, wa->until, wa->intervalMs, wa->timeout); });
}

}  // namespace vrm::vrmctl

// hosts, vms.
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "vrm/client/render.h"

namespace vrm::vrmctl {

std::string eventJsonLine(const ReservationEvent& e) {
  return nlohmann::json{
      {"time", formatTime(e.timeNs)}, {"state", stateName(e.state)}, {"message", e.message}}
      .dump();
}

void addClusterCommands(CLI::App& app, Context& ctx) {
  auto* hosts = app.add_subcommand("hosts", "hosts, their capacity, use and agents' health");
  hosts->callback([&ctx] {
    client::Client client = ctx.makeClient();
    auto hs = client.hosts();
    if (!hs) {
      ctx.exitCode = ctx.fail(hs.status());
      return;
    }
    ctx.exitCode = ctx.print(client::hostsJson(*hs), [&]() -> Result<std::string> {
      auto vs = client.vms();
      if (!vs) return vs.status();
      return client::hostsTable(*hs, *vs, client.serverNowNs());
    });
  });
  addOutputOptions(*hosts, ctx);
  auto* vms = app.add_subcommand("vms", "every VM and where it runs");
  vms->callback([&ctx] {
    client::Client client = ctx.makeClient();
    auto vs = client.vms();
    if (!vs) {
      ctx.exitCode = ctx.fail(vs.status());
      return;
    }
    ctx.exitCode = ctx.print(client::vmsJson(*vs), [&] { return client::vmsTable(*vs); });
  });
  addOutputOptions(*vms, ctx);
}

}  // namespace vrm::vrmctl

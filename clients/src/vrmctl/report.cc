// report: how the cluster was used over a window (usage_report.h), from vrmd's list answer.
#include <iostream>

#include "commands.h"
#include "usage_report.h"
#include "vrm/client/time_spec.h"
#include "vrm/protocol/units.h"

namespace vrm::vrmctl {
namespace {

struct ReportArgs {
  std::string from, to, by;
  bool csv = false;
};

// The window [from, to) at `now`; invalid-argument naming the flag otherwise.
Result<std::pair<TimeNs, TimeNs>> windowOf(const ReportArgs& a, TimeNs now) {
  auto from = client::parseTimeSpec(a.from, now);
  if (!from) return Status::invalid("--from: " + from.status().message());
  auto to = client::parseTimeSpec(a.to, now);
  if (!to) return Status::invalid("--to: " + to.status().message());
  if (*to <= *from) {
    return Status::invalid("--to (" + formatTime(*to) + ") must be after --from (" +
                           formatTime(*from) + ")");
  }
  return std::pair{*from, *to};
}

int runReport(Context& ctx, const ReportArgs& a) {
  if (a.csv) {
    if (ctx.format != "text" && ctx.format != "csv") {
      return ctx.fail(Status::invalid("--csv contradicts -f " + ctx.format));
    }
    ctx.format = "csv";
  }
  auto by = reportGroupingFromName(a.by);
  if (!by) return ctx.fail(by.status());
  // Bad dates are bad input before vrmd is asked anything (relative ones are checked against
  // our clock here and taken from vrmd's below).
  if (auto checked = windowOf(a, SystemClock().now()); !checked) return ctx.fail(checked.status());
  client::Client client = ctx.makeClient();
  auto now = client.serverNow();
  if (!now) return ctx.fail(now.status());
  auto window = windowOf(a, *now);
  if (!window) return ctx.fail(window.status());
  const auto [fromNs, toNs] = *window;
  // Everything that ends after the window's start: a vacate that finished in the window may
  // belong to a reservation that starts after it.
  ListFilter filter;
  filter.fromNs = fromNs;
  auto listed = client.list(filter);
  if (!listed) return ctx.fail(listed.status());
  const UsageReport report = usageReport(*listed, fromNs, toNs, *by);
  return ctx.print(usageReportJson(report).dump(),
                   [&report]() -> Result<std::string> { return usageReportText(report); });
}

}  // namespace

void addReportCommand(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<ReportArgs>();
  auto* report = app.add_subcommand(
      "report",
      "usage over a window: reserved host-hours, states, vacate time, planned bytes and the\n"
      "vacates' prediction error, per owner or host (README: Usage report)");
  report->add_option("--from", args->from, "start of the window: ISO 8601, 'now' or -/+DURATION")
      ->required();
  report->add_option("--to", args->to, "end of the window (exclusive)")->required();
  report->add_option("--by", args->by, "one row per owner or host (project: not yet in vrm)");
  report->add_flag("--csv", args->csv, "CSV (same as -f csv)");
  addOutputOptions(*report, ctx);
  report->callback([&ctx, args] { ctx.exitCode = runReport(ctx, *args); });
}

}  // namespace vrm::vrmctl

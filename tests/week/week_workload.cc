#include "week_workload.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "week_rng.h"

namespace vrm::week {

namespace {

using nlohmann::json;

constexpr TimeNs kMinute = 60 * kNsPerSec;
constexpr TimeNs kHour = 60 * kMinute;
constexpr TimeNs kDay = 24 * kHour;

TimeNs dayStart(TimeNs t) { return t - ((t % kDay) + kDay) % kDay; }
double hourOfDay(TimeNs t) { return static_cast<double>(t - dayStart(t)) / kHour; }
// 0 = Monday (1970-01-01 was a Thursday).
int weekday(TimeNs t) { return static_cast<int>(((t / kDay) % 7 + 7 + 3) % 7); }
bool weekend(TimeNs t) { return weekday(t) >= 5; }
TimeNs roundUp(TimeNs t, TimeNs step) { return (t + step - 1) / step * step; }
TimeNs logUniform(Rng& rng, TimeNs lo, TimeNs hi) {
  return static_cast<TimeNs>(
      std::exp(rng.uniform(std::log(static_cast<double>(lo)), std::log(static_cast<double>(hi)))));
}

// A submission time within day `day0`: people book in working hours, some in the evening.
TimeNs submitTime(Rng& rng, TimeNs day0) {
  static const std::vector<double> kHourWeights = {
      0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.3, 1, 3, 3, 3, 3, 2, 3, 3, 3, 3, 2, 1, 1, 1, 0.5, 0.3, 0.2};
  const auto hour = static_cast<TimeNs>(rng.pick(kHourWeights));
  return day0 + hour * kHour + static_cast<TimeNs>(rng.uniform() * kHour);
}

// How many bookings on the day starting at `day0`: the weekday rate (a third at weekends),
// +-20%.
int countFor(Rng& rng, TimeNs day0, double perWeekday) {
  const double rate = perWeekday * (weekend(day0) ? 1.0 / 3 : 1.0) * rng.uniform(0.8, 1.2);
  return static_cast<int>(std::lround(rate));
}

// A submission of booking number `n` ("d0007" for prefix 'd'), labelled with its name.
Action submitAction(char prefix, int n, TimeNs at, std::string owner, std::string templateName,
                    TimeNs startNs, TimeNs endNs) {
  Action a;
  a.kind = ActionKind::kSubmit;
  a.atNs = at;
  char label[32];
  std::snprintf(label, sizeof label, "%c%04d", prefix, n);
  a.label = label;
  a.request.owner = std::move(owner);
  a.request.templateName = std::move(templateName);
  a.request.startNs = startNs;
  a.request.endNs = endNs;
  a.request.label = a.label;
  return a;
}

struct Booking {
  std::string label;
  TimeNs submitNs, startNs, endNs;
  bool dedicated;
};

}  // namespace

const char* actionKindName(ActionKind kind) {
  switch (kind) {
    case ActionKind::kSubmit:
      return "submit";
    case ActionKind::kCancel:
      return "cancel";
    case ActionKind::kLoseAgent:
      return "lose-agent";
    case ActionKind::kRestartVrmd:
      return "restart-vrmd";
  }
  return "?";
}

Workload generateWorkload(const WorkloadOptions& options) {
  Workload w;
  w.options = options;
  Rng root(options.seed * 0x9e3779b97f4a7c15ull + 5);
  Rng bookRng = root.fork(1), shareRng = root.fork(2), cancelRng = root.fork(3),
      faultRng = root.fork(4);
  // Unknown names are the caller's bug (vrm_week_gen checks them): read as the default.
  const auto named = objectiveFromName(options.objective);
  const Objective objective = named ? *named : Objective::kMakespan;
  const TimeNs week0 = options.weekStartNs;
  const TimeNs weekEnd = week0 + static_cast<TimeNs>(options.days) * kDay;
  const double scale = options.load * static_cast<double>(options.hosts.size()) / 100.0;
  std::vector<Booking> dedicated;
  std::vector<Action> actions;
  int nextDedicated = 1, nextShared = 1;

  // Dedicated bookings, from three days before the week (the backlog) to its end.
  for (TimeNs day0 = week0 - 3 * kDay; day0 < weekEnd; day0 += kDay) {
    const int n = countFor(bookRng, day0, options.dedicatedPerWeekday * scale);
    for (int k = 0; k < n; ++k) {
      const TimeNs submit = submitTime(bookRng, day0);
      TimeNs start = roundUp(submit + logUniform(bookRng, 30 * kMinute, 72 * kHour), 15 * kMinute);
      if (hourOfDay(start) < 7 || hourOfDay(start) >= 21) {
        // Sessions run in lab hours: the next morning's 07:00-20:00, on the quarter hour.
        TimeNs next = dayStart(start) + (hourOfDay(start) >= 21 ? kDay : 0) + 7 * kHour;
        start = next + bookRng.between(0, 13 * 4 - 1) * 15 * kMinute;
      }
      const std::size_t hostsIdx = bookRng.pick({45, 25, 15, 15});
      const TimeNs length = bookRng.between(4, 12) * 15 * kMinute;
      const bool goHome = bookRng.chance(0.95);
      const int lab = static_cast<int>(bookRng.between(1, 6));
      const TimeNs at = std::max(submit, week0);
      // Inside the week, with the 30-minute minimum lead kept for the backlog too.
      if (start < at + 30 * kMinute || start >= weekEnd) continue;
      Action a = submitAction('d', nextDedicated++, at, "lab" + std::to_string(lab), "bmi-decoder",
                              start, start + length);
      a.request.kind = ReservationKind::kDedicated;
      a.request.hostCount = static_cast<std::uint32_t>(hostsIdx + 1);
      a.request.objective = objective;
      a.request.displaced = goHome ? Displaced::kReturn : Displaced::kStay;
      dedicated.push_back({a.label, at, start, start + length, true});
      actions.push_back(std::move(a));
    }
  }
  // Shared bookings.
  for (TimeNs day0 = week0 - 2 * kDay; day0 < weekEnd; day0 += kDay) {
    const int n = countFor(shareRng, day0, options.sharedPerWeekday * scale);
    for (int k = 0; k < n; ++k) {
      const TimeNs submit = submitTime(shareRng, day0);
      const TimeNs start =
          roundUp(submit + logUniform(shareRng, 10 * kMinute, 48 * kHour), 5 * kMinute);
      const TimeNs length = roundUp(logUniform(shareRng, 2 * kHour, 24 * kHour), 15 * kMinute);
      const auto vms = static_cast<std::uint32_t>(shareRng.between(1, 8));
      const bool medium = shareRng.chance(0.4);
      const int team = static_cast<int>(shareRng.between(1, 4));
      const TimeNs at = std::max(submit, week0);
      if (start < at + 10 * kMinute || start >= weekEnd) continue;
      Action a = submitAction('s', nextShared++, at, "team" + std::to_string(team),
                              medium ? "medium" : "small", start,
                              std::min(start + length, weekEnd + 3 * kHour));
      a.request.kind = ReservationKind::kShared;
      a.request.vmCount = vms;
      // Shared bookings are cancelled before their start or during their window.
      if (shareRng.chance(0.10)) {
        Action c;
        c.kind = ActionKind::kCancel;
        c.label = a.label;
        c.atNs = shareRng.chance(0.5)
                     ? at + static_cast<TimeNs>(shareRng.uniform(0.1, 0.9) *
                                                static_cast<double>(start - at))
                     : start + static_cast<TimeNs>(shareRng.uniform(0.2, 0.8) *
                                                   static_cast<double>(a.request.endNs - start));
        actions.push_back(c);
      }
      actions.push_back(std::move(a));
    }
  }
  // Cancellations of dedicated bookings.
  for (const auto& b : dedicated) {
    const double u = cancelRng.uniform();
    Action c;
    c.kind = ActionKind::kCancel;
    c.label = b.label;
    if (u < 0.08) {  // plans change: before the vacate
      c.atNs = b.submitNs + static_cast<TimeNs>(cancelRng.uniform(0.05, 0.7) *
                                                static_cast<double>(b.startNs - b.submitNs));
    } else if (u < 0.11) {  // the session is called off while its hosts are being vacated
      c.duringVacate = true;
      c.afterVacateStartNs = cancelRng.between(3, 40) * kNsPerSec;
      c.atNs = b.startNs - 20 * kMinute;
    } else if (u < 0.14) {  // finished early: the window is released
      c.atNs = b.startNs + static_cast<TimeNs>(cancelRng.uniform(0.3, 0.8) *
                                               static_cast<double>(b.endNs - b.startNs));
    } else {
      continue;
    }
    actions.push_back(c);
  }
  // Bookings in lab hours of the middle days, to aim faults at.
  auto aimable = [&](double fromDay, double toDay) -> const Booking* {
    std::vector<const Booking*> in;
    for (const auto& b : dedicated) {
      const double d = static_cast<double>(b.startNs - week0) / kDay;
      if (d >= fromDay && d < toDay) in.push_back(&b);
    }
    if (in.empty()) return nullptr;
    return in[static_cast<std::size_t>(
        faultRng.between(0, static_cast<std::int64_t>(in.size()) - 1))];
  };
  const double lastDay = static_cast<double>(options.days);
  for (std::uint32_t k = 0; k < options.agentLosses && !options.hosts.empty(); ++k) {
    Action a;
    a.kind = ActionKind::kLoseAgent;
    const Booking* target = k % 2 == 1 ? aimable(0.3 * lastDay, 0.9 * lastDay) : nullptr;
    if (target) {
      a.label = target->label;
      a.duringVacate = true;
      a.role = k % 4 == 1 ? "source" : "destination";
      a.afterVacateStartNs = faultRng.between(2, 20) * kNsPerSec;
      a.durationNs = faultRng.between(5, 20) * kMinute;
      a.atNs = target->startNs - 20 * kMinute;
    } else {
      a.host = options.hosts[static_cast<std::size_t>(
          faultRng.between(0, static_cast<std::int64_t>(options.hosts.size()) - 1))];
      a.atNs = week0 + static_cast<TimeNs>(faultRng.uniform(0.1, 0.9) * lastDay * kDay);
      a.durationNs = faultRng.between(10, 90) * kMinute;
    }
    actions.push_back(a);
  }
  for (std::uint32_t k = 0; k < options.vrmdRestarts; ++k) {
    Action a;
    a.kind = ActionKind::kRestartVrmd;
    const Booking* target = k > 0 ? aimable(0.4 * lastDay, 0.8 * lastDay) : nullptr;
    if (target) {
      a.label = target->label;
      a.duringVacate = true;
      a.afterVacateStartNs = faultRng.between(3, 30) * kNsPerSec;
      a.atNs = target->startNs - 20 * kMinute;
    } else {
      // A quiet hour: 03:00-04:00 of a day in the first half.
      const auto day =
          static_cast<TimeNs>(faultRng.between(0, std::max<std::int64_t>(0, options.days / 2)));
      a.atNs = week0 + day * kDay + 3 * kHour + static_cast<TimeNs>(faultRng.uniform() * kHour);
    }
    actions.push_back(a);
  }
  std::stable_sort(actions.begin(), actions.end(),
                   [](const Action& a, const Action& b) { return a.atNs < b.atNs; });
  w.actions = std::move(actions);
  return w;
}

std::string workloadJson(const Workload& w) {
  json actions = json::array();
  for (const auto& a : w.actions) {
    json j = {{"kind", actionKindName(a.kind)}, {"at_ns", a.atNs}};
    if (!a.label.empty()) j["label"] = a.label;
    if (a.kind == ActionKind::kSubmit) {
      const auto& r = a.request;
      json q = {{"owner", r.owner},
                {"kind", r.kind == ReservationKind::kShared ? "shared" : "dedicated"},
                {"template", r.templateName},
                {"start_ns", r.startNs},
                {"end_ns", r.endNs}};
      if (r.kind == ReservationKind::kShared) {
        q["vms"] = r.vmCount;
      } else {
        q["hosts"] = r.hostCount;
        q["displaced"] = displacedName(r.displaced.value_or(Displaced::kStay));
        q["objective"] = objectiveName(r.objective);
      }
      j["request"] = q;
    }
    if (a.duringVacate) {
      j["during_vacate"] = true;
      j["after_vacate_start_ns"] = a.afterVacateStartNs;
    }
    if (!a.host.empty()) j["host"] = a.host;
    if (!a.role.empty()) j["role"] = a.role;
    if (a.durationNs) j["duration_ns"] = a.durationNs;
    actions.push_back(j);
  }
  json j = {{"seed", w.options.seed},
            {"week_start_ns", w.options.weekStartNs},
            {"week_start", formatTime(w.options.weekStartNs)},
            {"days", w.options.days},
            {"hosts", w.options.hosts},
            {"load", w.options.load},
            {"objective", w.options.objective},
            {"actions", actions}};
  return j.dump(1);
}

Result<Workload> parseWorkloadJson(const std::string& text) {
  try {
    const json j = json::parse(text);
    Workload w;
    w.options.seed = j.at("seed").get<std::uint64_t>();
    w.options.weekStartNs = j.at("week_start_ns").get<TimeNs>();
    w.options.days = j.at("days").get<std::uint32_t>();
    w.options.hosts = j.at("hosts").get<std::vector<std::string>>();
    w.options.load = j.value("load", 1.0);
    w.options.objective = j.value("objective", "");
    for (const auto& ja : j.at("actions")) {
      Action a;
      const std::string kind = ja.at("kind").get<std::string>();
      if (kind == "submit") {
        a.kind = ActionKind::kSubmit;
      } else if (kind == "cancel") {
        a.kind = ActionKind::kCancel;
      } else if (kind == "lose-agent") {
        a.kind = ActionKind::kLoseAgent;
      } else if (kind == "restart-vrmd") {
        a.kind = ActionKind::kRestartVrmd;
      } else {
        return Status::invalid("workload: unknown action kind '" + kind + "'");
      }
      a.atNs = ja.at("at_ns").get<TimeNs>();
      a.label = ja.value("label", "");
      if (a.kind == ActionKind::kSubmit) {
        const json& q = ja.at("request");
        auto& r = a.request;
        r.owner = q.at("owner").get<std::string>();
        r.kind = q.at("kind").get<std::string>() == "shared" ? ReservationKind::kShared
                                                             : ReservationKind::kDedicated;
        r.templateName = q.at("template").get<std::string>();
        r.startNs = q.at("start_ns").get<TimeNs>();
        r.endNs = q.at("end_ns").get<TimeNs>();
        r.vmCount = q.value("vms", 0u);
        r.hostCount = q.value("hosts", 0u);
        auto displaced = displacedFromName(q.value("displaced", ""));
        if (!displaced) return Status::invalid("workload: " + displaced.status().message());
        r.displaced = *displaced;
        auto objective = objectiveFromName(q.value("objective", ""));
        if (!objective) return Status::invalid("workload: " + objective.status().message());
        r.objective = *objective;
        r.label = a.label;
      }
      a.duringVacate = ja.value("during_vacate", false);
      a.afterVacateStartNs = ja.value("after_vacate_start_ns", TimeNs{0});
      a.host = ja.value("host", "");
      a.role = ja.value("role", "");
      a.durationNs = ja.value("duration_ns", TimeNs{0});
      w.actions.push_back(std::move(a));
    }
    return w;
  } catch (const json::exception& e) {
    return Status::invalid(std::string("workload: ") + e.what());
  }
}

}  // namespace vrm::week

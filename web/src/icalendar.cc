#include "icalendar.h"

#include <ctime>

#include "http_text.h"

namespace vrm::web::ical {

namespace {

// The length of the well-formed UTF-8 sequence at `s[i]` (RFC 3629: no overlong forms, no
// surrogates, nothing past U+10FFFF), or 0 when the bytes there are not one.
std::size_t utf8SequenceAt(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return n;
}

std::string plural(std::size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

std::string summaryOf(const Reservation& r) {
  std::string what = r.request.label;
  if (what.empty()) {
    const bool shared = r.request.kind == ReservationKind::kShared;
    const std::size_t hosts = r.hosts.empty() ? r.request.hostCount : r.hosts.size();
    what = r.request.templateName + " on " +
           (shared ? plural(r.request.vmCount, "VM", "VMs") : plural(hosts, "host", "hosts"));
  }
  return what + " (" + r.request.owner + ", " + r.id + ")";
}

std::string descriptionOf(const Reservation& r, const std::string& page) {
  const bool shared = r.request.kind == ReservationKind::kShared;
  std::string d = "State: " + std::string(stateName(r.state)) + "\n";
  d += "Owner: " + r.request.owner + "\n";
  d += "Kind: " +
       std::string(shared ? "shared, " + plural(r.request.vmCount, "VM", "VMs") : "dedicated") +
       "\n";
  d += "Hosts: " + (r.hosts.empty() ? std::string("(not placed)") : joined(r.hosts)) + "\n";
  d += "Template: " + r.request.templateName + "\n";
  if (!r.request.label.empty()) d += "Label: " + r.request.label + "\n";
  if (r.plan.latestSafeStartNs) {
    d += "Latest safe start: " + formatTime(r.plan.latestSafeStartNs) + "\n";
  }
  if (r.atRisk) d += "At risk: " + r.riskReason + "\n";
  if (!r.reason.empty()) d += "Reason: " + r.reason + "\n";
  d += "Page: " + page;
  return d;
}

}  // namespace

std::string escapeText(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (c == '\r' || c == '\n') {
      out += "\\n";
      i += (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ? 2 : 1;
      continue;
    }
    if (c == '\\' || c == ';' || c == ',') {
      out += '\\';
      out += c;
      ++i;
      continue;
    }
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7F) {
      ++i;  // CONTROL characters are not allowed in a TEXT value
      continue;
    }
    const std::size_t n = utf8SequenceAt(text, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD for a byte that starts no UTF-8 character
      ++i;
      continue;
    }
    out.append(text.substr(i, n));
    i += n;
  }
  return out;
}

std::string foldLine(std::string_view line) {
  constexpr std::size_t kMaxOctets = 75;
  std::string out;
  out.reserve(line.size() + line.size() / 70 * 3 + 2);
  std::size_t width = 0;  // octets on the current physical line
  for (std::size_t i = 0; i < line.size();) {
    std::size_t n = utf8SequenceAt(line, i);
    if (n == 0) n = 1;  // not UTF-8 (a caller's bug): keep the byte, fold anywhere
    if (width + n > kMaxOctets) {
      out += "\r\n ";
      width = 1;
    }
    out.append(line.substr(i, n));
    width += n;
    i += n;
  }
  out += "\r\n";
  return out;
}

std::string utcDateTime(TimeNs t, bool roundUp) {
  TimeNs seconds = t / kNsPerSec;
  const TimeNs fraction = t % kNsPerSec;
  if (fraction < 0) --seconds;
  if (roundUp && fraction > 0) ++seconds;
  const std::time_t tt = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

const char* eventStatus(const Reservation& r) {
  switch (r.state) {
    case ReservationState::kRequested:
      return "TENTATIVE";
    case ReservationState::kAdmitted:
    case ReservationState::kVacating:
    case ReservationState::kPreparing:
      return r.atRisk ? "TENTATIVE" : "CONFIRMED";
    case ReservationState::kReady:
    case ReservationState::kActive:
    case ReservationState::kEnding:
    case ReservationState::kDone:
      return "CONFIRMED";
    case ReservationState::kRejected:
    case ReservationState::kCancelled:
    case ReservationState::kFailed:
      return "CANCELLED";
  }
  return "TENTATIVE";
}

std::string calendar(const std::vector<Reservation>& reservations, const CalendarOptions& options) {
  std::string out;
  auto line = [&out](std::string_view name, std::string_view value) {
    out += foldLine(std::string(name) + ":" + std::string(value));
  };
  auto text = [&line](std::string_view name, std::string_view value) {
    line(name, escapeText(value));
  };
  line("BEGIN", "VCALENDAR");
  line("VERSION", "2.0");
  text("PRODID", "-//vrm//calendar feed " + options.version + "//EN");
  line("CALSCALE", "GREGORIAN");
  text("X-WR-CALNAME", options.name);
  // RFC 7986's refresh hint, and the older one some clients read instead.
  line("REFRESH-INTERVAL;VALUE=DURATION", "PT5M");
  line("X-PUBLISHED-TTL", "PT5M");
  for (const auto& r : reservations) {
    const std::string page = options.pageBase + "reservations/" + percentEncode(r.id);
    const TimeNs stamp = r.updatedNs ? r.updatedNs : (r.createdNs ? r.createdNs : options.nowNs);
    line("BEGIN", "VEVENT");
    // The id is vrmd's (letters, digits, '-', '_', '.'); escaped anyway, it is a TEXT value.
    text("UID", r.id + "@" + options.uidDomain);
    line("DTSTAMP", utcDateTime(stamp));
    if (r.createdNs) line("CREATED", utcDateTime(r.createdNs));
    line("LAST-MODIFIED", utcDateTime(stamp));
    line("DTSTART", utcDateTime(r.request.startNs));
    // A window shorter than a second still ends after it starts.
    std::string end = utcDateTime(r.request.endNs, true);
    if (end <= utcDateTime(r.request.startNs)) end = utcDateTime(r.request.startNs + kNsPerSec);
    line("DTEND", end);
    text("SUMMARY", summaryOf(r));
    if (!r.hosts.empty()) text("LOCATION", joined(r.hosts));
    line("STATUS", eventStatus(r));
    text("DESCRIPTION", descriptionOf(r, page));
    line("URL", page);
    line("END", "VEVENT");
  }
  line("END", "VCALENDAR");
  return out;
}

}  // namespace vrm::web::ical

#include "vrm/client/time_spec.h"

#include <cstdio>
#include <ctime>
#include <string>

#include "vrm/protocol/units.h"

namespace vrm::client {

Result<TimeNs> parseTimeSpec(std::string_view text, TimeNs now) {
  std::string s(text);
  while (!s.empty() && s.back() == ' ') s.pop_back();
  while (!s.empty() && s.front() == ' ') s.erase(0, 1);
  auto bad = [&] {
    return Status::invalid("'" + s +
                           "' is not a time: use ISO 8601 (2026-11-23T14:00:00Z), 'now', or "
                           "+DURATION (+2h, +30min)");
  };
  if (s.empty()) return bad();
  if (s == "now") return now;
  if (s[0] == '+') {
    auto d = parseDurationNs(s.substr(1));
    if (!d) return Status::invalid("'" + s + "': " + d.status().message());
    return now + *d;
  }
  int y, mo, d, h = 0, mi = 0;
  double sec = 0;
  char sep = 0;
  int consumed = 0;
  int n = std::sscanf(s.c_str(), "%4d-%2d-%2d%c%2d:%2d%n", &y, &mo, &d, &sep, &h, &mi, &consumed);
  if (n == 3 && s.size() == 10) {
    consumed = 10;
  } else if (n < 6 || (sep != 'T' && sep != ' ')) {
    return bad();
  }
  std::string rest = s.substr(static_cast<std::size_t>(consumed));
  if (!rest.empty() && rest[0] == ':') {
    int used = 0;
    if (std::sscanf(rest.c_str(), ":%lf%n", &sec, &used) != 1) return bad();
    rest = rest.substr(static_cast<std::size_t>(used));
  }
  long offsetSec = 0;
  if (rest == "Z" || rest.empty()) {
  } else if ((rest[0] == '+' || rest[0] == '-') && rest.size() == 6 && rest[3] == ':') {
    int oh, om;
    if (std::sscanf(rest.c_str() + 1, "%2d:%2d", &oh, &om) != 2) return bad();
    offsetSec = (rest[0] == '+' ? 1 : -1) * (oh * 3600L + om * 60L);
  } else {
    return bad();
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec < 0 || sec >= 61) {
    return bad();
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  std::time_t t = timegm(&tm);
  if (tm.tm_mday != d) return bad();  // normalised: e.g. February 30th
  return (static_cast<TimeNs>(t) - offsetSec) * kNsPerSec + static_cast<TimeNs>(sec * 1e9);
}

}  // namespace vrm::client

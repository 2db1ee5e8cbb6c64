#include "vrm/client/time_spec.h"

#include <cstdio>
#include <ctime>
#include <limits>
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
                           "+/-DURATION (+2h, +30min, -7d)");
  };
  if (s.empty()) return bad();
  if (s == "now") return now;
  if (s[0] == '+' || s[0] == '-') {
    auto d = parseDurationNs(s.substr(1));
    if (!d) return Status::invalid("'" + s + "': " + d.status().message());
    if (s[0] == '-') {
      if (*d > now) return Status::invalid("'" + s + "' is before 1970");
      return now - *d;
    }
    if (now > 0 && *d > kTimeInfinity - now) {  // the clock is read from vrmd: do not trust it
      return Status::invalid("'" + s + "' is beyond the last representable time");
    }
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
  // sscanf's %2d also reads "-1": a negative hour or minute is not ISO 8601.
  // !(0 <= sec < 61) rather than sec < 0 || sec >= 61: sscanf reads "nan" and "inf" as seconds.
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 ||
      !(sec >= 0 && sec < 61)) {
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
  // TimeNs covers 1677-09-21 to 2262-04-11; beyond, the nanoseconds would overflow.
  const TimeNs seconds = static_cast<TimeNs>(t) - offsetSec;
  if (seconds <= std::numeric_limits<TimeNs>::min() / kNsPerSec ||
      seconds >= kTimeInfinity / kNsPerSec - 61) {
    return Status::invalid("'" + s + "' is outside the years 1678 to 2261 that times can hold");
  }
  return seconds * kNsPerSec + static_cast<TimeNs>(sec * 1e9);
}

}  // namespace vrm::client

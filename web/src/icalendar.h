// Reservations as an RFC 5545 iCalendar object: the text of the calendar feeds
// (/calendar/OWNER.ics, /calendar/host/HOST.ics; calendar_feeds.h serves them). Pure functions of
// their arguments, thread-safe.
//
// Each reservation is one VEVENT:
//   UID          <id>@<uidDomain>: stable across fetches, so a calendar updates the event in place
//   DTSTAMP      when vrmd last changed the reservation (RFC 5545 3.8.7.2: a feed without METHOD
//                stamps the last revision), also LAST-MODIFIED; CREATED when it was booked
//   DTSTART/END  its window in UTC ("...Z"), whole seconds (the start rounded down, the end up)
//   SUMMARY      "<label, or template on N hosts / K VMs> (<owner>, <id>)"
//   LOCATION     its hosts, "node1, node2"
//   STATUS       eventStatus() below
//   DESCRIPTION  state, owner, kind, hosts, template, latest safe start, at-risk and reason lines
//   URL          <pageBase>reservations/<id>, the calendar's reservation page
// Content lines end in CRLF and are folded at 75 octets, never inside a UTF-8 character; TEXT
// values escape '\', ';', ',' and newlines, drop other control characters and replace bytes
// that are not UTF-8 by U+FFFD, so any owner or label text yields a valid object.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "vrm/protocol/reservation.h"
#include "vrm/protocol/time.h"

namespace vrm::web::ical {

// A TEXT value (RFC 5545 3.3.11): "\\" "\;" "\," for \ ; , and "\n" for a newline (LF, CRLF or
// a lone CR); other control characters (U+0000-U+001F but HTAB, U+007F) are dropped and
// malformed UTF-8 is replaced by U+FFFD.
std::string escapeText(std::string_view text);

// One content line (no line end) folded (RFC 5545 3.1): CRLF followed by a space before any
// octet that would make a line longer than 75 octets, never splitting a UTF-8 sequence; ends in
// CRLF. `line` must be valid UTF-8 (escapeText's output is).
std::string foldLine(std::string_view line);

// A UTC DATE-TIME, "20261203T161000Z" (seconds; `roundUp` rounds a fraction up, else down).
std::string utcDateTime(TimeNs t, bool roundUp = false);

// The VEVENT STATUS of a reservation:
//   requested                                      TENTATIVE  (not decided yet)
//   admitted, vacating, preparing                  CONFIRMED, or TENTATIVE while at risk (vrmd
//                                                  projects the vacate to miss its deadline)
//   ready, active, ending, done                    CONFIRMED  (the hosts were handed over)
//   rejected, cancelled, failed                    CANCELLED
const char* eventStatus(const Reservation& r);

struct CalendarOptions {
  std::string name;       // X-WR-CALNAME, e.g. "vrm: alice"
  std::string uidDomain;  // the UIDs' right-hand side, e.g. "vrm.lab.example"
  std::string pageBase;   // "https://vrm.lab.example:8443/": the reservation pages' base
  TimeNs nowNs = 0;       // stamps a reservation that has no update time
  std::string version;    // in PRODID
};

// The VCALENDAR of `reservations`, in the order given.
std::string calendar(const std::vector<Reservation>& reservations, const CalendarOptions& options);

}  // namespace vrm::web::ical

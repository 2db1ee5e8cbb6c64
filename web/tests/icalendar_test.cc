#include "icalendar.h"

#include <gtest/gtest.h>

#include <string>

namespace vrm::web::ical {
namespace {

// Physical lines of folded text, without their CRLF; a line that does not end in CRLF fails.
std::vector<std::string> physicalLines(const std::string& folded) {
  std::vector<std::string> lines;
  std::size_t at = 0;
  while (at < folded.size()) {
    const auto crlf = folded.find("\r\n", at);
    EXPECT_NE(crlf, std::string::npos) << "a line without CRLF: " << folded.substr(at);
    if (crlf == std::string::npos) break;
    lines.push_back(folded.substr(at, crlf - at));
    at = crlf + 2;
  }
  return lines;
}

// Whether `s` is well-formed UTF-8 (the decoder's check, written again the simple way).
bool isUtf8(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

// Ensures TEXT escaping covers RFC 5545's specials and newlines of every kind, drops control
// characters, keeps non-ASCII, and makes malformed UTF-8 well-formed.
TEST(ICalendarTest, EscapesTextAndRepairsItsEncoding) {
  EXPECT_EQ(escapeText("a,b;c\\d"), "a\\,b\\;c\\\\d");
  EXPECT_EQ(escapeText("one\ntwo\r\nthree\rfour"), "one\\ntwo\\nthree\\nfour");
  EXPECT_EQ(escapeText("tab\there"), "tab\there") << "HTAB is allowed in TEXT";
  EXPECT_EQ(escapeText(std::string("nul\0bell\a del\x7F", 14)), "nulbell del");
  EXPECT_EQ(escapeText("Zoë 研究 🧠"), "Zoë 研究 🧠");
  EXPECT_EQ(escapeText("bad \xFF byte"), "bad \xEF\xBF\xBD byte");
  EXPECT_EQ(escapeText("cut \xE7\xA0"), "cut \xEF\xBF\xBD\xEF\xBF\xBD") << "a truncated sequence";
  EXPECT_EQ(escapeText("overlong \xC0\xAF"), "overlong \xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(escapeText("surrogate \xED\xA0\x80"), "surrogate \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_TRUE(isUtf8(escapeText("\x80\xBF\xF5\xFE mixed \xC3")));
}

// Ensures folding keeps every physical line within 75 octets, never splits a UTF-8 character,
// and unfolds (CRLF + space removed) to the line it was given.
TEST(ICalendarTest, FoldsAt75OctetsOnCharacterBoundaries) {
  EXPECT_EQ(foldLine("SHORT:line"), "SHORT:line\r\n");
  const std::string exact = "X:" + std::string(73, 'a');  // 75 octets: not folded
  EXPECT_EQ(foldLine(exact), exact + "\r\n");
  EXPECT_EQ(physicalLines(foldLine(exact + "b")).size(), 2u);

  for (const std::string piece : {"a", "é", "研", "🧠", "a研é🧠"}) {
    for (std::size_t prefix = 0; prefix < 4; ++prefix) {
      std::string line = "DESCRIPTION:" + std::string(prefix, 'p');
      while (line.size() < 400) line += piece;
      const std::string folded = foldLine(line);
      std::string unfolded;
      const auto lines = physicalLines(folded);
      ASSERT_GT(lines.size(), 5u);
      for (std::size_t i = 0; i < lines.size(); ++i) {
        EXPECT_LE(lines[i].size(), 75u) << "line " << i << " of '" << piece << "'";
        EXPECT_TRUE(isUtf8(lines[i])) << "a fold split a character of '" << piece << "'";
        if (i > 0) {
          ASSERT_EQ(lines[i][0], ' ');
          unfolded += lines[i].substr(1);
        } else {
          unfolded += lines[i];
        }
      }
      EXPECT_EQ(unfolded, line);
      EXPECT_GE(lines[0].size(), 72u) << "lines are filled, not folded early";
    }
  }
}

// Ensures the VEVENT status follows the documented mapping from every reservation state.
TEST(ICalendarTest, StatusFollowsTheReservationState) {
  Reservation r;
  const std::pair<ReservationState, const char*> expected[] = {
      {ReservationState::kRequested, "TENTATIVE"}, {ReservationState::kAdmitted, "CONFIRMED"},
      {ReservationState::kVacating, "CONFIRMED"},  {ReservationState::kPreparing, "CONFIRMED"},
      {ReservationState::kReady, "CONFIRMED"},     {ReservationState::kActive, "CONFIRMED"},
      {ReservationState::kEnding, "CONFIRMED"},    {ReservationState::kDone, "CONFIRMED"},
      {ReservationState::kRejected, "CANCELLED"},  {ReservationState::kCancelled, "CANCELLED"},
      {ReservationState::kFailed, "CANCELLED"},
  };
  for (const auto& [state, status] : expected) {
    r.state = state;
    r.atRisk = false;
    EXPECT_STREQ(eventStatus(r), status) << stateName(state);
    r.atRisk = true;  // at risk matters only until the hosts are handed over
    const bool beforeReady = state == ReservationState::kAdmitted ||
                             state == ReservationState::kVacating ||
                             state == ReservationState::kPreparing;
    EXPECT_STREQ(eventStatus(r), beforeReady ? "TENTATIVE" : status) << stateName(state);
  }
}

// Ensures DATE-TIMEs are UTC with whole seconds, and a window shorter than its rounding still
// ends after it starts.
TEST(ICalendarTest, TimesAreUtcWholeSeconds) {
  const TimeNs t = 1'800'000'000 * kNsPerSec;  // 2027-01-15T08:00:00Z
  EXPECT_EQ(utcDateTime(t), "20270115T080000Z");
  EXPECT_EQ(utcDateTime(t + 1), "20270115T080000Z");
  EXPECT_EQ(utcDateTime(t + 1, true), "20270115T080001Z");
  EXPECT_EQ(utcDateTime(t, true), "20270115T080000Z");

  Reservation r;
  r.id = "r1";
  r.request.owner = "o";
  r.request.startNs = t + 100;
  r.request.endNs = t + 200;
  const std::string text = calendar({r}, {"n", "d.example", "http://h/", t, "0"});
  EXPECT_NE(text.find("DTSTART:20270115T080000Z\r\n"), std::string::npos) << text;
  EXPECT_NE(text.find("DTEND:20270115T080001Z\r\n"), std::string::npos) << text;
  EXPECT_NE(text.find("UID:r1@d.example\r\n"), std::string::npos) << text;
  EXPECT_NE(text.find("URL:http://h/reservations/r1\r\n"), std::string::npos) << text;
  EXPECT_NE(text.find("DTSTAMP:20270115T080000Z\r\n"), std::string::npos)
      << "no update time: stamped now";
}

}  // namespace
}  // namespace vrm::web::ical

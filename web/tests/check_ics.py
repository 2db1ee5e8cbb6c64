#!/usr/bin/python3
"""Checks a calendar feed with a real iCalendar parser (Debian's python3-icalendar).

Usage: check_ics.py FEED.ics EXPECTED.json

EXPECTED.json: {"calname": "...", "events": [{"uid", "summary", "status", "dtstart", "dtend"
(ISO 8601 UTC), "url", "location" (optional), "description" (the exact text, optional),
"description_has": [...] (optional)}], "folded": true|false (optional: some line must be or
must not be folded)}. The events must be exactly these, in any order.

Besides what the parser reads, checks the raw octets: UTF-8, every line ends in CRLF (no bare
CR or LF), no physical line longer than 75 octets (RFC 5545 3.1). Exits 0 when everything
holds, 1 with one line per finding otherwise.
"""
import datetime
import json
import sys

import icalendar


def main():
    raw = open(sys.argv[1], "rb").read()
    expected = json.load(open(sys.argv[2], encoding="utf-8"))
    findings = []

    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        findings.append(f"not UTF-8: {e}")
    if not raw.endswith(b"\r\n"):
        findings.append("the last line does not end in CRLF")
    lines = raw.split(b"\r\n")[:-1]
    folded = 0
    for n, line in enumerate(lines, 1):
        if b"\r" in line or b"\n" in line:
            findings.append(f"line {n}: a bare CR or LF")
        if len(line) > 75:
            findings.append(f"line {n}: {len(line)} octets (at most 75): {line[:40]!r}...")
        if line.startswith(b" "):
            folded += 1
            # A fold never splits a UTF-8 character: each physical line decodes on its own.
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            findings.append(f"line {n}: a fold splits a UTF-8 character")
    if "folded" in expected and bool(folded) != expected["folded"]:
        findings.append(f"{folded} folded lines; expected folding: {expected['folded']}")

    cal = icalendar.Calendar.from_ical(raw)
    if cal.name != "VCALENDAR":
        findings.append(f"top component {cal.name}")
    if str(cal.get("version")) != "2.0":
        findings.append(f"VERSION {cal.get('version')}")
    if not str(cal.get("prodid", "")):
        findings.append("no PRODID")
    if "calname" in expected and str(cal.get("x-wr-calname")) != expected["calname"]:
        findings.append(f"X-WR-CALNAME {str(cal.get('x-wr-calname'))!r}, "
                        f"expected {expected['calname']!r}")

    def utc(text):
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))

    events = {}
    for ev in cal.walk("VEVENT"):
        uid = str(ev.get("uid"))
        if uid in events:
            findings.append(f"UID {uid} twice")
        events[uid] = ev
        for prop in ("dtstamp", "dtstart", "dtend", "summary", "status", "url"):
            if ev.get(prop) is None:
                findings.append(f"{uid}: no {prop.upper()}")
    want = {e["uid"]: e for e in expected["events"]}
    if set(events) != set(want):
        findings.append(f"events {sorted(events)}, expected {sorted(want)}")
    for uid, e in want.items():
        ev = events.get(uid)
        if ev is None:
            continue
        for key in ("summary", "status", "url", "location"):
            if key in e and str(ev.get(key)) != e[key]:
                findings.append(f"{uid}: {key.upper()} {str(ev.get(key))!r}, expected {e[key]!r}")
        for key in ("dtstart", "dtend"):
            got = ev.get(key).dt
            if not isinstance(got, datetime.datetime) or got.utcoffset() != datetime.timedelta(0):
                findings.append(f"{uid}: {key.upper()} {got!r} is not a UTC date-time")
            elif got != utc(e[key]):
                findings.append(f"{uid}: {key.upper()} {got.isoformat()}, expected {e[key]}")
        stamp = ev.get("dtstamp").dt
        if not isinstance(stamp, datetime.datetime) or stamp.utcoffset() != datetime.timedelta(0):
            findings.append(f"{uid}: DTSTAMP {stamp!r} is not a UTC date-time")
        description = str(ev.get("description", ""))
        if "description" in e and description != e["description"]:
            findings.append(f"{uid}: DESCRIPTION {description!r}, expected {e['description']!r}")
        for part in e.get("description_has", []):
            if part not in description:
                findings.append(f"{uid}: DESCRIPTION {description!r} lacks {part!r}")

    for f in findings:
        print(f)
    print(f"{len(events)} events, {len(lines)} lines, {folded} folded, "
          f"{len(findings)} findings")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Ensures the manual pages the packages ship (packaging/man/) stay true to the programs.

For vrmd and vmschedd, the options the page defines (its .TP entries) are exactly those of the
built program's --help. For vrmctl, the page has a section per subcommand of `vrmctl --help`,
each defining exactly that subcommand's options (those it shares with vrmctl itself, -f, -c and
--json, are defined once under OPTIONS). Every page renders without a groff or man warning, and
its .TH names this version of vrm, as the packages' changelog does.

Usage: man_pages_test.py ROOT BUILD VERSION
"""
import os
import re
import subprocess
import sys

ROOT, BUILD, VERSION = sys.argv[1:4]
MAN = os.path.join(ROOT, "packaging", "man")
PROGRAMS = {
    "vrmd": os.path.join(BUILD, "vrm", "vrmd"),
    "vmschedd": os.path.join(BUILD, "vmscheduler", "vmschedd"),
    "vrmctl": os.path.join(BUILD, "clients", "vrmctl"),
}
failures = []


def check(ok, what):
    print(("ok: " if ok else "FAIL: ") + what)
    if not ok:
        failures.append(what)


def help_of(*argv):
    """(options, subcommands, option help lines) of a CLI11 --help."""
    out = subprocess.run([*argv, "--help"], capture_output=True, text=True, check=True).stdout
    options, subcommands, lines = set(), [], {}
    section = None
    for line in out.splitlines():
        if re.match(r"^[A-Z][a-z]+:$", line):
            section = line
            continue
        m = re.match(r"^  (\S+)(.*)$", line)
        if not m:
            continue
        if section == "Options:":
            names = [n for n in m.group(1).split(",") if n.startswith("-")]
            for n in names:
                if n not in ("-h", "--help"):
                    options.add(n)
                    lines[n] = line
        elif section == "Subcommands:":
            subcommands.append(m.group(1))
    return options, subcommands, lines


def roff_text(page):
    with open(os.path.join(MAN, page), encoding="utf-8") as f:
        return f.read().replace("\\-", "-")


def defined_options(roff):
    """The options .TP entries define: the first line after each .TP."""
    lines = roff.splitlines()
    found = set()
    for i, line in enumerate(lines):
        if line.strip() == ".TP" and i + 1 < len(lines):
            found.update(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", lines[i + 1]))
    return found - {"-h", "--help"}


def sections(roff, macro):
    """{first word of the heading: text} of each .SH or .SS."""
    parts = {}
    name = None
    for line in roff.splitlines():
        # A .SH ends both; a .SS ends only a .SS.
        if line.startswith(".SH ") or line.startswith(macro + " "):
            name = None
            if line.startswith(macro + " "):
                name = line.split()[1].strip('"')
                parts[name] = ""
            continue
        if name is not None:
            parts[name] += line + "\n"
    return parts


for page in sorted(os.listdir(MAN)):
    path = os.path.join(MAN, page)
    env = dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH="80")
    r = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", path],
                       capture_output=True, text=True, env=env)
    check(r.returncode == 0 and not r.stderr.strip(),
          f"{page} renders without warnings {r.stderr.strip()!r}")
    th = re.search(r'^\.TH \S+ \S+ \S+ "vrm ([^"]+)"', roff_text(page), re.M)
    check(th is not None and th.group(1) == VERSION, f"{page}'s .TH names vrm {VERSION}")

for daemon, page in (("vrmd", "vrmd.8"), ("vmschedd", "vmschedd.8")):
    options, _, _ = help_of(PROGRAMS[daemon])
    documented = defined_options(sections(roff_text(page), ".SH")["OPTIONS"])
    check(options - documented == set(), f"{page} defines every option of {daemon} "
          f"(missing: {sorted(options - documented)})")
    check(documented - options == set(), f"{page} defines only options of {daemon} "
          f"(not options: {sorted(documented - options)})")

roff = roff_text("vrmctl.1")
top_options, subcommands, top_lines = help_of(PROGRAMS["vrmctl"])
documented = defined_options(sections(roff, ".SH")["OPTIONS"])
check(top_options == documented,
      f"vrmctl.1's OPTIONS define vrmctl's (missing: {sorted(top_options - documented)}, "
      f"not options: {sorted(documented - top_options)})")
subsections = sections(roff, ".SS")
check(sorted(subsections) == sorted(subcommands),
      f"vrmctl.1 has a section per subcommand (page: {sorted(subsections)}, "
      f"vrmctl: {sorted(subcommands)})")
for sub in subcommands:
    options, _, lines = help_of(PROGRAMS["vrmctl"], sub)
    # An option with the same help line as vrmctl's own is the shared one, defined under OPTIONS.
    own = {o for o in options if lines[o] != top_lines.get(o)}
    documented = defined_options(subsections.get(sub, ""))
    check(own == documented, f"vrmctl.1's {sub} defines its options "
          f"(missing: {sorted(own - documented)}, not options: {sorted(documented - own)})")

# The packages' changelog (packaging/debian/changelog.in) is of this version.
with open(os.path.join(ROOT, "packaging", "debian", "changelog.in"), encoding="utf-8") as f:
    first = f.readline()
check(re.match(r"^@VRM_DEB_PACKAGE@ \(" + re.escape(VERSION) + r"\) ", first) is not None,
      f"the changelog's latest entry is version {VERSION} ({first.strip()})")

print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)

#!/usr/bin/env python3
"""Checks a Grafana dashboard (examples/grafana/vrm-dashboard.json) against what vrmd serves.

  check_dashboard.py DASHBOARD.json METRICS.txt

METRICS.txt is a real vrmd's /metrics page. Fails (exit 1, naming each problem) when the JSON is
not a dashboard Grafana can import (uid, title, schemaVersion, panels with ids, positions and
Prometheus targets on the ${datasource} variable), when a query names a metric vrmd does not
serve, or when vrmd serves a family no panel shows (a new metric must reach the dashboard).
"""
import json
import re
import sys

SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


def families(metrics_text):
    """Family name -> type, from the page's # TYPE lines."""
    out = {}
    for line in metrics_text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(None, 3)
            out[name] = kind.strip()
    return out


def family_of(name, types):
    if name in types:
        return name
    for family, kind in types.items():
        for suffix in SUFFIXES.get(kind, ()):
            if name == family + suffix:
                return family
    return None


def balanced(expr):
    pairs = {")": "(", "]": "[", "}": "{"}
    stack = []
    in_string = False
    for c in expr:
        if c == '"':
            in_string = not in_string
        elif in_string:
            continue
        elif c in "([{":
            stack.append(c)
        elif c in pairs:
            if not stack or stack.pop() != pairs[c]:
                return False
    return not stack and not in_string


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        dashboard = json.load(f)
    with open(sys.argv[2]) as f:
        types = families(f.read())
    problems = []
    for key in ("uid", "title", "schemaVersion", "panels"):
        if key not in dashboard:
            problems.append(f"dashboard has no {key}")
    variables = {v.get("name") for v in dashboard.get("templating", {}).get("list", [])}
    if "datasource" not in variables:
        problems.append("no ${datasource} variable to pick the Prometheus data source")
    shown = set()
    ids = set()
    for panel in dashboard.get("panels", []):
        title = panel.get("title", "?")
        if panel.get("id") in ids:
            problems.append(f"panel {title!r}: id {panel.get('id')} used twice")
        ids.add(panel.get("id"))
        for key in ("type", "gridPos", "targets"):
            if key not in panel:
                problems.append(f"panel {title!r} has no {key}")
        for target in panel.get("targets", []):
            expr = target.get("expr", "")
            if not expr or not target.get("refId"):
                problems.append(f"panel {title!r}: a target without expr or refId")
            if target.get("datasource", {}).get("uid") != "${datasource}":
                problems.append(f"panel {title!r}: a target not on the ${{datasource}} variable")
            if not balanced(expr):
                problems.append(f"panel {title!r}: unbalanced brackets in {expr!r}")
            for name in re.findall(r"\bvrm_[a-z0-9_]+", expr):
                family = family_of(name, types)
                if family is None:
                    problems.append(f"panel {title!r}: vrmd serves no metric {name}")
                else:
                    shown.add(family)
    for family in sorted(set(types) - shown):
        problems.append(f"no panel shows {family} ({types[family]})")
    for p in problems:
        print(f"check_dashboard: {p}", file=sys.stderr)
    if not problems:
        print(f"check_dashboard: ok: {len(dashboard['panels'])} panels, "
              f"{len(shown)} of {len(types)} families shown")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

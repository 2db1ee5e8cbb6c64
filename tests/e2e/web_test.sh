#!/usr/bin/env bash
# Ensures the web calendar works in a real browser: headless Debian chromium opens the page
# with ?book=..., whose script fills the booking form and submits it; the API then shows the
# reservation admitted, the timeline (a fresh page) shows its bar, the reservation page shows
# its plan, and a rejection through the form shows the earliest feasible start. The screenshot
# of the booking is kept as $VRM_BUILD_DIR/tests/artifacts/web-calendar.png. With keys on (lib.sh)
# the page books with the web token it gets in its URL's fragment (#token=...), changes without
# a token are refused (401), and a web user cannot cancel another's reservation (403) while the
# admin token can.
# Exits 77 (ctest: skipped) when chromium is not installed.
PORT=${PORT:-16855}
HTTP_PORT=${HTTP_PORT:-$((PORT + 2))}
SCALE=${SCALE:-60}  # slow enough that a reservation 3 h ahead stays admitted during the test
source "$(dirname "$0")/lib.sh"

chromium_bin=$(command -v chromium || command -v chromium-browser || true)
if [[ -z $chromium_bin ]]; then
  echo "chromium is not installed (scripts/install-deps.sh installs it): skipped"
  exit 77
fi
artifacts=$build/tests/artifacts
mkdir -p "$artifacts"
web=http://127.0.0.1:$HTTP_PORT

start_cluster

expect_exit 0 "vrmd serves the calendar page" -- curl -fsS "$web/"
expect_output "reservation calendar" "it is the calendar"
expect_exit 0 "and its script" -- curl -fsS "$web/app.js"

# 1. Book through the form (the page fills it from the URL and clicks "Book").
book="$web/?book=1&kind=hosts&count=1&start=%2B3h&duration=1h&template=small&objective=makespan"
book+="&label=web-e2e#token=$WEB_TOKEN"
rm -f "$artifacts/web-calendar.png"
expect_exit 0 "chromium books through the form and takes a screenshot" -- \
  browser book --screenshot="$artifacts/web-calendar.png" "$book"
expect_exit 0 "the screenshot exists" -- test -s "$artifacts/web-calendar.png"

# 2. The API shows the booking admitted (JSON keys are sorted: "state" follows "start_ns").
expect_exit 0 "the API lists the web's reservation" -- curl -fsS "$web/api/reservations?owner=web"
expect_output '"label":"web-e2e"' "with the form's label"
expect_output '"start_ns":[0-9]+,"state":"admitted"' "admitted"
id=$(grep -o '"id":"[^"]*"' "$work/out" | head -n 1 | cut -d'"' -f4)
expect_exit 0 "vrmctl agrees" -- vrmctl show "$id"
expect_output "^$id +admitted +owner web" "same reservation, same state"

# 3. A fresh page shows it on the timeline, with its vacate window.
expect_exit 0 "chromium renders the timeline" -- browser timeline --dump-dom "$web/?show=$id"
expect_output "class=\"bar res state-admitted[^\"]*\" data-id=\"$id\"" "the timeline shows $id admitted"
expect_output "class=\"vacate\" data-id=\"$id\"" "and its vacate window"
expect_output 'data-host="node3"' "hosts are rows"

# 4. The reservation page shows its plan and events.
expect_exit 0 "chromium renders the reservation page" -- browser page --dump-dom "$web/reservations/$id"
expect_output "Vacate plan" "plan table"
expect_output "latest safe start" "latest safe start"
expect_output "Cancel reservation" "can be cancelled"

# 5. A start too soon is rejected through the form, with the earliest feasible start.
reject="$web/?book=1&kind=hosts&count=1&start=%2B20s&duration=1h&template=small#token=$WEB_TOKEN"
expect_exit 0 "chromium submits an infeasible request" -- browser reject --dump-dom "$reject"
expect_output 'data-state="rejected"' "the page shows the rejection"
expect_output 'id="earliest-feasible-start"' "and the earliest feasible start"

# 6. /metrics and bad input.
expect_exit 0 "metrics" -- curl -fsS "$web/metrics"
expect_output '^vrm_reservations\{state="admitted"\} 1$' "one admitted reservation"
expect_output '^vrm_admissions_total\{via="web",decision="rejected"\} 1$' "one rejection through the web"
curl -fsS "$web/metrics" >"$work/metrics.txt"
expect_exit 0 "the Grafana dashboard shows every family vrmd serves, and only those" -- \
  python3 "$root/tests/e2e/check_dashboard.py" "$root/examples/grafana/vrm-dashboard.json" \
  "$work/metrics.txt"
jq '.panels[0].targets[0].expr = "sum(vrm_no_such_metric)"' \
  "$root/examples/grafana/vrm-dashboard.json" >"$work/bad-dashboard.json"
expect_exit 1 "and the check fails a query of a metric vrmd does not serve" -- \
  python3 "$root/tests/e2e/check_dashboard.py" "$work/bad-dashboard.json" "$work/metrics.txt"
expect_output "serves no metric vrm_no_such_metric" "naming it"
expect_exit 0 "path traversal is refused" -- \
  curl -sS --path-as-is -o /dev/null -w '%{http_code}\n' "$web/../../etc/passwd"
expect_output "^404$" "404"
expect_exit 0 "malformed JSON is refused" -- \
  curl -sS -w '\n%{http_code}\n' -X POST -H 'Content-Type: application/json' \
  -H "Authorization: Bearer $WEB_TOKEN" --data '{"hosts": 1,' "$web/api/reservations"
expect_output "^400$" "400"
expect_output '"error":"invalid-argument"' "as a JSON error"
expect_exit 0 "vrmd still serves" -- curl -fsS "$web/api/now"

# 7. Who may change what (keys on).
if [[ -z $INSECURE ]]; then
  expect_exit 0 "booking without a token is refused" -- \
    curl -sS -w '\n%{http_code}\n' -X POST -H 'Content-Type: application/json' \
    --data '{"hosts": 1, "start": "+4h", "duration": "1h", "template": "small"}' \
    "$web/api/reservations"
  expect_output "^401$" "401"
  expect_exit 0 "an unknown token is refused" -- \
    curl -sS -w '\n%{http_code}\n' -X POST -H "Authorization: Bearer not-a-known-token-at-all" \
    "$web/api/reservations/$id/cancel"
  expect_output "^401$" "401"
  expect_exit 0 "vrmctl's user books" -- vrmctl submit --hosts 1 --start +4h --duration 1h --template small
  theirs=$(head -n 1 "$work/out" | awk '{print $1}')
  expect_exit 0 "the web user cannot cancel vrmctl's reservation" -- \
    curl -sS -w '\n%{http_code}\n' -X POST -H "Authorization: Bearer $WEB_TOKEN" \
    "$web/api/reservations/$theirs/cancel"
  expect_output "^403$" "403"
  expect_exit 0 "the web admin can" -- \
    curl -fsS -X POST -H "Authorization: Bearer $WEB_ADMIN_TOKEN" "$web/api/reservations/$theirs/cancel"
  expect_output '"state":"cancelled"' "cancelled"
fi

echo "screenshot: $artifacts/web-calendar.png"
finish

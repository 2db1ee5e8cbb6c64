#!/usr/bin/env bash
# Ensures vrmd's webhooks against a real receiver (Python's http.server, started here on an
# OS-chosen port): an endpoint answering 500 twice then 200 gets each event of a reservation
# exactly once answered 2xx, validly signed; a down endpoint never holds up the reservation and
# shows as failing in `vrmctl show`; a URL that is not http(s) stops vrmd at start naming it
# (README "Notifications").
PORT=${PORT:-17700}
source "$(dirname "$0")/lib.sh"

# A bad file: exit 2, the file, line and field named, before anything is bound.
printf '# test\nowner tester ftp://h/x s3cret all\n' >"$work/bad-webhooks"
expect_exit 2 "a webhook URL that is not http(s) stops vrmd" -- \
  "$build/vrm/vrmd" --cluster "$CLUSTER" --insecure --http off --store "$work/bad.db" \
  --clients "$CLIENTS" --agents "$AGENTS" --webhooks "$work/bad-webhooks"
expect_output "bad-webhooks:2: url 'ftp://h/x' is not http:// or https://" "names the line and the url"

# The receiver: statuses 500, 500, then 200 for every later POST; each request logged as JSON.
python3 - "$work" <<'PY' >"$work/receiver.log" 2>&1 &
import hashlib, hmac, http.server, json, sys
work = sys.argv[1]
answers = [500, 500]
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = answers.pop(0) if answers else 200
        good = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        with open(work + "/posts.jsonl", "a") as f:
            f.write(json.dumps({"status": status, "body": json.loads(body),
                                "signed": hmac.compare_digest(good, self.headers["X-Vrm-Signature"]),
                                "delivery": self.headers["X-Vrm-Delivery"]}) + "\n")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
with open(work + "/receiver.port.tmp", "w") as f:
    f.write(str(server.server_port))
import os; os.rename(work + "/receiver.port.tmp", work + "/receiver.port")
server.serve_forever()
PY
receiver_pid=$!
trap 'kill $receiver_pid 2>/dev/null || true; cleanup' EXIT
for _ in $(seq 1 100); do [[ -e $work/receiver.port ]] && break; sleep 0.1; done
rport=$(cat "$work/receiver.port")
down_port=$((PORT + 9))  # nothing listens there
cat >"$work/webhooks" <<EOT
owner tester http://127.0.0.1:$rport/hook?token=t1 s3cret admitted,ready,before-end=5m,ended
owner tester http://127.0.0.1:$down_port/down other admitted
EOT
VRMD_EXTRA="--webhooks $work/webhooks" start_cluster

# 20 min from now for 10 min: at 600x, a few real seconds in all.
expect_exit 0 "submit" -- vrmctl submit --vms 1 --start +20m --duration 10m --template small
id=$(grep -oE 'r[0-9]+' "$work/out" | head -n 1)
wait_state "$id" done 60

# Every event in, once with 200 (the receiver's log is complete once ended's 200 is there).
for _ in $(seq 1 100); do
  grep -q '"status": 200.*"kind": "ended"' "$work/posts.jsonl" 2>/dev/null && break
  sleep 0.1
done
checks=$((checks + 1))
if python3 - "$work/posts.jsonl" "$id" <<'PY'
import collections, json, sys
posts = [json.loads(l) for l in open(sys.argv[1])]
rid = sys.argv[2]
assert all(p["signed"] for p in posts), "a bad signature"
assert all(p["body"]["reservation"] == rid for p in posts)
ok = collections.Counter(p["body"]["kind"] for p in posts if p["status"] == 200)
assert ok == {"admitted": 1, "ready": 1, "before-end": 1, "ended": 1}, ok
first = [p for p in posts if p["body"]["kind"] == "admitted"]
assert [p["status"] for p in first] == [500, 500, 200], first
assert len({p["delivery"] for p in first}) == 1, "the retries changed the id"
ready = [p for p in posts if p["body"]["kind"] == "ready"][0]["body"]
assert ready["handles"], "ready without handles"
PY
then echo "ok: admitted (after 500, 500), ready with handles, before-end and ended, each once, signed"
else failures=$((failures + 1)); echo "FAIL: the receiver's posts:" >&2; cat "$work/posts.jsonl" >&2; fi

expect_exit 0 "show" -- vrmctl show "$id"
expect_output "webhook   http://127.0.0.1:$rport/hook: delivered \\(4 events, 6 attempts\\)" \
  "show: the receiver's webhook delivered, without its query string"
expect_output "webhook   http://127.0.0.1:$down_port/down: failing \\(0 of 1 delivered\\); admitted: failing, [0-9]+ attempts, last error: connecting: Connection refused" \
  "show: the down webhook failing, with its reason"
expect_exit 0 "show --json" -- vrmctl --json show "$id"
expect_output '"state": "delivered"' "json: deliveries listed"
finish

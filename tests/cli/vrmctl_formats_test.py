#!/usr/bin/env python3
"""Ensures every vrmctl output format (-f json|yaml|table|value|csv, -c COLUMN) of list, show,
hosts and vms is read back by a real parser (Python's json, csv and PyYAML) with the same data
as --json, against a real vrmd and three sim agents on loopback. vrmd's ports are OS-chosen and
learnt from its READY=1 STATUS on a $NOTIFY_SOCKET this test binds, as systemd would."""
import csv
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

build = os.environ["VRM_BUILD_DIR"]
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
cluster = os.path.join(root, "examples", "cluster.yaml")
try:
    import yaml
except ImportError:
    print("skip: no PyYAML (python3-yaml)")
    sys.exit(77)

passed = failed = 0


def check(what, cond):
    global passed, failed
    if cond:
        passed += 1
        print("ok:", what)
    else:
        failed += 1
        print("FAIL:", what)


work = tempfile.mkdtemp(prefix="vrm-formats-")
notify_path = os.path.join(work, "notify")
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.bind(notify_path)
notify.settimeout(60)  # bound of every wait: a daemon not ready by then has failed
procs = []


def start(args, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    log = open(os.path.join(work, os.path.basename(args[0]) + str(len(procs)) + ".log"), "w")
    p = subprocess.Popen(args, env=env, stdout=log, stderr=log)
    procs.append(p)
    return p


def ready_status(sock):
    while True:
        d = sock.recv(4096).decode()
        if d.startswith("READY=1"):
            words = d.split("STATUS=", 1)[1].split()
            return dict(w.split("=", 1) for w in words if "=" in w)


try:
    start([build + "/vrm/vrmd", "--cluster", cluster, "--store", work + "/vrm.db", "--insecure",
           "--clients", "tcp://127.0.0.1:*", "--agents", "tcp://127.0.0.1:*", "--events", "off",
           "--http", "off", "--time-scale", "600"], {"NOTIFY_SOCKET": notify_path})
    status = ready_status(notify)
    os.environ["VRM_ENDPOINT"] = status["clients"]
    for host in ["node1", "node2", "node3"]:
        start([build + "/vmscheduler/vmschedd", "--host", host, "--cluster", cluster, "--vrmd",
               status["agents"], "--backend", "sim", "--time-scale", "600"])

    def vrmctl(*args):
        r = subprocess.run([build + "/clients/vrmctl", *args], capture_output=True, text=True,
                           timeout=60)
        return r.returncode, r.stdout, r.stderr

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rc, out, _ = vrmctl("--json", "hosts")
        if rc == 0 and sum(h["reachable"] for h in json.loads(out)) == 3:
            break
        time.sleep(0.1)  # waiting for registration, bounded; no result depends on it
    rc, out, err = vrmctl("submit", "--hosts", "1", "--start", "+30min", "--duration", "2h",
                          "--template", "bmi-decoder", "--label", 'BMI, "closed" loop')
    check("submit: " + (out + err).strip(), rc == 0)
    rid = out.split()[0]

    for command in (["list"], ["show", rid], ["hosts"], ["vms"]):
        name = command[0]
        # Heartbeat times move between two calls: left out of the comparisons.
        volatile = {"last_heartbeat"}

        def stable(data):
            if isinstance(data, dict):
                return {k: v for k, v in data.items() if k not in volatile}
            return [stable(d) for d in data]

        rc, out, _ = vrmctl(*command, "--json")
        reference = stable(json.loads(out))
        rows = [reference] if isinstance(reference, dict) else reference
        check(f"{name}: --json has rows", rc == 0 and len(rows) > 0)
        rc, out, _ = vrmctl(*command, "-f", "json")
        check(f"{name} -f json == --json", stable(json.loads(out)) == reference)
        rc, out, _ = vrmctl(*command, "-f", "yaml")
        check(f"{name} -f yaml parses to the same data", stable(yaml.safe_load(out)) == reference)
        columns = list(rows[0].keys())[:3]
        cargs = [a for c in columns for a in ("-c", c)]
        rc, out, _ = vrmctl(*command, "-f", "csv", *cargs)
        parsed = list(csv.DictReader(io.StringIO(out, newline="")))

        def cell(v):
            if v is None:
                return ""
            return v if isinstance(v, str) else json.dumps(v, separators=(",", ":"), ensure_ascii=False)

        expected = [{c: cell(r.get(c)) for c in columns} for r in rows]
        check(f"{name} -f csv {columns} parses to the same cells", parsed == expected)
        rc, out, _ = vrmctl(*command, "-f", "value", "-c", columns[0])
        values = out.split("\n")[:-1]
        check(f"{name} -f value -c {columns[0]}", values == [cell(r[columns[0]]) for r in rows])
        rc, out, _ = vrmctl(*command, "-f", "table", *cargs)
        lines = out.splitlines()
        head = lines[0].split()
        check(f"{name} -f table has its header",
              head == (["Field", "Value"] if isinstance(reference, dict) else columns))
        rc, out, err = vrmctl(*command, "-f", "csv", "-c", "colour")
        check(f"{name} -c colour is bad input naming it", rc == 2 and "'colour'" in err)

    rc, out, _ = vrmctl("list", "-f", "yaml", "-c", "label")
    check("yaml keeps a label with a comma and quotes",
          yaml.safe_load(out) == [{"label": 'BMI, "closed" loop'}])
    rc, out, err = vrmctl("-f", "yaml", "cancel", rid)
    check("-f yaml on a command without formats is bad input", rc == 2 and "cancel" in err)
    rc, out, _ = vrmctl("--json", "list")
    check("--json before the command still works", rc == 0 and json.loads(out)[0]["id"] == rid)
finally:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
    if failed:
        for f in os.listdir(work):
            if f.endswith(".log"):
                print("---", f, open(os.path.join(work, f)).read()[-2000:])
    subprocess.run(["rm", "-rf", work])

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)

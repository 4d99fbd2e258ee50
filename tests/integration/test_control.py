"""The control plane over the real socket: every gwctl command against a running gwd, protocol
errors, privilege levels, and reloads that never drop a request."""
import grp
import json
import os
import re
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest
from collections import Counter

from harness import (Backend, Conn, Gateway, GatewayTest, backend_closed, backend_requests, control,
                     count_lines, gwctl, release, request, wait_until, GWCTL, GWD)

SPEC = """
version = 1
[upstreams.pool]
endpoints = ["{a}", "{b}"]
[upstreams.slow]
endpoints = ["{a}"]
[[routes]]
name = "slow"
prefix = "/delay"
upstream = "slow"
timeout = "10s"
[[routes]]
name = "all"
prefix = "/"
upstream = "pool"
{extra}
"""


def spec_text(backends, extra=""):
    return SPEC.format(a=backends["a"].address, b=backends["b"].address, extra=extra)


class ControlTest(GatewayTest):
    BACKENDS = ("a", "b")
    WORKERS = 2

    @classmethod
    def setUpClass(cls):
        cls.SPEC = SPEC.replace("{extra}", "")
        super().setUpClass()

    def ctl(self, *args, **kw):
        return gwctl(*args, socket_path=self.gw.control, **kw)

    def write_spec(self, name, extra=""):
        return self.write(name, spec_text(self.backends, extra))

    def compile(self, spec_path, out):
        r = gwctl("compile", spec_path, "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        return out

    def generation(self):
        return control(self.gw.control, "show info")["result"]["table"]["generation"]


class Views(ControlTest):
    def test_status_routes_upstreams_stats_and_help(self):
        for _ in range(3):
            self.assertEqual(self.request(path="/echo").status, 200)
        r = self.ctl("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"127.0.0.1:{self.gw.port}", r.stdout)
        self.assertIn("generation 1", r.stdout)
        r = self.ctl("routes")
        self.assertIn("slow", r.stdout)
        self.assertIn("prefix /delay", r.stdout)
        r = self.ctl("upstreams", "--json")
        ups = {u["name"]: u for u in json.loads(r.stdout)["upstreams"]}
        self.assertEqual(len(ups["pool"]["endpoints"]), 2)
        # Counted when logged, just after the response: wait for the third rather than race it.
        wait_until(lambda: control(self.gw.control, "show stats")["result"]["routes"]["all"]["requests"] >= 3,
                   timeout=5, what="3 requests counted")
        r = self.ctl("stats", "--json")
        stats = json.loads(r.stdout)
        self.assertGreaterEqual(stats["routes"]["all"]["requests"], 3)
        self.assertGreaterEqual(stats["routes"]["all"]["status"]["2xx"], 3)
        self.assertGreater(stats["routes"]["all"]["latency_us"]["p99"], 0)
        self.assertIn("REQUESTS", self.ctl("stats").stdout)
        help_ = control(self.gw.control, "help")["result"]
        names = {c["command"]: c["level"] for c in help_}
        self.assertEqual(names["reload"], "admin")
        self.assertEqual(names["show stats"], "read")

    def test_explain_live(self):
        r = self.ctl("explain", "--live", "GET", "/delay/5")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('route "slow"', r.stdout)
        self.assertIn("live, generation", r.stdout)
        r = self.ctl("explain", "--live", "--json", "GET", "/x")
        self.assertEqual(json.loads(r.stdout)["route"]["name"], "all")
        # Bad input gets the answer it gets offline: a target gwd refuses is a failed check (1),
        # an unreadable URL a usage error (2).
        r = self.ctl("explain", "--live", "GET", "/a/%2e%2e/%2e%2e/etc")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("rejected before routing (400 Bad Request)", r.stderr)
        r = self.ctl("explain", "--live", "GET", "pets")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("not a URL", r.stderr)
        # The socket command reads requests the same way.
        resp = control(self.gw.control, "explain", {"url": "/a/%2e%2e/%2e%2e/etc"})
        self.assertEqual(resp["error"]["code"], "bad_request", resp)
        resp = control(self.gw.control, "explain",
                       {"url": "http://other.test/delay/1", "headers": {"Host": "example.test"}})
        self.assertEqual(resp["result"]["route"]["name"], "slow", resp)

    def test_unreachable_socket_exit_code(self):
        r = gwctl("status", socket_path=os.path.join(self.tmp.name, "nobody-here.sock"))
        self.assertEqual(r.returncode, 3)
        self.assertIn("is gwd running?", r.stderr)


class Protocol(ControlTest):
    def raw_lines(self, payload, reads=1, timeout=5):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(timeout)
            s.connect(self.gw.control)
            s.sendall(payload)
            buf = b""
            while buf.count(b"\n") < reads:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            return [json.loads(l) for l in buf.split(b"\n") if l.strip()]

    def test_bad_requests_get_structured_errors_and_the_session_goes_on(self):
        replies = self.raw_lines(b'{nope\n[1,2]\n{"v":2,"id":3,"cmd":"ping"}\n{"id":4,"cmd":"shwo info"}\n'
                                 b'{"v":1,"id":5,"cmd":"ping"}\n', reads=5)
        self.assertEqual([r["error"]["code"] for r in replies[:4]],
                         ["bad_json", "bad_json", "unsupported_version", "unknown_command"])
        self.assertIn('did you mean "show info"', replies[3]["error"]["message"])
        self.assertEqual(replies[3]["id"], 4)
        self.assertTrue(replies[4]["ok"])

    def test_oversized_line_is_refused(self):
        replies = self.raw_lines(b'{"cmd":"ping","pad":"' + b"x" * (1 << 20) + b'"}\n')
        self.assertEqual(replies[0]["error"]["code"], "line_too_long")

    def test_a_silent_client_does_not_disturb_traffic(self):
        with socket.socket(socket.AF_UNIX) as idle:
            idle.connect(self.gw.control)
            idle.sendall(b'{"cmd":"pi')  # half a request, never finished
            for _ in range(20):
                self.assertEqual(self.request(path="/echo").status, 200)
            self.assertTrue(control(self.gw.control, "ping")["ok"])

    def test_a_second_gwd_does_not_take_over_the_socket(self):
        # Started directly, not through `gwctl start`, which would refuse before gwd runs.
        r = subprocess.run([GWD, "--table", self.gw.table_path, "--listen", "127.0.0.1:0",
                            "--workers", "1", "--control", self.gw.control],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"another gwd is already running on {self.gw.control}", r.stderr)
        self.assertEqual(control(self.gw.control, "ping")["result"]["pid"], self.gw.pid)

    def test_check_does_not_publish(self):
        table = self.compile(self.write_spec("other.toml", 'timeout = "9s"'), os.path.join(self.tmp.name, "other.gwrt"))
        before = self.generation()
        r = control(self.gw.control, "check", {"path": table})
        self.assertTrue(r["ok"], r)
        self.assertFalse(r["result"]["unchanged"])
        self.assertEqual(self.generation(), before)


class Permissions(ControlTest):
    GWD_ARGS = ("--control-group", "nogroup")
    CONTROL = "run/gw.sock"  # a directory gwd creates for the group

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        os.chmod(cls.tmp.name, 0o711)  # the test's own directory: nobody may pass through it

    def test_read_only_peer(self):
        nobody = (65534, 65534)
        st = os.stat(self.gw.control)
        self.assertEqual(st.st_mode & 0o777, 0o660)
        self.assertEqual(st.st_gid, 65534)
        st = os.stat(os.path.dirname(self.gw.control))
        self.assertEqual(st.st_mode & 0o777, 0o750)
        self.assertEqual(st.st_gid, 65534)
        r = self.ctl("status", user=nobody)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("generation", r.stdout)
        r = self.ctl("reload", user=nobody)
        self.assertEqual(r.returncode, 4, r.stdout + r.stderr)
        self.assertIn("permission_denied", r.stderr)
        r = self.ctl("endpoint", "set", "pool", self.backends["a"].address, "drain", user=nobody)
        self.assertEqual(r.returncode, 4)
        r = self.ctl("stop", user=nobody)
        self.assertEqual(r.returncode, 4)
        self.assertTrue(self.gw.alive())


class Reloads(ControlTest):
    def test_reload_spec_table_identical_and_rollback(self):
        g0 = self.generation()
        r = self.ctl("reload")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("unchanged", r.stdout)
        self.assertEqual(self.generation(), g0)
        spec = self.write_spec("v2.toml", '[[routes]]\nname = "extra"\npath = "/extra"\nupstream = "slow"\n')
        r = self.ctl("reload", spec)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"generation {g0} -> {g0 + 1}", r.stdout)
        self.assertIn("2 -> 3 routes", r.stdout)
        self.assertEqual(self.request(path="/extra").json()["backend"], "a")
        # A dry run checks a different spec without touching the daemon's table file.
        served = control(self.gw.control, "show info")["result"]["table_path"]
        with open(served, "rb") as f:
            served_bytes = f.read()
        v3 = self.write_spec("v3.toml", '[[routes]]\nname = "v3"\npath = "/v3"\nupstream = "slow"\n')
        for args in (("--dry-run", "--json", v3), ("--dry-run", v3)):
            with self.subTest(args=args):
                r = self.ctl("reload", *args)
                self.assertEqual(r.returncode, 0, r.stderr)
                if "--json" in args:
                    res = json.loads(r.stdout)
                    self.assertEqual((res["routes"], res["unchanged"], res["path"]), (3, False, served))
                else:
                    self.assertIn(f"would reload {served}: sha256 ", r.stdout)
                    self.assertIn(", 3 routes\n", r.stdout)
                with open(served, "rb") as f:
                    self.assertEqual(f.read(), served_bytes)
                self.assertFalse(os.path.exists(served + ".next"))
                self.assertEqual(self.generation(), g0 + 1)
        r = self.ctl("reload", "--dry-run", "--json")  # the daemon's own file: unchanged
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(json.loads(r.stdout)["unchanged"])
        r = self.ctl("rollback")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.generation(), g0 + 2)
        self.assertEqual(control(self.gw.control, "show routes")["result"]["routes"].__len__(), 2)
        table = self.compile(spec, os.path.join(self.tmp.name, "v2.gwrt"))
        r = self.ctl("reload", table, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        res = json.loads(r.stdout)
        self.assertEqual(res["routes"], 3)
        self.assertEqual(res["generation"], res["previous_generation"] + 1)
        self.assertEqual(res["workers"], self.WORKERS)  # every worker acknowledged
        self.assertEqual(res["path"], table)
        self.assertEqual(self.generation(), res["generation"])

    def test_invalid_spec_is_refused_before_gwd_sees_it(self):
        bad = os.path.join(self.tmp.name, "bad.toml")
        with open(bad, "w") as f:
            f.write('version = 1\n[[routes]]\nname = "x"\nprefix = "/"\nupstream = "nope"\n')
        g = self.generation()
        r = self.ctl("reload", bad)
        self.assertEqual(r.returncode, 1)
        self.assertIn("error[ref.unknown-upstream]", r.stderr)
        self.assertEqual(self.generation(), g)

    def test_damaged_tables_are_rejected_and_the_old_one_keeps_serving(self):
        good = self.compile(self.write_spec("good.toml", 'timeout = "7s"'), os.path.join(self.tmp.name, "good.gwrt"))
        with open(good, "rb") as f:
            data = f.read()
        damaged = {
            "truncated": data[: len(data) // 2],
            "bitflip": data[:-20] + bytes([data[-20] ^ 0x01]) + data[-19:],
            "corrupted": data[:64] + os.urandom(len(data) - 64),
            "empty": b"",
        }
        g = self.generation()
        for name, content in damaged.items():
            with self.subTest(name=name):
                path = os.path.join(self.tmp.name, f"{name}.gwrt")
                with open(path, "wb") as f:
                    f.write(content)
                resp = control(self.gw.control, "reload", {"path": path})
                self.assertFalse(resp["ok"], resp)
                self.assertTrue(resp["error"]["code"].startswith("table."), resp)
                self.assertEqual(resp["error"]["diagnostics"][0]["file"], path)
                if content:  # gwctl sniffs an empty file as a (bad) spec and never sends it
                    r = self.ctl("reload", path)
                    self.assertEqual(r.returncode, 4, r.stdout + r.stderr)
                    self.assertIn("gwd refused", r.stderr)
                    self.assertIn("error[table.", r.stderr)
                self.assertEqual(self.generation(), g)
                self.assertEqual(self.request(path="/echo").status, 200)

    def test_state_survives_reloads(self):
        # The pooled upstream connection, the endpoint override and the counters all carry over.
        # Sequential requests on new client connections reach every worker; each worker pools its
        # own upstream connection, so the set of backend connections in use is small and stable.
        # A request is counted when it is logged, just after its response is written, so a count
        # read right after the last response may lag by one: wait for it rather than race it.
        def slow_requests():
            return control(self.gw.control, "show stats")["result"]["routes"]["slow"]["requests"]
        n0 = slow_requests()  # earlier tests' requests to this route are all logged by now
        before = {request(self.gw.port, path="/delay/1").json()["conn"] for _ in range(8)}
        wait_until(lambda: slow_requests() == n0 + 8, timeout=5, what="8 requests counted")
        spec = self.write_spec("keep.toml", '[[routes]]\nname = "other"\npath = "/other"\nupstream = "slow"\n')
        self.assertEqual(self.ctl("reload", spec).returncode, 0)
        after = {request(self.gw.port, path="/delay/1").json()["conn"] for _ in range(8)}
        self.assertLessEqual(after, before, "pooled upstream connections should survive the reload")
        wait_until(lambda: slow_requests() == n0 + 16, timeout=5, what="counters carried over the reload")
        self.assertEqual(slow_requests(), n0 + 16)

        a = self.backends["a"].address
        self.assertEqual(self.ctl("endpoint", "set", "pool", a, "drain").returncode, 0)
        self.assertEqual(self.ctl("reload", self.write_spec("keep2.toml")).returncode, 0)
        backends = Counter(self.request(path="/echo").json()["backend"] for _ in range(10))
        self.assertEqual(backends, Counter({"b": 10}))
        ov = control(self.gw.control, "show overrides")["result"]
        self.assertEqual(ov, [{"upstream": "pool", "address": a, "state": "drain"}])
        ups = json.loads(self.ctl("upstreams", "--json").stdout)["upstreams"]
        states = {e["address"]: e["state"] for u in ups if u["name"] == "pool" for e in u["endpoints"]}
        self.assertEqual(states[a], "drain")
        self.assertEqual(self.ctl("endpoint", "set", "pool", a, "ready").returncode, 0)
        self.assertEqual(set(self.request(path="/echo").json()["backend"] for _ in range(4)), {"a", "b"})
        r = self.ctl("endpoint", "set", "pool", "10.9.9.9:1", "drain")
        self.assertEqual(r.returncode, 4)

    def test_slow_request_spanning_a_reload_finishes_on_its_generation(self):
        g = self.generation()
        result = {}

        a = self.backends["a"]

        def slow():
            result["r"] = request(self.gw.port, path="/delay/hold/span", headers={"X-Request-Id": "slow-span"},
                                  timeout=30)

        t = threading.Thread(target=slow)
        t.start()
        try:
            # The backend holds the request until it is released: it is in flight for the whole
            # reload, however long that takes.
            wait_until(lambda: any(e["request_id"] == "slow-span" for e in backend_requests(a)),
                       what="the slow request to reach the backend")
            spec = self.write_spec("span.toml", '[[routes]]\nname = "span"\npath = "/span"\nupstream = "slow"\n')
            r = self.ctl("reload", spec)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(self.generation(), g + 1)
            fast = self.request(path="/echo", headers={"X-Request-Id": "after-span"})
            self.assertEqual(fast.status, 200)
            self.assertNotIn("r", result)  # still held
        finally:
            release(a, "span")
            t.join(15)
        self.assertEqual(result["r"].status, 200)
        wait_until(lambda: {"slow-span", "after-span"} <= {x["request_id"] for x in self.gw.access_records()},
                   what="log lines")
        gens = {x["request_id"]: x["generation"] for x in self.gw.access_records()}
        self.assertEqual(gens["slow-span"], g)      # started on the old table, finished on it
        self.assertEqual(gens["after-span"], g + 1)

    def test_signals(self):
        g = self.generation()
        # The last reload's outcome is shown by `show info`. A refused reload first, so that only
        # the SIGHUP's own reload can make it "unchanged" (earlier tests' reloads may have too).
        self.assertFalse(control(self.gw.control, "reload", {"path": os.path.join(self.tmp.name, "none.gwrt")})["ok"])
        self.assertFalse(control(self.gw.control, "show info")["result"]["last_reload"]["ok"])
        os.kill(self.gw.pid, signal.SIGHUP)  # reload the current file: identical, so a no-op
        wait_until(lambda: control(self.gw.control, "show info")["result"]["last_reload"]["ok"],
                   what="the SIGHUP reload")
        info = control(self.gw.control, "show info")["result"]
        self.assertEqual(info["last_reload"]["message"], "unchanged")
        self.assertEqual(info["last_reload"]["path"], info["table_path"])
        self.assertEqual(self.generation(), g)
        rotated = self.gw.access_log + ".1"
        self.request(path="/echo")
        wait_until(lambda: os.path.exists(self.gw.access_log) and os.path.getsize(self.gw.access_log) > 0, what="log")
        os.rename(self.gw.access_log, rotated)
        os.kill(self.gw.pid, signal.SIGUSR1)
        wait_until(lambda: "access log reopened" in self.gw.output(), what="SIGUSR1")
        self.request(path="/echo", headers={"X-Request-Id": "after-rotation"})
        def text(path):
            with open(path) as f:
                return f.read()
        wait_until(lambda: os.path.exists(self.gw.access_log) and "after-rotation" in text(self.gw.access_log),
                   what="a line in the new log file")
        self.assertNotIn("after-rotation", text(rotated))


def endpoint_view(gw, upstream, address):
    """What `gwctl upstreams --json` says of one endpoint: state, active (in flight), idle
    (pooled connections), requests, failures."""
    out = gwctl("upstreams", "--json", socket_path=gw.control, check=True).stdout
    for u in json.loads(out)["upstreams"]:
        for e in u["endpoints"] if u["name"] == upstream else ():
            if e["address"] == address:
                return e
    raise AssertionError(f"no endpoint {upstream}/{address} in {out}")


class EndpointStates(ControlTest):
    """drain: no new requests, in-flight ones finish; maint: no new requests and the pooled
    connections are closed. One worker, so that one pool holds every upstream connection."""

    WORKERS = 1

    def setUp(self):
        self.addCleanup(lambda: self.ctl("endpoint", "set", "pool", self.backends["a"].address, "ready"))

    def spread(self, n):
        with Conn(self.gw.port) as c:
            return Counter(c.request(path="/echo").json()["backend"] for _ in range(n))

    def test_maint_closes_pooled_connections(self):
        a = self.backends["a"]
        with Conn(self.gw.port) as c:
            conns = {}
            for _ in range(4):  # round robin: two each, on one pooled connection each
                echo = c.request(path="/echo").json()
                conns.setdefault(echo["backend"], set()).add(echo["conn"])
        self.assertEqual(set(conns), {"a", "b"})
        [pooled] = conns["a"]
        self.assertEqual(endpoint_view(self.gw, "pool", a.address)["idle"], 1)
        r = self.ctl("endpoint", "set", "pool", a.address, "maint")
        self.assertEqual(r.returncode, 0, r.stderr)
        wait_until(lambda: backend_closed(a, pooled) == "peer", what="gwd to close the pooled connection to a")
        view = endpoint_view(self.gw, "pool", a.address)
        self.assertEqual((view["state"], view["idle"]), ("maint", 0))
        self.assertEqual(self.spread(6), Counter({"b": 6}))
        self.assertEqual(self.ctl("endpoint", "set", "pool", a.address, "ready").returncode, 0)
        self.assertEqual(set(self.spread(4)), {"a", "b"})

    def test_drain_lets_in_flight_requests_finish(self):
        a = self.backends["a"]
        result = {}
        for i in range(4):  # round robin: one of two requests goes to a, which holds it
            key = f"drain-{i}"

            def held():
                result[key] = request(self.gw.port, path=f"/hold/{key}?on=a", timeout=30)
            t = threading.Thread(target=held)
            t.start()
            wait_until(lambda: backend_requests(a, f"/hold/{key}") or key in result,
                       what="the request to reach a backend")
            if backend_requests(a, f"/hold/{key}"):
                break
            t.join(10)
        else:
            self.fail("no request reached a")
        try:
            self.assertEqual(endpoint_view(self.gw, "pool", a.address)["active"], 1)
            r = self.ctl("endpoint", "set", "pool", a.address, "drain")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(self.spread(6), Counter({"b": 6}))  # new requests go elsewhere
            self.assertNotIn(key, result)  # the one in flight is still running
        finally:
            release(a, key)
            t.join(15)
        self.assertEqual(result[key].status, 200)
        self.assertEqual(result[key].json()["backend"], "a")
        # Unlike maint, drain keeps the pool: the connection that served it is pooled again.
        [held] = backend_requests(a, f"/hold/{key}")
        wait_until(lambda: endpoint_view(self.gw, "pool", a.address)["active"] == 0, what="a to be idle")
        view = endpoint_view(self.gw, "pool", a.address)
        self.assertEqual((view["state"], view["idle"]), ("drain", 1))
        self.assertIsNone(backend_closed(a, held["conn"]))
        self.assertEqual(self.spread(4), Counter({"b": 4}))


class ReloadUnderLoad(ControlTest):
    RELOADS = 100
    CLIENTS = 6

    def test_no_request_fails_across_100_reloads(self):
        specs = [self.write_spec("load-a.toml", 'timeout = "5s"'),
                 self.write_spec("load-b.toml", '[[routes]]\nname = "b"\npath = "/b-only"\nupstream = "slow"\n')]
        tables = [self.compile(s, s.replace(".toml", ".gwrt")) for s in specs]
        stop = threading.Event()
        sent = Counter()
        failures = []
        lock = threading.Lock()

        def client(i):
            conn = None
            while not stop.is_set():
                try:
                    if conn is None or i % 2 == 0 and sent[i] % 50 == 0:
                        if conn:
                            conn.close()
                        conn = Conn(self.gw.port, timeout=10)
                    r = conn.request(path=f"/echo/{i}")
                    with lock:
                        sent[i] += 1
                        if r.status != 200:
                            failures.append((i, r.status, r.body[:100]))
                except Exception as e:  # a reset or a closed connection is a failure too
                    with lock:
                        sent[i] += 1
                        failures.append((i, repr(e)))
                    conn = None
            if conn:
                conn.close()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(self.CLIENTS)]
        for t in threads:
            t.start()
        try:
            g0 = self.generation()
            for n in range(self.RELOADS):
                r = control(self.gw.control, "reload", {"path": tables[n % 2]})
                self.assertTrue(r["ok"], r)
                self.assertFalse(r["result"]["unchanged"])
                time.sleep(0.03)  # spread the reloads over a few seconds of traffic
            self.assertEqual(self.generation(), g0 + self.RELOADS)
            time.sleep(0.2)
        finally:
            stop.set()
            for t in threads:
                t.join(15)
        total = sum(sent.values())
        print(f"\nreload under load: {self.RELOADS} reloads, {total} requests from {self.CLIENTS} clients, "
              f"{len(failures)} failed", flush=True)
        with open(os.environ.get("GW_RELOAD_REPORT", os.devnull), "a") as f:
            f.write(json.dumps({"reloads": self.RELOADS, "requests": total, "failed": len(failures)}) + "\n")
        self.assertGreater(total, self.RELOADS * 5)
        self.assertEqual(failures, [])


class RollbackSurvives(ControlTest):
    """A rollback puts the previous table back into the file gwd serves, so that re-reading that
    file (SIGHUP, a reload without a table, a restart) keeps serving what the rollback restored,
    and status says what is served and why."""

    B_ROUTE = '[[routes]]\nname = "which"\npath = "/which"\nupstream = "slow"\nrewrite = { path = "/echo/table-b" }\n'

    def which(self):
        """The path the backend saw for /which: "/which" on table A, "/echo/table-b" on B."""
        r = self.request(path="/which")
        self.assertEqual(r.status, 200, r)
        return r.json()["target"]

    def info(self):
        return control(self.gw.control, "show info")["result"]

    def sighup_reloads(self):
        return [l for l in self.gw.output().splitlines() if l.startswith("gwd: reload ")]

    def test_rollback_survives_sighup_reload_and_restart(self):
        served = self.info()["table_path"]
        a = self.info()["table"]["sha256"]
        self.assertEqual(self.which(), "/which")
        r = self.ctl("reload", self.write_spec("b.toml", self.B_ROUTE))  # compiled over `served`
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.which(), "/echo/table-b")
        g_b = self.generation()
        self.assertNotEqual(self.info()["table"]["sha256"], a)

        r = self.ctl("rollback")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")  # no warning: the file was written back
        self.assertEqual(self.which(), "/which")
        self.assertEqual(self.info()["table"]["sha256"], a)
        on_disk = control(self.gw.control, "check", {"path": served})["result"]
        self.assertEqual(on_disk["sha256"], a)
        self.assertTrue(on_disk["unchanged"])
        info = self.info()
        self.assertEqual(info["table_path"], served)
        self.assertEqual((info["served"]["how"], info["served"]["rolled_back_from"]), ("rollback", g_b))
        status = self.ctl("status").stdout
        self.assertIn(f"rolled back from generation {g_b} to the table of generation {g_b - 1}", status)
        self.assertIn(f"{served} holds it again", status)

        before = len(self.sighup_reloads())
        os.kill(self.gw.pid, signal.SIGHUP)
        wait_until(lambda: len(self.sighup_reloads()) > before, what="the SIGHUP reload")
        self.assertIn("unchanged", self.sighup_reloads()[-1])
        self.assertEqual(self.which(), "/which")
        r = self.ctl("reload")  # what `systemctl reload` runs
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("unchanged", r.stdout)
        self.assertEqual(self.which(), "/which")
        self.assertEqual(self.info()["table"]["sha256"], a)

        self.assertEqual(self.gw.restart(), 0)
        self.assertEqual(self.which(), "/which")
        info = self.info()
        self.assertEqual((info["table"]["sha256"], info["table"]["generation"]), (a, 1))
        self.assertIn(f"loaded from {served} at startup", self.ctl("status").stdout)

    def test_a_rollback_that_cannot_write_its_file_is_not_undone_by_a_reload(self):
        served = self.info()["table_path"]
        r = self.ctl("reload", self.write_spec("b.toml", self.B_ROUTE))
        self.assertEqual(r.returncode, 0, r.stderr)
        g_b = self.generation()
        # gwd writes a file as FILE.tmp.PID, then renames it: a directory of that name makes the
        # write fail as a read-only directory would, even for root, while the file stays readable.
        blocker = f"{served}.tmp.{self.gw.pid}"
        os.mkdir(blocker)
        self.addCleanup(lambda: os.path.isdir(blocker) and os.rmdir(blocker))
        r = self.ctl("rollback", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        res = json.loads(r.stdout)
        self.assertFalse(res["file_written"])
        self.assertIn(f"cannot write the table back to {served}", res["warning"])
        self.assertEqual(self.which(), "/which")
        self.assertIn("in memory only", self.ctl("status").stdout)

        # The file still holds table B: re-reading it would undo the rollback, so gwd refuses.
        before = len(self.sighup_reloads())
        os.kill(self.gw.pid, signal.SIGHUP)
        wait_until(lambda: len(self.sighup_reloads()) > before, what="the SIGHUP reload")
        self.assertIn("rejected", self.sighup_reloads()[-1])
        r = self.ctl("reload")
        self.assertEqual(r.returncode, 4, r.stdout + r.stderr)
        self.assertIn(f"{served} still holds the table that the rollback to generation {g_b + 1}", r.stderr)
        self.assertEqual(self.which(), "/which")
        # Named explicitly, the file is served again.
        r = self.ctl("reload", served)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.which(), "/echo/table-b")
        os.rmdir(blocker)
        r = self.ctl("rollback")  # back to table A, for the other tests: written back this time
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        self.assertEqual(self.which(), "/which")


class PortZero(ControlTest):
    """--listen 127.0.0.1:0: every worker serves the one port the kernel chose, and gwd reports
    it (standard output, show info, gwctl status)."""

    def test_every_worker_serves_the_reported_port(self):
        self.assertEqual(self.gw.listeners, [f"127.0.0.1:{self.gw.port}"])
        self.assertNotEqual(self.gw.port, 0)
        self.assertEqual(control(self.gw.control, "show info")["result"]["listeners"], self.gw.listeners)
        status = self.ctl("status").stdout
        self.assertRegex(status, rf"listening +127\.0\.0\.1:{self.gw.port}\n")
        # New connections are spread over the workers' sockets by the kernel; within a bounded
        # number of them both workers must have answered on the reported port.
        sent, seen = 0, set()
        for _ in range(10):  # batches of 20 connections
            for _ in range(20):
                r = self.request(path="/echo", headers={"X-Request-Id": f"port-zero-{sent}"})
                self.assertEqual(r.status, 200, r)
                sent += 1
            wait_until(lambda: len(self.zero_records()) == sent, what=f"{sent} access log lines")
            seen = {x["worker"] for x in self.zero_records()}
            if seen == set(range(self.WORKERS)):
                break
        self.assertEqual(seen, set(range(self.WORKERS)))

    def zero_records(self):
        return [x for x in self.gw.access_records(expect=0) if x["request_id"].startswith("port-zero-")]

    def test_a_second_gwd_cannot_share_the_reported_port(self):
        # SO_REUSEPORT would let a second gwd of the same user join the port: the plain-bind probe
        # refuses it, port 0 or not.
        r = subprocess.run([GWD, "--table", self.gw.table_path, "--listen", f"127.0.0.1:{self.gw.port}",
                            "--workers", "1", "--control", os.path.join(self.tmp.name, "second.sock")],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"cannot listen on 127.0.0.1:{self.gw.port}", r.stderr)
        self.assertNotIn("listening ", r.stdout)


class Lifecycle(unittest.TestCase):
    def test_start_status_stop_with_in_flight_requests(self):
        with tempfile.TemporaryDirectory(prefix="gw-ctl-") as d:
            a, b = Backend(d, "a"), Backend(d, "b")
            sock = os.path.join(d, "run", "gw.sock")
            spec = os.path.join(d, "spec.toml")
            with open(spec, "w") as f:
                f.write(SPEC.format(a=a.address, b=b.address, extra=""))
            try:
                r = gwctl("start", spec, "--listen", "127.0.0.1:0", "--workers", "2", socket_path=sock)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                # The port gwd was given, not the 0 it was asked for.
                m = re.search(r"listening on 127\.0\.0\.1:(\d+)\n", r.stdout)
                self.assertIsNotNone(m, r.stdout)
                port = int(m.group(1))
                self.assertNotEqual(port, 0)
                self.assertEqual(os.stat(os.path.dirname(sock)).st_mode & 0o777, 0o750)
                self.assertEqual(os.stat(sock).st_mode & 0o777, 0o660)
                again = gwctl("start", spec, "--listen", "127.0.0.1:0", socket_path=sock)
                self.assertEqual(again.returncode, 4)
                self.assertIn("already running", again.stderr)
                self.assertEqual(request(port, path="/echo").status, 200)

                result = {}

                def slow():
                    result["r"] = request(port, path="/delay/hold/stop", timeout=30)

                def stop():
                    result["stop"] = gwctl("stop", "--timeout", "20s", socket_path=sock)

                t = threading.Thread(target=slow)
                t.start()
                wait_until(lambda: backend_requests(a, "/delay/hold/stop"), what="the request to reach the backend")
                stopper = threading.Thread(target=stop)
                stopper.start()
                try:
                    # gwd answers on the control socket until it exits: it says it is stopping,
                    # and the held request keeps it (and gwctl, which waits for it) running.
                    wait_until(lambda: control(sock, "show info")["result"]["stopping"],
                               what="gwd to start draining")
                    self.assertTrue(stopper.is_alive(), result.get("stop"))
                finally:
                    release(a, "stop")
                    t.join(15)
                    stopper.join(30)
                self.assertEqual(result["stop"].returncode, 0, result["stop"].stderr)
                self.assertEqual(result["r"].status, 200)
                self.assertFalse(os.path.exists(sock))
                self.assertEqual(gwctl("status", socket_path=sock).returncode, 3)
            finally:
                if os.path.exists(sock):
                    gwctl("stop", "--now", socket_path=sock)
                a.stop()
                b.stop()

    def gateway(self, d, extra=()):
        a = Backend(d, "a")
        self.addCleanup(a.stop)
        gw = Gateway(d, f'version = 1\n[upstreams.a]\nendpoints = ["{a.address}"]\n'
                        '[[routes]]\nname = "r"\nprefix = "/"\nupstream = "a"\n', workers=2, extra=extra)
        self.addCleanup(gw.stop)
        return a, gw

    def held_request(self, gw, a, key):
        """Starts a request the backend holds; returns (thread, result dict) once a has it."""
        result = {}

        def run():
            try:
                result["r"] = request(gw.port, path=f"/hold/{key}", timeout=30)
            except (EOFError, OSError) as e:  # cut: no response at all
                result["r"] = e
        t = threading.Thread(target=run)
        t.start()
        wait_until(lambda: backend_requests(a, f"/hold/{key}"), what="the request to reach the backend")
        return t, result

    def assertCut(self, a, key, t, result):
        t.join(15)
        self.assertIsInstance(result["r"], (EOFError, ConnectionError), result["r"])
        [held] = backend_requests(a, f"/hold/{key}")
        wait_until(lambda: backend_closed(a, held["conn"]) == "peer", what="the upstream connection to close")

    def test_stop_now_cuts_in_flight_requests(self):
        with tempfile.TemporaryDirectory(prefix="gw-ctl-") as d:
            a, gw = self.gateway(d)
            t, result = self.held_request(gw, a, "stop-now")
            # The request is held until long after gwctl gives up waiting (30 s + 5 s): only
            # cutting it lets gwd exit in time.
            r = gwctl("stop", "--now", socket_path=gw.control)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertEqual(gw.proc.wait(10), 0)
            self.assertCut(a, "stop-now", t, result)
            self.assertEqual(count_lines(gw, "closing 1 connection(s) with a request in flight"), 1, gw.output())

    def test_a_drain_that_times_out_cuts_the_request_in_flight(self):
        with tempfile.TemporaryDirectory(prefix="gw-ctl-") as d:
            a, gw = self.gateway(d, extra=("--drain-timeout", "1s"))
            t, result = self.held_request(gw, a, "drain-timeout")
            os.kill(gw.pid, signal.SIGTERM)
            self.assertEqual(gw.proc.wait(30), 0)  # the request is never released
            self.assertCut(a, "drain-timeout", t, result)
            self.assertEqual(count_lines(gw, "closing 1 connection(s) with a request in flight"), 1, gw.output())

    def test_start_with_a_control_group_lets_the_group_in(self):
        nobody = (65534, grp.getgrnam("nogroup").gr_gid)
        with tempfile.TemporaryDirectory(prefix="gw-ctl-") as d:
            os.chmod(d, 0o711)  # the test's own directory: nobody may pass through it
            a, b = Backend(d, "a"), Backend(d, "b")
            sock = os.path.join(d, "run", "gw.sock")
            spec = os.path.join(d, "spec.toml")
            with open(spec, "w") as f:
                f.write(SPEC.format(a=a.address, b=b.address, extra=""))
            try:
                r = gwctl("start", spec, "--listen", "127.0.0.1:0", "--control-group", "nogroup",
                          socket_path=sock)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                st = os.stat(os.path.dirname(sock))
                self.assertEqual((st.st_mode & 0o777, st.st_gid), (0o750, nobody[1]))
                r = gwctl("status", socket_path=sock, user=nobody)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertIn("generation 1", r.stdout)
                r = gwctl("reload", socket_path=sock, user=nobody)
                self.assertEqual(r.returncode, 4, r.stdout + r.stderr)
                self.assertIn("permission_denied", r.stderr)
            finally:
                if os.path.exists(sock):
                    gwctl("stop", "--now", socket_path=sock)
                a.stop()
                b.stop()

    def test_start_refuses_an_unknown_control_group(self):
        with tempfile.TemporaryDirectory(prefix="gw-ctl-") as d:
            sock = os.path.join(d, "run", "gw.sock")
            r = gwctl("start", "no-spec-needed.toml", "--control-group", "no-such-group-here", socket_path=sock)
            self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
            self.assertIn('no group "no-such-group-here"', r.stderr)
            self.assertFalse(os.path.exists(os.path.dirname(sock)))

    def test_a_stale_socket_file_is_replaced_at_start(self):
        with tempfile.TemporaryDirectory(prefix="gw-ctl-") as d:
            stale = os.path.join(d, "gw.sock")
            with socket.socket(socket.AF_UNIX) as s:
                s.bind(stale)  # left behind by a gwd that was killed: nobody answers on it
            self.assertTrue(os.path.exists(stale))
            gw = Gateway(d, 'version = 1\n[upstreams.a]\nendpoints = ["127.0.0.1:1"]\n'
                            '[[routes]]\nname = "r"\nprefix = "/"\nupstream = "a"\n')
            try:
                self.assertEqual(gw.control, stale)
                self.assertEqual(control(gw.control, "ping")["result"]["pid"], gw.pid)
            finally:
                gw.stop()

    def test_start_reports_a_gwd_that_cannot_serve(self):
        with tempfile.TemporaryDirectory(prefix="gw-ctl-") as d:
            spec = os.path.join(d, "spec.toml")
            with open(spec, "w") as f:
                f.write('version = 1\n[upstreams.a]\nendpoints = ["127.0.0.1:1"]\n[[routes]]\nname = "r"\nprefix = "/"\nupstream = "a"\n')
            with socket.socket() as taken:
                taken.bind(("127.0.0.1", 0))
                taken.listen()
                port = taken.getsockname()[1]
                r = gwctl("start", spec, "--listen", f"127.0.0.1:{port}", socket_path=os.path.join(d, "gw.sock"))
            self.assertEqual(r.returncode, 1)
            self.assertIn("exited", r.stderr)
            self.assertIn(f"cannot listen on 127.0.0.1:{port}", r.stderr)


if __name__ == "__main__":
    unittest.main()

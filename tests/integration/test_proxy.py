"""gwd as a reverse proxy, end to end: routing, forwarding headers, keep-alive and pooling,
streaming, load balancing, timeouts, retries and upstream failures."""
import hashlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
import unittest
from collections import Counter

from harness import (Backend, Blackhole, Conn, Gateway, GatewayTest, ReservedPort, backend_closed,
                     backend_events, backend_requests, control, gwctl, raw, release, request,
                     status_of, wait_until)

# Every request to backend a.
ALL_TO_A = """
version = 1
[upstreams.a]
endpoints = ["{a}"]
[[routes]]
name = "all"
prefix = "/"
upstream = "a"
"""

ROUTES = """
version = 1
[upstreams.a]
endpoints = ["{a}"]
[upstreams.b]
endpoints = ["{b}"]
[[routes]]
name = "to-b"
prefix = "/b"
upstream = "b"
[[routes]]
name = "pet"
methods = ["GET", "HEAD"]
template = "/pets/{{id}}"
upstream = "a"
rewrite = {{ path = "/v2/pets/{{id}}", host = "pets.internal" }}
[[routes]]
name = "api"
prefix = "/api"
upstream = "a"
rewrite = {{ prefix = "/" }}
[[routes]]
name = "slow"
prefix = "/delay"
upstream = "a"
timeout = "500ms"
[[routes]]
name = "all"
prefix = "/"
upstream = "a"
"""


def read_until_closed(port, data, timeout=10.0):
    """Sends `data` and returns every byte received until gwd closes the connection; fails if
    it is still open after `timeout` seconds."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while True:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                return out
            if not chunk:
                return out
            out += chunk


class Routing(GatewayTest):
    BACKENDS = ("a", "b")
    SPEC = ROUTES

    def test_routes_reach_their_upstream(self):
        self.assertEqual(self.request(path="/echo").json()["backend"], "a")
        self.assertEqual(self.request(path="/b/echo").json()["backend"], "b")

    def test_rewrites_apply_to_path_and_host(self):
        r = self.request(path="/pets/42?x=1")
        echo = r.json()
        self.assertEqual(echo["target"], "/v2/pets/42?x=1")
        self.assertIn(["host", "pets.internal"], [[k.lower(), v] for k, v in echo["headers"]])
        self.assertEqual(self.request(path="/api/users/7").json()["target"], "/users/7")


    def test_route_timeout_gives_504(self):
        # The backend holds the request and never answers: only the route's 500ms timeout can
        # end it (the client would give up after 15 s), and gwd closes the upstream connection.
        r = self.request(path="/delay/hold/route-timeout", timeout=15)
        self.assertEqual(r.status, 504)
        self.assertEqual(r.json()["error"], "upstream_timeout")
        [held] = backend_requests(self.backends["a"], "/delay/hold/route-timeout")
        wait_until(lambda: backend_closed(self.backends["a"], held["conn"]) == "peer",
                   what="gwd to close the timed-out upstream connection")
        self.assertEqual(self.request(path="/delay/10").status, 200)

    def test_forwarding_headers(self):
        r = self.request(path="/echo", headers={
            "X-Forwarded-For": "6.6.6.6", "Forwarded": "for=6.6.6.6", "X-Forwarded-Host": "evil",
            "X-Request-Id": "client-id-123", "Via": "1.1 edge"})
        h = {k.lower(): v for k, v in r.json()["headers"]}
        # Not a trusted proxy: what the client claims is replaced by what gw saw.
        self.assertEqual(h["x-forwarded-for"], "127.0.0.1")
        self.assertEqual(h["x-forwarded-proto"], "http")
        self.assertEqual(h["x-forwarded-host"], "example.test")
        self.assertEqual(h["forwarded"], "for=127.0.0.1;proto=http;host=example.test")
        self.assertEqual(h["x-request-id"], "client-id-123")
        self.assertEqual(r.header("x-request-id"), "client-id-123")
        self.assertEqual(h["via"], "1.1 edge, 1.1 gw")
        self.assertEqual(r.header("via"), "1.1 gw")

    def test_request_id_of_128_allowed_characters_is_kept_and_129_replaced(self):
        allowed = "AZaz09._:-"
        kept = (allowed * 13)[:128]
        r = self.request(path="/echo", headers={"X-Request-Id": kept})
        h = {k.lower(): v for k, v in r.json()["headers"]}
        self.assertEqual(h["x-request-id"], kept)
        self.assertEqual(r.header("x-request-id"), kept)
        r = self.request(path="/echo", headers={"X-Request-Id": kept + "a"})
        h = {k.lower(): v for k, v in r.json()["headers"]}
        self.assertRegex(h["x-request-id"], r"^[0-9a-f]{32}$")
        self.assertEqual(r.header("x-request-id"), h["x-request-id"])
        self.assertNotEqual(h["x-request-id"], kept)

    def test_request_id_generated_when_absent_or_unsafe(self):
        r = self.request(path="/echo", headers={"X-Request-Id": "bad id\twith space"})
        h = {k.lower(): v for k, v in r.json()["headers"]}
        self.assertRegex(h["x-request-id"], r"^[0-9a-f]{32}$")
        self.assertEqual(r.header("x-request-id"), h["x-request-id"])

    def test_hop_by_hop_fields_are_dropped_both_ways(self):
        r = self.request(path="/echo", headers={
            "Connection": "keep-alive, X-Secret", "X-Secret": "s", "Keep-Alive": "300",
            "TE": "trailers", "Upgrade": "websocket", "Proxy-Authorization": "Basic x", "X-Kept": "1"})
        names = {k.lower() for k, _ in r.json()["headers"]}
        for dropped in ("connection", "x-secret", "keep-alive", "te", "upgrade", "proxy-authorization"):
            self.assertNotIn(dropped, names)
        self.assertIn("x-kept", names)
        # The backend's own hop-by-hop fields and the ones its Connection names stay behind too.
        resp_names = {k.lower() for k, _ in r.headers}
        self.assertNotIn("x-drop-me", resp_names)
        self.assertNotIn("keep-alive", resp_names)
        self.assertEqual(r.header("x-backend"), "a")

    def test_keep_alive_and_upstream_pooling(self):
        with Conn(self.gw.port) as c:
            conns = {c.request(path="/echo").json()["conn"] for _ in range(20)}
        self.assertEqual(len(conns), 1, "sequential requests should reuse one upstream connection")

    def test_pipelined_requests_are_answered_in_order(self):
        with Conn(self.gw.port) as c:
            c.send(b"".join(f"GET /echo/{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(5)))
            targets = [c.read_response().json()["target"] for _ in range(5)]
        self.assertEqual(targets, [f"/echo/{i}" for i in range(5)])

    def test_http10_client(self):
        out = raw(self.gw.port, b"GET /echo HTTP/1.0\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 200"), out[:100])
        self.assertIn(b"connection: close", out.lower())
        with Conn(self.gw.port) as c:
            c.send(b"GET /chunked/5000 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            r = c.read_response()
            # A chunked upstream body goes to an HTTP/1.0 client unframed, then the connection closes.
            self.assertEqual(len(r.body), 5000)
            self.assertIsNone(r.header("transfer-encoding"))

    def test_head_204_304_have_no_body(self):
        with Conn(self.gw.port) as c:
            r = c.request("HEAD", "/stream/1234")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header("content-length"), "1234")
            r = c.request("GET", "/status/204")
            self.assertEqual(r.status, 204)
            r = c.request("GET", "/status/304")
            self.assertEqual(r.status, 304)
            self.assertEqual(c.request("GET", "/echo").status, 200)  # the connection is still in sync

    def test_interim_responses(self):
        with Conn(self.gw.port) as c:
            r = c.request("GET", "/early-hints")
            self.assertEqual(r.status, 200)
            self.assertEqual([s for s, _ in r.interim], [103])
        with Conn(self.gw.port) as c:
            c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
            self.assertEqual(c._line(), b"HTTP/1.1 100 Continue")
            self.assertEqual(c._line(), b"")
            c.send(b"hello")
            r = c.read_response()
            self.assertEqual(r.json()["body_len"], 5)
            self.assertNotIn("expect", {k.lower() for k, _ in r.json()["headers"]})

    def test_chunked_both_ways_with_trailers(self):
        with Conn(self.gw.port) as c:
            body = b"".join(bytes([97 + i % 26]) * 3000 for i in range(10))
            c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   + b"".join(b"%x\r\n" % 3000 + body[i * 3000:(i + 1) * 3000] + b"\r\n" for i in range(10))
                   + b"0\r\nX-Sum: abc\r\n\r\n")
            echo = c.read_response().json()
            self.assertEqual(echo["body_len"], len(body))
            self.assertEqual(echo["body_sha256"], hashlib.sha256(body).hexdigest())
            self.assertEqual(echo["trailers"], [["X-Sum", "abc"]])
            r = c.request("GET", "/chunked/100000")
            self.assertEqual(len(r.body), 100000)
            self.assertEqual(r.header("transfer-encoding"), "chunked")
            self.assertEqual(dict(r.trailers)["x-checksum"], hashlib.sha256(r.body).hexdigest())
            r = c.request("GET", "/close-delimited/7000")
            self.assertEqual(len(r.body), 7000)
            self.assertEqual(r.header("transfer-encoding"), "chunked")  # re-framed for keep-alive
            self.assertEqual(c.request("GET", "/echo").status, 200)

    def test_access_log_has_one_json_line_per_request(self):
        rid = "log-test-%d" % os.getpid()
        self.request(path="/echo?api_key=s3cret&x=1", headers={"X-Request-Id": rid})
        recs = [r for r in self.gw.access_records(expect=1) if r["request_id"] == rid]
        wait_until(lambda: any(r["request_id"] == rid for r in self.gw.access_records()), what="log line")
        rec = [r for r in self.gw.access_records() if r["request_id"] == rid][0]
        self.assertEqual(rec["route"], "all")
        self.assertEqual(rec["status"], 200)
        self.assertEqual(rec["upstream"], "a")
        self.assertEqual(rec["endpoint"], self.backends["a"].address)
        self.assertEqual(rec["generation"], 1)
        self.assertEqual(rec["query"], "api_key=REDACTED&x=1")
        for key in ("time", "method", "path", "bytes_in", "bytes_out", "duration_us", "upstream_us"):
            self.assertIn(key, rec)


class NoRoute(GatewayTest):
    SPEC = """
version = 1
[upstreams.a]
endpoints = ["{a}"]
[[routes]]
name = "pets"
methods = ["GET", "HEAD"]
template = "/pets/{{id}}"
upstream = "a"
[[routes]]
name = "create"
methods = ["POST"]
path = "/pets"
upstream = "a"
"""

    def test_wrong_method_is_405_with_allow(self):
        r = self.request(method="DELETE", path="/pets/1")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.header("allow"), "GET, HEAD")
        self.assertEqual(r.json()["error"], "method_not_allowed")
        self.assertEqual(r.json()["request_id"], r.header("x-request-id"))

    def test_nothing_matching_is_404(self):
        r = self.request(path="/dogs")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json()["error"], "no_route")
        self.assertEqual(r.header("content-type"), "application/json")


class Streaming(GatewayTest):
    BACKENDS = ("a",)
    SPEC = """
version = 1
[upstreams.a]
endpoints = ["{a}"]
[[routes]]
name = "all"
prefix = "/"
upstream = "a"
timeout = "60s"
"""
    GIB = 1 << 30

    def test_one_gib_each_way_in_bounded_memory(self):
        before = self.gw.status_field("VmHWM")
        # Upload 1 GiB: the backend hashes what arrives.
        block = os.urandom(1 << 20)
        h = hashlib.sha256()
        with Conn(self.gw.port, timeout=60) as c:
            c.send(f"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {self.GIB}\r\n\r\n".encode())
            for _ in range(self.GIB // len(block)):
                c.send(block)
                h.update(block)
            echo = c.read_response().json()
        self.assertEqual(echo["body_len"], self.GIB)
        self.assertEqual(echo["body_sha256"], h.hexdigest())
        # Download 1 GiB.
        got = 0

        def count(chunk):
            nonlocal got
            got += len(chunk)

        with Conn(self.gw.port, timeout=60) as c:
            c.send(f"GET /stream/{self.GIB} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            c.read_response(sink=count)
        self.assertEqual(got, self.GIB)
        growth = self.gw.status_field("VmHWM") - before
        self.assertLess(growth, 16 << 20, f"peak RSS grew by {growth >> 20} MiB")


BALANCE = """
version = 1
[upstreams.rr]
endpoints = ["{b}", {{ address = "{c}", weight = 2 }}]
[upstreams.lr]
endpoints = ["{b}", "{c}"]
balance = "least_request"
[upstreams.hash]
endpoints = ["{b}", "{c}", "{d}"]
balance = "hash"
hash_on = "header:x-user"
[upstreams.rand]
endpoints = ["{b}", "{c}"]
balance = "random"
[[routes]]
name = "rr"
prefix = "/rr"
upstream = "rr"
[[routes]]
name = "lr"
prefix = "/lr"
upstream = "lr"
[[routes]]
name = "hash"
prefix = "/hash"
upstream = "hash"
[[routes]]
name = "rand"
prefix = "/rand"
upstream = "rand"
"""


class LoadBalancing(GatewayTest):
    BACKENDS = ("b", "c", "d")
    SPEC = BALANCE

    def spread(self, path, n, headers=None):
        with Conn(self.gw.port) as c:
            return Counter(c.request(path=path, headers=headers).json()["backend"] for _ in range(n))

    def test_weighted_round_robin_is_exact(self):
        self.assertEqual(self.spread("/rr/echo", 300), Counter({"b": 100, "c": 200}))

    def test_least_request_uses_both(self):
        got = self.spread("/lr/echo", 100)
        self.assertEqual(set(got), {"b", "c"})

    def test_random_uses_both(self):
        got = self.spread("/rand/echo", 200)
        self.assertEqual(set(got), {"b", "c"})
        self.assertGreater(min(got.values()), 40)

    def test_hash_is_sticky_and_spreads(self):
        owners = {}
        for user in range(60):
            got = self.spread("/hash/echo", 3, headers={"x-user": f"user-{user}"})
            self.assertEqual(len(got), 1, f"user-{user} moved between endpoints: {got}")
            owners[user] = next(iter(got))
        self.assertEqual(set(owners.values()), {"b", "c", "d"})


class Failures(GatewayTest):
    """Upstream misbehaviour is contained: a 502/504 or a closed connection, never a mixed-up
    response, and gwd keeps running."""

    BACKENDS = ("a", "b")
    SPEC = """
version = 1
[upstreams.a]
endpoints = ["{a}"]
[upstreams.dead-first]
endpoints = ["127.0.0.1:{dead}", "{b}"]
[upstreams.dead]
endpoints = ["127.0.0.1:{dead}"]
[upstreams.pair]
endpoints = ["{a}", "{b}"]
[[routes]]
name = "retry"
prefix = "/retry"
upstream = "dead-first"
retries = 1
[[routes]]
name = "dead"
prefix = "/dead"
upstream = "dead"
[[routes]]
name = "pair"
prefix = "/pair"
upstream = "pair"
retries = 1
[[routes]]
name = "all"
prefix = "/"
upstream = "a"
timeout = "2s"
"""

    @classmethod
    def setUpClass(cls):
        cls.dead = ReservedPort()  # bound, never listening: connections to it are refused
        cls.addClassCleanup(cls.dead.close)
        cls.SPEC = cls.SPEC.replace("{dead}", str(cls.dead.port))
        super().setUpClass()

    def test_misbehaving_upstreams(self):
        cases = {"/garbage": 502, "/close": 502, "/cl-te": 502, "/dup-cl": 502, "/fold": 502,
                 "/switch": 502, "/huge-head": 502}
        for path, status in cases.items():
            with self.subTest(path=path):
                r = self.request(path=path)
                self.assertEqual(r.status, status, r)
                self.assertEqual(r.json()["error"], "upstream_protocol_error")

    def test_truncated_bodies_close_the_client_connection(self):
        # The head is out when the body breaks off: the client gets the head, the body bytes
        # that were good (none of a malformed chunk), and then the connection closes.
        cases = {"/truncated": (b"content-length: 100", b"0123456789"),
                 "/bad-chunk": (b"transfer-encoding: chunked", b"")}
        for path, (framing, body) in cases.items():
            with self.subTest(path=path):
                out = read_until_closed(self.gw.port, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                head, sep, rest = out.partition(b"\r\n\r\n")
                self.assertEqual(sep, b"\r\n\r\n", out)
                self.assertTrue(head.startswith(b"HTTP/1.1 200 "), out)
                self.assertIn(framing, head.lower())
                self.assertEqual(rest, body)
        wait_until(lambda: {x["path"] for x in self.gw.access_records() if x["path"] in cases} == set(cases),
                   what="log lines")
        for rec in (x for x in self.gw.access_records() if x["path"] in cases):
            self.assertEqual(rec["error"], "upstream_protocol_error", rec)

    def test_connect_failure_is_retried_on_another_endpoint(self):
        for _ in range(4):
            r = self.request(path="/retry/echo")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json()["backend"], "b")
        r = self.request(method="POST", path="/retry/echo", body=b"x")  # nothing was sent: safe
        self.assertEqual(r.status, 200)

    def test_no_endpoint_reachable(self):
        r = self.request(path="/dead/x")
        self.assertEqual(r.status, 502)
        self.assertEqual(r.json()["error"], "upstream_connect_failed")

    def test_fresh_connection_failures_are_not_retried(self):
        # The upstream accepted and then closed without answering: the request may have had an
        # effect, so it is not sent again.
        r = self.request(path="/pair/close")
        self.assertEqual(r.status, 502)
        rid = r.header("x-request-id")
        wait_until(lambda: any(x["request_id"] == rid for x in self.gw.access_records()), what="log")
        rec = [x for x in self.gw.access_records() if x["request_id"] == rid][0]
        self.assertEqual(rec["attempts"], 1)

    def test_timeout_is_504(self):
        r = self.request(path="/delay/5000")
        self.assertEqual(r.status, 504)

    def test_gateway_survived(self):
        self.assertTrue(self.gw.alive())

    def test_error_bodies_name_no_upstream_address_but_the_access_log_does(self):
        # The client learns the kind and its request id; the addresses behind gw stay in the
        # access log (error_detail) and gwd's own log.
        a = self.backends["a"]
        cases = (("/dead/x", 502, "upstream_connect_failed", self.dead),
                 ("/delay/5000", 504, "upstream_timeout", a))
        for path, status, kind, upstream in cases:
            with self.subTest(path=path):
                r = self.request(path=path)
                self.assertEqual(r.status, status, r)
                body = r.body.decode()
                self.assertNotIn("127.0.0.1", body)
                self.assertNotIn(str(upstream.port), body)
                rid = r.header("x-request-id")
                self.assertEqual(set(r.json()), {"error", "message", "request_id"})
                self.assertEqual((r.json()["error"], r.json()["request_id"]), (kind, rid))
                wait_until(lambda: any(x["request_id"] == rid for x in self.gw.access_records()),
                           what="the access log line")
                rec = [x for x in self.gw.access_records() if x["request_id"] == rid][0]
                self.assertEqual(rec["error"], kind)
                self.assertIn(upstream.address, rec["error_detail"])
        self.assertIn(f'gwd: upstream "', self.gw.output())


def endpoint_view(gw, upstream, address):
    """What `gwctl upstreams --json` says of one endpoint (state, active, idle = pooled, ...)."""
    out = gwctl("upstreams", "--json", socket_path=gw.control, check=True).stdout
    for u in json.loads(out)["upstreams"]:
        if u["name"] == upstream:
            for e in u["endpoints"]:
                if e["address"] == address:
                    return e
    raise AssertionError(f"no endpoint {upstream}/{address} in {out}")


def access_record(gw, request_id):
    """The access log line of one request, once it is written."""
    def find():
        return [x for x in gw.access_records(expect=0) if x["request_id"] == request_id]
    wait_until(find, what=f"the access log line of {request_id}")
    [rec] = find()
    return rec


class ReusedConnectionRetries(GatewayTest):
    """A pooled upstream connection that fails before any response byte: an idempotent request
    without a body is sent again on another connection, a POST never."""

    SPEC = """
version = 1
[upstreams.a]
endpoints = ["{a}"]
[[routes]]
name = "all"
prefix = "/"
upstream = "a"
retries = 1
"""

    def retries(self):
        return control(self.gw.control, "show stats")["result"]["upstreams"]["a"]["retries"]

    def pooled_connection(self, c):
        """Makes one exchange on client connection `c`; returns the upstream connection gwd pooled."""
        r = c.request(path="/echo")
        self.assertEqual(r.status, 200)
        conn = r.json()["conn"]
        wait_until(lambda: endpoint_view(self.gw, "a", self.backends["a"].address)["idle"] >= 1,
                   what="the upstream connection to be pooled")
        return conn

    def test_get_on_a_dead_pooled_connection_is_retried(self):
        a = self.backends["a"]
        before = self.retries()
        with Conn(self.gw.port) as c:
            pooled = self.pooled_connection(c)
            # The backend closes the reused connection as soon as the request arrives on it.
            r = c.request(path="/close-if-reused", headers={"X-Request-Id": "reuse-get"})
        self.assertEqual(r.status, 200, r)
        self.assertNotEqual(r.json()["conn"], pooled)
        seen = [e for e in backend_requests(a, "/close-if-reused") if e["request_id"] == "reuse-get"]
        self.assertEqual([(e["conn"], e["nth"]) for e in seen], [(pooled, 2), (r.json()["conn"], 1)])
        self.assertEqual(backend_closed(a, pooled), "self")
        rec = access_record(self.gw, "reuse-get")
        self.assertEqual((rec["status"], rec["attempts"]), (200, 2))
        wait_until(lambda: self.retries() == before + 1, what="the retry to be counted")

    def test_post_on_a_dead_pooled_connection_is_not_retried(self):
        a = self.backends["a"]
        for name, body in (("reuse-post", b"payload"), ("reuse-post-empty", b"")):
            with self.subTest(body=body):
                before = self.retries()
                with Conn(self.gw.port) as c:
                    pooled = self.pooled_connection(c)
                    headers = {"X-Request-Id": name, "Content-Length": str(len(body))}
                    r = c.request("POST", "/close-if-reused", headers=headers, body=body)
                self.assertEqual(r.status, 502, r)
                self.assertEqual(r.json()["error"], "upstream_protocol_error")
                seen = [e for e in backend_requests(a, "/close-if-reused") if e["request_id"] == name]
                self.assertEqual([(e["method"], e["conn"]) for e in seen], [("POST", pooled)])
                rec = access_record(self.gw, name)
                self.assertEqual((rec["status"], rec["attempts"]), (502, 1))
                self.assertEqual(self.retries(), before)


class UpstreamIdleTimeout(GatewayTest):
    SPEC = ALL_TO_A
    GWD_ARGS = ("--upstream-idle-timeout", "1s")

    def test_an_idle_pooled_connection_is_closed_after_the_timeout(self):
        a = self.backends["a"]
        r = self.request(path="/echo")
        self.assertEqual(r.status, 200)
        pooled = r.json()["conn"]
        self.assertEqual(endpoint_view(self.gw, "a", a.address)["idle"], 1)
        # gwd closes it (the backend sees the other side go), and the pool is empty again.
        wait_until(lambda: backend_closed(a, pooled) == "peer", timeout=15,
                   what="gwd to close the idle upstream connection")
        self.assertEqual(endpoint_view(self.gw, "a", a.address)["idle"], 0)
        r = self.request(path="/echo")
        self.assertEqual(r.status, 200)
        self.assertNotEqual(r.json()["conn"], pooled)


class UpstreamTimeouts(GatewayTest):
    """connect_timeout against an endpoint whose SYNs are dropped, and per_try_timeout cutting a
    stalled connect (retried elsewhere: nothing was sent) or a stalled response (not retried:
    the request reached the upstream)."""

    BACKENDS = ("a", "b")
    SPEC = """
version = 1
[upstreams.hole]
endpoints = ["{hole}"]
connect_timeout = "300ms"
[upstreams.hole-then-b]
endpoints = ["{hole}", "{b}"]
connect_timeout = "300ms"
[upstreams.slow-connect]
endpoints = ["{hole}", "{b}"]
connect_timeout = "60s"
[upstreams.ab]
endpoints = ["{a}", "{b}"]
[[routes]]
name = "hole"
prefix = "/hole/"
upstream = "hole"
retries = 0
[[routes]]
name = "hole-retry"
prefix = "/hole-retry/"
upstream = "hole-then-b"
retries = 1
[[routes]]
name = "per-try-connect"
prefix = "/per-try-connect/"
upstream = "slow-connect"
per_try_timeout = "300ms"
retries = 1
[[routes]]
name = "per-try"
prefix = "/per-try/"
upstream = "ab"
per_try_timeout = "500ms"
retries = 1
"""

    @classmethod
    def setUpClass(cls):
        cls.hole = Blackhole()
        cls.SPEC = cls.SPEC.replace("{hole}", cls.hole.address)
        try:
            super().setUpClass()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.hole.close()

    def test_connect_timeout_is_504_upstream_timeout(self):
        # The route's timeout (30 s by default) and the client's (10 s) are far away: only the
        # 300ms connect timeout can end this.
        r = self.request(path="/hole/echo", headers={"X-Request-Id": "connect-timeout"})
        self.assertEqual(r.status, 504, r)
        self.assertEqual(r.json()["error"], "upstream_timeout")
        rec = access_record(self.gw, "connect-timeout")
        self.assertEqual((rec["status"], rec["error"], rec["attempts"], rec["endpoint"]),
                         (504, "upstream_timeout", 1, self.hole.address))
        stats = control(self.gw.control, "show stats")["result"]["upstreams"]["hole"]
        self.assertGreaterEqual(stats["timeouts"], 1)

    def first_attempt_on_the_hole(self, prefix):
        """Requests until the balancer tries the hole first; every one must end at b."""
        recs = []
        for i in range(6):
            rid = f"{prefix.strip('/')}-{i}"
            r = self.request(path=f"{prefix}echo", headers={"X-Request-Id": rid})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["backend"], "b")
            recs.append(access_record(self.gw, rid))
            if recs[-1]["attempts"] == 2:
                return recs[-1]
        self.fail(f"no request tried the blackholed endpoint first: {recs}")

    def test_a_connect_timeout_is_retried_on_another_endpoint(self):
        rec = self.first_attempt_on_the_hole("/hole-retry/")
        self.assertEqual((rec["status"], rec["endpoint"]), (200, self.backends["b"].address))

    def test_per_try_timeout_cuts_a_stalled_connect_and_retries(self):
        # The connect timeout is 60 s and the client waits 10 s: only the 300ms per-try timeout
        # can move the request on to b in time.
        rec = self.first_attempt_on_the_hole("/per-try-connect/")
        self.assertEqual((rec["status"], rec["endpoint"]), (200, self.backends["b"].address))

    def test_per_try_timeout_cuts_a_stalled_response(self):
        a, b = self.backends["a"], self.backends["b"]
        for i in range(4):  # round robin: one of two requests goes to a, which holds it
            key = f"per-try-{i}"
            r = self.request(path=f"/per-try/hold/{key}?on=a", headers={"X-Request-Id": key})
            if r.status == 200 and r.json()["backend"] == "b":
                continue
            break
        else:
            self.fail("no request reached a")
        self.assertEqual(r.status, 504, r)
        self.assertEqual(r.json()["error"], "upstream_timeout")
        # The held attempt was cut: gwd closed its connection to a.
        [held] = [e for e in backend_requests(a, "/per-try/hold/") if e["request_id"] == key]
        wait_until(lambda: backend_closed(a, held["conn"]) == "peer", what="gwd to close the stalled connection")
        # The request had reached a, so it was not sent again.
        self.assertEqual([e for e in backend_requests(b, "/per-try/hold/") if e["request_id"] == key], [])
        rec = access_record(self.gw, key)
        self.assertEqual((rec["status"], rec["error"], rec["attempts"]), (504, "upstream_timeout", 1))
        release(a, key)


class TrustedProxy(GatewayTest):
    SPEC = ALL_TO_A
    GWD_ARGS = ("--trusted-proxy", "127.0.0.0/8")

    def test_a_trusted_peer_extends_the_chain(self):
        r = self.request(path="/echo", headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https",
                                                "Forwarded": "for=203.0.113.9;proto=https"})
        h = {k.lower(): v for k, v in r.json()["headers"]}
        self.assertEqual(h["x-forwarded-for"], "203.0.113.9, 127.0.0.1")
        self.assertEqual(h["x-forwarded-proto"], "https")
        self.assertEqual(h["forwarded"], "for=203.0.113.9;proto=https, for=127.0.0.1;proto=http;host=example.test")


class ClientTimeouts(GatewayTest):
    SPEC = ALL_TO_A
    GWD_ARGS = ("--header-timeout", "500ms", "--idle-timeout", "700ms")

    def test_slow_request_head_gets_408(self):
        # Only the header timeout answers an unfinished head; the client waits up to 10 s.
        out = read_until_closed(self.gw.port, b"GET / HTTP/1.1\r\nHost: x\r\n", timeout=10)
        self.assertEqual(status_of(out), 408, out)
        self.assertIn(b"connection: close", out.lower())
        self.assertIn(b'"error":"request_timeout"', out)

    def test_idle_keep_alive_connection_is_closed(self):
        with Conn(self.gw.port) as c:
            self.assertEqual(c.request(path="/echo").status, 200)
            c.sock.settimeout(10)
            self.assertEqual(c.sock.recv(10), b"")  # closed by gwd, silently (no 408)


class GwdCommandLine(unittest.TestCase):
    def gwd(self, *args):
        from harness import GWD
        return subprocess.run([GWD, *args], capture_output=True, text=True, timeout=10)

    def test_help_shows_defaults_signals_and_value_names(self):
        r = self.gwd("--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        text = " ".join(r.stdout.split())
        for flag, default in (("--header-timeout", "10s"), ("--idle-timeout", "60s"),
                              ("--drain-timeout", "30s"), ("--upstream-idle-timeout", "30s")):
            self.assertRegex(text, rf"{flag} DURATION ((?! --).)*\(default {default}\)")
        # Values are named for what they are, never after the parser's types.
        for internal in ("TEXT", "UINT", "INT in", "REQUIRED"):
            self.assertNotIn(internal, text)
        for words in ("SIGHUP reloads the current table file", "SIGTERM and SIGINT drain",
                      "SIGUSR1 reopens the access log", '"listening ADDRESS:PORT"'):
            self.assertIn(words, text)

    def test_an_unknown_option_is_named(self):
        for args in (("--bogus",), ("--table", "x.gwrt", "--listen", "127.0.0.1:0", "--bogus")):
            with self.subTest(args=args):
                r = self.gwd(*args)
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                self.assertIn("--bogus", r.stderr)
                self.assertNotIn("is required", r.stderr)
        r = self.gwd("--listen", "127.0.0.1:0")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--table is required", r.stderr)


class Lifecycle(unittest.TestCase):
    def test_port_taken_and_bad_table_are_clear_errors(self):
        import subprocess
        import tempfile
        from harness import GWD
        with tempfile.TemporaryDirectory() as d:
            bad = os.path.join(d, "bad.gwrt")
            with open(bad, "wb") as f:
                f.write(b"GWRT\r\n\x1a\n" + b"\0" * 100)
            out = subprocess.run([GWD, "--table", bad, "--listen", "127.0.0.1:0"],
                                 capture_output=True, text=True, timeout=10)
            self.assertEqual(out.returncode, 1)
            self.assertIn("table.", out.stderr)
            with socket.socket() as taken:
                taken.bind(("127.0.0.1", 0))
                taken.listen()
                port = taken.getsockname()[1]
                backend = Backend(d, "x")
                try:
                    gw = Gateway(d, f'version = 1\n[upstreams.a]\nendpoints = ["{backend.address}"]\n'
                                    '[[routes]]\nname = "r"\nprefix = "/"\nupstream = "a"\n')
                    gw.stop()
                    out = subprocess.run([GWD, "--table", gw.table_path, "--listen", f"127.0.0.1:{port}"],
                                         capture_output=True, text=True, timeout=10)
                finally:
                    backend.stop()
            self.assertEqual(out.returncode, 1)
            self.assertIn(f"cannot listen on 127.0.0.1:{port}", out.stderr)

    def test_sigterm_drains_in_flight_requests(self):
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            backend = Backend(d, "a")
            gw = Gateway(d, f'version = 1\n[upstreams.a]\nendpoints = ["{backend.address}"]\n'
                            '[[routes]]\nname = "r"\nprefix = "/"\nupstream = "a"\n', workers=2)
            try:
                result = {}

                def slow():
                    with Conn(gw.port, timeout=30) as c:
                        result["r"] = c.request(path="/hold/drain")

                t = threading.Thread(target=slow)
                t.start()
                wait_until(lambda: backend_requests(backend, "/hold/drain"), what="the request to reach the backend")
                idle = Conn(gw.port)  # an idle keep-alive client must not hold the drain up
                self.assertEqual(idle.request(path="/echo").status, 200)
                os.kill(gw.pid, signal.SIGTERM)
                wait_until(lambda: control(gw.control, "show info")["result"]["stopping"],
                           what="gwd to start draining")
                idle.sock.settimeout(10)
                self.assertEqual(idle.sock.recv(10), b"")  # closed at once, while the other runs
                self.assertTrue(gw.alive())
                self.assertNotIn("r", result)
                release(backend, "drain")
                t.join(15)
                self.assertEqual(gw.proc.wait(15), 0)
                self.assertEqual(result["r"].status, 200)
                self.assertEqual(result["r"].header("connection"), "close")
                idle.close()
            finally:
                gw.stop()
                backend.stop()


if __name__ == "__main__":
    unittest.main()

"""External authorization (`kind = "ext_auth"`) end to end through a real gwd: an authorization
service (a small http.server in this process, on 127.0.0.1 port 0) decides each request; the
backend (backend.py) echoes what reached it.

What is checked is what README.md's "External authorization" section promises: a 2xx answer lets
the request through with the service's `upstream_headers` (a client's own copies never get
there), any other answer reaches the client with its status, headers and body, and a service
that is slow or down fails closed (503 policy_unavailable) or open as `on_error` says, within
`timeout`, counted in `gwctl stats` (ext_auth_errors)."""
import json
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import Backend, Gateway, ReservedPort, gwctl, request, wait_until

TIMEOUT_S = 0.3  # the policies' timeout
DENY_BODY = b'{"error":"no_token","detail":"log in first"}'


class AuthService:
    """An authorization service that decides by the path of the client's request, which gwd sends
    as x-forwarded-uri: the first of these words among its segments wins.

      allow  200 with X-User: alice and X-Roles: admin (and a body gwd ignores)
      anon   204 with no fields
      deny   403 with WWW-Authenticate, X-Deny-Reason, Set-Cookie and a JSON body
      login  302 to a login page, no body
      slow   200 like allow, but only once released (or after 10 s): past every timeout

    Keeps every call it gets (method, path, fields: lowercase name -> list of values, and the
    connection it came on: 1, 2, ... in the order gwd opened them)."""

    HOLD_LIMIT_S = 10.0

    def __init__(self):
        self.calls = []
        self.connections = 0
        self.lock = threading.Lock()
        self.released = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as gwd's client expects

            def setup(self):
                super().setup()
                with outer.lock:
                    outer.connections += 1
                    self.conn = outer.connections

            def do_GET(self):
                fields = {}
                for k, v in self.headers.items():
                    fields.setdefault(k.lower(), []).append(v)
                with outer.lock:
                    outer.calls.append({"method": "GET", "path": self.path, "headers": fields,
                                        "conn": self.conn})
                uri = fields.get("x-forwarded-uri", [""])[0]
                words = uri.split("?", 1)[0].strip("/").split("/")
                known = ("allow", "anon", "deny", "login", "slow")
                decision = next((w for w in words if w in known), "deny")
                if decision == "slow":
                    outer.released.wait(outer.HOLD_LIMIT_S)
                    decision = "allow"
                if decision == "allow":
                    self.answer(200, [("X-User", "alice"), ("X-Roles", "admin"),
                                      ("Content-Type", "text/plain")], b"ok, ignored by gwd")
                elif decision == "anon":
                    self.answer(204, [])
                elif decision == "login":
                    self.answer(302, [("Location", "https://login.test/?next=%2F")])
                else:
                    self.answer(403, [("WWW-Authenticate", 'Bearer realm="shop"'),
                                      ("X-Deny-Reason", "no-token"),
                                      ("Set-Cookie", "seen=1; Path=/"),
                                      ("Content-Type", "application/json")], DENY_BODY)

            def answer(self, status, fields, body=b""):
                self.send_response(status)
                for k, v in fields:
                    self.send_header(k, v)
                if status not in (204, 304):
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body:
                    self.wfile.write(body)

            def log_message(self, *a):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # gwd hung up on a slow answer: expected here

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def calls_for(self, uri):
        with self.lock:
            return [c for c in self.calls if c["headers"].get("x-forwarded-uri") == [uri]]

    def stop(self):
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


SPEC = """
version = 1
[upstreams.a]
endpoints = ["@A@"]

[policies.auth]
kind = "ext_auth"
url = "http://127.0.0.1:@AUTH@/check?realm=shop"
request_headers = ["authorization", "cookie"]
upstream_headers = ["x-user", "x-roles"]
consumer_header = "x-user"
timeout = "300ms"

[policies.auth-open]
kind = "ext_auth"
url = "http://127.0.0.1:@AUTH@/check"
upstream_headers = ["x-user"]
timeout = "300ms"
on_error = "allow"

[policies.auth-picky]
kind = "ext_auth"
url = "http://127.0.0.1:@AUTH@/check"
client_headers = ["www-authenticate"]

[policies.auth-down]
kind = "ext_auth"
url = "http://@DOWN@/check"
upstream_headers = ["x-user"]

[policies.auth-down-open]
kind = "ext_auth"
url = "http://@DOWN@/check"
upstream_headers = ["x-user"]
on_error = "allow"

[[routes]]
name = "open"
prefix = "/open"
upstream = "a"
policies = ["auth-open"]

[[routes]]
name = "picky"
prefix = "/picky"
upstream = "a"
policies = ["auth-picky"]

[[routes]]
name = "down-open"
prefix = "/down-open"
upstream = "a"
policies = ["auth-down-open"]

[[routes]]
name = "down"
prefix = "/down"
upstream = "a"
policies = ["auth-down"]

[[routes]]
name = "guarded"
prefix = "/"
upstream = "a"
policies = ["auth"]
"""


def echoed(resp):
    """What the backend received: (target, {lowercase field name: [values]})."""
    assert resp.status == 200, resp
    doc = resp.json()
    fields = {}
    for k, v in doc["headers"]:
        fields.setdefault(k.lower(), []).append(v)
    return doc["target"], fields


class ExtAuth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        tmp = tempfile.TemporaryDirectory(prefix="gw-ext-auth-")
        cls.addClassCleanup(tmp.cleanup)
        cls.dir = tmp.name
        cls.backend = Backend(cls.dir, "a")
        cls.addClassCleanup(cls.backend.stop)
        cls.auth = AuthService()
        cls.addClassCleanup(cls.auth.stop)
        # Bound, never listening: connections to it are refused, and no one else gets the port.
        cls.down = ReservedPort()
        cls.addClassCleanup(cls.down.close)
        spec = (SPEC.replace("@A@", cls.backend.address).replace("@AUTH@", str(cls.auth.port))
                .replace("@DOWN@", cls.down.address))
        cls.gw = Gateway(cls.dir, spec, workers=1)
        cls.addClassCleanup(cls.gw.stop)

    def request(self, path, headers=None):
        return request(self.gw.port, "GET", path, headers, timeout=10)

    def backend_saw(self, target):
        """How many requests for `target` reached the backend (its EVENT lines)."""
        n = 0
        for line in self.backend.output().splitlines():
            if line.startswith("EVENT "):
                ev = json.loads(line[6:])
                n += ev.get("ev") == "request" and ev.get("target") == target
        return n

    def ext_auth_errors(self):
        stats = json.loads(gwctl("stats", "--json", socket_path=self.gw.control,
                                 check=True).stdout)
        return stats["ext_auth_errors"]

    def assertUnavailable(self, r):
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.json()["error"], "policy_unavailable", r)
        # The service's address is for gwd's log, not for the client.
        self.assertNotIn(b"127.0.0.1", r.body)

    # ---- allowed

    def test_allow_copies_the_services_headers_and_drops_forged_ones(self):
        r = self.request("/allow/echo?page=2", {"Authorization": "Bearer t0ken",
                                                "X-User": "mallory", "X-Roles": "root",
                                                "X-Other": "kept", "Cookie": "a=1"})
        target, seen = echoed(r)
        self.assertEqual(target, "/allow/echo?page=2")
        self.assertEqual(seen.get("x-user"), ["alice"])
        self.assertEqual(seen.get("x-roles"), ["admin"])
        self.assertEqual(seen.get("x-other"), ["kept"])
        self.assertEqual(seen.get("authorization"), ["Bearer t0ken"])  # not the service's to drop

        calls = self.auth.calls_for("/allow/echo?page=2")
        self.assertEqual(len(calls), 1, self.auth.calls)
        call = calls[0]
        self.assertEqual((call["method"], call["path"]), ("GET", "/check?realm=shop"))
        h = call["headers"]
        self.assertEqual(h.get("host"), [f"127.0.0.1:{self.auth.port}"])
        self.assertEqual(h.get("x-forwarded-method"), ["GET"])
        self.assertEqual(h.get("x-forwarded-host"), ["example.test"])
        self.assertEqual(h.get("x-forwarded-for"), ["127.0.0.1"])
        self.assertEqual(h.get("x-request-id"), seen.get("x-request-id"))
        self.assertEqual(h.get("authorization"), ["Bearer t0ken"])
        self.assertEqual(h.get("cookie"), ["a=1"])
        for name in ("x-other", "x-user", "x-roles"):
            self.assertNotIn(name, h)  # only the fields the policy names, and its own

        # consumer_header names the caller in the access log.
        rid = seen["x-request-id"][0]
        wait_until(lambda: any(rec.get("request_id") == rid
                               for rec in self.gw.access_records(expect=0)),
                   what="the access log record")
        rec = next(rec for rec in self.gw.access_records(expect=0) if rec.get("request_id") == rid)
        self.assertEqual(rec.get("consumer"), "alice")

    def test_an_answer_without_a_field_still_drops_the_clients_copy(self):
        _, seen = echoed(self.request("/anon/echo", {"X-User": "mallory", "X-Roles": "root"}))
        self.assertNotIn("x-user", seen)
        self.assertNotIn("x-roles", seen)

    def test_connections_to_the_service_are_kept_alive(self):
        uris = [f"/allow/echo?keep={i}" for i in range(5)]
        for uri in uris:
            self.assertEqual(self.request(uri).status, 200)
        conns = {c["conn"] for uri in uris for c in self.auth.calls_for(uri)}
        self.assertEqual(len(conns), 1, conns)  # one worker: one pooled connection

    # ---- denied

    def test_a_denial_reaches_the_client_with_its_status_headers_and_body(self):
        r = self.request("/deny/echo", {"Authorization": "Bearer bad"})
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.body, DENY_BODY)
        self.assertEqual(r.header("content-type"), "application/json")
        self.assertEqual(r.header("content-length"), str(len(DENY_BODY)))
        self.assertEqual(r.header("www-authenticate"), 'Bearer realm="shop"')
        self.assertEqual(r.header("x-deny-reason"), "no-token")
        self.assertEqual(r.header("set-cookie"), "seen=1; Path=/")
        self.assertEqual(self.backend_saw("/deny/echo"), 0)

    def test_a_redirect_to_a_login_page_passes_as_it_is(self):
        r = self.request("/login/echo")
        self.assertEqual(r.status, 302, r)
        self.assertEqual(r.header("location"), "https://login.test/?next=%2F")
        self.assertEqual(r.body, b"")
        self.assertEqual(self.backend_saw("/login/echo"), 0)

    def test_client_headers_chooses_the_denials_fields(self):
        r = self.request("/picky/deny/echo")
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.body, DENY_BODY)
        self.assertEqual(r.header("content-type"), "application/json")
        self.assertEqual(r.header("www-authenticate"), 'Bearer realm="shop"')
        self.assertIsNone(r.header("x-deny-reason"))
        self.assertIsNone(r.header("set-cookie"))

    # ---- the service cannot answer

    def test_a_slow_service_fails_closed_within_the_timeout(self):
        errors = self.ext_auth_errors()
        t0 = time.monotonic()
        r = self.request("/slow/echo")
        took = time.monotonic() - t0
        self.assertUnavailable(r)
        self.assertGreaterEqual(took, TIMEOUT_S * 0.9)
        self.assertLess(took, TIMEOUT_S + 2.0)
        self.assertEqual(self.backend_saw("/slow/echo"), 0)
        self.assertEqual(self.ext_auth_errors(), errors + 1)

    def test_a_slow_service_fails_open_with_on_error_allow(self):
        errors = self.ext_auth_errors()
        t0 = time.monotonic()
        r = self.request("/open/slow/echo", {"X-User": "mallory"})
        took = time.monotonic() - t0
        _, seen = echoed(r)
        self.assertNotIn("x-user", seen)  # no answer, so nobody vouched for a user
        self.assertLess(took, TIMEOUT_S + 2.0)
        self.assertEqual(self.ext_auth_errors(), errors + 1)

    def test_a_service_that_is_down_fails_closed(self):
        errors = self.ext_auth_errors()
        self.assertUnavailable(self.request("/down/echo"))
        self.assertEqual(self.backend_saw("/down/echo"), 0)
        self.assertEqual(self.ext_auth_errors(), errors + 1)
        # The first failure this gwd met (tests run in name order), so the once-a-second limit
        # on these lines cannot have swallowed it.
        wait_until(lambda: 'ext_auth "auth-down"' in self.gw.output(), what="gwd's log line")

    def test_a_service_that_is_down_fails_open_with_on_error_allow(self):
        errors = self.ext_auth_errors()
        _, seen = echoed(self.request("/down-open/echo", {"X-User": "mallory"}))
        self.assertNotIn("x-user", seen)
        self.assertEqual(self.ext_auth_errors(), errors + 1)


if __name__ == "__main__":
    unittest.main()

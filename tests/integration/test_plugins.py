"""Lua plugins (`kind = "lua"`) end to end through a real gwd: headers set for the upstream and
the client, answers given by a script without calling the upstream, runtime errors and exhausted
budgets answered 500 with the Lua error in gwd's logs while gwd keeps serving, reloads that
change a script, and `gwctl validate` naming a script's own file:line."""
import hashlib
import json
import os
import socket
import tempfile
import time
import unittest

from harness import Backend, Conn, Gateway, backend_requests, control, gwctl, request, wait_until

TENANT = """\
local regions = { acme = "eu-1", globex = "us-2" }

function on_request()
  local tenant = gw.request.get_header("x-tenant")
  if gw.request.get_query_arg("deny") then
    return gw.response.exit(451, { message = "denied by the plugin", tenant = tenant },
                            { ["X-Plugin"] = "tenant" })
  end
  gw.request.set_header("x-region", regions[tenant] or "none")
  gw.request.set_header("x-route", gw.route.name)
  gw.request.clear_header("x-drop-me")
  if gw.request.get_query_arg("move") then gw.request.set_path("/moved/echo") end
  gw.ctx.tenant = tenant
end

function on_response()
  gw.response.set_header("x-tenant-seen", gw.ctx.tenant or "none")
  gw.response.set_header("x-upstream-status", gw.response.get_status())
  gw.response.clear_header("x-backend")
end

function on_log()
  if (gw.response.get_status() or 0) >= 500 then
    gw.log("tenant", gw.ctx.tenant, "saw status", gw.response.get_status())
  end
end
"""

BROKEN = """\
function on_request()
  local settings = nil
  return settings.field
end
"""

SPIN = """\
function on_request()
  local n = 0
  while true do n = n + 1 end
end
"""

VERSION = """\
function on_request()
  gw.request.set_header("x-version", "{version}")
end
"""

SPEC = """\
version = 1
[upstreams.a]
endpoints = ["{a}"]

[policies.tenant]
kind = "lua"
script = "plugins/tenant.lua"

[policies.broken]
kind = "lua"
script = "plugins/broken.lua"

[policies.spin]
kind = "lua"
script = "plugins/spin.lua"
max_instructions = 100000

[policies.version]
kind = "lua"
script = "plugins/version.lua"

[[routes]]
name = "tenant"
prefix = "/tenant"
upstream = "a"
policies = ["tenant"]

[[routes]]
name = "broken"
prefix = "/broken"
upstream = "a"
policies = ["broken"]

[[routes]]
name = "spin"
prefix = "/spin"
upstream = "a"
policies = ["spin"]

[[routes]]
name = "version"
prefix = "/version"
upstream = "a"
policies = ["version"]

[[routes]]
name = "plain"
prefix = "/"
upstream = "a"
"""


def echo(resp):
    """What the backend received: (target, {lowercase header name: [values]})."""
    assert resp.status == 200, resp
    doc = resp.json()
    headers = {}
    for k, v in doc["headers"]:
        headers.setdefault(k.lower(), []).append(v)
    return doc["target"], headers


class PluginTest(unittest.TestCase):
    """One backend and one gwd with two workers, serving SPEC with its scripts."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="gw-plugins-")
        cls.addClassCleanup(cls.tmp.cleanup)
        cls.dir = cls.tmp.name
        cls.backend = Backend(cls.dir, "a")
        cls.addClassCleanup(cls.backend.stop)
        for name, text in (("tenant", TENANT), ("broken", BROKEN), ("spin", SPIN),
                           ("version", VERSION.replace("{version}", "1"))):
            cls.write(f"plugins/{name}.lua", text)
        cls.gw = Gateway(cls.dir, SPEC.format(a=cls.backend.address), workers=2)
        cls.addClassCleanup(cls.gw.stop)

    @classmethod
    def write(cls, name, text):
        path = os.path.join(cls.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def request(self, path, headers=None, **kw):
        return request(self.gw.port, "GET", path, headers, **kw)

    def records(self, marker, n, timeout=5.0):
        """The access log records whose path contains `marker`, once there are `n` of them."""
        found = []

        def ready():
            nonlocal found
            found = [r for r in self.gw.access_records(expect=0) if marker in r["path"]]
            return len(found) >= n

        wait_until(ready, timeout, what=f"{n} access log records for {marker}")
        return found

    def stats(self):
        return json.loads(gwctl("stats", "--json", socket_path=self.gw.control, check=True).stdout)

    # ---- the request and the response

    def test_headers_are_set_for_the_upstream_and_the_clients_copies_dropped(self):
        r = self.request("/tenant/echo", {"X-Tenant": "acme", "X-Region": "forged",
                                          "X-Drop-Me": "secret", "X-Kept": "yes"})
        target, h = echo(r)
        self.assertEqual(target, "/tenant/echo")
        self.assertEqual(h["x-region"], ["eu-1"])  # the client's own value is not forwarded
        self.assertEqual(h["x-route"], ["tenant"])
        self.assertNotIn("x-drop-me", h)
        self.assertEqual(h["x-kept"], ["yes"])
        # on_response saw this request's gw.ctx and the upstream's status.
        self.assertEqual(r.header("x-tenant-seen"), "acme")
        self.assertEqual(r.header("x-upstream-status"), "200")

    def test_gw_ctx_does_not_leak_into_the_next_request_on_a_connection(self):
        with Conn(self.gw.port) as c:
            first = c.request("GET", "/tenant/echo", {"X-Tenant": "globex"})
            self.assertEqual(first.header("x-tenant-seen"), "globex")
            second = c.request("GET", "/tenant/echo", {})
            self.assertEqual(second.status, 200, second)
            self.assertEqual(second.header("x-tenant-seen"), "none")
            _, h = echo(second)
            self.assertEqual(h["x-region"], ["none"])

    def test_set_path_changes_the_upstream_path(self):
        target, _ = echo(self.request("/tenant/echo?move=1", {"X-Tenant": "acme"}))
        self.assertEqual(target, "/moved/echo?move=1")

    def test_response_headers_are_changed(self):
        r = self.request("/tenant/echo", {"X-Tenant": "acme"})
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.header("x-backend"))
        r = self.request("/plain/status/200")
        self.assertEqual(r.header("x-backend"), "a")  # a route without the plugin keeps it

    def test_exit_answers_without_calling_the_upstream(self):
        before = len(backend_requests(self.backend, "/tenant/deny"))
        r = self.request("/tenant/deny?deny=1", {"X-Tenant": "acme"})
        self.assertEqual(r.status, 451, r)
        self.assertEqual(r.json(), {"message": "denied by the plugin", "tenant": "acme"})
        self.assertTrue((r.header("content-type") or "").startswith("application/json"), r)
        self.assertEqual(r.header("x-plugin"), "tenant")
        # The next request on the route reaches the backend, so the deny would have too.
        echo(self.request("/tenant/deny", {"X-Tenant": "acme"}))
        wait_until(lambda: len(backend_requests(self.backend, "/tenant/deny")) == before + 1,
                   what="the backend to log the allowed request")
        self.assertEqual(len(backend_requests(self.backend, "/tenant/deny")), before + 1)

    def test_on_log_writes_to_gwds_log(self):
        r = self.request("/tenant/status/503", {"X-Tenant": "acme"})
        self.assertEqual(r.status, 503, r)
        wait_until(lambda: "plugin tenant: tenant acme saw status 503" in self.gw.output(),
                   what="the plugin's log line")

    # ---- failures

    def test_runtime_error_is_a_500_with_the_error_in_gwds_logs(self):
        errors = self.stats().get("lua_errors", 0)
        r = self.request("/broken/echo")
        self.assertEqual(r.status, 500, r)
        body = r.json()
        self.assertEqual(body["error"], "internal")
        self.assertEqual(body["message"], "plugin broken failed")
        self.assertNotIn("broken.lua", r.body.decode())  # the details are for the logs only
        rec = self.records("/broken/echo", 1)[-1]
        self.assertEqual(rec["status"], 500)
        self.assertEqual(rec["error"], "internal")
        self.assertIn("on_request: plugins/broken.lua:3:", rec["error_detail"])
        self.assertIn("attempt to index a nil value", rec["error_detail"])
        wait_until(lambda: "plugins/broken.lua:3:" in self.gw.output(), what="gwd's log line")
        self.assertIn("plugin broken failed", self.gw.output())
        self.assertEqual(self.stats()["lua_errors"], errors + 1)

    def test_exhausted_budget_is_a_500_and_gwd_keeps_serving(self):
        for _ in range(4):  # enough for both workers to meet it
            t0 = time.monotonic()
            r = self.request("/spin/echo", timeout=10)
            self.assertEqual(r.status, 500, r)
            self.assertEqual(r.json()["message"], "plugin spin failed")
            self.assertLess(time.monotonic() - t0, 5)
            echo(self.request("/plain/echo"))
            echo(self.request("/tenant/echo", {"X-Tenant": "acme"}))
        rec = self.records("/spin/echo", 4)[-1]
        self.assertIn("instruction budget exhausted (100000 instructions)", rec["error_detail"])
        self.assertTrue(self.gw.alive())

    # ---- reloads and validate

    def test_reload_runs_the_changed_script(self):
        _, h = echo(self.request("/version/echo"))
        self.assertEqual(h["x-version"], ["1"])
        try:
            self.write("plugins/version.lua", VERSION.replace("{version}", "2"))
            r = gwctl("reload", self.gw.spec_path, socket_path=self.gw.control)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            for _ in range(8):  # new connections, over both workers
                _, h = echo(self.request("/version/echo"))
                self.assertEqual(h["x-version"], ["2"])
            # A script that does not compile is refused, with its file:line; the last good one
            # keeps serving.
            generation = control(self.gw.control, "show info")["result"]["table"]["generation"]
            self.write("plugins/version.lua", "function on_request()\n  x = = 1\nend\n")
            r = gwctl("reload", self.gw.spec_path, socket_path=self.gw.control)
            self.assertNotEqual(r.returncode, 0, r.stdout)
            self.assertIn("plugins/version.lua:2:", r.stdout + r.stderr)
            self.assertEqual(
                control(self.gw.control, "show info")["result"]["table"]["generation"], generation)
            _, h = echo(self.request("/version/echo"))
            self.assertEqual(h["x-version"], ["2"])
        finally:
            self.write("plugins/version.lua", VERSION.replace("{version}", "1"))
            r = gwctl("reload", self.gw.spec_path, socket_path=self.gw.control)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


# ---- response bodies (response_body = "stream" | "whole")

UPPER = """\
function on_response_body(chunk, last)
  gw.log("upper", gw.request.get_method(), gw.request.get_path(), last and "last" or #chunk)
  if last then return gw.request.get_query_arg("footer") end
  if gw.request.get_query_arg("lower") then return chunk:lower() end
  return chunk:upper()
end
"""

CUT = """\
function on_response_body(chunk, last)
  gw.ctx.pieces = (gw.ctx.pieces or 0) + 1
  if gw.ctx.pieces == 2 then error("the second piece is one too many") end
end
"""

JSON_REWRITE = """\
function on_response_body(body, last)
  if gw.request.get_query_arg("exit") then
    return gw.response.exit(409, { message = "answered from the body", seen = #body })
  end
  if gw.request.get_query_arg("fail") then
    local doc = nil
    return doc.field
  end
  gw.response.set_header("x-original-length", #body)
  local out = body:gsub('"backend": "a"', '"backend": "gateway"')
  return '{"rewritten": true, ' .. out:sub(2)
end
"""

BODY_SPEC = """\
version = 1
[upstreams.a]
endpoints = ["{a}"]

[policies.upper]
kind = "lua"
script = "plugins/upper.lua"
response_body = "stream"

[policies.cut]
kind = "lua"
script = "plugins/cut.lua"
response_body = "stream"

[policies.json]
kind = "lua"
script = "plugins/json.lua"
response_body = "whole"

[[routes]]
name = "upper"
prefix = "/upper"
upstream = "a"
policies = ["upper"]

[[routes]]
name = "cut"
prefix = "/cut"
upstream = "a"
policies = ["cut"]

[[routes]]
name = "json"
prefix = "/json"
upstream = "a"
policies = ["json"]
max_body = "4KiB"

[[routes]]
name = "both"
prefix = "/both"
upstream = "a"
policies = ["json", "upper"]
"""


def read_until_close(conn):
    """Everything a Conn receives until the server closes it (what was buffered included)."""
    out = conn.buf
    conn.buf = b""
    try:
        while True:
            data = conn.sock.recv(65536)
            if not data:
                break
            out += data
    except ConnectionResetError:
        pass
    return out


def chunked_backend_body(n):
    """The body backend.py's /chunked/N sends (see its chunk sizes)."""
    out, i = bytearray(), 0
    while n:
        size = min(n, 1000 + (i * 7919) % 5000)
        out += bytes([65 + i % 26]) * size
        n -= size
        i += 1
    return bytes(out)


class ResponseBodyTest(unittest.TestCase):
    """Lua plugins that see the response body, through one gwd worker (so that its log lines
    come in request order) and a backend serving Content-Length, chunked and close-delimited
    bodies."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="gw-plugins-body-")
        cls.addClassCleanup(cls.tmp.cleanup)
        cls.dir = cls.tmp.name
        cls.backend = Backend(cls.dir, "a")
        cls.addClassCleanup(cls.backend.stop)
        for name, text in (("upper", UPPER), ("cut", CUT), ("json", JSON_REWRITE)):
            PluginTest.write.__func__(cls, f"plugins/{name}.lua", text)
        cls.gw = Gateway(cls.dir, BODY_SPEC.format(a=cls.backend.address), workers=1)
        cls.addClassCleanup(cls.gw.stop)

    def record(self, path, query=None):
        """The access log's last record of a request to `path` (with `query`), once written."""
        found = []

        def ready():
            nonlocal found
            found = [r for r in self.gw.access_records(expect=0)
                     if r["path"] == path and r.get("query") == query]
            return found

        wait_until(ready, what=f"an access log record for {path}?{query}")
        return found[-1]

    def stats(self):
        return PluginTest.stats(self)

    def hook_lines(self, path):
        """gwd's log lines of the upper plugin for requests to `path`."""
        return [l for l in self.gw.output().splitlines() if f"plugin upper: upper " in l
                and f" {path} " in l]

    # ---- stream mode

    def test_stream_a_content_length_body_goes_out_chunked_and_changed(self):
        with Conn(self.gw.port) as c:
            r = c.request("GET", "/upper/stream/100000?footer=END")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("transfer-encoding"), "chunked")
            self.assertIsNone(r.header("content-length"))
            self.assertEqual(r.body, b"X" * 100000 + b"END")
            # The connection stays open for the next request.
            r = c.request("GET", "/upper/stream/10")
            self.assertEqual(r.body, b"XXXXXXXXXX")
        # The hook saw pieces, then the end.
        wait_until(lambda: any(" last (request_id" in l for l in self.hook_lines("/upper/stream/10")),
                   what="the hook's log lines")
        lines = self.hook_lines("/upper/stream/100000")
        self.assertGreater(len(lines), 1)
        self.assertIn(" last (request_id", lines[-1])

    def test_stream_a_chunked_body_keeps_its_trailers(self):
        r = request(self.gw.port, "GET", "/upper/chunked/30000?lower=1")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("transfer-encoding"), "chunked")
        original = chunked_backend_body(30000)
        self.assertEqual(r.body, original.lower())
        # The trailer the backend computed over what it sent still arrives.
        self.assertEqual(r.trailers, [("x-checksum", hashlib.sha256(original).hexdigest())])

    def test_stream_a_close_delimited_body(self):
        r = request(self.gw.port, "GET", "/upper/close-delimited/5000?footer=!")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("transfer-encoding"), "chunked")
        self.assertEqual(r.body, b"Y" * 5000 + b"!")

    def test_stream_to_an_http10_client_ends_with_the_connection(self):
        with Conn(self.gw.port) as c:
            c.send(b"GET /upper/stream/3000?footer=END HTTP/1.0\r\nHost: example.test\r\n"
                   b"Connection: keep-alive\r\n\r\n")
            out = read_until_close(c)
        head, _, body = out.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 "), out[:200])
        fields = head.lower().split(b"\r\n")[1:]
        self.assertIn(b"connection: close", fields)
        self.assertFalse([f for f in fields if f.startswith((b"content-length", b"transfer-enc"))])
        self.assertEqual(body, b"X" * 3000 + b"END")

    def test_no_body_no_hook_head_204_304(self):
        with Conn(self.gw.port) as c:
            r = c.request("HEAD", "/upper/stream/1000?footer=END")
            self.assertEqual((r.version, r.status), ("HTTP/1.1", 200), r)
            self.assertEqual(r.header("content-length"), "1000")  # what a GET would get
            for code in (204, 304):
                r = c.request("GET", f"/upper/status/{code}?footer=END")
                self.assertEqual((r.version, r.status), ("HTTP/1.1", code), r)
                self.assertIsNone(r.header("transfer-encoding"))
            # Nothing was written after those heads: the next response on the connection reads
            # cleanly, and it is the only one the hook saw.
            r = c.request("GET", "/upper/stream/5?footer=.")
            self.assertEqual((r.version, r.status), ("HTTP/1.1", 200), r)
            self.assertEqual(r.body, b"XXXXX.")
            self.assertEqual(c.buf, b"")
            c.sock.settimeout(0.2)
            with self.assertRaises(socket.timeout):
                c.sock.recv(1)  # and nothing is left over after it
        wait_until(lambda: self.hook_lines("/upper/stream/5"), what="the hook's last log line")
        self.assertEqual(self.hook_lines("/upper/stream/1000"), [])
        self.assertEqual(self.hook_lines("/upper/status/204"), [])
        self.assertEqual(self.hook_lines("/upper/status/304"), [])

    def test_stream_failure_cuts_the_response_short(self):
        errors = self.stats().get("lua_errors", 0)
        with Conn(self.gw.port) as c:
            c.send(b"GET /cut/stream/200000 HTTP/1.1\r\nHost: example.test\r\n\r\n")
            out = read_until_close(c)  # gwd closes the connection
        head, _, body = out.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 "), out[:200])
        self.assertIn(b"transfer-encoding: chunked", head.lower())
        # The first piece went out; the body never ends with the last chunk.
        self.assertGreater(len(body), 0)
        self.assertLess(len(body), 200000)
        self.assertFalse(body.endswith(b"0\r\n\r\n"))
        rec = self.record("/cut/stream/200000")
        self.assertEqual(rec["status"], 200)
        self.assertEqual(rec["error"], "internal")
        self.assertIn("on_response_body: plugins/cut.lua:3: the second piece is one too many",
                      rec["error_detail"])
        self.assertEqual(rec["bytes_out"], len(out))
        wait_until(lambda: "(the response is cut short)" in self.gw.output(), what="gwd's line")
        self.assertEqual(self.stats()["lua_errors"], errors + 1)
        self.assertTrue(self.gw.alive())

    def test_stream_bytes_out_counts_what_the_client_got(self):
        with Conn(self.gw.port) as c:
            c.send(b"GET /upper/stream/20000?footer=bytes HTTP/1.1\r\nHost: example.test\r\n"
                   b"Connection: close\r\n\r\n")
            out = read_until_close(c)
        self.assertTrue(out.endswith(b"bytes\r\n0\r\n\r\n"), out[-50:])
        rec = self.record("/upper/stream/20000", "footer=bytes")
        self.assertEqual(rec["bytes_out"], len(out))

    # ---- whole mode

    def test_whole_rewrites_json_with_its_new_length_and_keeps_the_connection(self):
        with Conn(self.gw.port) as c:
            r = c.request("GET", "/json/echo")
            self.assertEqual(r.status, 200, r)
            self.assertIsNone(r.header("transfer-encoding"))
            self.assertEqual(int(r.header("content-length")), len(r.body))
            doc = r.json()
            self.assertIs(doc["rewritten"], True)
            self.assertEqual(doc["backend"], "gateway")
            self.assertEqual(doc["target"], "/json/echo")
            # A header set in whole mode reaches the head, which goes out after the body hook.
            grown = len('"rewritten": true, ') + len("gateway") - len("a")
            self.assertEqual(int(r.header("x-original-length")), len(r.body) - grown)
            # The same connection serves the next request.
            r = c.request("GET", "/json/echo?again=1")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["target"], "/json/echo?again=1")

    def test_whole_bytes_out_counts_what_the_client_got(self):
        with Conn(self.gw.port) as c:
            c.send(b"GET /json/echo?bytes=1 HTTP/1.1\r\nHost: example.test\r\n"
                   b"Connection: close\r\n\r\n")
            out = read_until_close(c)
        head, _, body = out.partition(b"\r\n\r\n")
        self.assertIn(f"content-length: {len(body)}".encode(), head.lower())
        self.assertIs(json.loads(body)["rewritten"], True)
        rec = self.record("/json/echo", "bytes=1")
        self.assertEqual(rec["bytes_out"], len(out))

    def test_whole_body_over_max_body_is_a_502(self):
        r = request(self.gw.port, "GET", "/json/stream/5000")
        self.assertEqual(r.status, 502, r)
        self.assertEqual(r.json()["error"], "upstream_protocol_error")
        rec = self.record("/json/stream/5000")
        self.assertIn("larger than the route's max_body", rec["error_detail"])
        # A body within it passes.
        r = request(self.gw.port, "GET", "/json/stream/4096")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(r.body), 4096 + len(b'{"rewritten": true, ') - 1)

    def test_whole_body_that_breaks_off_is_a_502(self):
        r = request(self.gw.port, "GET", "/json/truncated")
        self.assertEqual(r.status, 502, r)
        self.assertEqual(r.json()["error"], "upstream_protocol_error")

    def test_a_stream_filter_on_a_whole_body_route_sees_a_piece_then_the_end(self):
        # Body hooks run in reverse order: upper (stream) first, on the body read whole, then
        # json (whole) on what upper made of it.
        r = request(self.gw.port, "GET", "/both/stream/10?footer=end")
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.header("transfer-encoding"))
        self.assertEqual(r.body, b'{"rewritten": true, XXXXXXXXXend')
        self.assertEqual(int(r.header("content-length")), len(r.body))

    def test_whole_exit_answers_instead(self):
        r = request(self.gw.port, "GET", "/json/echo?exit=1")
        self.assertEqual(r.status, 409, r)
        doc = r.json()
        self.assertEqual(doc["message"], "answered from the body")
        self.assertGreater(doc["seen"], 100)  # it saw the upstream's whole body
        self.assertEqual(int(r.header("content-length")), len(r.body))

    def test_whole_runtime_error_is_a_500(self):
        errors = self.stats().get("lua_errors", 0)
        with Conn(self.gw.port) as c:
            r = c.request("GET", "/json/echo?fail=1")
            self.assertEqual(r.status, 500, r)
            self.assertEqual(r.json()["message"], "plugin json failed")
            self.assertIsNone(r.header("x-original-length"))
            r = c.request("GET", "/json/echo")  # the connection is still good
            self.assertEqual(r.status, 200, r)
        rec = self.record("/json/echo", "fail=1")
        self.assertEqual(rec["status"], 500)
        self.assertIn("on_response_body: plugins/json.lua:7: attempt to index a nil value",
                      rec["error_detail"])
        self.assertEqual(self.stats()["lua_errors"], errors + 1)


class Validate(unittest.TestCase):
    """`gwctl validate` reads and compiles the scripts a spec names (no gwd)."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="gw-plugins-validate-")
        self.addCleanup(self.tmp.cleanup)
        self.dir = self.tmp.name
        os.makedirs(os.path.join(self.dir, "plugins"))

    def spec(self, script):
        with open(os.path.join(self.dir, "plugins", "x.lua"), "w") as f:
            f.write(script)
        path = os.path.join(self.dir, "spec.toml")
        with open(path, "w") as f:
            f.write('version = 1\n[upstreams.a]\nendpoints = ["127.0.0.1:9"]\n'
                    '[policies.plug]\nkind = "lua"\nscript = "plugins/x.lua"\n'
                    '[[routes]]\nname = "r"\nprefix = "/"\nupstream = "a"\npolicies = ["plug"]\n')
        return path

    def test_syntax_error_is_reported_at_the_scripts_file_and_line(self):
        path = self.spec("-- a plugin\nfunction on_request()\n  local x = = 1\nend\n")
        r = gwctl("validate", path)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        out = r.stdout + r.stderr
        self.assertIn(os.path.join(self.dir, "plugins", "x.lua") + ":3:", out)
        self.assertIn("policy.lua-syntax", out)
        self.assertIn('policy "plug"', out)

    def test_a_good_script_validates(self):
        r = gwctl("validate", self.spec("function on_request() end\n"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()

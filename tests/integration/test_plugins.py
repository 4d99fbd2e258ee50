"""Lua plugins (`kind = "lua"`) end to end through a real gwd: headers set for the upstream and
the client, answers given by a script without calling the upstream, runtime errors and exhausted
budgets answered 500 with the Lua error in gwd's logs while gwd keeps serving, reloads that
change a script, and `gwctl validate` naming a script's own file:line."""
import json
import os
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

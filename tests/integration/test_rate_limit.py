"""Rate limits end to end through real gwd processes: exact counts under concurrent load across
workers, every kind of key, refill, buckets across reloads, one combined limit for two gateways
sharing a real redis-server, and failing open or closed (without hanging) when Redis is gone.

Counts are exact. The only slack allowed is the tokens the bucket can refill while a test runs:
a bucket of `burst` tokens refilled one per `interval` lets at most
burst + floor(elapsed / interval) requests through in `elapsed` seconds, and the rates here make
that refill zero or nearly so."""
import base64
import hashlib
import hmac
import itertools
import json
import math
import os
import re
import signal
import tempfile
import threading
import time
import unittest

from harness import Backend, Conn, Gateway, Redis, control, gwctl, request, wait_until

# The IETF draft fields as gwd writes them: RateLimit-Policy: "name";q=COUNT;w=WINDOW_S and
# RateLimit: "name";r=REMAINING;t=SECONDS_UNTIL_FULL.
POLICY_FIELD = re.compile(r'^"(?P<name>[^"]+)";q=(?P<q>\d+);w=(?P<w>\d+)$')
LIMIT_FIELD = re.compile(r'^"(?P<name>[^"]+)";r=(?P<r>\d+);t=(?P<t>\d+)$')
CLIENTS = 8


def toml(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    return "[" + ", ".join(toml(x) for x in v) + "]"


def make_spec(upstream, policies, routes):
    """policies: {name: {setting: value}}; routes: [{name, prefix, policies, ...}] (in order)."""
    lines = ["version = 1", "[upstreams.app]", f"endpoints = [{json.dumps(upstream)}]"]
    for name, settings in policies.items():
        lines.append(f"[policies.{name}]")
        lines += [f"{k} = {toml(v)}" for k, v in settings.items()]
    for r in routes:
        lines.append("[[routes]]")
        lines += [f"{k} = {toml(v)}" for k, v in {"upstream": "app", **r}.items()]
    return "\n".join(lines) + "\n"


def fire(jobs, clients=CLIENTS, timeout=5.0):
    """Sends `jobs` ((port, path, headers) each, one connection per request) from `clients`
    threads at once. Returns (responses or exceptions in job order, elapsed seconds)."""
    results = [None] * len(jobs)
    order = itertools.count()
    start = threading.Barrier(clients + 1)

    def client():
        start.wait(10)
        while (i := next(order)) < len(jobs):
            port, path, headers = jobs[i]
            try:
                results[i] = request(port, path=path, headers=headers, timeout=timeout)
            except Exception as e:  # a reset, a timeout: reported by the caller
                results[i] = e
    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    start.wait(10)
    t0 = time.monotonic()
    for t in threads:
        t.join(60)
    elapsed = time.monotonic() - t0
    assert not any(t.is_alive() for t in threads), "client threads did not finish"
    return results, elapsed


class RateLimitCase(unittest.TestCase):
    """One backend per test; each test starts the gateways it needs and stops them by PID."""

    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="gw-rl-")
        self.addCleanup(tmp.cleanup)
        self.dir = tmp.name
        self.backend = self.own(Backend(self.dir, "a"))

    def own(self, proc):
        self.addCleanup(proc.stop)
        return proc

    def spec(self, policies, routes):
        return make_spec(self.backend.address, policies, routes)

    def gateway(self, policies, routes, workers=2, name="gw"):
        return self.own(Gateway(self.dir, self.spec(policies, routes), workers=workers, name=name))

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def statuses(self, port, path, n, headers=None):
        return [request(port, path=path, headers=headers, timeout=5).status for _ in range(n)]

    def assertAnswered(self, results):
        failed = [r for r in results if isinstance(r, Exception)]
        self.assertEqual(failed, [], f"{len(failed)} requests got no answer")
        self.assertLessEqual({r.status for r in results}, {200, 429},
                             [r for r in results if r.status not in (200, 429)][:3])

    def assertRateFields(self, r, name, count, window_s):
        """The RateLimit-Policy and RateLimit fields; returns (remaining, reset seconds)."""
        pol = r.headers_named("ratelimit-policy")
        lim = r.headers_named("ratelimit")
        self.assertEqual(len(pol), 1, r)
        self.assertEqual(len(lim), 1, r)
        m = POLICY_FIELD.match(pol[0])
        self.assertIsNotNone(m, pol[0])
        self.assertEqual((m["name"], int(m["q"]), int(m["w"])), (name, count, window_s))
        m = LIMIT_FIELD.match(lim[0])
        self.assertIsNotNone(m, lim[0])
        self.assertEqual(m["name"], name)
        return int(m["r"]), int(m["t"])

    def assertLimited(self, r, name, count, window_s, interval_s):
        """A 429 as gwd answers it: Retry-After (whole seconds, at least 1, at most one token's
        wait), r=0 and a JSON error body."""
        self.assertEqual(r.status, 429, r)
        retry = r.header("retry-after")
        self.assertIsNotNone(retry, r)
        self.assertRegex(retry, r"^\d+$")
        self.assertGreaterEqual(int(retry), 1)
        self.assertLessEqual(int(retry), max(1, math.ceil(interval_s)))
        remaining, reset = self.assertRateFields(r, name, count, window_s)
        self.assertEqual(remaining, 0)
        self.assertGreaterEqual(reset, 1)
        self.assertLessEqual(reset, window_s * 2)
        body = r.json()
        self.assertEqual(body["error"], "rate_limited")
        self.assertIn(name, body["message"])
        return int(retry)

    def assertExactly(self, results, elapsed, name, count, burst, window_s):
        """Exactly `burst` allowed (plus what could refill in `elapsed`), every other one a 429,
        and the allowed ones counted down the bucket one by one."""
        self.assertAnswered(results)
        interval = window_s / count
        refill = math.floor(elapsed / interval)
        ok = [r for r in results if r.status == 200]
        refused = [r for r in results if r.status == 429]
        self.assertGreaterEqual(len(ok), burst, f"elapsed {elapsed:.2f}s")
        self.assertLessEqual(len(ok), burst + refill, f"elapsed {elapsed:.2f}s")
        self.assertEqual(len(ok) + len(refused), len(results))
        remaining = []
        for r in ok:
            rem, reset = self.assertRateFields(r, name, count, window_s)
            self.assertIsNone(r.header("retry-after"), r)
            self.assertGreaterEqual(reset, 1)
            self.assertLessEqual(reset, math.ceil(burst * interval))
            remaining.append(rem)
        if refill == 0:  # each token was handed out once, whatever order the answers came in
            self.assertEqual(sorted(remaining), list(range(burst)))
        else:
            self.assertTrue(all(0 <= x < burst for x in remaining), remaining)
        for r in refused:
            self.assertLimited(r, name, count, window_s, interval)
        return len(ok)


class Exactness(RateLimitCase):
    def test_local_bucket_is_exact_across_four_workers_under_concurrent_load(self):
        # 20/m: one token every 3 s, so the load (well under a second) sees no refill.
        gw = self.gateway({"per-route": {"kind": "rate_limit", "rate": "20/m", "burst": 20, "key": "route"}},
                          [{"name": "limited", "prefix": "/limited", "policies": ["per-route"]},
                           {"name": "open", "prefix": "/"}], workers=4)
        results, elapsed = fire([(gw.port, f"/limited/{i}", None) for i in range(200)])
        allowed = self.assertExactly(results, elapsed, "per-route", 20, 20, 60)
        print(f"\nlocal: 200 requests from {CLIENTS} clients over 4 workers in {elapsed:.2f}s: "
              f"{allowed} allowed", flush=True)
        # The bucket stays empty, and routes without the policy are untouched by it.
        r = request(gw.port, path="/limited/after")
        self.assertLimited(r, "per-route", 20, 60, 3)
        r = request(gw.port, path="/elsewhere")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers_named("ratelimit"), [])
        self.assertEqual(r.headers_named("ratelimit-policy"), [])
        # The load really was spread: several workers counted against the one bucket.
        recs = [x for x in gw.access_records(202) if x["route"] == "limited"]
        self.assertGreater(len({x["worker"] for x in recs if x["status"] == 200}), 1)
        self.assertEqual(sum(1 for x in recs if x["status"] == 200), allowed)
        stats = json.loads(gwctl("stats", "--json", socket_path=gw.control, check=True).stdout)
        self.assertEqual(stats["routes"]["limited"]["requests"], 201)
        self.assertEqual(stats["routes"]["limited"]["status"]["4xx"], 201 - allowed)
        self.assertEqual(stats["rate_limit_store_errors"], 0)

    def test_sequential_requests_count_down_and_a_refusal_keeps_the_connection(self):
        # 5/h: a token comes back every 12 minutes, longer than ctest lets the suite run, so no
        # refill can happen during the test however slow the machine.
        gw = self.gateway({"five": {"kind": "rate_limit", "rate": "5/h", "key": "global"}},
                          [{"name": "r", "prefix": "/", "policies": ["five"]}])
        seen, resets = [], []
        for i in range(5):
            r = request(gw.port, path=f"/echo/{i}")
            self.assertEqual(r.status, 200, r)
            rem, reset = self.assertRateFields(r, "five", 5, 3600)
            seen.append(rem)
            resets.append(reset)
        self.assertEqual(seen, [4, 3, 2, 1, 0])
        self.assertEqual(resets, sorted(resets))  # the bucket fills up later and later
        self.assertLessEqual(resets[-1], 3600)
        # Several refusals on one keep-alive connection (no body: nothing left to read).
        with Conn(gw.port) as c:
            for _ in range(3):
                self.assertLimited(c.request(path="/echo"), "five", 5, 3600, 720)


class Keys(RateLimitCase):
    RL = {"kind": "rate_limit", "rate": "3/m", "burst": 3}

    def test_client_ip_is_the_peer_and_forwarding_headers_cannot_spread_it(self):
        gw = self.gateway({"per-ip": {**self.RL, "key": "client_ip"}},
                          [{"name": "r", "prefix": "/", "policies": ["per-ip"]}])
        got = [request(gw.port, path="/echo", headers={"X-Forwarded-For": f"203.0.113.{i}",
                                                       "Forwarded": f"for=198.51.100.{i}"}).status
               for i in range(5)]
        self.assertEqual(got, [200, 200, 200, 429, 429])
        self.assertLimited(request(gw.port, path="/echo"), "per-ip", 3, 60, 20)

    def test_behind_a_trusted_proxy_client_ip_is_the_address_the_proxy_names(self):
        spec = self.spec({"per-ip": {**self.RL, "key": "client_ip"}},
                         [{"name": "r", "prefix": "/", "policies": ["per-ip"]}])
        gw = self.own(Gateway(self.dir, spec, workers=2, extra=("--trusted-proxy", "127.0.0.0/8")))
        # The client's own claim (left of the trusted hop) is not believed; the proxy's is.
        one = {"X-Forwarded-For": "192.0.2.1, 203.0.113.7"}
        two = {"X-Forwarded-For": "192.0.2.1, 203.0.113.8"}
        self.assertEqual([request(gw.port, path="/echo", headers=one).status for _ in range(4)],
                         [200, 200, 200, 429])
        self.assertEqual([request(gw.port, path="/echo", headers=two).status for _ in range(4)],
                         [200, 200, 200, 429])
        # Without the header, the proxy itself is the client, with a bucket of its own.
        self.assertEqual(self.statuses(gw.port, "/echo", 1), [200])
        clients = [rec["client"] for rec in gw.access_records(expect=9)]
        # (Two workers write the log, so lines may interleave.)
        self.assertEqual(sorted(clients), ["127.0.0.1"] + ["203.0.113.7"] * 4 + ["203.0.113.8"] * 4)

    def test_header_key_gives_each_tenant_its_own_bucket(self):
        gw = self.gateway({"per-tenant": {**self.RL, "key": "header:X-Tenant"}},
                          [{"name": "r", "prefix": "/", "policies": ["per-tenant"]}])
        jobs = [(gw.port, "/echo", {"X-Tenant": t}) for t in ("acme", "globex") for _ in range(10)]
        results, elapsed = fire(jobs)
        self.assertAnswered(results)
        for tenant in ("acme", "globex"):
            mine = [r for (_, _, h), r in zip(jobs, results) if h["X-Tenant"] == tenant]
            with self.subTest(tenant=tenant):
                self.assertExactly(mine, elapsed, "per-tenant", 3, 3, 60)
        # The header's name is case-insensitive; a request without it is counted by its client
        # address, not against a tenant (nor in one bucket shared by everyone without it).
        self.assertEqual(request(gw.port, path="/echo", headers={"x-tenant": "acme"}).status, 429)
        self.assertEqual(self.statuses(gw.port, "/echo", 4), [200, 200, 200, 429])
        self.assertEqual(request(gw.port, path="/echo", headers={"X-Tenant": "initech"}).status, 200)

    def key_lines(self, consumer, n=1):
        keys, lines = [], []
        for _ in range(n):
            out = json.loads(gwctl("key", "new", consumer, "--json", check=True).stdout)
            self.assertEqual(out["consumer"], consumer)
            self.assertNotIn(out["key"], out["line"])  # the file holds a digest only
            keys.append(out["key"])
            lines.append(out["line"])
        return keys, lines

    def test_consumer_key_gives_each_api_key_holder_its_own_bucket(self):
        alice, alice_lines = self.key_lines("alice", 2)  # two keys, one consumer
        bob, bob_lines = self.key_lines("bob")
        self.write("keys.txt", "\n".join(["# test consumers", *alice_lines, *bob_lines]) + "\n")
        # keys_file is relative to the spec, which Gateway writes into the same directory.
        gw = self.gateway({"keys": {"kind": "api_key", "header": "x-api-key", "keys_file": "keys.txt"},
                           "per-consumer": {**self.RL, "key": "consumer"}},
                          [{"name": "r", "prefix": "/", "policies": ["per-consumer", "keys"]}])
        # Unauthenticated requests are refused before they are counted.
        for _ in range(5):
            r = request(gw.port, path="/echo")
            self.assertEqual(r.status, 401, r)
            self.assertEqual(r.headers_named("ratelimit"), [])
        jobs = [(gw.port, "/echo", {"x-api-key": k}) for k in (alice[0], alice[1], bob[0]) for _ in range(5)]
        results, elapsed = fire(jobs)
        self.assertAnswered(results)
        by = {"alice": [], "bob": []}
        for (_, _, h), r in zip(jobs, results):
            by["bob" if h["x-api-key"] == bob[0] else "alice"].append(r)
        for consumer, mine in by.items():
            with self.subTest(consumer=consumer):
                self.assertExactly(mine, elapsed, "per-consumer", 3, 3, 60)
                for r in mine:
                    if r.status == 200:
                        forwarded = {k.lower(): v for k, v in r.json()["headers"]}
                        self.assertEqual(forwarded.get("x-consumer"), consumer)
                        self.assertNotIn("x-api-key", forwarded)
        # A wrong key is still a 401, not a 429.
        self.assertEqual(request(gw.port, path="/echo", headers={"x-api-key": "nope"}).status, 401)

    def test_route_key_counts_each_route_and_global_counts_them_together(self):
        gw = self.gateway({"per-route": {**self.RL, "burst": 2, "key": "route"},
                           "everyone": {**self.RL, "rate": "3/10s", "burst": 2, "key": "global"}},
                          [{"name": "r1", "prefix": "/r1", "policies": ["per-route"]},
                           {"name": "r2", "prefix": "/r2", "policies": ["per-route"]},
                           {"name": "g1", "prefix": "/g1", "policies": ["everyone"]},
                           {"name": "g2", "prefix": "/g2", "policies": ["everyone"]}])
        self.assertEqual(self.statuses(gw.port, "/r1", 3), [200, 200, 429])
        self.assertEqual(self.statuses(gw.port, "/r2", 3), [200, 200, 429])
        self.assertEqual(self.statuses(gw.port, "/g1", 1) + self.statuses(gw.port, "/g2", 2), [200, 200, 429])
        r = request(gw.port, path="/g1")
        self.assertLimited(r, "everyone", 3, 10, 10 / 3)  # "3/10s": a 10 s window

    def test_claim_key_counts_by_a_token_claim(self):
        secret = "rate-limit-test-secret"
        self.write("secret.txt", secret + "\n")

        def token(**claims):
            def b64(d):
                return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
            head = b64({"alg": "HS256", "typ": "JWT"}) + "." + b64({"exp": int(time.time()) + 600, **claims})
            sig = hmac.new(secret.encode(), head.encode(), hashlib.sha256).digest()
            return head + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()

        gw = self.gateway({"tokens": {"kind": "jwt", "secret_file": "secret.txt", "algorithms": ["HS256"]},
                           "per-org": {**self.RL, "burst": 2, "key": "claim:org"}},
                          [{"name": "r", "prefix": "/", "policies": ["tokens", "per-org"]}])

        def statuses(tok, n):
            return self.statuses(gw.port, "/echo", n, headers={"Authorization": f"Bearer {tok}"})
        # Two users of one organisation share its bucket; another organisation has its own.
        self.assertEqual(statuses(token(sub="u1", org="acme"), 1) + statuses(token(sub="u2", org="acme"), 2),
                         [200, 200, 429])
        self.assertEqual(statuses(token(sub="u3", org="globex"), 3), [200, 200, 429])
        self.assertEqual(statuses(token(sub="u4", org=42), 3), [200, 200, 429])  # not a string
        # A token without the claim is counted by its client address.
        self.assertEqual(statuses(token(sub="u5"), 3), [200, 200, 429])
        self.assertEqual(self.statuses(gw.port, "/echo", 1), [401])  # no token: never counted


class Refill(RateLimitCase):
    def test_waiting_retry_after_lets_a_request_through(self):
        gw = self.gateway({"twice": {"kind": "rate_limit", "rate": "2/s", "burst": 2, "key": "route"}},
                          [{"name": "r", "prefix": "/", "policies": ["twice"]}])
        self.assertEqual(self.statuses(gw.port, "/echo", 2), [200, 200])
        for _ in range(10):  # a token comes back every 500 ms: a slow machine may see one
            r = request(gw.port, path="/echo")
            if r.status != 200:
                break
        retry = self.assertLimited(r, "twice", 2, 1, 0.5)
        self.assertEqual(retry, 1)  # 500 ms to the next token, rounded up to whole seconds
        time.sleep(min(retry, 2))
        r = request(gw.port, path="/echo")
        self.assertEqual(r.status, 200, r)
        rem, _ = self.assertRateFields(r, "twice", 2, 1)
        self.assertIn(rem, (0, 1))  # one or two tokens came back in that second; this used one


class Reloads(RateLimitCase):
    POLICY = {"kind": "rate_limit", "rate": "3/m", "burst": 3, "key": "route"}

    def routes(self, other_timeout="10s"):
        return [{"name": "limited", "prefix": "/limited", "policies": ["rl"]},
                {"name": "other", "prefix": "/", "timeout": other_timeout}]

    def reload(self, gw, spec_text, name):
        r = gwctl("reload", self.write(name, spec_text), socket_path=gw.control)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout

    def generation(self, gw):
        return control(gw.control, "show info")["result"]["table"]["generation"]

    def test_buckets_survive_reloads_of_an_unchanged_policy_and_restart_when_it_changes(self):
        gw = self.gateway({"rl": self.POLICY}, self.routes(), workers=2)
        self.assertEqual(self.statuses(gw.port, "/limited", 4), [200, 200, 200, 429])
        g0 = self.generation(gw)

        r = gwctl("reload", gw.spec_path, socket_path=gw.control)  # the very same spec
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("unchanged", r.stdout)
        self.assertEqual(self.generation(gw), g0)
        self.assertEqual(self.statuses(gw.port, "/limited", 4), [429] * 4)

        # Another route changes: a new generation, the same bucket (on every worker).
        out = self.reload(gw, self.spec({"rl": self.POLICY}, self.routes("7s")), "other-route.toml")
        self.assertEqual(self.generation(gw), g0 + 1, out)
        self.assertEqual(self.statuses(gw.port, "/limited", 6), [429] * 6)
        self.assertEqual(self.statuses(gw.port, "/other", 2), [200, 200])

        # SIGHUP reloads the (unchanged) table file: still the same bucket. `show info` has the
        # last reload's outcome: a refused reload first, so that only the SIGHUP's own reload
        # can make it "unchanged" again (the reload of the same spec above did too).
        self.assertFalse(control(gw.control, "reload", {"path": os.path.join(self.dir, "none.gwrt")})["ok"])
        os.kill(gw.pid, signal.SIGHUP)
        wait_until(lambda: control(gw.control, "show info")["result"]["last_reload"]["ok"],
                   what="the SIGHUP reload")
        self.assertEqual(control(gw.control, "show info")["result"]["last_reload"]["message"], "unchanged")
        self.assertEqual(self.generation(gw), g0 + 1)
        self.assertEqual(self.statuses(gw.port, "/limited", 2), [429] * 2)

        # The policy changes (a bigger burst): its bucket starts full.
        changed = {**self.POLICY, "burst": 4}
        self.reload(gw, self.spec({"rl": changed}, self.routes("7s")), "changed.toml")
        self.assertEqual(self.generation(gw), g0 + 2)
        first = request(gw.port, path="/limited")
        self.assertEqual(first.status, 200, first)
        self.assertEqual(self.assertRateFields(first, "rl", 3, 60)[0], 3)
        self.assertEqual(self.statuses(gw.port, "/limited", 4), [200, 200, 200, 429])

        # Counting goes on in the new bucket after a further unrelated change.
        self.reload(gw, self.spec({"rl": changed}, self.routes("8s")), "changed-again.toml")
        self.assertEqual(self.statuses(gw.port, "/limited", 2), [429, 429])


class RedisStore(RateLimitCase):
    def setUp(self):
        super().setUp()
        self.redis = self.own(Redis(self.dir))

    def redis_policy(self, **kw):
        return {"kind": "rate_limit", "store": "redis", "redis": self.redis.address, **kw}

    def test_two_gateways_share_one_limit(self):
        policies = {"shared": self.redis_policy(rate="30/m", burst=30, key="route")}
        routes = [{"name": "limited", "prefix": "/", "policies": ["shared"]}]
        a = self.gateway(policies, routes, workers=2, name="gw-a")
        b = self.gateway(policies, routes, workers=2, name="gw-b")
        results, elapsed = fire([((a, b)[i % 2].port, f"/echo/{i}", None) for i in range(100)])
        allowed = self.assertExactly(results, elapsed, "shared", 30, 30, 60)
        per_gw = [sum(1 for i, r in enumerate(results) if i % 2 == g and r.status == 200) for g in (0, 1)]
        print(f"\nredis: 100 requests over two gateways in {elapsed:.2f}s: {allowed} allowed "
              f"({per_gw[0]} + {per_gw[1]})", flush=True)
        self.assertEqual(self.redis.command("KEYS", "gw:rl:*"), [b"gw:rl:shared:limited"])
        ttl = self.redis.command("PTTL", "gw:rl:shared:limited")
        self.assertGreater(ttl, 0)  # the key goes away once the bucket is full again
        self.assertLessEqual(ttl, 60_000)
        for gw in (a, b):
            self.assertLimited(request(gw.port, path="/echo"), "shared", 30, 60, 2)
            stats = json.loads(gwctl("stats", "--json", socket_path=gw.control, check=True).stdout)
            self.assertEqual(stats["rate_limit_store_errors"], 0)

    def store_error_lines(self, gw):
        needle = f"redis {self.redis.address}:"
        return [l for l in gw.output().splitlines() if needle in l]

    def test_fail_open_and_fail_closed_when_redis_is_gone_and_recovery(self):
        policies = {"soft": self.redis_policy(rate="100/s", key="route", redis_timeout="100ms",
                                              on_redis_error="allow"),
                    "hard": self.redis_policy(rate="100/s", key="route", redis_timeout="100ms",
                                              on_redis_error="deny")}
        gw = self.gateway(policies, [{"name": "soft", "prefix": "/soft", "policies": ["soft"]},
                                     {"name": "hard", "prefix": "/hard", "policies": ["hard"]}],
                          workers=2)
        for path, name in (("/soft", "soft"), ("/hard", "hard")):
            r = request(gw.port, path=path)
            self.assertEqual(r.status, 200, r)
            self.assertRateFields(r, name, 100, 1)
        self.assertEqual(self.store_error_lines(gw), [])

        self.assertEqual(self.redis.stop(keep_port=True), 0)  # by PID; every later call fails
        t0 = time.monotonic()
        n = 40
        results, _ = fire([(gw.port, ("/soft", "/hard")[i % 2], None) for i in range(n)], timeout=5)
        for i in range(4):  # and one by one, each answered (a 5 s socket timeout bounds them)
            r = request(gw.port, path=("/soft", "/hard")[i % 2], timeout=5)
            results.append(r)
        elapsed = time.monotonic() - t0
        failed = [r for r in results if isinstance(r, Exception)]
        self.assertEqual(failed, [], "requests must not hang while Redis is down")
        for i, r in enumerate(results):
            if i % 2 == 0:
                self.assertEqual(r.status, 200, r)
            else:
                self.assertEqual(r.status, 503, r)
                self.assertEqual(r.json()["error"], "policy_unavailable")
                self.assertIn("hard", r.json()["message"])

        stats = json.loads(gwctl("stats", "--json", socket_path=gw.control, check=True).stdout)
        self.assertEqual(stats["rate_limit_store_errors"], len(results))
        text = gwctl("stats", socket_path=gw.control, check=True).stdout
        self.assertIn("rate_limit_store_errors", text)
        # Logged, but not once per request: at most a line a second per worker.
        lines = self.store_error_lines(gw)
        self.assertGreaterEqual(len(lines), 1, gw.output())
        self.assertLessEqual(len(lines), 2 * (math.ceil(elapsed) + 1), "\n".join(lines))
        self.assertTrue(any(("failing open" in l or "failing closed" in l) for l in lines), lines)
        needle = f"redis {self.redis.address}: "
        self.assertFalse([l for l in lines if l.count(needle) != 1], "the server is named once a line")

        # Redis comes back on the same address: the workers reconnect (backoff at most 2 s).
        self.redis = self.own(Redis(self.dir, name="redis-again", again=self.redis))

        def recovered():
            return request(gw.port, path="/hard", timeout=5).status == 200
        seen = len(gw.access_records(expect=0))
        wait_until(recovered, timeout=15, what="a request to pass again once Redis is back")

        # Each worker reconnects on its own (a worker still backing off tries again within 2 s):
        # wait until a /hard request has passed on every worker, as the access log tells.
        def every_worker_back():
            request(gw.port, path="/hard", timeout=5)  # new connections land on either worker
            recs = gw.access_records(expect=0)[seen:]
            return {x["worker"] for x in recs if x["path"] == "/hard" and x["status"] == 200} == {0, 1}
        wait_until(every_worker_back, timeout=20, what="every worker to reach Redis again")
        errors = control(gw.control, "show stats")["result"]["rate_limit_store_errors"]
        for i in range(12):
            path, name = (("/soft", "soft"), ("/hard", "hard"))[i % 2]
            r = request(gw.port, path=path, timeout=5)
            self.assertEqual(r.status, 200, r)
            self.assertRateFields(r, name, 100, 1)  # counted again, not let through unchecked
        self.assertEqual(control(gw.control, "show stats")["result"]["rate_limit_store_errors"], errors)

    def test_an_error_reply_counts_as_a_store_error(self):
        gw = self.gateway({"hard": self.redis_policy(rate="100/s", key="route", on_redis_error="deny")},
                          [{"name": "hard", "prefix": "/", "policies": ["hard"]}], workers=1)
        self.assertEqual(self.redis.command("HSET", "gw:rl:hard:hard", "f", "1"), 1)  # not a number
        r = request(gw.port, path="/echo", timeout=5)
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.json()["error"], "policy_unavailable")
        # gwd writes the line once the request ends, which may be after the client has its answer.
        wait_until(lambda: self.store_error_lines(gw), what="gwd's store error line")
        lines = self.store_error_lines(gw)
        self.assertEqual(len(lines), 1, gw.output())
        self.assertIn("WRONGTYPE", lines[0])
        self.assertIn("(failing closed)", lines[0])
        self.assertEqual(control(gw.control, "show stats")["result"]["rate_limit_store_errors"], 1)
        self.assertEqual(self.redis.command("DEL", "gw:rl:hard:hard"), 1)
        r = request(gw.port, path="/echo", timeout=5)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.assertRateFields(r, "hard", 100, 1)[0], 99)

    def test_a_redis_that_stops_answering_costs_at_most_the_timeout(self):
        policies = {"soft": self.redis_policy(rate="100/s", key="route", redis_timeout="200ms"),
                    "hard": self.redis_policy(rate="100/s", key="route", redis_timeout="200ms",
                                              on_redis_error="deny")}
        gw = self.gateway(policies, [{"name": "soft", "prefix": "/soft", "policies": ["soft"]},
                                     {"name": "hard", "prefix": "/hard", "policies": ["hard"]}],
                          workers=1)
        self.assertEqual(self.statuses(gw.port, "/hard", 1) + self.statuses(gw.port, "/soft", 1), [200, 200])
        pid = self.redis.pid

        def resume():
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.addCleanup(resume)  # runs before the server's own stop
        os.kill(pid, signal.SIGSTOP)  # the connection stays up; replies never come
        results = []
        for i in range(8):
            results.append(request(gw.port, path=("/soft", "/hard")[i % 2], timeout=5))
        self.assertEqual([r.status for r in results], [200, 503] * 4, results)
        stats = control(gw.control, "show stats")["result"]
        self.assertEqual(stats["rate_limit_store_errors"], 8)
        self.assertTrue(any("no reply within 200 ms" in l for l in self.store_error_lines(gw)), gw.output())

        resume()
        self.assertTrue(self.redis.ping())
        wait_until(lambda: request(gw.port, path="/hard", timeout=5).status == 200, timeout=10,
                   what="requests to pass again once Redis answers")


if __name__ == "__main__":
    unittest.main()

"""Policies end to end through a real gwd: API keys, Basic, JWT (PEM keys, JWKS URLs with
rotation, OpenID Connect discovery), access control, any_of, header transforms, CORS, and reloads
that refuse a broken policy while the old one keeps serving.

Keys, passwords and tokens are made at test time with the openssl CLI, Python's crypt module and
`gwctl key` / `gwctl jwt sign`; JWKS documents are served by a small local HTTP server."""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import tempfile
import threading
import time
import unittest
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import (GWCTL, Backend, Gateway, ReservedPort, control, gwctl, request,
                     wait_until)

# ---- helpers

KEYS = {}  # name -> {"priv": path, "pub": path}, made once per module
_MODULE_TMP = None


def run(cmd, input=None, check=True):
    out = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=60)
    if check and out.returncode != 0:
        raise AssertionError(f"{cmd} exited {out.returncode}: {out.stdout}{out.stderr}")
    return out


def setUpModule():
    global _MODULE_TMP
    _MODULE_TMP = tempfile.TemporaryDirectory(prefix="gw-auth-keys-")
    d = _MODULE_TMP.name
    algs = {
        "rsa": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        "rsa2": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        "ec": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "ec2": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "ed": ["-algorithm", "ED25519"],
    }
    for name, args in algs.items():
        priv, pub = os.path.join(d, f"{name}.pem"), os.path.join(d, f"{name}.pub.pem")
        run(["openssl", "genpkey", *args, "-out", priv])
        run(["openssl", "pkey", "-in", priv, "-pubout", "-out", pub])
        KEYS[name] = {"priv": priv, "pub": pub}


def tearDownModule():
    if _MODULE_TMP:
        _MODULE_TMP.cleanup()


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(obj):
    return b64url(json.dumps(obj, separators=(",", ":")))


def sign(alg="RS256", key="rsa", claims=None, sub=None, iss=None, aud=None, kid=None,
         expires_in="1h", secret_file=None):
    """A token from `gwctl jwt sign`."""
    cmd = ["jwt", "sign", "--alg", alg]
    cmd += ["--secret-file", secret_file] if secret_file else ["--key", KEYS[key]["priv"]]
    if claims is not None:
        cmd += ["--claims", json.dumps(claims)]
    for flag, v in (("--sub", sub), ("--iss", iss), ("--aud", aud), ("--kid", kid),
                    ("--expires-in", expires_in)):
        if v is not None:
            cmd += [flag, v]
    return gwctl(*cmd, check=True).stdout.strip()


def hs256_by_hand(secret, claims, header=None):
    h = b64url_json(header or {"alg": "HS256", "typ": "JWT"})
    p = b64url_json(claims)
    sig = hmac.new(secret, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64url(sig)}"


def rsa_jwk(pub_pem, kid):
    """The public JWK of an RSA key, from `openssl rsa -modulus` (the exponent is 65537)."""
    out = run(["openssl", "rsa", "-pubin", "-in", pub_pem, "-noout", "-modulus"]).stdout.strip()
    modulus = out.split("=", 1)[1]
    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
            "n": b64url(bytes.fromhex(modulus)), "e": "AQAB"}


def ec_jwk(pub_pem, kid):
    """The public JWK of a P-256 key: its DER SubjectPublicKeyInfo ends with 04 || x || y."""
    der = subprocess.run(["openssl", "pkey", "-pubin", "-in", pub_pem, "-outform", "DER"],
                         capture_output=True, check=True, timeout=60).stdout
    return {"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
            "x": b64url(der[-64:-32]), "y": b64url(der[-32:])}


def new_key(consumer, keys_file):
    """`gwctl key new CONSUMER --append FILE --json`: the key; its line is in the file."""
    out = gwctl("key", "new", consumer, "--append", keys_file, "--json", check=True).stdout
    doc = json.loads(out)
    assert doc["consumer"] == consumer and doc["line"].startswith(consumer + " sha256:"), doc
    return doc["key"]


def echo(resp):
    """What the backend received: (target, {lowercase header name: [values]})."""
    assert resp.status == 200, resp
    doc = resp.json()
    headers = {}
    for k, v in doc["headers"]:
        headers.setdefault(k.lower(), []).append(v)
    return doc["target"], headers


def www_authenticate(resp):
    return resp.headers_named("www-authenticate")


class JwksServer:
    """A local HTTP server for JWKS and discovery documents; `docs` maps paths to JSON objects
    or to (status, raw body) answers, and may be swapped at any time. Counts the GETs of each
    path and notes when each arrived (time.monotonic(), before it is answered). GETs of a path
    given to hold() wait, up to 30 s, until release()."""

    def __init__(self, port=0, sock=None):
        """`sock`: a bound socket (a ReservedPort's) to listen on instead of binding `port`."""
        self.docs = {}
        self.hits = {}
        self.times = {}
        self.holds = {}  # path -> threading.Event, set when released
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                with outer.lock:
                    outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                    outer.times.setdefault(self.path, []).append(time.monotonic())
                    gate = outer.holds.get(self.path)
                if gate is not None:
                    gate.wait(30)
                with outer.lock:
                    doc = outer.docs.get(self.path)
                if doc is None:
                    status, body = 404, b"not found"
                elif isinstance(doc, tuple):
                    status, body = doc
                else:
                    status, body = 200, json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler, bind_and_activate=sock is None)
        if sock is not None:
            self.httpd.socket.close()
            self.httpd.socket, self.httpd.server_address = sock, sock.getsockname()
            self.httpd.server_activate()
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def set(self, path, doc):
        with self.lock:
            self.docs[path] = doc

    def set_raw(self, path, status, body):
        """Answer `path` with this status and body (bytes) instead of a JSON document."""
        with self.lock:
            self.docs[path] = (status, body)

    def count(self, path):
        with self.lock:
            return self.hits.get(path, 0)

    def arrivals(self, path):
        """When each GET of `path` arrived, oldest first."""
        with self.lock:
            return list(self.times.get(path, []))

    def hold(self, path):
        with self.lock:
            self.holds[path] = threading.Event()

    def release(self, path):
        with self.lock:
            gate = self.holds.pop(path, None)
        if gate is not None:
            gate.set()

    def stop(self):
        for path in list(self.holds):
            self.release(path)
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


class PolicyTest(unittest.TestCase):
    """One backend ("a") and one gwd per class. Subclasses implement `spec(dir)`, returning spec
    text in which @A@ stands for the backend's address; files it names go in `dir`."""

    WORKERS = 1

    @classmethod
    def spec(cls, d):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="gw-auth-")
        cls.addClassCleanup(cls.tmp.cleanup)
        cls.dir = cls.tmp.name
        cls.backend = Backend(cls.dir, "a")
        cls.addClassCleanup(cls.backend.stop)
        cls.before_gateway()
        text = cls.spec(cls.dir).replace("@A@", cls.backend.address)
        cls.gw = Gateway(cls.dir, text, workers=cls.WORKERS)
        cls.addClassCleanup(cls.gw.stop)

    @classmethod
    def before_gateway(cls):
        pass

    def request(self, path="/", headers=None, method="GET", **kw):
        return request(self.gw.port, method, path, headers, **kw)

    def path(self, name):
        return os.path.join(self.dir, name)

    def records(self, marker, n, timeout=5.0):
        """The access log records whose path contains `marker`, once there are `n` of them."""
        found = []

        def ready():
            nonlocal found
            found = [r for r in self.gw.access_records(expect=0) if marker in r["path"]]
            return len(found) >= n

        wait_until(ready, timeout, what=f"{n} access log records for {marker}")
        return found

    def log_text(self):
        try:
            with open(self.gw.access_log) as f:
                return f.read()
        except FileNotFoundError:
            return ""


# ---- API keys


class ApiKeys(PolicyTest):
    @classmethod
    def spec(cls, d):
        keys_file = os.path.join(d, "keys.txt")
        with open(keys_file, "w") as f:
            f.write("# partners\n\n")
        cls.alice = new_key("alice", keys_file)
        cls.bob = new_key("bob", keys_file)
        # An inline key, hashed from standard input.
        cls.carol = "carol-inline-key-0123456789abcdef"
        out = subprocess.run([GWCTL, "key", "hash", "carol"], input=cls.carol + "\n",
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        consumer, digest = out.stdout.strip().split(" ", 1)
        assert consumer == "carol" and digest.startswith("sha256:"), out.stdout
        return f"""
version = 1
[upstreams.a]
endpoints = ["@A@"]

[policies.keys]
kind = "api_key"
header = "x-api-key"
query = "api_key"
cookie = "gw_key"
keys_file = "keys.txt"
realm = "partners"

[policies.keep-key]
kind = "api_key"
header = "x-api-key"
query = "api_key"
cookie = "gw_key"
keys_file = "{keys_file}"
strip = false
consumer_header = "x-caller"

[policies.inline]
kind = "api_key"
header = "x-api-key"
keys = [{{ consumer = "carol", sha256 = "{digest}" }}]

[policies.anonymize]
kind = "headers"
request = {{ remove = ["x-consumer"], set = {{ x-tier = "gold" }} }}

[[routes]]
name = "anonymized"
prefix = "/anonymized"
upstream = "a"
policies = ["anonymize", "inline"]

[[routes]]
name = "keep"
prefix = "/keep"
upstream = "a"
policies = ["keep-key"]

[[routes]]
name = "inline"
prefix = "/inline"
upstream = "a"
policies = ["inline"]

[[routes]]
name = "open"
prefix = "/open"
upstream = "a"

[[routes]]
name = "keyed"
prefix = "/"
upstream = "a"
policies = ["keys"]
"""

    def test_key_in_header_is_checked_stripped_and_names_the_consumer(self):
        target, h = echo(self.request("/echo", {"X-Api-Key": self.alice}))
        self.assertEqual(h["x-consumer"], ["alice"])
        self.assertNotIn("x-api-key", h)
        target, h = echo(self.request("/echo", {"X-Api-Key": self.bob}))
        self.assertEqual(h["x-consumer"], ["bob"])

    def test_key_in_query_parameter_is_stripped(self):
        target, h = echo(self.request(f"/echo?a=1&api_key={self.alice}&b=2"))
        self.assertEqual(target, "/echo?a=1&b=2")
        self.assertEqual(h["x-consumer"], ["alice"])
        target, _ = echo(self.request(f"/echo?api_key={self.alice}"))
        self.assertEqual(target, "/echo")

    def test_key_in_percent_encoded_query_parameter_name_is_stripped_too(self):
        # "api%5Fkey" decodes to "api_key": if it authenticates, it must not reach the backend.
        r = self.request(f"/pct-name/echo?x=1&api%5Fkey={self.alice}")
        target, h = echo(r)
        self.assertEqual(target, "/pct-name/echo?x=1")
        self.assertEqual(h["x-consumer"], ["alice"])
        target, h = echo(self.request(f"/pct-name/echo?api%5fkey={self.bob}&y=2"))
        self.assertEqual(target, "/pct-name/echo?y=2")
        self.assertEqual(h["x-consumer"], ["bob"])
        wait_until(lambda: "api%5Fkey" in self.log_text(), 3, "the access log line")
        self.assertNotIn(self.alice, self.log_text())

    def test_key_in_cookie_is_stripped_other_cookies_stay(self):
        target, h = echo(self.request("/echo", {"Cookie": f"theme=dark; gw_key={self.alice}; lang=en"}))
        self.assertEqual(h["cookie"], ["theme=dark; lang=en"])
        self.assertEqual(h["x-consumer"], ["alice"])
        target, h = echo(self.request("/echo", {"Cookie": f"gw_key={self.bob}"}))
        self.assertNotIn("cookie", h)
        self.assertEqual(h["x-consumer"], ["bob"])

    def test_strip_false_keeps_the_key_and_uses_the_configured_consumer_header(self):
        target, h = echo(self.request(f"/keep/echo?api_key={self.alice}", {"X-Api-Key": self.bob}))
        # The header is looked at first.
        self.assertEqual(h["x-caller"], ["bob"])
        self.assertEqual(h["x-api-key"], [self.bob])
        self.assertIn(f"api_key={self.alice}", target)
        self.assertNotIn("x-consumer", h)
        target, h = echo(self.request("/keep/echo", {"Cookie": f"gw_key={self.alice}"}))
        self.assertEqual(h["cookie"], [f"gw_key={self.alice}"])
        self.assertEqual(h["x-caller"], ["alice"])

    def test_inline_key_from_key_hash(self):
        _, h = echo(self.request("/inline/echo", {"X-Api-Key": self.carol}))
        self.assertEqual(h["x-consumer"], ["carol"])
        # The inline policy knows only carol.
        self.assertEqual(self.request("/inline/echo", {"X-Api-Key": self.alice}).status, 401)

    def test_a_headers_policy_runs_after_authentication(self):
        # Listed first, it still runs last: its remove takes away the consumer header the key
        # set, and a client's own X-Consumer stays dropped.
        _, h = echo(self.request("/anonymized/echo", {"X-Api-Key": self.carol, "X-Consumer": "evil"}))
        self.assertNotIn("x-consumer", h)
        self.assertEqual(h["x-tier"], ["gold"])
        self.assertNotIn("x-api-key", h)
        self.assertEqual(self.request("/anonymized/echo").status, 401)

    def test_missing_key_is_401_with_a_challenge(self):
        r = self.request("/echo")
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json()["error"], "unauthorized")
        self.assertEqual(www_authenticate(r), ['ApiKey realm="partners", in="header", name="x-api-key"'])

    def test_wrong_key_is_401(self):
        for bad in (self.alice[:-1], self.alice + "x", "", "alice", self.alice.upper()):
            with self.subTest(key=bad):
                r = self.request("/echo", {"X-Api-Key": bad})
                self.assertEqual(r.status, 401)
                self.assertTrue(www_authenticate(r)[0].startswith("ApiKey "), r)
        self.assertEqual(self.request("/echo?api_key=nope").status, 401)
        self.assertEqual(self.request("/echo", {"Cookie": "gw_key=nope"}).status, 401)
        # A key's hash is not a key.
        digest = hashlib.sha256(self.alice.encode()).hexdigest()
        self.assertEqual(self.request("/echo", {"X-Api-Key": digest}).status, 401)

    def test_client_cannot_claim_a_consumer(self):
        _, h = echo(self.request("/echo", {"X-Api-Key": self.bob, "X-Consumer": "alice"}))
        self.assertEqual(h["x-consumer"], ["bob"])
        # Routes without policies forward what they get.
        _, h = echo(self.request("/open/echo", {"X-Consumer": "alice"}))
        self.assertEqual(h["x-consumer"], ["alice"])
        r = self.request("/echo", {"X-Consumer": "alice"})
        self.assertEqual(r.status, 401)

    def test_access_log_names_the_consumer_and_never_the_key(self):
        self.assertEqual(self.request("/logged/1", {"X-Api-Key": self.alice}).status, 200)
        self.assertEqual(self.request(f"/logged/2?api_key={self.bob}&page=2").status, 200)
        self.assertEqual(self.request("/logged/3", {"Cookie": f"gw_key={self.alice}"}).status, 200)
        self.assertEqual(self.request(f"/keep/logged/4?api_key={self.alice}").status, 200)
        self.assertEqual(self.request(f"/logged/5?API%5Fkey=x&api%5Fkey={self.bob}").status, 200)
        self.assertEqual(self.request("/logged/6", {"X-Api-Key": "wrong-key-123"}).status, 401)
        logged = sorted(self.records("/logged/", 6), key=lambda r: r["path"][-1])
        self.assertEqual([r.get("consumer") for r in logged], ["alice", "bob", "alice", "alice", "bob", None])
        self.assertEqual(logged[1]["query"], "api_key=REDACTED&page=2")
        self.assertEqual(logged[3]["query"], "api_key=REDACTED")
        self.assertEqual(logged[4]["query"], "API%5Fkey=REDACTED&api%5Fkey=REDACTED")
        self.assertEqual(logged[5]["status"], 401)
        text = self.log_text() + self.gw.output()
        for secret in (self.alice, self.bob, "wrong-key-123"):
            self.assertNotIn(secret, text)


# ---- Basic


class BasicAuth(PolicyTest):
    @classmethod
    def spec(cls, d):
        lines = []
        sha = run(["openssl", "passwd", "-6", "-stdin"], input="s3cret-alice\n").stdout.strip()
        assert sha.startswith("$6$"), sha
        lines.append(f"alice:{sha}")
        sha = run(["openssl", "passwd", "-6", "-stdin"], input="pa:ss:word\n").stdout.strip()
        lines.append(f"carol:{sha}")
        cls.bcrypt = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                import crypt
            if crypt.METHOD_BLOWFISH in crypt.methods:
                h = crypt.crypt("bob-bcrypt-pw", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 5))
                if h and h.startswith("$2"):
                    cls.bcrypt = h
                    lines.append(f"bob:{h}")
        except ImportError:
            pass
        with open(os.path.join(d, "users.htpasswd"), "w") as f:
            f.write("# staff\n" + "\n".join(lines) + "\n")
        return """
version = 1
[upstreams.a]
endpoints = ["@A@"]

[policies.staff]
kind = "basic"
htpasswd_file = "users.htpasswd"
realm = "staff area"

[policies.staff-keep]
kind = "basic"
htpasswd_file = "users.htpasswd"
strip = false
consumer_header = ""

[[routes]]
name = "keep"
prefix = "/keep"
upstream = "a"
policies = ["staff-keep"]

[[routes]]
name = "staff"
prefix = "/"
upstream = "a"
policies = ["staff"]
"""

    @staticmethod
    def basic(user, password):
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    def test_sha512_crypt_password_passes_and_is_not_forwarded(self):
        _, h = echo(self.request("/echo", self.basic("alice", "s3cret-alice")))
        self.assertEqual(h["x-consumer"], ["alice"])
        self.assertNotIn("authorization", h)
        # Again: the verified credential is remembered, the answer is the same.
        _, h = echo(self.request("/echo", self.basic("alice", "s3cret-alice")))
        self.assertEqual(h["x-consumer"], ["alice"])

    def test_password_with_colons(self):
        _, h = echo(self.request("/echo", self.basic("carol", "pa:ss:word")))
        self.assertEqual(h["x-consumer"], ["carol"])
        self.assertEqual(self.request("/echo", self.basic("carol", "pa")).status, 401)

    def test_bcrypt_password_passes(self):
        if not self.bcrypt:
            self.skipTest("no bcrypt in Python's crypt module here")
        _, h = echo(self.request("/echo", self.basic("bob", "bob-bcrypt-pw")))
        self.assertEqual(h["x-consumer"], ["bob"])
        self.assertEqual(self.request("/echo", self.basic("bob", "bob-bcrypt-PW")).status, 401)

    def test_wrong_password_unknown_user_and_no_credentials_are_401(self):
        cases = {
            "wrong password": self.basic("alice", "s3cret-alicE"),
            "empty password": self.basic("alice", ""),
            "unknown user": self.basic("mallory", "s3cret-alice"),
            "no colon": {"Authorization": "Basic " + base64.b64encode(b"alice").decode()},
            "not base64": {"Authorization": "Basic !!!!"},
            "none": {},
            "bearer": {"Authorization": "Bearer abc"},
        }
        for what, headers in cases.items():
            with self.subTest(what):
                r = self.request("/echo", headers)
                self.assertEqual(r.status, 401)
                self.assertEqual(www_authenticate(r), ['Basic realm="staff area", charset="UTF-8"'])
        # After a failure the right password still works (nothing is locked or cached wrongly).
        self.assertEqual(self.request("/echo", self.basic("alice", "s3cret-alice")).status, 200)

    def test_strip_false_forwards_authorization_without_consumer_header(self):
        creds = self.basic("alice", "s3cret-alice")
        _, h = echo(self.request("/keep/echo", creds))
        self.assertEqual(h["authorization"], [creds["Authorization"]])
        self.assertNotIn("x-consumer", h)


# ---- JWT with PEM keys


ISS = "https://issuer.test"
AUD = "gw-tests"


class JwtPem(PolicyTest):
    @classmethod
    def spec(cls, d):
        cls.secret_file = os.path.join(d, "hs.secret")
        with open(cls.secret_file, "w") as f:
            f.write("a-long-shared-hmac-secret-for-tests-0123456789\n")
        return f"""
version = 1
[upstreams.a]
endpoints = ["@A@"]

[policies.jwt]
kind = "jwt"
public_key_file = ["{KEYS['rsa']['pub']}", "{KEYS['ec']['pub']}", "{KEYS['ed']['pub']}"]
issuer = "{ISS}"
audience = "{AUD}"
leeway = "5s"
forward_claims = {{ sub = "x-user", tenant = "x-tenant" }}
realm = "api"

[policies.rs-only]
kind = "jwt"
public_key_file = "{KEYS['rsa']['pub']}"
algorithms = ["RS256"]

[policies.mixed]
kind = "jwt"
public_key_file = "{KEYS['rsa']['pub']}"
secret_file = "hs.secret"
strip = true

[policies.in-query]
kind = "jwt"
query = "access_token"
cookie = "session_jwt"
public_key_file = "{KEYS['ec']['pub']}"
strip = true

[[routes]]
name = "rs-only"
prefix = "/rs"
upstream = "a"
policies = ["rs-only"]

[[routes]]
name = "mixed"
prefix = "/mixed"
upstream = "a"
policies = ["mixed"]

[[routes]]
name = "in-query"
prefix = "/q"
upstream = "a"
policies = ["in-query"]

[[routes]]
name = "jwt"
prefix = "/"
upstream = "a"
policies = ["jwt"]
"""

    def token(self, alg="RS256", key="rsa", **kw):
        kw.setdefault("sub", "user-1")
        kw.setdefault("iss", ISS)
        kw.setdefault("aud", AUD)
        return sign(alg, key, **kw)

    def bearer(self, path, token):
        return self.request(path, {"Authorization": f"Bearer {token}"})

    def assert_refused(self, resp, description=None):
        self.assertEqual(resp.status, 401, resp)
        challenges = www_authenticate(resp)
        self.assertEqual(len(challenges), 1, resp)
        self.assertTrue(challenges[0].startswith('Bearer realm="api"'), challenges)
        if description:
            self.assertIn('error="invalid_token"', challenges[0])
            self.assertIn(f'error_description="{description}"', challenges[0])

    def test_valid_tokens_of_each_key_type_pass_and_forward_claims(self):
        for alg, key in (("RS256", "rsa"), ("PS256", "rsa"), ("ES256", "ec"), ("EdDSA", "ed")):
            with self.subTest(alg=alg):
                tok = self.token(alg, key, claims={"tenant": "acme"}, sub=f"user-{alg}")
                _, h = echo(self.bearer("/echo", tok))
                self.assertEqual(h["x-user"], [f"user-{alg}"])
                self.assertEqual(h["x-consumer"], [f"user-{alg}"])
                self.assertEqual(h["x-tenant"], ["acme"])
                # strip = false by default: the backend gets the token too.
                self.assertEqual(h["authorization"], [f"Bearer {tok}"])

    def test_forwarded_claim_headers_cannot_be_spoofed(self):
        tok = self.token(sub="real-user")  # no tenant claim
        _, h = echo(self.request("/echo", {"Authorization": f"Bearer {tok}", "X-Tenant": "evil",
                                           "X-User": "admin", "X-Consumer": "admin"}))
        self.assertEqual(h["x-user"], ["real-user"])
        self.assertEqual(h["x-consumer"], ["real-user"])
        self.assertNotIn("x-tenant", h)

    def test_audience_in_a_list_passes(self):
        tok = self.token(aud=None, claims={"aud": ["other", AUD]})
        self.assertEqual(self.bearer("/echo", tok).status, 200)

    def test_expired_token_is_401(self):
        now = int(time.time())
        tok = self.token(expires_in=None, claims={"exp": now - 3600, "iat": now - 7200})
        self.assert_refused(self.bearer("/echo", tok), "token expired")
        # Within the leeway it still passes.
        tok = self.token(expires_in=None, claims={"exp": now - 1})
        self.assertEqual(self.bearer("/echo", tok).status, 200)

    def test_token_without_exp_is_401(self):
        tok = self.token(expires_in=None)
        self.assert_refused(self.bearer("/echo", tok))

    def test_not_yet_valid_token_is_401(self):
        tok = self.token(claims={"nbf": int(time.time()) + 3600})
        self.assert_refused(self.bearer("/echo", tok))

    def test_wrong_audience_is_401(self):
        self.assert_refused(self.bearer("/echo", self.token(aud="someone-else")), "wrong audience")
        self.assert_refused(self.bearer("/echo", self.token(aud=None)))

    def test_wrong_issuer_is_401(self):
        self.assert_refused(self.bearer("/echo", self.token(iss="https://evil.test")), "wrong issuer")
        self.assert_refused(self.bearer("/echo", self.token(iss=None)))

    def test_alg_none_is_401(self):
        now = int(time.time())
        claims = {"sub": "user-1", "iss": ISS, "aud": AUD, "iat": now, "exp": now + 3600}
        for header in ({"alg": "none", "typ": "JWT"}, {"alg": "None"}, {"alg": "NONE"}):
            unsigned = f"{b64url_json(header)}.{b64url_json(claims)}"
            valid_sig = self.token().split(".")[2]
            for tok in (unsigned + ".", unsigned, unsigned + "." + valid_sig):
                with self.subTest(header=header, tok=tok[-10:]):
                    self.assert_refused(self.bearer("/echo", tok))

    def test_token_signed_by_another_key_is_401(self):
        self.assert_refused(self.bearer("/echo", self.token("RS256", "rsa2")), "invalid signature")
        self.assert_refused(self.bearer("/echo", self.token("ES256", "ec2")), "invalid signature")
        # A valid signature over other claims: header and payload of one token, signature of another.
        a, b = self.token(sub="a").split("."), self.token(sub="b").split(".")
        self.assert_refused(self.bearer("/echo", f"{a[0]}.{b[1]}.{a[2]}"), "invalid signature")

    def test_algorithm_confusion_public_key_as_hmac_secret_is_401(self):
        with open(KEYS["rsa"]["pub"], "rb") as f:
            pem = f.read()
        now = int(time.time())
        claims = {"sub": "attacker", "iss": ISS, "aud": AUD, "iat": now, "exp": now + 3600}
        for secret in (pem, pem.strip()):
            tok = hs256_by_hand(secret, claims)
            self.assert_refused(self.bearer("/echo", tok))
            self.assertEqual(self.bearer("/rs/echo", tok).status, 401)
            # Even where HS256 is allowed (a secret is configured), the RSA key is never an HMAC key.
            self.assertEqual(self.bearer("/mixed/echo", tok).status, 401)
        # gwctl's way of making the same token.
        tok = sign("HS256", secret_file=KEYS["rsa"]["pub"], sub="attacker")
        self.assertEqual(self.bearer("/rs/echo", tok).status, 401)
        self.assertEqual(self.bearer("/mixed/echo", tok).status, 401)

    def test_rs256_only_policy_refuses_other_algorithms(self):
        self.assertEqual(self.bearer("/rs/echo", self.token("RS256", "rsa")).status, 200)
        r = self.bearer("/rs/echo", self.token("PS256", "rsa"))
        self.assertEqual(r.status, 401)
        self.assertIn("algorithm not allowed", www_authenticate(r)[0])

    def test_hmac_secret_from_file(self):
        tok = sign("HS256", secret_file=self.secret_file, sub="svc")
        _, h = echo(self.bearer("/mixed/echo", tok))
        self.assertEqual(h["x-consumer"], ["svc"])
        self.assertNotIn("authorization", h)  # strip = true
        self.assertEqual(self.bearer("/mixed/echo", self.token()).status, 200)
        other = self.path("other.secret")
        with open(other, "w") as f:
            f.write("a-different-secret-of-a-decent-length-000000\n")
        self.assertEqual(self.bearer("/mixed/echo", sign("HS256", secret_file=other)).status, 401)

    def test_malformed_tokens_are_401(self):
        good = self.token()
        h, p, s = good.split(".")
        cases = ["abc", "a.b", "a.b.c", f"{h}.{p}", f"{h}.{p}.{s}.x", f"{h}..{s}", f".{p}.{s}",
                 f"{h}.{p}.{s}=", f"{h}=.{p}.{s}", f"{h}.{p}.{s[:-2]}", f"{h}.{p}.!!!!",
                 f"{b64url('not json')}.{p}.{s}", f"{h}.{b64url('[1,2]')}.{s}", "x" * 20000]
        for tok in cases:
            with self.subTest(tok=tok[:40]):
                self.assert_refused(self.bearer("/echo", tok))

    def test_missing_or_other_scheme_is_401_with_a_plain_challenge(self):
        for headers in ({}, {"Authorization": "Basic YTpi"}, {"Authorization": "Token abc"}):
            with self.subTest(headers=headers):
                r = self.request("/echo", headers)
                self.assertEqual(r.status, 401)
                self.assertEqual(www_authenticate(r), ['Bearer realm="api"'])
        # The scheme name is case-insensitive.
        r = self.request("/echo", {"Authorization": f"bearer {self.token()}"})
        self.assertEqual(r.status, 200)

    def test_token_in_query_or_cookie_is_stripped(self):
        tok = sign("ES256", "ec", sub="q-user")
        target, h = echo(self.request(f"/q/echo?x=1&access_token={tok}"))
        self.assertEqual(target, "/q/echo?x=1")
        self.assertEqual(h["x-consumer"], ["q-user"])
        target, h = echo(self.request("/q/echo", {"Cookie": f"session_jwt={tok}; a=b"}))
        self.assertEqual(h["cookie"], ["a=b"])
        self.assertEqual(h["x-consumer"], ["q-user"])
        self.assertEqual(self.request("/q/echo?access_token=abc").status, 401)
        [rec] = [r for r in self.records("/q/echo", 3) if r["status"] == 200 and r.get("query")]
        self.assertEqual(rec["query"], "x=1&access_token=REDACTED")
        self.assertNotIn(tok, self.log_text())


# ---- JWKS URLs: rotation, rate-limited refetches, discovery, a server that starts late


class JwksRotation(PolicyTest):
    @classmethod
    def before_gateway(cls):
        cls.jwks = JwksServer()
        cls.addClassCleanup(cls.jwks.stop)
        cls.k1 = rsa_jwk(KEYS["rsa"]["pub"], "k1")
        cls.k2 = rsa_jwk(KEYS["rsa2"]["pub"], "k2")
        cls.jwks.set("/keys.json", {"keys": [cls.k1]})
        cls.jwks.set("/short.json", {"keys": [cls.k1]})
        cls.jwks.set("/oidc-keys.json", {"keys": [cls.k1]})
        cls.jwks.set("/.well-known/openid-configuration",
                     {"issuer": ISS, "jwks_uri": f"{cls.jwks.url}/oidc-keys.json"})
        # A published symmetric key next to a public one: anyone can read the secret.
        cls.oct_secret = b"a-published-hmac-secret-anyone-can-read-0123"
        cls.jwks.set("/mixed.json", {"keys": [
            {"kty": "oct", "kid": "shared", "alg": "HS256", "k": b64url(cls.oct_secret)},
            ec_jwk(KEYS["ec"]["pub"], "ec1")]})

    @classmethod
    def spec(cls, d):
        cls.secret_file = os.path.join(d, "hs.secret")
        with open(cls.secret_file, "w") as f:
            f.write("the-configured-hmac-secret-of-this-policy-42\n")
        return f"""
version = 1
[upstreams.a]
endpoints = ["@A@"]

# HS256 is allowed here because of the configured secret; the fetched oct key must not count.
[policies.mixed]
kind = "jwt"
jwks_url = "{cls.jwks.url}/mixed.json"
jwks_refresh = "1h"
secret_file = "hs.secret"

[policies.jwks]
kind = "jwt"
jwks_url = "{cls.jwks.url}/keys.json"
jwks_refresh = "1h"

[policies.oidc]
kind = "jwt"
openid_connect_url = "{cls.jwks.url}/.well-known/openid-configuration"
issuer = "{ISS}"

[policies.short]
kind = "jwt"
jwks_url = "{cls.jwks.url}/short.json"
jwks_refresh = "500ms"

[[routes]]
name = "short"
prefix = "/short"
upstream = "a"
policies = ["short"]

[[routes]]
name = "oidc"
prefix = "/oidc"
upstream = "a"
policies = ["oidc"]

[[routes]]
name = "mixed"
prefix = "/mixed"
upstream = "a"
policies = ["mixed"]

[[routes]]
name = "jwks"
prefix = "/"
upstream = "a"
policies = ["jwks"]
"""

    def bearer(self, path, token):
        return self.request(path, {"Authorization": f"Bearer {token}"})

    def test_rotation_to_a_new_kid_is_picked_up_by_a_bounded_refetch(self):
        self.assertGreaterEqual(self.jwks.count("/keys.json"), 1, "gwd fetches the keys at load")
        t1 = sign("RS256", "rsa", kid="k1", sub="one")
        t2 = sign("RS256", "rsa2", kid="k2", sub="two")
        _, h = echo(self.bearer("/echo", t1))
        self.assertEqual(h["x-consumer"], ["one"])
        # A known kid with a signature of another key: refused (that it asks for no refetch is
        # checked in test_refetches_..., against a fetcher with a short schedule).
        fetched = self.jwks.count("/keys.json")
        self.assertEqual(self.bearer("/echo", sign("RS256", "rsa2", kid="k1")).status, 401)

        # The issuer rotates to k2; the first token naming k2 makes gwd refetch.
        self.jwks.set("/keys.json", {"keys": [self.k2]})
        deadline = time.monotonic() + 8
        status = None
        while time.monotonic() < deadline:
            status = self.bearer("/echo", t2).status
            if status == 200:
                break
            time.sleep(0.1)
        self.assertEqual(status, 200, "a token with the new kid should pass after a refetch")
        # One refetch, however many refused tokens named k2 while it ran (one per 10 s).
        self.assertEqual(self.jwks.count("/keys.json"), fetched + 1)
        _, h = echo(self.bearer("/echo", t2))
        self.assertEqual(h["x-consumer"], ["two"])
        # k1 is gone from the set: its tokens stop working.
        self.assertEqual(self.bearer("/echo", t1).status, 401)

    def test_refetches_only_for_unknown_kids_and_at_most_once_per_10s(self):
        # /short.json is fetched on a schedule, every 500ms: the timer starts once a fetch is
        # over and the server notes a GET before answering it, so scheduled GETs arrive at
        # least 500ms apart. A GET sooner than that is a refetch gwd asked for.
        path, every = "/short.json", 0.5

        def refetches():
            t = self.jwks.arrivals(path)
            return sum(1 for a, b in zip(t, t[1:]) if b - a < every)

        def after_two_more_fetches():
            # Two scheduled fetches later, any refetch asked for before has come (the fetcher
            # does one fetch at a time, in order).
            n = self.jwks.count(path)
            wait_until(lambda: self.jwks.count(path) >= n + 2, 10, "two scheduled fetches")

        after_two_more_fetches()
        self.assertEqual(refetches(), 0)
        # Refused tokens whose key is known (a signature by another key, with or without kid)
        # are no reason to refetch.
        for _ in range(5):
            for tok in (sign("RS256", "rsa2", kid="k1"), sign("RS256", "rsa2")):
                self.assertEqual(self.bearer("/short/echo", tok).status, 401)
        after_two_more_fetches()
        self.assertEqual(refetches(), 0, self.jwks.arrivals(path))
        self.assertEqual(self.bearer("/short/echo", sign("RS256", "rsa", kid="k1")).status, 200)

        # Unknown kids ask for a refetch, which comes at once, but not for one each: at most
        # one per 10 s.
        t0 = time.monotonic()
        unknown = [sign("RS256", "rsa", kid=f"unknown-{i}") for i in range(3)]
        for i in range(30):
            self.assertEqual(self.bearer("/short/echo", unknown[i % 3]).status, 401)
        elapsed = time.monotonic() - t0
        after_two_more_fetches()
        self.assertGreaterEqual(refetches(), 1, self.jwks.arrivals(path))
        self.assertLessEqual(refetches(), 1 + int(elapsed // 10), self.jwks.arrivals(path))

    def test_openid_connect_discovery(self):
        self.assertGreaterEqual(self.jwks.count("/.well-known/openid-configuration"), 1)
        tok = sign("RS256", "rsa", kid="k1", sub="oidc-user", iss=ISS)
        _, h = echo(self.bearer("/oidc/echo", tok))
        self.assertEqual(h["x-consumer"], ["oidc-user"])
        self.assertEqual(self.bearer("/oidc/echo", sign("RS256", "rsa", kid="k1", iss="x")).status, 401)
        self.assertEqual(self.bearer("/oidc/echo", sign("RS256", "rsa2", kid="k1")).status, 401)


    def test_symmetric_keys_from_a_jwks_url_are_ignored(self):
        now = int(time.time())
        claims = {"sub": "forger", "iat": now, "exp": now + 3600}
        for header in ({"alg": "HS256", "kid": "shared"}, {"alg": "HS256"}):
            tok = hs256_by_hand(self.oct_secret, claims, header)
            self.assertEqual(self.bearer("/mixed/echo", tok).status, 401, header)
        # The EC key from the same document and the policy's own secret still work.
        _, h = echo(self.bearer("/mixed/echo", sign("ES256", "ec", kid="ec1", sub="ec-user")))
        self.assertEqual(h["x-consumer"], ["ec-user"])
        _, h = echo(self.bearer("/mixed/echo", sign("HS256", secret_file=self.secret_file,
                                                    sub="svc")))
        self.assertEqual(h["x-consumer"], ["svc"])
        self.assertIn("ignored 1 symmetric (oct) key(s)", self.gw.output())


class ReloadBusyWhileKeysAreFetched(PolicyTest):
    """A reload whose table names a new JWKS URL waits for that URL's first fetch before it
    publishes. The JWKS server holds the fetch until the test lets it go, so the reload runs for
    as long as the test needs: reloads and rollbacks meanwhile are answered `busy`."""

    @classmethod
    def before_gateway(cls):
        cls.jwks = JwksServer()
        cls.addClassCleanup(cls.jwks.stop)
        cls.jwks.set("/held.json", {"keys": [rsa_jwk(KEYS["rsa"]["pub"], "k1")]})

    SPEC = """
version = 1
[upstreams.a]
endpoints = ["@A@"]
{extra}
[[routes]]
name = "open"
prefix = "/"
upstream = "a"
timeout = "{timeout}"
"""

    @classmethod
    def spec(cls, d):
        return cls.SPEC.format(extra="", timeout="10s")

    def table(self, name, extra="", timeout="10s"):
        spec = self.path(name + ".toml")
        with open(spec, "w") as f:
            f.write(self.SPEC.format(extra=extra, timeout=timeout).replace("@A@", self.backend.address))
        table = self.path(name + ".gwrt")
        gwctl("compile", spec, "-o", table, check=True)
        return table

    def generation(self):
        return control(self.gw.control, "show info")["result"]["table"]["generation"]

    def test_reload_and_rollback_are_busy_while_a_reload_runs(self):
        keyed = self.table("keyed", f"""
[policies.held]
kind = "jwt"
jwks_url = "{self.jwks.url}/held.json"
jwks_refresh = "1h"
[[routes]]
name = "jwt"
prefix = "/jwt"
upstream = "a"
policies = ["held"]
""")
        other = self.table("other", timeout="7s")
        g = self.generation()
        token = sign("RS256", "rsa", kid="k1", sub="held-user")
        self.jwks.hold("/held.json")
        result = {}
        t = threading.Thread(target=lambda: result.update(
            r=control(self.gw.control, "reload", {"path": keyed}, timeout=60)))
        t.start()
        try:
            # The fetch has reached the server, which holds it: gwd is inside the first reload.
            wait_until(lambda: self.jwks.count("/held.json") == 1, what="gwd to fetch the new keys")
            for cmd, args in (("reload", {"path": other}), ("rollback", {})):
                with self.subTest(cmd=cmd):
                    resp = control(self.gw.control, cmd, args)
                    self.assertFalse(resp["ok"], resp)
                    self.assertEqual(resp["error"]["code"], "busy", resp)
            served = control(self.gw.control, "show info")["result"]["table_path"]
            with open(served, "rb") as f:
                served_bytes = f.read()
            other_spec = other[:-len(".gwrt")] + ".toml"
            for args in (("reload", other), ("reload", other_spec), ("reload", "--dry-run", other_spec),
                         ("rollback",)):
                with self.subTest(gwctl=args):
                    r = gwctl(*args, socket_path=self.gw.control)
                    self.assertEqual(r.returncode, 4, r.stdout + r.stderr)
                    self.assertIn("busy", r.stderr)
            # A spec whose reload was refused did not replace the file gwd serves (a SIGHUP or
            # a restart would otherwise serve a table that was never published), nor stays staged.
            with open(served, "rb") as f:
                self.assertEqual(f.read(), served_bytes)
            self.assertFalse(os.path.exists(served + ".next"))
            # Meanwhile gwd answers read commands and serves the generation it had.
            self.assertEqual(self.generation(), g)
            self.assertEqual(self.request("/echo").status, 200)
            self.assertNotIn("r", result, "the first reload must still be waiting for its keys")
        finally:
            self.jwks.release("/held.json")
            t.join(30)
        self.assertTrue(result["r"]["ok"], result["r"])
        self.assertEqual(result["r"]["result"]["generation"], g + 1)
        self.assertEqual(self.generation(), g + 1)
        # It published with the keys it waited for: a token passes at once.
        _, h = echo(self.request("/jwt/echo", {"Authorization": f"Bearer {token}"}))
        self.assertEqual(h["x-consumer"], ["held-user"])
        self.assertEqual(self.jwks.count("/held.json"), 1)
        # Once it is over, reloads and rollbacks are accepted again.
        r = gwctl("rollback", socket_path=self.gw.control)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.generation(), g + 2)


class JwksFetchFails(PolicyTest):
    """The JWKS server starts failing after a good fetch: gwd keeps the keys it had. A short
    jwks_refresh makes gwd refetch without waiting."""

    @classmethod
    def before_gateway(cls):
        cls.jwks = JwksServer()
        cls.addClassCleanup(cls.jwks.stop)
        cls.jwks.set("/keys.json", {"keys": [rsa_jwk(KEYS["rsa"]["pub"], "k1")]})

    @classmethod
    def spec(cls, d):
        return f"""
version = 1
[upstreams.a]
endpoints = ["@A@"]

[policies.jwks]
kind = "jwt"
jwks_url = "{cls.jwks.url}/keys.json"
jwks_refresh = "200ms"

[[routes]]
name = "jwks"
prefix = "/"
upstream = "a"
policies = ["jwks"]
"""

    def test_a_failed_fetch_keeps_the_last_good_keys(self):
        tok = sign("RS256", "rsa", kid="k1", sub="kept")
        bearer = {"Authorization": f"Bearer {tok}"}
        _, h = echo(self.request("/echo", bearer))
        self.assertEqual(h["x-consumer"], ["kept"])
        for status, body, failure in ((500, b"internal error", "HTTP 500"),
                                      (200, b'{"keys": [', "JWKS is not valid JSON")):
            self.jwks.set_raw("/keys.json", status, body)
            # gwd logs this line once the failed fetch is over, whatever it did with the keys.
            wait_until(lambda: f"{failure} (keeping the previous keys)" in self.gw.output(), 10,
                       f"gwd to report a failed fetch ({failure})")
            _, h = echo(self.request("/echo", bearer))
            self.assertEqual(h["x-consumer"], ["kept"], failure)


class JwksServerStartsLate(PolicyTest):
    """gwd starts while the JWKS server is down; tokens pass once it is up, without waiting for
    the (long) refresh interval."""

    @classmethod
    def before_gateway(cls):
        # Refuses connections until the JWKS server listens on this very socket.
        cls.jwks_reserved = ReservedPort()
        cls.addClassCleanup(cls.jwks_reserved.close)
        cls.jwks_port = cls.jwks_reserved.port

    @classmethod
    def spec(cls, d):
        return f"""
version = 1
[upstreams.a]
endpoints = ["@A@"]

[policies.jwks]
kind = "jwt"
jwks_url = "http://127.0.0.1:{cls.jwks_port}/keys.json"
jwks_refresh = "1h"

[[routes]]
name = "jwks"
prefix = "/"
upstream = "a"
policies = ["jwks"]
"""

    def test_token_without_kid_passes_once_the_server_is_up(self):
        tok = sign("RS256", "rsa", sub="late")  # no kid: nothing names a missing key
        # gwd started without keys (and says so). No request is sent before the server is up:
        # that would start the 10 s refetch rate limit.
        wait_until(lambda: "JWT keys:" in self.gw.output(), 5, "gwd to report the failed fetch")
        server = JwksServer(sock=self.jwks_reserved.take())
        self.addCleanup(server.stop)
        server.set("/keys.json", {"keys": [rsa_jwk(KEYS["rsa"]["pub"], "k1")]})
        deadline = time.monotonic() + 8
        status = None
        while time.monotonic() < deadline:
            status = self.request("/echo", {"Authorization": f"Bearer {tok}"}).status
            if status == 200:
                break
            time.sleep(0.2)
        self.assertEqual(status, 200, "keys should be fetched soon after the server comes up")
        self.assertIn("fetched 1 JWT key(s)", self.gw.output())


# ---- access control and any_of


class AccessControl(PolicyTest):
    @classmethod
    def spec(cls, d):
        keys_file = os.path.join(d, "keys.txt")
        cls.alice = new_key("alice", keys_file)
        cls.mallory = new_key("mallory", keys_file)
        return f"""
version = 1
[upstreams.a]
endpoints = ["@A@"]

[policies.key]
kind = "api_key"
header = "x-api-key"
keys_file = "keys.txt"

[policies.jwt]
kind = "jwt"
public_key_file = "{KEYS['ec']['pub']}"

[policies.orders-read]
kind = "access"
scopes = ["orders:read"]

[policies.no-mallory]
kind = "access"
deny_consumers = ["mallory"]

[policies.only-alice]
kind = "access"
consumers = ["alice"]

[policies.acme]
kind = "access"
claims = {{ tenant = ["acme", "globex"] }}

[policies.key-or-admin-jwt]
kind = "any_of"
options = [{{ policies = ["key"] }}, {{ policies = ["jwt"], scopes = ["admin"] }}]

[[routes]]
name = "orders"
prefix = "/orders"
upstream = "a"
policies = ["jwt", "orders-read"]

[[routes]]
name = "deny"
prefix = "/deny"
upstream = "a"
policies = ["key", "no-mallory"]

[[routes]]
name = "allow"
prefix = "/allow"
upstream = "a"
policies = ["key", "only-alice"]

[[routes]]
name = "tenant"
prefix = "/tenant"
upstream = "a"
policies = ["jwt", "acme"]

[[routes]]
name = "either"
prefix = "/either"
upstream = "a"
policies = ["key-or-admin-jwt"]
"""

    def jwt(self, path, **claims):
        tok = sign("ES256", "ec", claims=claims, sub=claims.pop("sub", "jwt-user"))
        return self.request(path, {"Authorization": f"Bearer {tok}"})

    def test_scope_required(self):
        self.assertEqual(self.jwt("/orders/1", scope="orders:read profile").status, 200)
        self.assertEqual(self.jwt("/orders/1", scp=["orders:read"]).status, 200)
        r = self.jwt("/orders/1", scope="orders:write profile")
        self.assertEqual(r.status, 403)
        self.assertEqual(r.json()["error"], "forbidden")
        self.assertEqual(www_authenticate(r), [])
        self.assertEqual(self.jwt("/orders/1").status, 403)
        self.assertEqual(self.jwt("/orders/1", scope="orders:reader").status, 403)
        # No token at all: 401, not 403.
        r = self.request("/orders/1")
        self.assertEqual(r.status, 401)
        self.assertTrue(www_authenticate(r)[0].startswith("Bearer "))

    def test_deny_consumers(self):
        self.assertEqual(self.request("/deny/x", {"X-Api-Key": self.alice}).status, 200)
        r = self.request("/deny/x", {"X-Api-Key": self.mallory})
        self.assertEqual(r.status, 403)
        self.assertEqual(self.request("/deny/x").status, 401)
        self.assertEqual(self.request("/deny/x", {"X-Api-Key": "bad"}).status, 401)

    def test_consumer_allow_list(self):
        self.assertEqual(self.request("/allow/x", {"X-Api-Key": self.alice}).status, 200)
        self.assertEqual(self.request("/allow/x", {"X-Api-Key": self.mallory}).status, 403)

    def test_claim_values(self):
        self.assertEqual(self.jwt("/tenant/x", tenant="acme").status, 200)
        self.assertEqual(self.jwt("/tenant/x", tenant="globex").status, 200)
        self.assertEqual(self.jwt("/tenant/x", tenant="initech").status, 403)
        self.assertEqual(self.jwt("/tenant/x").status, 403)

    def test_access_without_authentication_is_refused_when_compiling(self):
        spec = self.path("anon.toml")
        with open(self.gw.spec_path) as f:
            text = f.read()
        with open(spec, "w") as f:
            f.write(text + '[[routes]]\nname = "anon"\nprefix = "/anon"\nupstream = "a"\n'
                    'policies = ["orders-read"]\n')
        r = gwctl("validate", spec)
        self.assertEqual(r.returncode, 1)
        self.assertIn("needs an authentication policy", r.stdout + r.stderr)

    def test_any_of_either_method_works(self):
        _, h = echo(self.request("/either/x", {"X-Api-Key": self.alice}))
        self.assertEqual(h["x-consumer"], ["alice"])
        r = self.jwt("/either/x", scope="admin", sub="root")
        _, h = echo(r)
        self.assertEqual(h["x-consumer"], ["root"])
        # The JWT option needs the admin scope: a valid token without it is forbidden.
        self.assertEqual(self.jwt("/either/x", scope="user").status, 403)

    def test_any_of_none_is_401_with_every_challenge(self):
        r = self.request("/either/x")
        self.assertEqual(r.status, 401)
        challenges = www_authenticate(r)
        self.assertEqual(len(challenges), 2, r)
        self.assertTrue(challenges[0].startswith("ApiKey "))
        self.assertTrue(challenges[1].startswith("Bearer "))
        self.assertEqual(self.request("/either/x", {"X-Api-Key": "nope"}).status, 401)
        tok = sign("ES256", "ec2", claims={"scope": "admin"})
        self.assertEqual(self.request("/either/x", {"Authorization": f"Bearer {tok}"}).status, 401)


# ---- header transforms


class HeaderTransforms(PolicyTest):
    @classmethod
    def spec(cls, d):
        return """
version = 1
[upstreams.a]
endpoints = ["@A@"]

[policies.tx]
kind = "headers"
request = { set = { x-set = "from-gw", x-env = "prod" }, add = { x-added = "gw" }, remove = ["x-remove-me", "cookie"], rename = { x-old = "x-new" } }
response = { set = { x-resp-set = "r1", cache-control = "no-store" }, add = { x-resp-add = "a1" }, remove = ["x-backend"], rename = { content-type = "x-original-type" } }
query = { set = { q-set = "v 1/2" }, remove = ["q-drop", "debug"] }

[policies.security]
kind = "headers"
request = { set = { x-gateway = "gw" } }
response = { set = { x-frame-options = "DENY", x-overridden = "attach" }, remove = ["server"] }

[policies.site]
kind = "headers"
response = { set = { x-site = "s", x-overridden = "route" } }

[[attach]]
policies = ["security"]
prefix = "/site"

[[routes]]
name = "tx"
prefix = "/tx"
upstream = "a"
policies = ["tx"]

[[routes]]
name = "site"
prefix = "/site"
upstream = "a"
policies = ["site"]

[[routes]]
name = "plain"
prefix = "/"
upstream = "a"
"""

    def test_request_headers_are_set_added_removed_and_renamed(self):
        r = self.request("/tx/echo", [("X-Set", "from-client"), ("X-Added", "client"),
                                      ("X-Remove-Me", "1"), ("Cookie", "a=b"), ("X-Old", "old-value"),
                                      ("X-Kept", "k")])
        _, h = echo(r)
        self.assertEqual(h["x-set"], ["from-gw"])
        self.assertEqual(h["x-env"], ["prod"])
        self.assertEqual(sorted(h["x-added"]), ["client", "gw"])
        self.assertNotIn("x-remove-me", h)
        self.assertNotIn("cookie", h)
        self.assertNotIn("x-old", h)
        self.assertEqual(h["x-new"], ["old-value"])
        self.assertEqual(h["x-kept"], ["k"])

    def test_response_headers_are_set_added_removed_and_renamed(self):
        r = self.request("/tx/echo")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("x-resp-set"), "r1")
        self.assertEqual(r.header("x-resp-add"), "a1")
        self.assertEqual(r.header("cache-control"), "no-store")
        self.assertIsNone(r.header("x-backend"))
        self.assertIsNone(r.header("content-type"))
        self.assertEqual(r.header("x-original-type"), "application/json")
        # Routes without the policy are untouched.
        r = self.request("/echo")
        self.assertEqual(r.header("x-backend"), "a")
        self.assertIsNone(r.header("x-resp-set"))

    def test_attached_and_route_headers_policies_both_apply(self):
        r = self.request("/site/echo")
        _, h = echo(r)
        self.assertEqual(h["x-gateway"], ["gw"])
        self.assertEqual(r.header("x-frame-options"), "DENY")
        self.assertEqual(r.header("x-site"), "s")
        self.assertEqual(r.headers_named("x-overridden"), ["route"])

    def test_query_parameters_are_set_and_removed(self):
        target, _ = echo(self.request("/tx/echo?q-drop=1&keep=2&q-set=old&debug&z=3"))
        path, _, query = target.partition("?")
        self.assertEqual(path, "/tx/echo")
        self.assertEqual(query, "keep=2&z=3&q-set=v%201%2F2")
        target, _ = echo(self.request("/tx/echo"))
        self.assertEqual(target, "/tx/echo?q-set=v%201%2F2")


# ---- CORS


class Cors(PolicyTest):
    @classmethod
    def spec(cls, d):
        keys_file = os.path.join(d, "keys.txt")
        cls.key = new_key("web", keys_file)
        return """
version = 1
[upstreams.a]
endpoints = ["@A@"]

[policies.cors]
kind = "cors"
origins = ["https://app.example.com", "http://localhost:3000"]
methods = ["GET", "POST", "PUT"]
headers = ["content-type", "x-api-key"]
expose_headers = ["x-request-id", "x-backend"]
credentials = true
max_age = "1h"

[policies.public-cors]
kind = "cors"
origins = ["*"]

[policies.key]
kind = "api_key"
header = "x-api-key"
keys_file = "keys.txt"

[[routes]]
name = "public"
prefix = "/public"
upstream = "a"
policies = ["public-cors"]

[[routes]]
name = "put-only"
methods = ["PUT"]
prefix = "/put-only"
upstream = "a"
policies = ["cors", "key"]

[[routes]]
name = "app"
prefix = "/"
upstream = "a"
policies = ["cors", "key"]
"""

    ORIGIN = "https://app.example.com"

    def preflight(self, path, origin=ORIGIN, method="PUT", headers=None):
        hs = {"Origin": origin, "Access-Control-Request-Method": method}
        if headers:
            hs["Access-Control-Request-Headers"] = headers
        return self.request(path, hs, method="OPTIONS")

    def test_preflight_is_answered_by_the_gateway(self):
        r = self.preflight("/orders/preflight", headers="Content-Type, X-Api-Key")
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.header("access-control-allow-origin"), self.ORIGIN)
        self.assertEqual(r.header("access-control-allow-credentials"), "true")
        self.assertEqual(r.header("access-control-max-age"), "3600")
        self.assertEqual([m.strip() for m in r.header("access-control-allow-methods").split(",")],
                         ["GET", "POST", "PUT"])
        self.assertEqual(r.header("access-control-allow-headers").lower(), "content-type, x-api-key")
        self.assertIn("origin", r.header("vary", "").lower())
        self.assertIsNone(r.header("x-backend"))
        [rec] = self.records("/orders/preflight", 1)
        self.assertEqual(rec["method"], "OPTIONS")
        self.assertEqual(rec["status"], 204)
        self.assertNotIn("upstream_status", rec, "the backend must never see a preflight")
        self.assertFalse(rec.get("endpoint"))

    def test_preflight_for_a_route_that_takes_only_the_asked_method(self):
        r = self.preflight("/put-only/x", method="PUT", headers="x-api-key")
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.header("access-control-allow-origin"), self.ORIGIN)
        r = self.request("/put-only/x", {"Origin": self.ORIGIN, "X-Api-Key": self.key}, method="PUT")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("access-control-allow-origin"), self.ORIGIN)

    def test_preflight_refusals(self):
        cases = {
            "other origin": dict(origin="https://evil.example.com"),
            "origin with another port": dict(origin="https://app.example.com:8443"),
            "method not allowed": dict(method="DELETE"),
            "header not allowed": dict(headers="content-type, x-secret"),
        }
        for what, kw in cases.items():
            with self.subTest(what):
                r = self.preflight("/orders", **kw)
                self.assertEqual(r.status, 403, r)
                self.assertIsNone(r.header("access-control-allow-origin"))
        # Origins are compared without regard to case, as hosts are.
        self.assertEqual(self.preflight("/orders", origin="HTTPS://APP.EXAMPLE.COM").status, 204)
        self.assertEqual(self.preflight("/orders", origin="http://localhost:3000", method="GET").status, 204)

    def test_simple_request_from_an_allowed_origin(self):
        r = self.request("/orders", {"Origin": self.ORIGIN, "X-Api-Key": self.key})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("access-control-allow-origin"), self.ORIGIN)
        self.assertEqual(r.header("access-control-allow-credentials"), "true")
        self.assertEqual(r.header("access-control-expose-headers"), "x-request-id, x-backend")
        self.assertIn("origin", ",".join(r.headers_named("vary")).lower())
        # The real request still needs its credentials; the refusal carries CORS headers so the
        # page can read it.
        r = self.request("/orders", {"Origin": self.ORIGIN})
        self.assertEqual(r.status, 401)
        self.assertEqual(r.header("access-control-allow-origin"), self.ORIGIN)

    def test_disallowed_origin_gets_no_cors_headers(self):
        r = self.request("/orders", {"Origin": "https://evil.example.com", "X-Api-Key": self.key})
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("access-control-allow-origin"))
        self.assertIsNone(r.header("access-control-allow-credentials"))

    def test_wildcard_origin(self):
        r = self.request("/public/x", {"Origin": "https://anywhere.example"})
        self.assertEqual(r.header("access-control-allow-origin"), "*")
        self.assertIsNone(r.header("access-control-allow-credentials"))
        r = self.preflight("/public/x", origin="https://anywhere.example", method="POST")
        self.assertEqual(r.status, 204)
        self.assertEqual(r.header("access-control-allow-origin"), "*")
        self.assertEqual(r.header("access-control-max-age"), "600")

    def test_options_without_cors_headers_is_forwarded(self):
        r = self.request("/public/echo", method="OPTIONS")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["method"], "OPTIONS")


# ---- reloads


class Reloads(PolicyTest):
    SPEC = """
version = 1
[upstreams.a]
endpoints = ["@A@"]

[policies.key]
kind = "api_key"
header = "x-api-key"
keys_file = "{keys_file}"

{extra}

[[routes]]
name = "keyed"
prefix = "/"
upstream = "a"
policies = ["key"{extra_policies}]
"""

    @classmethod
    def spec(cls, d):
        keys_file = os.path.join(d, "keys.txt")
        cls.alice = new_key("alice", keys_file)
        return cls.SPEC.format(keys_file=keys_file, extra="", extra_policies="")

    def write(self, name, keys_file, extra="", extra_policies=""):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(self.SPEC.format(keys_file=keys_file, extra=extra, extra_policies=extra_policies)
                    .replace("@A@", self.backend.address))
        return p

    def ctl(self, *args):
        return gwctl(*args, socket_path=self.gw.control)

    def generation(self):
        return control(self.gw.control, "show info")["result"]["table"]["generation"]

    def test_missing_keys_file_is_refused_and_old_keys_keep_working(self):
        g = self.generation()
        missing = self.path("no-such-keys.txt")
        r = self.ctl("reload", self.write("bad.toml", missing))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(missing, r.stderr)
        self.assertIn("keys_file", r.stderr)
        self.assertEqual(self.generation(), g)
        _, h = echo(self.request("/echo", {"X-Api-Key": self.alice}))
        self.assertEqual(h["x-consumer"], ["alice"])

    def test_missing_hmac_secret_is_refused_by_gwd_and_old_table_keeps_serving(self):
        g = self.generation()
        var = "GW_AUTH_TEST_SECRET_THAT_IS_NOT_SET"
        os.environ.pop(var, None)
        extra = f'[policies.hs]\nkind = "jwt"\nsecret_env = "{var}"\n'
        r = self.ctl("reload", self.write("no-secret.toml", self.path("keys.txt"), extra, ', "hs"'))
        self.assertEqual(r.returncode, 4, r.stdout + r.stderr)  # compiled fine; gwd refused it
        self.assertIn("gwd refused", r.stderr)
        self.assertIn(var, r.stderr)
        self.assertEqual(self.generation(), g)
        self.assertEqual(self.request("/echo", {"X-Api-Key": self.alice}).status, 200)

    def test_new_key_is_served_after_a_reload(self):
        keys_file = self.path("keys2.txt")
        bob = new_key("bob", keys_file)
        self.assertEqual(self.request("/echo", {"X-Api-Key": bob}).status, 401)
        r = self.ctl("reload", self.write("v2.toml", keys_file))
        self.assertEqual(r.returncode, 0, r.stderr)
        _, h = echo(self.request("/echo", {"X-Api-Key": bob}))
        self.assertEqual(h["x-consumer"], ["bob"])
        self.assertEqual(self.request("/echo", {"X-Api-Key": self.alice}).status, 401)
        # Back to the first keys for the other tests.
        r = self.ctl("reload", self.write("v1.toml", self.path("keys.txt")))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.request("/echo", {"X-Api-Key": self.alice}).status, 200)


if __name__ == "__main__":
    unittest.main()

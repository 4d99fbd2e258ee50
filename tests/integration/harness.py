"""Test harness: real gwd processes and real backends on 127.0.0.1, raw HTTP over sockets.

Every process is started here, on a port chosen at run time, and stopped by its PID. Every wait
and every socket read is bounded in time.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
GWD = os.environ.get("GWD", "gwd")
GWCTL = os.environ.get("GWCTL", "gwctl")
PYTHON = sys.executable


class ReservedPort:
    """A port on 127.0.0.1 that refuses connections: a socket bound but not listening, held
    until close(), so no other test or process is given the port meanwhile (a port that was only
    free a moment ago may be someone else's by the time it is used).

    `reuse` sets SO_REUSEADDR, which lets a server that sets it too (redis-server) bind and listen
    on the port while it stays reserved. `take()` hands the socket to a server that will listen on
    it itself."""

    def __init__(self, reuse=False):
        self.sock = socket.socket()
        if reuse:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"

    def take(self):
        sock, self.sock = self.sock, None
        return sock

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def wait_until(pred, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def listening_lines(output):
    """The bound addresses from gwd's "listening ADDRESS:PORT" lines."""
    return [line.split(" ", 1)[1] for line in output.splitlines()
            if line.startswith("listening ") and line.count(" ") == 1]


class Process:
    def __init__(self, cmd, log_path, env=None):
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        return self.proc.returncode

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


class Backend(Process):
    def __init__(self, workdir, name):
        port_file = os.path.join(workdir, f"backend-{name}.port")
        super().__init__([PYTHON, os.path.join(HERE, "backend.py"), "--port", "0", "--name", name,
                          "--port-file", port_file], os.path.join(workdir, f"backend-{name}.log"))
        self.name = name
        wait_until(lambda: os.path.exists(port_file) or not self.alive(), what=f"backend {name}")
        assert self.alive(), self.output()
        with open(port_file) as f:
            self.port = int(f.read())
        self.address = f"127.0.0.1:{self.port}"


class Gateway(Process):
    """Compiles `spec` (TOML text), or the spec files `inputs` (TOML or OpenAPI, merged in
    order), with gwctl and serves the table with gwd."""

    def __init__(self, workdir, spec=None, workers=1, extra=(), name="gw", inputs=(),
                 control=None):
        self.workdir = workdir
        self.spec_path = os.path.join(workdir, f"{name}.toml")
        self.table_path = os.path.join(workdir, f"{name}.gwrt")
        self.access_log = os.path.join(workdir, f"{name}-access.log")
        if spec is not None:
            with open(self.spec_path, "w") as f:
                f.write(spec)
            inputs = (self.spec_path, *inputs)
        out = subprocess.run([GWCTL, "compile", *inputs, "-o", self.table_path],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stdout + out.stderr
        self.control = os.path.join(workdir, control or f"{name}.sock")
        self.name, self.workers, self.extra = name, workers, tuple(extra)
        self.starts = 0
        self.serve()

    def serve(self):
        # Port 0: gwd binds a port no one holds and announces it ("listening ADDRESS:PORT" on
        # standard output, once it serves), so no two tests can ever be given the same port.
        self.starts += 1
        log = f"{self.name}.log" if self.starts == 1 else f"{self.name}-{self.starts}.log"
        super().__init__([GWD, "--table", self.table_path, "--listen", "127.0.0.1:0",
                          "--workers", str(self.workers), "--access-log", self.access_log,
                          "--control", self.control, *self.extra],
                         os.path.join(self.workdir, log))
        self.listeners = []
        wait_until(lambda: self.read_listeners() or not self.alive(), what="gwd to listen")
        assert self.alive(), self.output()
        self.port = int(self.listeners[0].rsplit(":", 1)[1])

    def restart(self):
        """Stops this gwd by PID (a drain) and serves the same table file with a new one, on the
        same control socket and access log and a new port; returns the old one's exit status. Its
        output() is the new process's."""
        rc = self.stop()
        self.serve()
        return rc

    def read_listeners(self):
        """The addresses gwd announced, once it did."""
        self.listeners = listening_lines(self.output())
        return self.listeners

    def status_field(self, field):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        return 0

    def access_records(self, expect=1, timeout=3.0):
        """Access log lines as dicts, waiting until at least `expect` are there."""
        recs = []

        def ready():
            nonlocal recs
            try:
                with open(self.access_log) as f:
                    recs = [json.loads(l) for l in f if l.strip()]
            except FileNotFoundError:
                recs = []
            return len(recs) >= expect

        wait_until(ready, timeout, what=f"{expect} access log lines")
        return recs


def control(path, cmd, args=None, timeout=60.0):
    """One control-protocol call on gwd's Unix socket; returns the response object."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall((json.dumps({"v": 1, "id": 1, "cmd": cmd, "args": args or {}}) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                raise EOFError("gwd closed the control connection")
            buf += chunk
        return json.loads(buf)


def gwctl(*args, socket_path=None, check=False, timeout=60, user=None):
    """Runs gwctl; returns CompletedProcess (text). `user` runs it as (uid, gid) via setpriv."""
    cmd = [GWCTL, "--color", "never", *args]
    if socket_path:
        cmd[1:1] = ["--socket", socket_path]
    if user:
        cmd = ["setpriv", f"--reuid={user[0]}", f"--regid={user[1]}", "--clear-groups", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"{cmd} exited {out.returncode}: {out.stdout}{out.stderr}")
    return out


class Response:
    def __init__(self, status, reason, version, headers, body, trailers=()):
        self.status, self.reason, self.version = status, reason, version
        self.headers, self.body, self.trailers = headers, body, list(trailers)

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def headers_named(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.headers} {self.body[:200]!r}>"


class Conn:
    """One client connection with a bounded read of each response."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        data = self.sock.recv(256 * 1024)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n, sink=None):
        out = bytearray()
        while n:
            if not self.buf:
                self._fill()
            take = self.buf[:n]
            self.buf = self.buf[len(take):]
            n -= len(take)
            if sink:
                sink(take)
            else:
                out += take
        return bytes(out)

    def read_response(self, head_request=False, sink=None):
        """Reads one response; interim 1xx responses are returned in `interim`."""
        interim = []
        while True:
            status_line = self._line().decode("latin-1")
            version, status, reason = (status_line.split(" ", 2) + [""])[:3]
            headers = []
            while True:
                line = self._line()
                if not line:
                    break
                name, _, value = line.decode("latin-1").partition(":")
                headers.append((name.strip(), value.strip()))
            status = int(status)
            if 100 <= status < 200:
                interim.append((status, headers))
                continue
            break
        r = Response(status, reason, version, headers, b"")
        r.interim = interim
        te = (r.header("transfer-encoding") or "").lower()
        cl = r.header("content-length")
        if head_request or status in (204, 304):
            return r
        if te == "chunked":
            body = bytearray()
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while True:
                        line = self._line()
                        if not line:
                            break
                        name, _, value = line.decode("latin-1").partition(":")
                        r.trailers.append((name.strip(), value.strip()))
                    break
                chunk = self._exact(size, sink)
                if not sink:
                    body += chunk
                self._exact(2)
            r.body = bytes(body)
        elif cl is not None:
            r.body = self._exact(int(cl), sink)
        else:
            chunks = []
            try:
                while True:
                    if self.buf:
                        chunks.append(self.buf)
                        self.buf = b""
                    self._fill()
            except EOFError:
                pass
            r.body = b"".join(chunks)
        return r

    def request(self, method="GET", path="/", headers=None, body=b"", host="example.test"):
        hs = [("Host", host)] if host is not None else []
        hs += list((headers or {}).items()) if isinstance(headers, dict) else list(headers or [])
        if body and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in hs):
            hs.append(("Content-Length", str(len(body))))
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hs) + "\r\n"
        self.send(head.encode("latin-1") + body)
        return self.read_response(head_request=(method == "HEAD"))


def request(port, method="GET", path="/", headers=None, body=b"", host="example.test", timeout=10.0):
    with Conn(port, timeout) as c:
        return c.request(method, path, headers, body, host)


def raw(port, data, timeout=3.0):
    """Sends raw bytes and returns everything received until the server closes or goes quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                s.settimeout(max(0.05, deadline - time.monotonic()))
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out


def status_of(raw_response):
    if not raw_response.startswith(b"HTTP/1.1 "):
        return None
    return int(raw_response[9:12])


class GatewayTest(unittest.TestCase):
    """Starts backends and one gwd per test class. Subclasses set BACKENDS and SPEC (a format
    string with {name} placeholders for backend addresses), or override start_gateway()."""

    BACKENDS = ("a",)
    SPEC = ""
    WORKERS = 1
    GWD_ARGS = ()
    CONTROL = None  # the control socket, relative to the test directory (default gw.sock)

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="gw-it-")
        cls.backends = {}
        cls.gw = None
        try:
            for name in cls.BACKENDS:
                cls.backends[name] = Backend(cls.tmp.name, name)
            cls.gw = cls.start_gateway()
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.gw:
            cls.gw.stop()
        for b in cls.backends.values():
            b.stop()
        cls.tmp.cleanup()

    @classmethod
    def start_gateway(cls):
        spec = cls.SPEC.format(**{n: b.address for n, b in cls.backends.items()})
        return Gateway(cls.tmp.name, spec, workers=cls.WORKERS, extra=cls.GWD_ARGS,
                       control=cls.CONTROL)

    @classmethod
    def write(cls, name, text):
        """Writes a file in the class's directory; returns its path."""
        path = os.path.join(cls.tmp.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def request(self, *a, **kw):
        return request(self.gw.port, *a, **kw)


import shutil  # noqa: E402  (used by Redis only)


class Redis(Process):
    """A throwaway redis-server on 127.0.0.1 (no persistence), for distributed rate limits.

    redis-server is a declared dependency: when it is missing this raises (the test fails, it
    is not skipped). `again` starts a new server on the port of a stopped one (`again.port`),
    to bring it back on the same address.

    redis-server cannot bind port 0 and report it, so the port is reserved first (a bound socket
    with SO_REUSEADDR, which redis-server sets too) and stays reserved until stop();
    stop(keep_port=True) keeps it for `again`, so nothing else takes it between a stop and a
    restart. Should the bind fail all the same, the server is started again on a new port, a few
    times at most."""

    ATTEMPTS = 5

    def __init__(self, workdir, name="redis", again=None, timeout=10.0):
        exe = shutil.which("redis-server")
        if exe is None:
            raise AssertionError("redis-server is not installed (distributed rate limits need it): "
                                 "run ./install-deps.sh")
        for attempt in range(1 if again else self.ATTEMPTS):
            self.reserved = again.reserved if again else ReservedPort(reuse=True)
            self.port = self.reserved.port
            self.address = f"127.0.0.1:{self.port}"
            super().__init__([exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", workdir],
                             os.path.join(workdir, f"{name}.log"))
            try:
                wait_until(lambda: self.ping() or not self.alive(), timeout,
                           what="redis-server to answer PING")
                if self.alive():
                    return
                if "Address already in use" not in self.output() or again:
                    raise AssertionError("redis-server exited at startup:\n" + self.output())
            except BaseException:
                self.stop()
                raise
            self.stop()
        raise AssertionError(f"redis-server found its port taken {self.ATTEMPTS} times:\n"
                             + self.output())

    def stop(self, sig=signal.SIGTERM, timeout=10.0, keep_port=False):
        """Stops the server by PID; `keep_port` keeps its port reserved for `again`."""
        rc = super().stop(sig, timeout)
        if not keep_port:
            self.reserved.close()
        return rc

    def command(self, *args, timeout=2.0):
        """Sends one command; returns the reply: bytes (status, bulk), int, list, None, or a
        RedisError instance for an error reply."""
        req = f"*{len(args)}\r\n".encode()
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            req += b"$%d\r\n%s\r\n" % (len(a), a)
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(req)
            buf = bytearray()

            def need(n):
                while len(buf) < n:
                    chunk = s.recv(65536)
                    if not chunk:
                        raise EOFError("redis-server closed the connection")
                    buf.extend(chunk)

            def line():
                while b"\r\n" not in buf:
                    need(len(buf) + 1)
                end = buf.index(b"\r\n")
                out = bytes(buf[:end])
                del buf[:end + 2]
                return out

            def reply():
                head = line()
                kind, rest = head[:1], head[1:]
                if kind == b"+":
                    return rest
                if kind == b"-":
                    return RedisError(rest.decode(errors="replace"))
                if kind == b":":
                    return int(rest)
                if kind == b"$":
                    n = int(rest)
                    if n < 0:
                        return None
                    need(n + 2)
                    out = bytes(buf[:n])
                    del buf[:n + 2]
                    return out
                if kind == b"*":
                    n = int(rest)
                    return None if n < 0 else [reply() for _ in range(n)]
                raise ValueError(f"bad RESP reply {head!r}")

            return reply()

    def ping(self):
        try:
            return self.command("PING", timeout=0.5) == b"PONG"
        except (OSError, EOFError, ValueError):
            return False


class RedisError(Exception):
    pass


# ---- Helpers for what a backend saw, held requests, log lines and unreachable endpoints.

def backend_events(backend, ev=None):
    """The EVENT lines backend.py wrote (see its docstring), oldest first; `ev` filters by kind."""
    out = []
    for line in backend.output().splitlines():
        if line.startswith("EVENT "):
            e = json.loads(line[6:])
            if ev is None or e["ev"] == ev:
                out.append(e)
    return out


def backend_requests(backend, target_prefix=""):
    """The request heads a backend read whose target starts with `target_prefix`."""
    return [e for e in backend_events(backend, "request") if e["target"].startswith(target_prefix)]


def backend_closed(backend, conn):
    """How the backend's connection `conn` ended ("peer" or "self"), or None while it is open."""
    for e in backend_events(backend, "close"):
        if e["conn"] == conn:
            return e["by"]
    return None


def release(backend, key):
    """Lets the backend's held /hold/KEY requests (and later ones) answer."""
    r = request(backend.port, path=f"/_release/{key}", host=None)
    assert r.status == 200, r


def count_lines(proc, needle):
    """How many lines of a process's output contain `needle`."""
    return sum(1 for line in proc.output().splitlines() if needle in line)


class Blackhole:
    """A loopback address whose SYNs are dropped, so that connecting to it hangs: a listening
    socket with a backlog of 0 that never accepts, and one connection in its accept queue, which
    fills it (Linux drops a SYN to a listener whose queue is full). Works unprivileged; close()
    (or a with block) frees it."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.filler = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        try:
            wait_until(lambda: self.accept_queue() >= 1, 5, "the blackhole's accept queue to fill")
        except BaseException:
            self.close()
            raise

    def accept_queue(self):
        """Connections waiting in the listener's accept queue (rx_queue in /proc/net/tcp)."""
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                local, state, queues = fields[1], fields[3], fields[4]
                if state == "0A" and int(local.split(":")[1], 16) == self.port:
                    return int(queues.split(":")[1], 16)
        return 0

    def close(self):
        self.filler.close()
        self.listener.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

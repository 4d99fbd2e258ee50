"""HTTP/1.1 conformance of gwd as a proxy, with raw bytes (RFC 9110, RFC 9112).

Each case is a request a smuggler or a broken client could send; the rule is cited next to it.
A refused request gets the right 4xx and the connection closes, so nothing after it on the same
connection is ever read as another request."""
import re
import unittest

from harness import Conn, GatewayTest, raw, status_of


def responses(out):
    """The number of status lines in a raw byte stream."""
    return len(re.findall(rb"(?:^|\n)HTTP/1\.1 \d{3} ", out))

SPEC = """
version = 1
[upstreams.a]
endpoints = ["{a}"]
[[routes]]
name = "small"
prefix = "/small"
upstream = "a"
max_body = "100"
[[routes]]
name = "all"
prefix = "/"
upstream = "a"
"""


class Framing(GatewayTest):
    SPEC = SPEC

    def assert_refused(self, data, status):
        out = raw(self.gw.port, data)
        self.assertEqual(status_of(out), status, out[:300])
        # One answer only, and the connection closed: a smuggled second request is never read.
        self.assertEqual(responses(out), 1, out)
        self.assertIn(b"connection: close", out.lower())
        self.assertIn(b'"request_id":"', out)
        return out

    # RFC 9112 §6.3: Content-Length with Transfer-Encoding is a smuggling attempt.
    def test_content_length_with_transfer_encoding(self):
        self.assert_refused(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", 400)
        self.assert_refused(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", 400)

    # RFC 9112 §6.3: duplicate or malformed Content-Length.
    def test_duplicate_or_malformed_content_length(self):
        for cl in (b"Content-Length: 3\r\nContent-Length: 3", b"Content-Length: 3\r\nContent-Length: 4",
                   b"Content-Length: 3, 3", b"Content-Length: +3", b"Content-Length: -1",
                   b"Content-Length: 0x10", b"Content-Length: 1 2", b"Content-Length: 99999999999999999999999"):
            with self.subTest(cl=cl):
                self.assert_refused(b"POST / HTTP/1.1\r\nHost: x\r\n" + cl + b"\r\n\r\nabcd", 400)

    # RFC 9112 §6.1, §6.3: only "chunked" is understood; it must be the final coding.
    def test_transfer_codings(self):
        self.assert_refused(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabc", 501)
        self.assert_refused(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 501)
        self.assert_refused(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400)
        self.assert_refused(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400)
        self.assert_refused(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400)
        self.assert_refused(b"POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400)

    # RFC 9112 §7.1: chunk sizes are hex digits; overflow and junk are refused.
    def test_bad_chunk_sizes(self):
        for chunk in (b"zz\r\nhello\r\n0\r\n\r\n", b"fffffffffffffffff1\r\nx\r\n0\r\n\r\n",
                      b"5\r\nhelloXX\r\n0\r\n\r\n", b"-5\r\nhello\r\n0\r\n\r\n"):
            with self.subTest(chunk=chunk):
                out = raw(self.gw.port, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk)
                self.assertEqual(status_of(out), 400, out[:300])
                self.assertEqual(responses(out), 1, out)

    # RFC 9112 §5.2: obs-fold is refused; §2.2: bare CR; CRLF line endings only.
    def test_line_tricks(self):
        self.assert_refused(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400)
        self.assert_refused(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n", 400)
        self.assert_refused(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400)
        self.assert_refused(b"GET / HTTP/1.1\nHost: x\n\n", 400)
        self.assert_refused(b"GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n", 400)
        self.assert_refused(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400)

    # RFC 9112 §5.1: no whitespace between a field name and the colon; names are tokens.
    def test_field_syntax(self):
        self.assert_refused(b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400)
        self.assert_refused(b"GET / HTTP/1.1\r\nHost: x\r\n: empty\r\n\r\n", 400)
        self.assert_refused(b"GET / HTTP/1.1\r\nHost: x\r\nX(A): 1\r\n\r\n", 400)

    # RFC 9112 §3.2: exactly one Host in HTTP/1.1, well formed.
    def test_host_rules(self):
        self.assert_refused(b"GET / HTTP/1.1\r\n\r\n", 400)
        self.assert_refused(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400)
        self.assert_refused(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400)
        self.assert_refused(b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400)

    # RFC 9112 §3: the request line.
    def test_request_line(self):
        self.assert_refused(b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400)
        self.assert_refused(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 400)
        self.assert_refused(b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400)
        self.assert_refused(b"GET /a\\b HTTP/1.1\r\nHost: x\r\n\r\n", 400)
        self.assert_refused(b"GET /%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", 400)
        self.assert_refused(b"GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400)
        self.assert_refused(b"GET nothing HTTP/1.1\r\nHost: x\r\n\r\n", 400)

    # RFC 9110 §15.5.15, RFC 6585 §5: limits.
    def test_limits(self):
        self.assert_refused(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414)
        self.assert_refused(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 40000 + b"\r\n\r\n", 431)

    def test_body_limit(self):
        self.assert_refused(b"POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n" + b"x" * 101, 413)
        out = raw(self.gw.port, b"POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  + b"40\r\n" + b"x" * 64 + b"\r\n" + b"40\r\n" + b"x" * 64 + b"\r\n0\r\n\r\n")
        self.assertEqual(status_of(out), 413, out[:300])
        with Conn(self.gw.port) as c:
            r = c.request("POST", "/small", body=b"x" * 100)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json()["body_len"], 100)

    # RFC 9110 §10.1.1: unknown expectations get 417.
    def test_expectations(self):
        self.assert_refused(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Length: 2\r\n\r\nhi", 417)

    def test_connect_and_asterisk(self):
        out = raw(self.gw.port, b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        self.assertEqual(status_of(out), 501, out)
        out = raw(self.gw.port, b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(status_of(out), 200, out)
        self.assert_refused(b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400)

    # RFC 9110 §7.6.2: Max-Forwards 0 on TRACE/OPTIONS is answered by the gateway itself.
    def test_max_forwards(self):
        out = raw(self.gw.port, b"OPTIONS /x HTTP/1.1\r\nHost: x\r\nMax-Forwards: 0\r\nConnection: close\r\n\r\n")
        self.assertEqual(status_of(out), 200, out)
        self.assertNotIn(b"backend", out)
        out = raw(self.gw.port, b"TRACE /x HTTP/1.1\r\nHost: x\r\nMax-Forwards: 0\r\nConnection: close\r\n\r\n")
        self.assertEqual(status_of(out), 405, out)
        with Conn(self.gw.port) as c:
            r = c.request("OPTIONS", "/x", headers={"Max-Forwards": "5"})
            self.assertEqual(r.status, 200)
            self.assertIn(["Max-Forwards", "4"], [[k.title(), v] for k, v in r.json()["headers"]])

    def test_smuggling_payloads_reach_the_backend_as_one_request(self):
        # A valid chunked request whose body looks like another request: the backend must see one
        # POST with the body decoded, and the client exactly one response.
        body = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
        data = (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
        out = raw(self.gw.port, data)
        self.assertEqual(out.count(b"HTTP/1.1 200"), 1, out)
        self.assertIn(b'"body_len": %d' % len(body), out)
        self.assertNotIn(b"/smuggled\", \"version", out)

    def test_refused_request_is_the_last_on_its_connection(self):
        out = raw(self.gw.port, b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(responses(out), 1, out)

    def test_extension_methods_are_routed_not_refused(self):
        with Conn(self.gw.port) as c:
            r = c.request("PURGE", "/echo")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json()["method"], "PURGE")

    def test_absolute_form_target_uses_its_authority(self):
        with Conn(self.gw.port) as c:
            c.send(b"GET http://real.example/echo?q=1 HTTP/1.1\r\nHost: ignored.example\r\n\r\n")
            r = c.read_response()
        self.assertEqual(r.status, 200)
        echo = r.json()
        self.assertEqual(echo["target"], "/echo?q=1")
        self.assertIn(["Host", "real.example"], [[k.title(), v] for k, v in echo["headers"]])

    def test_normalised_path_is_what_is_forwarded(self):
        with Conn(self.gw.port) as c:
            r = c.request("GET", "/a/./b/../%7Euser//x?y=%2F")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["target"], "/a/~user/x?y=%2F")

    def test_leading_empty_lines_are_ignored(self):
        out = raw(self.gw.port, b"\r\n\r\nGET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertEqual(status_of(out), 200, out[:200])

    def test_gateway_survived(self):
        self.assertTrue(self.gw.alive())


if __name__ == "__main__":
    unittest.main()

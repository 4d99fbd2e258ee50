#!/usr/bin/env python3
"""The demo's backend services (standard library only): `catalog` serves pets, `accounts`
serves users and orders. Each answers JSON that says which instance served the request, so
load balancing and rewrites are visible from curl.

    demo_backend.py --service catalog --port 9101
"""
import argparse
import json
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PETS = {"1": {"id": 1, "name": "Rex", "kind": "dog"}, "2": {"id": 2, "name": "Tom", "kind": "cat"},
        "7": {"id": 7, "name": "Nemo", "kind": "fish"}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    service = "demo"
    port = 0
    # One write per response, with TCP_NODELAY. By default the head and the body leave in two
    # writes, and on a reused connection Nagle holds the body back until the proxy's delayed ACK
    # of the head (about 40 ms): every pooled request through gwd would look 40 ms slow.
    wbufsize = 64 * 1024  # buffered: the head and body go out in one flush, after the handler
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):  # the gateway's access log is the one to read
        pass

    def reply(self, status, payload):
        body = (json.dumps(payload, indent=2) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        served = {"service": self.service, "instance": f"127.0.0.1:{self.port}",
                  "request_id": self.headers.get("X-Request-Id"),
                  "forwarded_for": self.headers.get("X-Forwarded-For")}
        if self.service == "catalog":
            if path == "/healthz":
                return self.reply(200, {"status": "ok", **served})
            if path == "/pets":
                if self.command == "POST":
                    return self.reply(201, {"created": body.decode(errors="replace"), **served})
                return self.reply(200, {"pets": list(PETS.values()), **served})
            m = re.fullmatch(r"/pets/([^/]+)", path)
            if m:
                pet = PETS.get(m.group(1))
                if pet is None:
                    return self.reply(404, {"error": "no such pet", **served})
                return self.reply(200, {"pet": pet, "method": self.command, **served})
        if self.service == "accounts":
            m = re.fullmatch(r"(/v2)?/users/([^/]+)/orders", path)
            if m:
                return self.reply(200, {"user": m.group(2), "api": "v2" if m.group(1) else "v1",
                                        "orders": [{"id": 1, "total": "12.50"}], **served})
        return self.reply(200, {"method": self.command, "path": self.path, **served})

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = handle_any


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--service", choices=["catalog", "accounts"], required=True)
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    Handler.service, Handler.port = args.service, args.port
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()

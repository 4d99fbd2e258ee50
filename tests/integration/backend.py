#!/usr/bin/env python3
"""A scriptable HTTP/1.1 origin for gw's integration tests (standard library only).

    backend.py --port 0 --name a [--port-file F]

Listens on 127.0.0.1 (port 0 = any free port, written to --port-file) and answers by path:

  /echo...            200 JSON: backend name, connection id, request line, headers, body size
                      and SHA-256 (the default for any other path)
  /status/N           status N with a small body (204/304 without)
  /delay/MS           waits MS milliseconds, then echoes
  /stream/N           N bytes of body with Content-Length (generated, not buffered)
  /chunked/N          N bytes in chunks, with a trailer "x-checksum"
  /close-delimited/N  HTTP/1.0-style: N bytes, no length, then close
  /early-hints        103 Early Hints, then 200
  /garbage            bytes that are not HTTP
  /close              closes without answering
  /truncated          Content-Length 100, 10 bytes, close
  /cl-te              Content-Length and Transfer-Encoding together
  /dup-cl             two different Content-Length fields
  /bad-chunk          a malformed chunk size
  /fold               a folded (obs-fold) response field
  /switch             101 Switching Protocols
  /huge-head          a 100 KiB response head
  /hold/KEY           holds the request until /_release/KEY (at most 60 s, then 503), then
                      echoes; with ?on=NAME only the backend of that name holds, others echo
  /close-if-reused    closes without answering when the connection served a request before,
                      else echoes
  /_release/KEY       (answered by the backend itself, never logged) lets /hold/KEY go

Request bodies (Content-Length or chunked) are read, hashed and counted, never stored.

Every request head (except /_ ones) and the end of every connection that carried one are written
to stdout as `EVENT {json}` lines, flushed at once, so a test can wait on what the backend saw:
  {"ev": "request", "conn": N, "method": ..., "target": ..., "request_id": ..., "nth": K}
  {"ev": "close", "conn": N, "by": "peer" | "self"}
"peer" means the other side (gwd) closed or reset the connection; "self" that the backend did.
A held request whose connection the peer closes is given up (a "close" by "peer").
"""
import argparse
import asyncio
import hashlib
import itertools
import json
import os
import signal
import sys

CONN_IDS = itertools.count(1)
KINDS = {"status", "delay", "stream", "chunked", "close-delimited", "early-hints", "garbage", "close",
         "truncated", "cl-te", "dup-cl", "bad-chunk", "fold", "switch", "huge-head", "echo", "hold",
         "close-if-reused"}
CHUNK = 256 * 1024
HOLD_LIMIT = 60.0
HOLDS = {}  # key -> asyncio.Event, set by /_release/KEY


def event(**fields):
    print("EVENT " + json.dumps(fields), flush=True)


def hold_event(key):
    if key not in HOLDS:
        HOLDS[key] = asyncio.Event()
    return HOLDS[key]


async def hold(key, reader):
    """Waits for /_release/KEY; returns "released", "timeout", or "peer" when the peer closed the
    connection meanwhile (seen without reading: the stream keeps reading in the background)."""
    ev = hold_event(key)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + HOLD_LIMIT
    while not ev.is_set():
        if reader.at_eof() or reader.exception() is not None:
            return "peer"
        if loop.time() >= deadline:
            return "timeout"
        try:
            await asyncio.wait_for(ev.wait(), 0.05)
        except asyncio.TimeoutError:
            pass
    return "released"


class BadRequest(Exception):
    pass


async def read_head(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    method, target, version = lines[0].decode("latin-1").split(" ", 2)
    headers = []
    for line in lines[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    return method, target, version, headers


def header(headers, name):
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


async def read_body(reader, headers):
    """Returns (length, sha256 hex, trailers)."""
    h = hashlib.sha256()
    n = 0
    trailers = []
    if (header(headers, "transfer-encoding") or "").lower() == "chunked":
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:
                    line = await reader.readuntil(b"\r\n")
                    if line == b"\r\n":
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    trailers.append((name.strip(), value.strip()))
                break
            left = size
            while left:
                data = await reader.read(min(left, CHUNK))
                if not data:
                    raise BadRequest("eof in chunk")
                h.update(data)
                n += len(data)
                left -= len(data)
            if await reader.readexactly(2) != b"\r\n":
                raise BadRequest("bad chunk end")
    else:
        left = int(header(headers, "content-length") or 0)
        while left:
            data = await reader.read(min(left, CHUNK))
            if not data:
                raise BadRequest("eof in body")
            h.update(data)
            n += len(data)
            left -= len(data)
    return n, h.hexdigest(), trailers


def response(status, body=b"", headers=(), reason="OK"):
    out = [f"HTTP/1.1 {status} {reason}\r\n".encode()]
    for k, v in headers:
        out.append(f"{k}: {v}\r\n".encode())
    if status not in (204, 304) and not any(k.lower() == "content-length" for k, _ in headers):
        out.append(f"Content-Length: {len(body)}\r\n".encode())
    out.append(b"\r\n")
    out.append(body)
    return b"".join(out)


async def serve(reader, writer, name, port):
    conn_id = next(CONN_IDS)
    served = 0  # requests read on this connection, /_ ones excepted
    closed_by = "self"
    try:
        while True:
            try:
                method, target, version, headers = await read_head(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                closed_by = "peer"
                return
            path = target.split("?", 1)[0]
            if path.startswith("/_release/"):
                hold_event(path[len("/_release/"):]).set()
                await read_body(reader, headers)
                writer.write(response(200, b"released\n"))
                await writer.drain()
                continue
            served += 1
            event(ev="request", conn=conn_id, method=method, target=target,
                  request_id=header(headers, "x-request-id"), nth=served)
            length, digest, trailers = await read_body(reader, headers)
            query = target.split("?", 1)[1] if "?" in target else ""
            params = dict(p.partition("=")[::2] for p in query.split("&") if p)
            parts = path.strip("/").split("/")
            # The first known behaviour anywhere in the path, so that routes may add prefixes
            # (/hold and /close-if-reused first: they may sit under a route's /delay prefix).
            kind, arg = "", ""
            for kinds in (("hold", "close-if-reused"), KINDS):
                for i, part in enumerate(parts):
                    if part in kinds:
                        kind = part
                        arg = parts[i + 1] if i + 1 < len(parts) else ""
                        break
                if kind:
                    break

            def echo():
                return json.dumps({
                    "backend": name, "port": port, "conn": conn_id, "method": method,
                    "target": target, "version": version, "headers": headers,
                    "body_len": length, "body_sha256": digest, "trailers": trailers,
                }).encode()

            close = (header(headers, "connection") or "").lower() == "close"
            if kind == "status":
                code = int(arg)
                writer.write(response(code, b"" if code in (204, 304) else b"status body\n",
                                      [("X-Backend", name)], reason="Whatever"))
            elif kind == "delay":
                await asyncio.sleep(int(arg) / 1000)
                writer.write(response(200, echo(), [("Content-Type", "application/json")]))
            elif kind == "stream":
                n = int(arg)
                writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nX-Backend: {name}\r\n\r\n".encode())
                if method == "HEAD":
                    n = 0
                block = b"x" * CHUNK
                while n:
                    writer.write(block[:min(n, CHUNK)])
                    n -= min(n, CHUNK)
                    await writer.drain()
            elif kind == "chunked":
                n = int(arg)
                h = hashlib.sha256()
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-checksum\r\n\r\n")
                i = 0
                while n:
                    size = min(n, 1000 + (i * 7919) % 5000)
                    data = bytes([65 + i % 26]) * size
                    h.update(data)
                    writer.write(f"{size:x}\r\n".encode() + data + b"\r\n")
                    n -= size
                    i += 1
                    await writer.drain()
                writer.write(f"0\r\nx-checksum: {h.hexdigest()}\r\n\r\n".encode())
            elif kind == "close-delimited":
                n = int(arg)
                writer.write(b"HTTP/1.0 200 OK\r\nX-Backend: " + name.encode() + b"\r\n\r\n" + b"y" * n)
                await writer.drain()
                return
            elif kind == "early-hints":
                writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
                writer.write(response(200, echo()))
            elif kind == "garbage":
                writer.write(b"this is not http\r\n\r\n")
                await writer.drain()
                return
            elif kind == "close":
                return
            elif kind == "truncated":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
                await writer.drain()
                return
            elif kind == "cl-te":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
            elif kind == "dup-cl":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")
            elif kind == "bad-chunk":
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
                await writer.drain()
                return
            elif kind == "fold":
                writer.write(b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok")
            elif kind == "switch":
                writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n")
                await writer.drain()
                return
            elif kind == "hold":
                if params.get("on", name) == name:
                    outcome = await hold(arg, reader)
                    if outcome == "peer":
                        closed_by = "peer"
                        return
                    if outcome == "timeout":
                        writer.write(response(503, b"hold not released\n"))
                        await writer.drain()
                        return
                writer.write(response(200, echo(), [("Content-Type", "application/json"),
                                                    ("X-Backend", name)]))
            elif kind == "close-if-reused":
                if served > 1:
                    return
                writer.write(response(200, echo(), [("Content-Type", "application/json"),
                                                    ("X-Backend", name)]))
            elif kind == "huge-head":
                writer.write(b"HTTP/1.1 200 OK\r\nX-Big: " + b"b" * 100_000 + b"\r\nContent-Length: 2\r\n\r\nok")
            else:
                writer.write(response(200, echo(), [("Content-Type", "application/json"),
                                                    ("X-Backend", name),
                                                    ("Connection", "x-drop-me"),
                                                    ("X-Drop-Me", "hop"),
                                                    ("Keep-Alive", "timeout=5")]))
            await writer.drain()
            if close:
                return
    except (ConnectionError, asyncio.IncompleteReadError):  # the peer went away mid-request
        closed_by = "peer"
        return
    except (BadRequest, ValueError, asyncio.LimitOverrunError):
        return
    finally:
        if served:
            event(ev="close", conn=conn_id, by=closed_by)
        try:
            writer.close()
        except Exception:
            pass


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--name", default="backend")
    ap.add_argument("--port-file")
    args = ap.parse_args()
    server = None

    async def on_conn(r, w):
        await serve(r, w, args.name, server.sockets[0].getsockname()[1])

    server = await asyncio.start_server(on_conn, "127.0.0.1", args.port, limit=256 * 1024)
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(port))
        os.replace(tmp, args.port_file)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
    async with server:
        await stop


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)

#!/usr/bin/python3
"""A small HTTPS server for modelgate's download tests (Python standard library only).

    server.py --dir WORKDIR --root FILES [--lifetime SECS] LISTENER...

LISTENER is NAME=CERT.pem:KEY.pem. Every listener binds 127.0.0.1 on a free port (never any
other address) and serves the same routes with its own certificate. When all listen, the server
writes WORKDIR/ports.json ({"NAME": port, ...}) atomically; tests wait for that file. It stops
by itself after --lifetime seconds (default 120), or on SIGTERM/SIGINT.

Counters, for tests to assert how many requests a refused download made: after every accepted
TCP connection and every HTTP request, WORKDIR/count.json is rewritten atomically as
{"NAME": {"connections": n, "handshake_failures": n, "requests": n, "paths": [...]}, ...}
(paths: the first 200 request paths). GET /__count returns the same JSON and is not counted.

Routes (NAME is a file below --root; every response closes the connection):
    /f/NAME                 200 with Content-Length
    /chunked/NAME           200, Transfer-Encoding: chunked (4 KiB chunks)
    /truncated/NAME         200, Content-Length = size + 1000, then the file, then close
    /stall/NAME             200, Content-Length, the first 1 KiB, then nothing for up to 20 s
    /redirect?to=URL        302 to URL (percent-encoded in the query)
    /redirect301?to=URL     301 to URL
    /loop/N                 302 to /loop/N+1 (relative), for N < 50; then 404
    /r/NAME                 302 to /f/NAME (relative: same host)
    /rlocalhost/NAME        302 to https://localhost:PORT/f/NAME (another host name)
    /rhttp/NAME             302 to http://127.0.0.1:PORT/f/NAME (never served: no plain HTTP)
    /status/CODE            that status with a short body
    /gzip/NAME              200, the file gzip-compressed, Content-Encoding: gzip
    /headers                200, the request's header lines as the body
    /tokenauth/NAME         the file if "Authorization: Bearer mg-good-token", else 401 with
                            WWW-Authenticate: Bearer realm="https://127.0.0.1:PORT/token",...
    /token?service=&scope=  {"token": "mg-good-token"} if the request carries Basic auth of
                            mguser:mgpass, else 401 (the registry token flow's endpoint)
    /bigheader/N            200 with one response header line of N bytes (N <= 4 MiB), body "x"
    /range/NAME             range support: "Range: bytes=S-E" (one range) gets 206 with
                            Content-Range "bytes S-E/SIZE" and Accept-Ranges; no Range: 200
    /norange/NAME           ignores Range: always 200 with the whole file (as /f/, streamed)
    /lierange/NAME          as /range/, but the Content-Range it sends starts one byte later
                            than the bytes it sends (a lying server)
    /flaky/NAME             as /range/; while ROOT/NAME.drop exists (holding a number N), every
                            answer stops after N body bytes and the connection is dropped
    anything else           404

The ranged routes read the file piece by piece (never whole), so large files can be served.

Every request's Authorization header (or null) is recorded with its host and path in
count.json under "auth" ([[host, path, authorization], ...], first 200), so tests can see
where credentials went. Every Range header is recorded as well, under "ranges"
([[path, range], ...], first 200).
"""
import argparse
import gzip
import json
import os
import signal
import socket
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

STALL_SECONDS = 20
MAX_PATHS = 200


class Counters:
    def __init__(self, workdir, names):
        self.lock = threading.Lock()
        self.path = os.path.join(workdir, "count.json")
        self.data = {n: {"connections": 0, "handshake_failures": 0, "requests": 0, "paths": [],
                         "auth": [], "ranges": []}
                     for n in names}
        self.write()

    def bump(self, name, key, path=None):
        with self.lock:
            self.data[name][key] += 1
            if path is not None and len(self.data[name]["paths"]) < MAX_PATHS:
                self.data[name]["paths"].append(path)
            self.write()

    def auth(self, name, host, path, value):
        with self.lock:
            if len(self.data[name]["auth"]) < MAX_PATHS:
                self.data[name]["auth"].append([host, path, value])
            self.write()

    def range(self, name, path, value):
        with self.lock:
            if len(self.data[name]["ranges"]) < MAX_PATHS:
                self.data[name]["ranges"].append([path, value])
            self.write()

    def snapshot(self):
        with self.lock:
            return json.dumps(self.data).encode()

    def write(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f)
        os.replace(tmp, self.path)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mgtest"
    sys_version = ""

    def log_message(self, fmt, *args):  # quiet: tests read count.json instead
        pass

    def send_simple(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def file_bytes(self, name):
        root = self.server.root
        full = os.path.realpath(os.path.join(root, name))
        if not full.startswith(root + os.sep) or not os.path.isfile(full):
            return None
        with open(full, "rb") as f:
            return f.read()

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/__count":
            self.send_simple(200, self.server.counters.snapshot())
            return
        self.server.counters.bump(self.server.name, "requests", self.path)
        self.server.counters.auth(self.server.name, self.headers.get("Host"), url.path,
                                  self.headers.get("Authorization"))
        parts = url.path.split("/", 2)
        route = parts[1] if len(parts) > 1 else ""
        arg = urllib.parse.unquote(parts[2]) if len(parts) > 2 else ""
        query = urllib.parse.parse_qs(url.query)
        self.close_connection = True

        if route in ("redirect", "redirect301") and "to" in query:
            code = 301 if route == "redirect301" else 302
            self.send_simple(code, b"moved\n", [("Location", query["to"][0])])
            return
        if route == "loop":
            n = int(arg) if arg.isdigit() else 0
            if n < 50:
                self.send_simple(302, b"", [("Location", "/loop/%d" % (n + 1))])
            else:
                self.send_simple(404, b"end of loop\n")
            return
        port = self.server.server_address[1]
        quoted = urllib.parse.quote(arg)
        if route == "r":
            self.send_simple(302, b"", [("Location", "/f/" + quoted)])
            return
        if route == "rlocalhost":
            self.send_simple(302, b"", [("Location", "https://localhost:%d/f/%s" % (port, quoted))])
            return
        if route == "rhttp":
            self.send_simple(302, b"", [("Location", "http://127.0.0.1:%d/f/%s" % (port, quoted))])
            return
        if route == "headers":
            self.send_simple(200, str(self.headers).encode("latin-1"))
            return
        if route == "token":
            import base64
            want = "Basic " + base64.b64encode(b"mguser:mgpass").decode()
            if self.headers.get("Authorization") != want:
                self.send_simple(401, b"no\n", [("WWW-Authenticate", 'Basic realm="mgtest"')])
            else:
                self.send_simple(200, b'{"token": "mg-good-token", "expires_in": 300}',
                                 [("Content-Type", "application/json")])
            return
        if route == "tokenauth" and self.headers.get("Authorization") != "Bearer mg-good-token":
            challenge = ('Bearer realm="https://127.0.0.1:%d/token",service="mgtest",'
                         'scope="repository:models/x:pull,push"' % self.server.server_address[1])
            self.send_simple(401, b"token needed\n", [("WWW-Authenticate", challenge)])
            return
        if route == "bigheader" and arg.isdigit() and int(arg) <= (4 << 20):
            self.send_simple(200, b"x", [("X-Big", "a" * int(arg))])
            return
        if route in ("range", "norange", "lierange", "flaky") and arg:
            if self.headers.get("Range") is not None:
                self.server.counters.range(self.server.name, url.path, self.headers.get("Range"))
            self.send_ranged(route, arg)
            return
        if route == "status" and arg.isdigit():
            self.send_simple(int(arg), b"status body\n")
            return

        body = self.file_bytes(arg) if arg else None
        if body is None or route not in ("f", "chunked", "truncated", "stall", "gzip", "tokenauth"):
            self.send_simple(404, b"not found\n")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Connection", "close")
        if route == "gzip":
            body = gzip.compress(body, mtime=0)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif route == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 4096):
                chunk = body[i:i + 4096]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        elif route == "truncated":
            self.send_header("Content-Length", str(len(body) + 1000))
            self.end_headers()
            self.wfile.write(body)
        elif route == "stall":
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:1024])
            self.wfile.flush()
            deadline = time.monotonic() + STALL_SECONDS
            while time.monotonic() < deadline and not self.server.stopping.is_set():
                time.sleep(0.1)
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)


    def send_ranged(self, route, name):
        root = self.server.root
        full = os.path.realpath(os.path.join(root, name))
        if not full.startswith(root + os.sep) or not os.path.isfile(full):
            self.send_simple(404, b"not found\n")
            return
        size = os.path.getsize(full)
        start, end = 0, size - 1
        ranged = False
        want = self.headers.get("Range")
        if route != "norange" and want is not None:
            spec = want.strip()
            ok = spec.startswith("bytes=") and "," not in spec
            if ok:
                a, _, b = spec[6:].partition("-")
                ok = a.isdigit() and (b == "" or b.isdigit())
            if ok:
                start, end = int(a), (int(b) if b else size - 1)
                ok = start <= end < size
            if not ok:
                self.send_simple(416, b"bad range\n", [("Content-Range", "bytes */%d" % size)])
                return
            ranged = True
        drop = None
        if route == "flaky" and os.path.exists(full + ".drop"):
            with open(full + ".drop") as f:
                drop = int(f.read().strip() or "0")
        length = end - start + 1
        self.send_response(206 if ranged else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Connection", "close")
        if route != "norange":
            self.send_header("Accept-Ranges", "bytes")
        if ranged:
            shown = start + 1 if route == "lierange" else start
            self.send_header("Content-Range", "bytes %d-%d/%d" % (shown, end, size))
        self.send_header("Content-Length", str(length))
        self.end_headers()
        sent = 0
        with open(full, "rb") as f:
            f.seek(start)
            while sent < length:
                n = min(1 << 20, length - sent)
                if drop is not None:
                    n = min(n, drop - sent)
                    if n <= 0:
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                chunk = f.read(n)
                if not chunk:
                    return
                self.wfile.write(chunk)
                sent += len(chunk)


class TLSServer(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, name, ctx, root, counters, stopping):
        self.name = name
        self.ctx = ctx
        self.root = root
        self.counters = counters
        self.stopping = stopping
        super().__init__(("127.0.0.1", 0), Handler)

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, in the connection's own thread, so a client that
        # stalls in the handshake cannot block the accept loop.
        self.counters.bump(self.name, "connections")
        request.settimeout(30)
        try:
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            self.counters.bump(self.name, "handshake_failures")
            return
        try:
            Handler(tls, client_address, self)
        except (ssl.SSLError, OSError):
            pass
        finally:
            try:
                tls.close()
            except OSError:
                pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--lifetime", type=float, default=120.0)
    ap.add_argument("listeners", nargs="+")
    args = ap.parse_args()

    specs = []
    for spec in args.listeners:
        name, _, files = spec.partition("=")
        cert, _, key = files.partition(":")
        specs.append((name, cert, key))
    counters = Counters(args.dir, [s[0] for s in specs])
    stopping = threading.Event()
    root = os.path.realpath(args.root)
    servers = []
    for name, cert, key in specs:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert, key)
        srv = TLSServer(name, ctx, root, counters, stopping)
        servers.append(srv)
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True).start()

    ports = {s.name: s.server_address[1] for s in servers}
    tmp = os.path.join(args.dir, "ports.json.tmp")
    with open(tmp, "w") as f:
        json.dump(ports, f)
    os.replace(tmp, os.path.join(args.dir, "ports.json"))

    def stop(signum, frame):
        stopping.set()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    stopping.wait(args.lifetime)
    stopping.set()
    for s in servers:
        s.shutdown()
        s.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

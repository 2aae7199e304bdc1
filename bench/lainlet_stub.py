#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A stand-in for lainlet (which cannot run here) for bench/failover.sh.

Serves GET /v2/containers?nodename=N[&watch=1][&heartbeat=S] as described in
../shared/reference/lainlet.md: a plain GET returns the data object, a watch
returns an event stream (init, then heartbeats every S seconds, and an update
whenever the data file changes on SIGHUP). The data file holds the JSON object
"NODE/CONTAINER_ID" -> {app, app_version, proc, nodename, nodeip, ip, port,
instanceNo}; every container is served under the node name and the node IP,
like lainlet does. /debug and /version answer for liveness checks.

usage: lainlet_stub.py --listen 127.0.0.1:PORT --data FILE
"""
import argparse
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class Store:
    def __init__(self, path):
        self.path = path
        self.cond = threading.Condition()
        self.version = 0
        self.data = {}
        self.load()

    def load(self):
        with open(self.path) as f:
            raw = json.load(f)
        data = {}
        for key, c in raw.items():
            data[key] = c
            cid = key.split("/", 1)[-1]
            if c.get("nodeip"):
                data[c["nodeip"] + "/" + cid] = c
        with self.cond:
            self.data = data
            self.version += 1
            self.cond.notify_all()

    def snapshot(self):
        with self.cond:
            return self.version, json.dumps(self.data, separators=(",", ":"))

    def wait_change(self, version, timeout):
        with self.cond:
            self.cond.wait_for(lambda: self.version != version, timeout)
            return self.version != version


def make_handler(store):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def plain(self, code, body, ctype="application/json"):
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urlparse(self.path)
            q = parse_qs(url.query)
            if url.path in ("/debug", "/version"):
                self.plain(200, '{"version":"stub"}')
                return
            if url.path != "/v2/containers":
                self.plain(404, '{"error":"not found"}')
                return
            watch = q.get("watch", ["0"])[0] in ("1", "true")
            if not watch:
                self.plain(200, store.snapshot()[1])
                return
            try:
                heartbeat = float(q.get("heartbeat", ["0"])[0])
            except ValueError:
                heartbeat = 0
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            event_id = 1
            version, body = store.snapshot()
            try:
                self.wfile.write(
                    f"id: {event_id}\nevent: init\ndata: {body}\n\n".encode())
                self.wfile.flush()
                next_beat = time.monotonic() + heartbeat if heartbeat else None
                while True:
                    wait = 1.0
                    if next_beat is not None:
                        wait = max(0.0, next_beat - time.monotonic())
                    if store.wait_change(version, wait):
                        version, new_body = store.snapshot()
                        if new_body != body:
                            body = new_body
                            event_id += 1
                            self.wfile.write(
                                f"id: {event_id}\nevent: update\ndata: {body}"
                                "\n\n".encode())
                            self.wfile.flush()
                    if next_beat is not None and time.monotonic() >= next_beat:
                        self.wfile.write(b"id: 0\nevent: heartbeat\n\n")
                        self.wfile.flush()
                        next_beat += heartbeat
            except (BrokenPipeError, ConnectionResetError, OSError):
                return

    return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True, help="host:port")
    ap.add_argument("--data", required=True, help="JSON data file")
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    store = Store(a.data)
    signal.signal(signal.SIGHUP, lambda *_: store.load())
    srv = ThreadingHTTPServer((host, int(port)), make_handler(store))
    srv.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    srv.serve_forever()


if __name__ == "__main__":
    main()

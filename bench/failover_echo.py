#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The "container" of bench/failover.sh: answers every TCP connection on the
given ports with its name and a newline, then closes.

usage: failover_echo.py NAME PORT[,PORT...]
"""
import signal
import socket
import sys
import threading


def serve(sock, reply):
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            continue
        try:
            conn.sendall(reply)
        except OSError:
            pass
        finally:
            conn.close()


def main():
    name, ports = sys.argv[1], sys.argv[2]
    reply = (name + "\n").encode()
    for p in ports.split(","):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", int(p)))
        s.listen(512)
        threading.Thread(target=serve, args=(s, reply), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        signal.pause()


if __name__ == "__main__":
    main()

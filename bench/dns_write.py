#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# etcd write -> DNS answer latency of networkd (run by bench/dns.sh).
"""Puts N new names into etcd, one after another, and times each until the
DNS server answers it with the new address.

For write i: the key /lain/config/domains/wI.TAG.write.bench gets
{"ips":["10.4.X.Y"],"type":""} through etcd's JSON gateway (POST
/v3/kv/put on a kept-alive HTTP connection). The clock starts just before
the request is sent. From then on an A query for the name goes to the DNS
server every INTERVAL (1 ms); any reply to any of these queries that holds
the new address ends the wait (queries are not retried: the next tick sends
a new one, so a lost or slow answer costs at most one interval). Also
recorded: when etcd acknowledged the put. A write not answered within
TIMEOUT counts as missed. Between writes a pause of GAP.

Prints the p50, p90, p99 and max of write -> answer, of write -> etcd
ack, and of etcd ack -> answer (negative when the answer came first), in ms.
"""

import argparse
import base64
import http.client
import json
import math
import random
import select
import socket
import statistics
import struct
import sys
import time


def query(qid, name):
  """A DNS query for NAME A with recursion desired."""
  wire = b"".join(bytes([len(l)]) + l.encode() for l in name.split("."))
  return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + wire + \
      b"\0" + struct.pack(">HH", 1, 1)


def skip_name(msg, off):
  """Offset after the (possibly compressed) name at OFF; no recursion."""
  for _ in range(128):
    n = msg[off]
    if n == 0:
      return off + 1
    if n & 0xC0 == 0xC0:
      return off + 2
    off += 1 + n
  raise ValueError("name too long")


def answer_ips(msg):
  """(id, rcode, [IPv4 of A records in the answer]) of a DNS reply."""
  qid, flags, qd, an = struct.unpack(">HHHH", msg[:8])
  off = 12
  for _ in range(qd):
    off = skip_name(msg, off) + 4
  ips = []
  for _ in range(min(an, 64)):
    off = skip_name(msg, off)
    rtype, _, _, rdlen = struct.unpack(">HHIH", msg[off:off + 10])
    off += 10
    if rtype == 1 and rdlen == 4:
      ips.append(socket.inet_ntoa(msg[off:off + 4]))
    off += rdlen
  return qid, flags & 0xF, ips


def pct(xs, p):
  """Nearest-rank percentile."""
  xs = sorted(xs)
  return xs[max(0, math.ceil(p / 100 * len(xs)) - 1)]


def b64(s):
  return base64.b64encode(s.encode()).decode()


def one_write(i, a, conn, udp, dns_addr):
  """Returns (ms to answer or None, ms to the etcd ack, polls sent)."""
  name = "w%04d.%s.write.bench" % (i, a.tag)
  ip = "10.4.%d.%d" % (i // 250, i % 250 + 1)
  value = json.dumps({"ips": [ip], "type": ""}, separators=(",", ":"))
  body = json.dumps({"key": b64("/lain/config/domains/" + name),
                     "value": b64(value)})
  sent = set()
  t0 = time.perf_counter()
  conn.request("POST", "/v3/kv/put", body,
               {"Content-Type": "application/json"})
  acked = None
  polls = 0
  next_poll = t0
  deadline = t0 + a.timeout
  while True:
    now = time.perf_counter()
    if now >= deadline:
      break
    if now >= next_poll:
      qid = random.getrandbits(16)
      sent.add(qid)
      udp.sendto(query(qid, name), dns_addr)
      polls += 1
      next_poll += a.interval
      if next_poll < now:  # fell behind (machine busy): no burst
        next_poll = now + a.interval
    watch = [udp] + ([conn.sock] if acked is None else [])
    ready, _, _ = select.select(watch, [], [],
                                max(0.0, min(next_poll, deadline) - now))
    if conn.sock in ready and acked is None:
      resp = conn.getresponse()
      data = resp.read()
      if resp.status != 200:
        sys.exit("dns_write: etcd put failed: %d %s" % (resp.status, data))
      acked = time.perf_counter() - t0
    if udp in ready:
      while True:
        try:
          msg = udp.recv(4096)
        except BlockingIOError:
          break
        try:
          qid, _, ips = answer_ips(msg)
        except (ValueError, IndexError, struct.error):
          continue
        if qid in sent and ip in ips:
          done = time.perf_counter() - t0
          if acked is None:
            resp = conn.getresponse()
            resp.read()
            acked = time.perf_counter() - t0
          return done * 1000, acked * 1000, polls
  if acked is None:
    resp = conn.getresponse()
    resp.read()
    acked = time.perf_counter() - t0
  return None, acked * 1000, polls


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--etcd", required=True, help="HOST:PORT of etcd's client URL")
  p.add_argument("--dns", required=True, help="HOST:PORT of the DNS server")
  p.add_argument("-n", type=int, default=200, help="writes")
  p.add_argument("--interval", type=float, default=0.001, help="poll, s")
  p.add_argument("--timeout", type=float, default=2.0, help="per write, s")
  p.add_argument("--gap", type=float, default=0.02, help="between writes, s")
  p.add_argument("--tag", default="r%x" % (int(time.time()) % 0x1000000),
                 help="label that makes this run's names new (default: "
                 "from the clock)")
  p.add_argument("--trace", help="file for one line per write: name, wall "
                 "clock of the put (s), ms to the etcd ack, ms to the answer")
  a = p.parse_args()
  host, port = a.etcd.rsplit(":", 1)
  conn = http.client.HTTPConnection(host, int(port), timeout=10)
  conn.connect()
  conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
  dhost, dport = a.dns.rsplit(":", 1)
  udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
  udp.setblocking(False)
  dns_addr = (dhost, int(dport))
  answer, ack, after_ack, missed, polls = [], [], [], 0, 0
  trace = open(a.trace, "w") if a.trace else None
  for i in range(a.n):
    wall = time.time()
    ms, ack_ms, n = one_write(i, a, conn, udp, dns_addr)
    if trace:
      trace.write("w%04d.%s.write.bench %.6f %.3f %s\n" % (
        i, a.tag, wall, ack_ms, "%.3f" % ms if ms is not None else "-"))
    ack.append(ack_ms)
    polls += n
    if ms is None:
      missed += 1
    else:
      answer.append(ms)
      after_ack.append(ms - ack_ms)
    time.sleep(a.gap)
    while True:  # late answers of this write
      try:
        udp.recv(4096)
      except BlockingIOError:
        break
  print("etcd write -> networkd answer: %d writes, %d answered, %d missed "
        "(not within %.1f s), %.1f polls per write (every %.1f ms)"
        % (a.n, len(answer), missed, a.timeout, polls / max(a.n, 1),
           a.interval * 1000))
  for label, xs in [("write -> answer", answer), ("write -> etcd ack", ack),
                    ("etcd ack -> answer", after_ack)]:
    if xs:
      print("  %-18s p50 %6.2f  p90 %6.2f  p99 %6.2f  max %7.2f  mean %6.2f"
            " ms" % (label, pct(xs, 50), pct(xs, 90), pct(xs, 99), max(xs),
                     statistics.mean(xs)))
  if answer:
    print("  target: p99 <= 5 ms: %s" % ("met" if missed == 0 and
                                         pct(answer, 99) <= 5 else "NOT met"))
  return 0 if answer else 1


if __name__ == "__main__":
  sys.exit(main())

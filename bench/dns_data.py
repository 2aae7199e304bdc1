#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Generates the names, server configs and dnsperf query files of bench/dns.sh.
"""Writes into OUT_DIR:

  etcd.txn          etcdctl txn input: /lain/config/domains/* for networkd
  dnsmasq.conf      the same names for the dnsmasq under test
  unbound-local.conf  the same names as unbound local-zone/local-data lines
  bench.zone        the same names as a zone file for Knot DNS (zone "bench."):
                    each wildcard name as "*.NAME" plus NAME itself
  upstream.conf     the forwarded names, for the upstream dnsmasq
  local.queries     dnsperf input: wildcard-matched and exact local names
  forward.queries   dnsperf input: names only the upstream knows
  check.txt         "name ip" pairs every server must answer (sanity check)
  check-local.txt   the local ones of those (for Knot, which does not forward)
"""

import argparse
import json
import os
import random

WILD_SUFFIX = "svc.bench"
EXACT_SUFFIX = "hosts.bench"
FWD_SUFFIX = "upstream.bench"


def ip(net, i):
  return "10.%d.%d.%d" % (net, i // 250, i % 250 + 1)


def main():
  p = argparse.ArgumentParser()
  p.add_argument("out_dir")
  p.add_argument("--wildcards", type=int, default=2000)
  p.add_argument("--exact", type=int, default=300)
  p.add_argument("--forwarded", type=int, default=2000)
  p.add_argument("--local-queries", type=int, default=20000)
  p.add_argument("--exact-share", type=float, default=0.3)
  p.add_argument("--seed", type=int, default=1)
  a = p.parse_args()
  rnd = random.Random(a.seed)
  wild = [("w%04d.%s" % (i, WILD_SUFFIX), ip(1, i))
          for i in range(a.wildcards)]
  exact = [("h%04d.%s" % (i, EXACT_SUFFIX), ip(2, i)) for i in range(a.exact)]
  fwd = [("f%04d.%s" % (i, FWD_SUFFIX), ip(3, i))
         for i in range(a.forwarded)]

  def out(name):
    return open(os.path.join(a.out_dir, name), "w")

  with out("etcd.txn") as f:
    f.write("\n")  # no compares
    for name, addr in [("*." + n, x) for n, x in wild] + exact:
      value = json.dumps({"ips": [addr], "type": ""}, separators=(",", ":"))
      f.write('put /lain/config/domains/%s "%s"\n'
              % (name, value.replace('"', '\\"')))
    f.write("\n\n")  # no failure ops
  with out("dnsmasq.conf") as f:
    for name, addr in wild:
      f.write("address=/%s/%s\n" % (name, addr))
    for name, addr in exact:
      f.write("host-record=%s,%s\n" % (name, addr))
  with out("unbound-local.conf") as f:
    for name, addr in wild:
      f.write('  local-zone: "%s." redirect\n' % name)
      f.write('  local-data: "%s. 60 IN A %s"\n' % (name, addr))
    for name, addr in exact:
      f.write('  local-data: "%s. 60 IN A %s"\n' % (name, addr))
  with out("bench.zone") as f:
    f.write("$ORIGIN bench.\n$TTL 60\n")
    f.write("@ SOA ns.bench. hostmaster.bench. 1 3600 600 86400 60\n")
    f.write("@ NS ns.bench.\nns A 127.0.0.1\n")
    for name, addr in wild:
      f.write("%s. A %s\n*.%s. A %s\n" % (name, addr, name, addr))
    for name, addr in exact:
      f.write("%s. A %s\n" % (name, addr))
  with out("upstream.conf") as f:
    for name, addr in fwd:
      f.write("host-record=%s,%s\n" % (name, addr))
  with out("local.queries") as f:
    for _ in range(a.local_queries):
      if rnd.random() < a.exact_share:
        f.write("%s A\n" % rnd.choice(exact)[0])
      else:
        label = "n%d" % rnd.randrange(100000)
        f.write("%s.%s A\n" % (label, rnd.choice(wild)[0]))
  with out("forward.queries") as f:
    names = [n for n, _ in fwd]
    rnd.shuffle(names)
    for name in names:
      f.write("%s A\n" % name)
  local_checks = [("x." + wild[0][0], wild[0][1]),
                  ("a.b." + wild[-1][0], wild[-1][1]), exact[0], exact[-1]]
  with out("check.txt") as f:
    for name, addr in local_checks + [fwd[0], fwd[-1]]:
      f.write("%s %s\n" % (name, addr))
  with out("check-local.txt") as f:
    for name, addr in local_checks:
      f.write("%s %s\n" % (name, addr))


if __name__ == "__main__":
  main()

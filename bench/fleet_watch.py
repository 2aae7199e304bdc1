#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The observer of bench/fleet.sh. Runs in the lab's client namespace (on the
bridge, where etcd answers) and looks into every node's namespace with
setns(2): a netlink socket per node for the kernel's addresses and a TCP
socket per request for networkd's /readyz on 127.0.0.1:API. The VIP locks
come from etcd's JSON gateway (/v3/kv/range). Nothing here loads networkd's
admin beyond /readyz, so watching does not slow the fleet being measured.

A VIP is "held" by a node when its IP/32 is on the node's eth0; it is "settled"
when exactly one node holds it and its lock in etcd names that node.

  fleet_watch.py cold --t0 TS [--deadline S]
      Until every VIP is settled and every node ready: prints
      "ready_ms=... settled_ms=... covered_ms=... doubles=..." (ms from TS,
      epoch seconds; covered: every VIP on its lock owner, maybe on others
      too) and how many VIPs each node holds.
  fleet_watch.py etcd-kill --pid PID [--stable S] [--deadline S]
      Takes the VIP -> node map, SIGKILLs PID (an etcd member), then watches
      until every node is ready and every VIP on its lock owner with no new
      VIP held twice (one held twice before the kill is left aside), and S
      seconds more:
      prints the time to all ready, the most nodes not ready at once, VIPs
      that moved, doubly held or unheld.
  fleet_watch.py failover --node NAME --pid PID [--deadline S]
      SIGKILLs PID (NAME's networkd) and times until each VIP NAME held is
      settled on another node: prints first, median and last per VIP (ms).
  fleet_watch.py quiet --window S --pids A,B,.. --etcd-pids A,B,C
      etcd's /metrics of every member before and after S seconds: requests
      per second by gRPC method, open streams, watchers, writes; CPU and RSS
      of the networkd and etcd processes over the window.
  fleet_watch.py state
      One line: nodes ready, VIPs settled / held twice / unheld.
  fleet_watch.py stubs [--deadline S]
      Waits until every node's lainlet stand-in (127.0.0.1:9300) and
      container (172.20.I.2:80) accept connections; exits 1 if not in time.
Common: --ns-prefix P (namespaces P-n1..P-nN) --nodes N --vips FILE (one IP
a line) --etcd HOST:PORT,... --api-port PORT.
"""
import argparse
import base64
import ctypes
import http.client
import json
import os
import signal
import socket
import statistics
import struct
import sys
import time

CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)
home_ns = os.open("/proc/self/ns/net", os.O_RDONLY)


def setns(fd):
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def socket_in(ns_fd, *args):
    """A socket created in the namespace behind ns_fd (it stays there)."""
    setns(ns_fd)
    try:
        return socket.socket(*args)
    finally:
        setns(home_ns)


# --- netlink: IPv4 addresses of a namespace -----------------------------------

NLMSG_DONE, NLMSG_ERROR = 3, 2
RTM_NEWADDR, RTM_GETADDR = 20, 22
NLM_F_REQUEST, NLM_F_DUMP = 1, 0x300
IFA_ADDRESS, IFA_LOCAL = 1, 2


def addr_dump(sock, seq):
    """Set of "a.b.c.d" of every /32 IPv4 address in sock's namespace."""
    msg = struct.pack("=LHHLL", 16 + 8, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP,
                      seq, 0) + struct.pack("=BBBBI", socket.AF_INET, 0, 0, 0, 0)
    sock.send(msg)
    out = set()
    while True:
        data = sock.recv(1 << 16)
        off = 0
        while off + 16 <= len(data):
            length, typ, _, _, _ = struct.unpack_from("=LHHLL", data, off)
            if length < 16:
                return out
            if typ == NLMSG_DONE:
                return out
            if typ == NLMSG_ERROR:
                return out
            if typ == RTM_NEWADDR:
                fam, plen = struct.unpack_from("=BB", data, off + 16)
                a = off + 16 + 8
                end = off + length
                while a + 4 <= end:
                    alen, atyp = struct.unpack_from("=HH", data, a)
                    if alen < 4:
                        break
                    if fam == socket.AF_INET and plen == 32 and atyp == IFA_LOCAL:
                        out.add(socket.inet_ntoa(data[a + 4:a + 8]))
                    a += (alen + 3) & ~3
            off += (length + 3) & ~3


# --- the fleet ----------------------------------------------------------------

class Fleet:
    def __init__(self, a):
        self.nodes = [f"n{i}" for i in range(1, a.nodes + 1)]
        self.vips = [l.strip() for l in open(a.vips) if l.strip()]
        self.vipset = set(self.vips)
        self.api_port = a.api_port
        self.etcd = a.etcd.split(",")
        self.etcd_ok = 0
        self.ns = {}
        self.nl = {}
        for n in self.nodes:
            fd = os.open(f"/run/netns/{a.ns_prefix}-{n}", os.O_RDONLY)
            self.ns[n] = fd
            s = socket_in(fd, socket.AF_NETLINK, socket.SOCK_RAW, 0)
            s.bind((0, 0))
            self.nl[n] = s
        self.seq = 0

    def held(self):
        """node -> set of VIPs in its kernel."""
        out = {}
        for n in self.nodes:
            self.seq += 1
            out[n] = addr_dump(self.nl[n], self.seq) & self.vipset
        return out

    def ready(self, n):
        s = socket_in(self.ns[n], socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.settimeout(0.3)
            s.connect(("127.0.0.1", self.api_port))
            s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while len(data) < 16:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            return data.startswith(b"HTTP/1.1 200")
        except OSError:
            return False
        finally:
            s.close()

    def accepts(self, n, addr):
        s = socket_in(self.ns[n], socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.settimeout(1.0)
            s.connect(addr)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def readiness(self):
        return {n: self.ready(n) for n in self.nodes}

    def locks(self):
        """VIP -> lock value, from any etcd member that answers (None: none did)."""
        prefix = b"/lain/networkd/vips/"
        body = json.dumps({
            "key": base64.b64encode(prefix).decode(),
            "range_end": base64.b64encode(prefix[:-1] + b"0").decode()})
        for k in range(len(self.etcd)):
            ep = self.etcd[(self.etcd_ok + k) % len(self.etcd)]
            host, port = ep.rsplit(":", 1)
            try:
                c = http.client.HTTPConnection(host, int(port), timeout=0.5)
                c.request("POST", "/v3/kv/range", body)
                r = c.getresponse()
                doc = json.loads(r.read())
                c.close()
                if r.status != 200:
                    continue
            except (OSError, ValueError, http.client.HTTPException):
                continue
            self.etcd_ok = (self.etcd_ok + k) % len(self.etcd)
            out = {}
            for kv in doc.get("kvs", []):
                key = base64.b64decode(kv["key"]).decode()
                if key.endswith(".lock"):
                    out[key[len(prefix):-5]] = base64.b64decode(
                        kv.get("value", "")).decode()
            return out
        return None


class Sample:
    """One look at the fleet: the kernel's addresses now; readiness and locks
    from `looker` (fetched now or carried over, see Looker)."""

    def __init__(self, fleet, ready=None, locks=None):
        self.t = time.time()
        self.held = fleet.held()
        self.by_vip = {v: [] for v in fleet.vips}
        for n, vs in self.held.items():
            for v in vs:
                self.by_vip[v].append(n)
        self.ready = fleet.readiness() if ready is None else ready
        self.locks = fleet.locks() if locks is None else locks
        self.doubles = sorted(v for v, ns in self.by_vip.items() if len(ns) > 1)
        self.unheld = sorted(v for v, ns in self.by_vip.items() if not ns)

    def owner(self, v):
        ns = self.by_vip[v]
        return ns[0] if len(ns) == 1 else None

    def settled(self, v):
        o = self.owner(v)
        return o is not None and self.locks is not None and self.locks.get(v) == o

    def all_covered(self):
        """Every VIP on its lock owner's eth0 (other nodes may hold it too)."""
        return bool(self.locks) and all(
            self.locks.get(v) in ns for v, ns in self.by_vip.items())

    def all_settled(self):
        return bool(self.locks) and all(self.settled(v) for v in self.by_vip)

    def not_ready(self):
        return sorted(n for n, r in self.ready.items() if not r)

    def line(self):
        s = sum(1 for v in self.by_vip if self.settled(v))
        return (f"ready {len(self.ready) - len(self.not_ready())}/{len(self.ready)}, "
                f"settled {s}/{len(self.by_vip)}, held twice {len(self.doubles)}, "
                f"unheld {len(self.unheld)}, etcd {'up' if self.locks is not None else 'DOWN'}")


class Looker:
    """Samples the fleet without loading it: the kernel (netlink, cheap) every
    round; the locks (one etcd range) when the kernel's view changed or every
    0.5 s; /readyz of a node every round while it is not ready (up to 10
    such nodes), else once a second (each /readyz is a request to networkd's
    supervisor)."""

    def __init__(self, fleet, with_ready=True):
        self.fleet = fleet
        self.with_ready = with_ready
        self.ready = {}
        self.ready_t = 0
        self.locks = None
        self.locks_t = 0
        self.last_held = None

    def sample(self):
        f = self.fleet
        s = Sample(f, ready={}, locks={})
        held = {n: frozenset(v) for n, v in s.held.items()}
        if held != self.last_held or s.t - self.locks_t >= 0.5 or self.locks is None:
            self.locks = f.locks()
            self.locks_t = time.time()
            self.last_held = held
        s.locks = self.locks
        if self.with_ready:
            if s.t - self.ready_t >= 1.0:
                self.ready = f.readiness()
                self.ready_t = time.time()
            elif sum(1 for r in self.ready.values() if not r) <= 10:
                for n, r in self.ready.items():
                    if not r:
                        self.ready[n] = f.ready(n)
            s.ready = dict(self.ready)
        return s


def ms(t, t0):
    return f"{(t - t0) * 1000:.0f}"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- modes --------------------------------------------------------------------

def cold(fleet, a):
    t0 = a.t0
    ready_t = settled_t = covered_t = None
    max_doubles = 0
    last_log = 0
    look = Looker(fleet)
    while time.time() - t0 < a.deadline:
        s = look.sample()
        max_doubles = max(max_doubles, len(s.doubles))
        if ready_t is None and not s.not_ready():
            ready_t = s.t
        if s.all_covered():
            covered_t = covered_t or s.t
        else:
            covered_t = None
        if s.all_settled():
            settled_t = settled_t or s.t
            if ready_t is not None:
                break
        else:
            settled_t = None
            # VIPs that stay held twice: give up waiting 15 s after the rest.
            if covered_t and ready_t and s.t - max(covered_t, ready_t) >= 15:
                break
        if s.t - last_log > 5:
            log(f"cold +{ms(s.t, t0)} ms: {s.line()}")
            last_log = s.t
        time.sleep(a.interval)
    if settled_t is None or ready_t is None:
        log(f"cold: not converged after {a.deadline} s: {s.line()}")
    counts = sorted(len(s.held[n]) for n in fleet.nodes)
    print(f"ready_ms={ms(ready_t, t0) if ready_t else 'NA'} "
          f"settled_ms={ms(settled_t, t0) if settled_t else 'NA'} "
          f"covered_ms={ms(covered_t, t0) if covered_t else 'NA'} "
          f"doubles={max_doubles} doubles_now={len(s.doubles)} per_node_min={counts[0]} "
          f"per_node_median={statistics.median(counts):g} per_node_max={counts[-1]} "
          f"nodes_without={counts.count(0)}")


def etcd_kill(fleet, a):
    base = Sample(fleet)
    if not base.all_settled():
        log(f"etcd-kill: fleet not settled before the kill: {base.line()} "
            f"(VIPs already held twice are not counted below)")
    before = {v: base.owner(v) for v in fleet.vips}
    old_doubles = set(base.doubles)
    t0 = time.time()
    os.kill(a.pid, signal.SIGKILL)
    max_not_ready, not_ready_seen = 0, set()
    moved, doubles, unheld = set(), set(), set()
    last_not_ready_t = None
    ready_t = None
    settled_since = None
    etcd_down_samples = 0
    etcd_back_t = None
    last_log = 0
    look = Looker(fleet)
    while time.time() - t0 < a.deadline:
        s = look.sample()
        nr = s.not_ready()
        not_ready_seen.update(nr)
        max_not_ready = max(max_not_ready, len(nr))
        if nr:
            last_not_ready_t = s.t
            ready_t = None
        elif ready_t is None:
            ready_t = s.t
        doubles.update(set(s.doubles) - old_doubles)
        unheld.update(s.unheld)
        for v in fleet.vips:
            o = s.owner(v)
            if o is not None and before[v] is not None and o != before[v]:
                moved.add(v)
        if s.locks is None:
            etcd_down_samples += 1
            etcd_back_t = None
        elif etcd_back_t is None:
            etcd_back_t = s.t
        if s.all_covered() and not nr and set(s.doubles) <= old_doubles:
            settled_since = settled_since or s.t
            if s.t - settled_since >= a.stable and s.t - t0 >= a.stable:
                break
        else:
            settled_since = None
        if s.t - last_log > 5:
            log(f"etcd-kill +{ms(s.t, t0)} ms: {s.line()}")
            last_log = s.t
        time.sleep(a.interval)
    if settled_since is None:
        log(f"etcd-kill: not settled after {a.deadline} s: {s.line()}")
    print(f"all_ready_ms={ms(ready_t, t0) if ready_t and settled_since else 'NA'} "
          f"last_not_ready_ms={ms(last_not_ready_t, t0) if last_not_ready_t else 0} "
          f"settled_ms={ms(settled_since, t0) if settled_since else 'NA'} "
          f"max_not_ready={max_not_ready} nodes_not_ready={len(not_ready_seen)} "
          f"moved={len(moved)} doubles={len(doubles)} unheld={len(unheld)} "
          f"observed_ms={ms(time.time(), t0)} "
          f"etcd_back_ms={ms(etcd_back_t, t0) if etcd_back_t else 'NA'}")
    if not_ready_seen:
        log("etcd-kill: nodes not ready at some point: " + " ".join(sorted(not_ready_seen)))
    if moved or doubles or unheld:
        log(f"etcd-kill: moved {sorted(moved)[:10]} doubles {sorted(doubles)[:10]} "
            f"unheld {sorted(unheld)[:10]}")


def failover(fleet, a):
    base = Sample(fleet, ready={})
    mine = sorted(v for v in fleet.vips if base.owner(v) == a.node)
    t0 = time.time()
    os.kill(a.pid, signal.SIGKILL)
    done = {}
    doubles = set()
    look = Looker(fleet, with_ready=False)
    while mine and time.time() - t0 < a.deadline and len(done) < len(mine):
        s = look.sample()
        doubles.update(v for v in s.doubles if v in mine)
        for v in mine:
            if v not in done and s.settled(v) and s.owner(v) != a.node:
                done[v] = s.t
        time.sleep(a.interval)
    times = sorted((t - t0) * 1000 for t in done.values())
    if len(done) < len(mine):
        log(f"failover: {len(mine) - len(done)} of {len(mine)} VIPs of {a.node} "
            f"not settled elsewhere after {a.deadline} s")
    med = f"{statistics.median(times):.0f}" if times else "NA"
    print(f"vips={len(mine)} moved={len(done)} "
          f"first_ms={f'{times[0]:.0f}' if times else 'NA'} median_ms={med} "
          f"last_ms={f'{times[-1]:.0f}' if len(done) == len(mine) and times else 'NA'} "
          f"doubles={len(doubles)}")


# --- quiet window: etcd metrics and process CPU --------------------------------

def scrape(ep):
    host, port = ep.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=3)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        try:
            out[name] = float(value)
        except ValueError:
            pass
    return out


def label(series, key):
    i = series.find(key + '="')
    if i < 0:
        return ""
    j = series.find('"', i + len(key) + 2)
    return series[i + len(key) + 2:j]


def proc_cpu(pid):
    """(user + system seconds, RSS kB) of pid, or None when it is gone."""
    try:
        f = open(f"/proc/{pid}/stat").read()
        rss = 0
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    except OSError:
        return None
    fields = f[f.rindex(")") + 2:].split()
    hz = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / hz, rss


def quiet(fleet, a):
    pids = [int(p) for p in a.pids.split(",") if p]
    epids = [int(p) for p in a.etcd_pids.split(",") if p]
    s0 = Sample(fleet)
    m0 = {ep: scrape(ep) for ep in fleet.etcd}
    c0 = {p: proc_cpu(p) for p in pids + epids}
    t0 = time.time()
    time.sleep(a.window)
    t1 = time.time()
    m1 = {ep: scrape(ep) for ep in fleet.etcd}
    c1 = {p: proc_cpu(p) for p in pids + epids}
    s1 = Sample(fleet)
    w = t1 - t0

    def delta(prefix, by="grpc_method", cond=None):
        out = {}
        for ep in fleet.etcd:
            for k, v in m1[ep].items():
                if not k.startswith(prefix + "{") or (cond and cond not in k):
                    continue
                d = v - m0[ep].get(k, 0)
                key = label(k, by)
                out[key] = out.get(key, 0) + d
        return out

    def gauge(name):
        return sum(m1[ep].get(name, 0) for ep in fleet.etcd)

    def max_delta(name):
        return max(m1[ep].get(name, 0) - m0[ep].get(name, 0) for ep in fleet.etcd)

    print(f"quiet window {w:.1f} s, {len(pids)} networkd nodes, "
          f"{len(fleet.vips)} VIPs; before: {s0.line()}; after: {s1.line()}")
    recv = delta("grpc_server_msg_received_total")
    unary = delta("grpc_server_handled_total", cond='grpc_type="unary"')
    print("etcd gRPC messages received per second (all members), by method:")
    total = 0
    for meth, d in sorted(recv.items(), key=lambda kv: -kv[1]):
        if d <= 0:
            continue
        total += d
        print(f"  {meth:<16} {d / w:9.2f}/s   ({d / w / max(len(pids), 1):.3f}/s per node)")
    print(f"  {'total':<16} {total / w:9.2f}/s   ({total / w / max(len(pids), 1):.3f}/s per node)")
    print(f"  unary RPCs completed: {sum(unary.values()) / w:.2f}/s")
    started, handled = {}, {}
    for ep in fleet.etcd:
        for k, v in m1[ep].items():
            if 'grpc_type="bidi_stream"' not in k:
                continue
            meth = label(k, "grpc_method")
            if k.startswith("grpc_server_started_total{"):
                started[meth] = started.get(meth, 0) + v
            elif k.startswith("grpc_server_handled_total{"):
                handled[meth] = handled.get(meth, 0) + v
    print("open gRPC streams (started - handled, all members): " + ", ".join(
        f"{m} {started[m] - handled.get(m, 0):.0f} "
        f"({(started[m] - handled.get(m, 0)) / max(len(pids), 1):.1f} per node)"
        for m in sorted(started)))
    print(f"etcd watch streams {gauge('etcd_debugging_mvcc_watch_stream_total'):.0f}, "
          f"watchers {gauge('etcd_debugging_mvcc_watcher_total'):.0f} (all members); "
          f"leases {max(m1[ep].get('etcd_debugging_lease_granted_total', 0) - m1[ep].get('etcd_debugging_lease_revoked_total', 0) for ep in fleet.etcd):.0f} live (granted - revoked)")
    print(f"etcd writes: raft proposals committed {max_delta('etcd_server_proposals_committed_total') / w:.2f}/s, "
          f"puts {max_delta('etcd_mvcc_put_total') / w:.2f}/s, "
          f"deletes {max_delta('etcd_mvcc_delete_total') / w:.2f}/s, "
          f"txns {max_delta('etcd_mvcc_txn_total') / w:.2f}/s, "
          f"lease renewals {max_delta('etcd_debugging_lease_renewed_total') / w:.2f}/s")
    rx = sum(m1[ep].get("etcd_network_client_grpc_received_bytes_total", 0)
             - m0[ep].get("etcd_network_client_grpc_received_bytes_total", 0) for ep in fleet.etcd)
    tx = sum(m1[ep].get("etcd_network_client_grpc_sent_bytes_total", 0)
             - m0[ep].get("etcd_network_client_grpc_sent_bytes_total", 0) for ep in fleet.etcd)
    print(f"etcd client traffic: received {rx / w / 1024:.1f} KiB/s, sent {tx / w / 1024:.1f} KiB/s")

    def cpu(ps):
        pct, rss = [], []
        for p in ps:
            if c0.get(p) and c1.get(p):
                pct.append((c1[p][0] - c0[p][0]) / w * 100)
                rss.append(c1[p][1] / 1024)
        return pct, rss
    pct, rss = cpu(pids)
    if pct:
        print(f"networkd CPU: {sum(pct):.1f}% of a core for all {len(pct)} nodes, "
              f"per node mean {statistics.mean(pct):.2f}% max {max(pct):.2f}%; "
              f"RSS per node mean {statistics.mean(rss):.1f} MB")
    pct, rss = cpu(epids)
    if pct:
        print(f"etcd CPU: " + ", ".join(f"{x:.1f}%" for x in pct)
              + " of a core per member; RSS " + ", ".join(f"{x:.0f}" for x in rss) + " MB")


def state(fleet, a):
    print(Sample(fleet).line())


def stubs(fleet, a):
    t0 = time.time()
    todo = {n: [("127.0.0.1", 9300), (f"172.20.{n[1:]}.2", 80)] for n in fleet.nodes}
    while todo and time.time() - t0 < a.deadline:
        for n in list(todo):
            todo[n] = [x for x in todo[n] if not fleet.accepts(n, x)]
            if not todo[n]:
                del todo[n]
        if todo:
            time.sleep(0.2)
    if todo:
        log(f"stubs: not up after {a.deadline} s: {sorted(todo)[:10]}")
        sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["cold", "etcd-kill", "failover", "quiet", "state", "stubs"])
    ap.add_argument("--ns-prefix", required=True)
    ap.add_argument("--nodes", type=int, required=True)
    ap.add_argument("--vips", required=True)
    ap.add_argument("--etcd", required=True)
    ap.add_argument("--api-port", type=int, default=9100)
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("--deadline", type=float, default=120)
    ap.add_argument("--t0", type=float)
    ap.add_argument("--pid", type=int)
    ap.add_argument("--node")
    ap.add_argument("--stable", type=float, default=10)
    ap.add_argument("--window", type=float, default=30)
    ap.add_argument("--pids", default="")
    ap.add_argument("--etcd-pids", default="")
    a = ap.parse_args()
    fleet = Fleet(a)
    {"cold": cold, "etcd-kill": etcd_kill, "failover": failover,
     "quiet": quiet, "state": state, "stubs": stubs}[a.mode](fleet, a)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Writes the seed corpora under fuzz/corpus/<target>/ (committed; run again
# after changing an input layout): python3 fuzz/make_seeds.py
# Layouts are described at the top of each fuzz_<target>.cpp.
import json
import os
import shutil
import struct
import sys

here = os.path.dirname(os.path.abspath(__file__))
SEP = b"\xff"
KV = b"\xfe"


def run(count, byte):
    """fuzz_util.hpp run escape: byte repeated (count + 1) * 2048 times."""
    return b"\xfc" + bytes([count]) + byte


def j(value):
    return json.dumps(value, separators=(",", ":")).encode()


# -- DNS ----------------------------------------------------------------------

def name(n):
    out = b""
    if n:
        for label in n.split("."):
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def header(ident, flags, qd, an, ns, ar):
    return struct.pack(">HHHHHH", ident, flags, qd, an, ns, ar)


def rr(owner, rtype, ttl, rdata, cls=1):
    return owner + struct.pack(">HHIH", rtype, cls, ttl, len(rdata)) + rdata


def opt(payload=1232, do=True):
    return b"\0" + struct.pack(">HHIH", 41, payload, 0x8000 if do else 0, 0)


def soa(ttl=300, minimum=60, cut=False):
    rdata = name("ns.example.com") + name("host.example.com")
    fields = struct.pack(">IIIII", 1, 7200, 900, 1209600, minimum)
    return rr(b"\xc0\x0c", 6, ttl, rdata + (fields[:8] if cut else fields))


def query_seeds():
    def query(n, qtype, edns=False, mode=0):
        q = header(0x1234, 0x0100, 1, 0, 0, 1 if edns else 0)
        q += name(n) + struct.pack(">HH", qtype, 1)
        if edns:
            q += opt(1232, True)
        return bytes([mode]) + struct.pack(">H", len(q)) + q
    return [query("exact.lain", 1), query("A.Web.Lain", 28, True),
            query("big.lain", 1, False, 0), query("big.lain", 1, True, 1),
            query("3.0.0.10.in-addr.arpa", 12), query("six.example", 255),
            query("www.example.com", 1, True)]


def upstream_seeds():
    q = lambda n, t: name(n) + struct.pack(">HH", t, 1)
    ptr = b"\xc0\x0c"
    a = lambda ip: bytes(int(x) for x in ip.split("."))
    seeds = []
    # Mode 0: the question comes from the answer.
    seeds.append(b"\x00" + header(1, 0x8180, 1, 2, 0, 1)
                 + q("www.example.com", 1) + rr(ptr, 1, 300, a("93.184.216.34"))
                 + rr(ptr, 1, 30, a("93.184.216.35")) + opt())
    seeds.append(b"\x04" + header(2, 0x8183, 1, 0, 1, 0)
                 + q("nx.example.com", 1) + soa(900, 60))
    seeds.append(b"\x00" + header(3, 0x8180, 1, 0, 1, 0)
                 + q("nodata.example.com", 28) + soa(900, 60, cut=True))
    seeds.append(b"\x08" + header(4, 0x8180, 1, 2, 0, 0)
                 + q("alias.example.com", 1)
                 + rr(ptr, 5, 3600, name("real.example.com"))
                 + rr(name("real.example.com"), 1, 10, a("10.1.2.3")))
    seeds.append(b"\x00" + header(5, 0x8182, 1, 0, 0, 0)
                 + q("fail.example.com", 1))
    seeds.append(b"\x10" + header(6, 0x8380, 1, 0, 0, 0)
                 + q("tc.example.com", 1))
    many = b"".join(rr(ptr, 1, 100 + i, bytes([10, 0, i // 256, i % 256]))
                    for i in range(60))
    seeds.append(b"\x00" + header(7, 0x8180, 1, 60, 0, 0)
                 + q("many.example.com", 1) + many)
    seeds.append(b"\x60" + header(8, 0x8180, 1, 1, 0, 0)
                 + q("MiXeD.Example.Com", 15)
                 + rr(ptr, 15, 7200, b"\x00\x0a" + name("mx.example.com")))
    # Modes 1-3: fixed questions (Www.Example.COM A, x.lain AAAA,
    # a.b.c.example MX).
    seeds.append(b"\x01" + header(9, 0x8180, 1, 1, 0, 0)
                 + q("www.example.com", 1) + rr(ptr, 1, 99999999, a("1.2.3.4")))
    seeds.append(b"\x02" + header(10, 0x8180, 1, 1, 0, 0)
                 + q("x.lain", 28) + rr(ptr, 28, 60, bytes(15) + b"\x01"))
    seeds.append(b"\x83" + header(11, 0x8180, 1, 1, 1, 1)
                 + q("a.b.c.example", 15)
                 + rr(ptr, 15, 60, b"\x00\x05" + ptr)
                 + rr(ptr, 2, 60, name("ns.b.c.example"))
                 + rr(name("ns.b.c.example"), 1, 60, a("10.9.9.9")))
    return seeds


# -- etcd keys ----------------------------------------------------------------

# Selector bytes of fuzz_etcd_keys.cpp (index into its prefix table).
VIPS, DOMAINS, SERVERS, VIPPOOL, SWARM, DEPLOYD, KNOBS, LEADER, LOCKS, \
    APPS, CONTAINERS, FQDNS, WL_IPS, EX_PORTS, IN_PORTS, RAW = range(16)


def rec(selector, suffix, value=b""):
    if isinstance(suffix, str):
        suffix = suffix.encode()
    if isinstance(value, str):
        value = value.encode()
    return bytes([selector]) + suffix + KV + value


def etcd_seeds():
    vip = {"app": "resource.elb.webrouter", "proc": "haproxy",
           "ports": [{"src": "80", "proto": "tcp"},
                     {"src": "443", "proto": "tcp"},
                     {"src": "5555", "proto": "udp", "dest": "53"}]}
    seeds = [
        rec(VIPS, "192.168.10.254", j(vip)),
        rec(VIPS, "0.0.0.0:8080",
            j({"app": "hello", "proc": "web", "ports": [{"dest": "80"}],
               "excluded_nodes": ["node2"]})),
        rec(VIPS, "10.0.0.5", j({"app": "a", "proc": "b",
                                 "ports": [{"src": 80, "dest": 8080}]})),
        rec(DOMAINS, "etcd.lain", j({"ips": ["10.131.0.72"], "type": ""})),
        rec(DOMAINS, "*.lain", j({"ips": [], "type": "webrouter"})),
        rec(DOMAINS, "node.lain", j({"ips": [], "type": "node"})),
        rec(SERVERS, "consul", j({"servers": ["127.0.0.1#8600", "10.0.0.2"]})),
        rec(VIPPOOL, "", j(["192.168.10.240", "192.168.10.241"])),
        rec(SWARM, "", "10.131.0.72:2376"),
        rec(DEPLOYD, "", "10.131.0.73:9003"),
        rec(KNOBS, "dns_ttl", "60"),
        rec(KNOBS, "log_level", '"debug"'),
        rec(KNOBS, "lease_ttl", "301"),
        rec(LEADER, "694d7a1c2b3e4f50", "node1"),
        rec(LOCKS, "10.0.0.5.lock", "node1"),
        rec(APPS, "hello/web/10.0.0.1:8080", "node1"),
        rec(CONTAINERS, "hello/web/1/10.0.0.5", "used"),
        rec(CONTAINERS, "hello/web/2/10.0.0.6", "unused"),
        rec(FQDNS, "hello.lain", j(["+hello.lain:10.0.0.5:300"])),
        rec(WL_IPS, "office", j(["10.0.0.1", "10.1.0.0/16",
                                 "10.2.0.1-10.2.0.9"])),
        rec(EX_PORTS, "tcp", j(["80", 443, "8000:8100"])),
        rec(EX_PORTS, "udp", j([53])),
        rec(IN_PORTS, "10.0.0.0/8", j({"ports": {"tcp": ["22", "9000:9010"],
                                                  "udp": [53]}})),
        rec(RAW, "/lain/config/vips/10.0.0.300",
            j({"app": "broken", "proc": "x", "ports": [{"src": "80"}]})),
        # Several keys at once, an ACL key erased, a long port list.
        SEP.join([rec(WL_IPS, "a", j(["10.0.0.1"])),
                  rec(IN_PORTS, "10.0.0.2-10.0.0.4",
                      j({"ports": {"tcp": [str(p) for p in range(1, 40)]}})),
                  rec(EX_PORTS, "tcp", j([str(p) for p in range(100, 140)])),
                  b"X\x00a"]),
        # Deep nesting and an oversized value (run escapes).
        rec(VIPS, "10.0.0.7", run(0x7f, b"[")),
        rec(DOMAINS, "big.lain", b'{"ips":["' + run(0x7f, b"1") + b'"]}'),
    ]
    return seeds


# -- publishers ---------------------------------------------------------------

def prec(kind, key, value=None):
    key = key.encode() if isinstance(key, str) else key
    if value is None:
        return kind.encode() + key
    value = value.encode() if isinstance(value, str) else value
    return kind.encode() + key + KV + value


def publish_seeds():
    everything = 0x1f | (2 << 5)  # all publishers, domain lain.local
    web = {"app": "webrouter", "proc": "worker",
           "ports": [{"src": "80"}, {"src": "443"}]}
    app = {"app": "hello", "proc": "web", "ports": [{"src": "80"}]}
    port_only = {"app": "webrouter", "proc": "worker",
                 "ports": [{"dest": "80"}]}
    base = [
        prec("v", "10.0.0.10", j(web)),
        prec("v", "10.0.0.11", j(app)),
        prec("v", "0.0.0.0:8080", j(port_only)),
        prec("v", "10.0.0.250", j({"app": "streamrouter", "proc": "worker",
                                    "ports": [{"src": "9000"}]})),
        prec("e", "webrouter/worker/10.0.0.1:8080"),
        prec("e", "webrouter/worker/10.0.0.2:8080"),
        prec("e", "tinydns/worker/10.0.0.3:53"),
        prec("p", "", j(["10.0.0.250", "10.0.0.251"])),
        prec("r", "", j([9000, "9001", 9000])),
        prec("s", "", "10.0.0.1:2376"),
        prec("d", "", "10.0.0.2:9003"),
        prec("c", "gone.lain", j(["+gone.lain:10.0.0.99:300"])),
        prec("c", "kept.lain", j(["something else"])),
        prec("a", "hello", j(["+hello.lain:10.0.0.11:300"])),
    ]
    seeds = [bytes([everything]) + SEP.join(base),
             bytes([0x04]) + SEP.join(base[4:6]),
             bytes([0x08]) + SEP.join(base[:2] + base[6:7] + base[11:13]),
             bytes([0x10]) + SEP.join(base[3:4] + base[7:9]),
             bytes([0x03]) + SEP.join(base[9:11])]
    # The known crash: is_app_lines on 262,144 '[' (run escape), as a
    # tinydns_fqdns value and directly.
    seeds.append(bytes([0x08]) + prec("c", "deep.lain", run(0x7f, b"[")))
    seeds.append(b"\x00" + prec("a", "deep", run(0x7f, b"[")))
    return seeds


# -- lainlet ------------------------------------------------------------------

def container(app, proc, inst, ip, port, cid, node="node1",
              node_ip="10.0.0.1"):
    return {"app": app, "app_version": "1.0", "proc": proc,
            "nodename": node, "nodeip": node_ip, "ip": ip, "port": port,
            "instanceNo": inst, "containerId": cid}


def containers_json():
    return j({
        "node1/abc123": container("hello", "hello.web.web", 1, "172.20.0.5",
                                  80, "abc123"),
        "10.0.0.1/abc123": container("hello", "hello.web.web", 1,
                                     "172.20.0.5", 80, "abc123"),
        "node1/def456": container("hello", "worker", 2, "172.20.0.6", 0,
                                  "def456"),
        "node2/zzz": container("other", "web", 1, "172.20.1.5", 80, "zzz",
                               "node2", "10.0.0.2"),
        "bad": {"app": ""},
    })


def chunk(body, piece):
    out = b""
    for i in range(0, len(body), piece):
        part = body[i:i + piece]
        out += b"%x" % len(part) + (b";ext=1" if i == 0 else b"") + b"\r\n"
        out += part + b"\r\n"
    return out + b"0\r\nX-Trailer: y\r\n\r\n"


def lainlet_seeds():
    data = containers_json()
    stream = (b"id: 1\nevent: init\ndata: " + data + b"\n\n"
              b"id: 0\nevent: heartbeat\n\n"
              b"id: 2\nevent: update\ndata: {\"b\": [1, 2]}\n\n"
              b": a comment\ngarbage line\n"
              b"id: 3\nevent: delete\ndata: {}\n\n"
              b"id: 0\nevent: error\ndata: etcd is gone\n\n")
    crlf = stream.replace(b"\n", b"\r\n")
    group = {"Spec": {"Name": "hello.web.web", "Namespace": "hello",
                      "Version": 3,
                      "Pod": {"Containers": [{"Env": [
                          "LAIN_APP_RELEASE_VERSION=v1", "X=y"]}]},
                      "NumInstances": 1},
             "PrevState": [],
             "Pods": [{"InstanceNo": 1, "State": 2,
                       "Containers": [{"Id": "abc123", "NodeName": "node1",
                                       "NodeIp": "10.0.0.1",
                                       "ContainerIp": "172.20.0.5",
                                       "NodePort": 0, "ContainerPort": 80,
                                       "Protocol": "tcp"}]}],
             "State": 2, "LastError": ""}
    pods = SEP.join([b"hello/hello.web.web" + KV + j(group),
                     b"other/x" + KV + j({"Spec": {"Name": "x",
                                                     "Namespace": "other"},
                                            "Pods": None}),
                     b"/wrong/prefix" + KV + b"{}",
                     b"bad/json" + KV + b"{\"Spec\":"])
    return [
        b"\x00\x00" + stream,
        b"\x08\x07" + crlf,
        b"\x04\x03" + stream,
        b"\x01\x05" + chunk(stream, 37),
        b"\x09\x00" + chunk(crlf, 1000),
        b"\x02\x00" + pods,
        b"\x0a\x00" + pods,
        b"\x03\x00" + data,
        b"\x0b\x00" + data,
        # Overlong line and event, deep nesting (run escapes).
        b"\x00\x11" + b"event: init\ndata: " + run(0x08, b"x") + b"\n\n",
        b"\x00\x00" + b"event: init\ndata: " + run(0x7f, b"[") + b"\n\n",
        b"\x03\x00" + run(0x7f, b"{"),
        # Reply heads (mode bit 4: parse_head).
        b"\x10\x00" + b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream"
        b"\r\nTransfer-Encoding: chunked\r\n",
        b"\x10\x00" + b"HTTP/1.0 403 Forbidden\nContent-Length: 14\n",
        b"\x10\x00" + b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n",
    ]


def docker_seeds():
    body = j([{"Id": "abc123def456", "Names": ["/hello"], "State": "running",
               "Status": "Up 2 hours"},
              {"Id": "fff000", "State": "exited"},
              {"Id": "0123456789ab", "Labels": {"a": "b"}},
              {"Names": []}, 7])
    return [body + SEP + b"abc123",
            body + SEP + b"abc123def456789",
            b"[]",
            b"{\"message\":\"page not found\"}",
            run(0x7f, b"["),
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"
            + body,
            b"HTTP/1.1 500 Internal Server Error\r\n\r\n{\"message\":\"x\"}"]


def hosts_seeds():
    return [
        b"127.0.0.1\tlocalhost\n::1 localhost ip6-localhost ip6-loopback\n"
        b"# comment\n10.0.0.5 Node1.Lain node1 # trailing\n",
        b"fe80::1%eth0 link\n::ffff:10.1.2.3 mapped\r\n1.2.3.4\n"
        b"300.1.1.1 bad\n10.0.0.1 a..b ok. .\n",
        b"10.0.0.9 " + b" ".join(b"n%d.example" % i for i in range(50)) + b"\n",
    ]


def resolv_seeds():
    return [
        b"\x00nameserver 10.0.0.2\nnameserver 8.8.8.8\nsearch lain\n"
        b"options rotate timeout:1\n",
        b"\x01# generated\nnameserver 10.0.0.1\nnameserver 10.0.0.1\n"
        b"nameserver 127.0.0.53\noptions rotate\n",
        b"\x02nameserver ::1\nnameserver fe80::1%eth0\n; comment\n"
        b"domain example.com",
        b"\x07\n\n  nameserver\t127.0.0.2 \r\nnameserver 0x7f.1\n",
        b"\x00",
    ]


def http_seeds():
    get = b"GET /v1/state?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    return [
        b"\xff" + get,
        b"\x00" + get,
        b"\x07" + b"HEAD /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
        + get,
        b"\x10" + b"POST /readyz HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
        b"\x20" + b"GET /%76%31/vips HTTP/1.1\nTransfer-Encoding: chunked\n\n",
        b"\xff" + b"GET / HTTP/1.1\r\nX: " + run(0x10, b"a") + b"\r\n\r\n",
        b"\xff" + b"GET /" + run(0x08, b"a") + b" HTTP/1.1\r\n\r\n",
    ]


# fuzz_nft is not here: its seeds are netlink dumps captured from the kernel
# (README.md); this script leaves corpus/fuzz_nft/ alone.
targets = {
    "fuzz_query": query_seeds(),
    "fuzz_upstream": upstream_seeds(),
    "fuzz_etcd_keys": etcd_seeds(),
    "fuzz_publish": publish_seeds(),
    "fuzz_lainlet": lainlet_seeds(),
    "fuzz_docker": docker_seeds(),
    "fuzz_hosts": hosts_seeds(),
    "fuzz_resolv_conf": resolv_seeds(),
    "fuzz_http": http_seeds(),
}

for target, seeds in targets.items():
    if len(sys.argv) > 1 and target not in sys.argv[1:]:
        continue
    out = os.path.join(here, "corpus", target)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    for i, s in enumerate(seeds):
        with open(os.path.join(out, "seed-%02d" % i), "wb") as f:
            f.write(s)
    print("%s: %d seeds" % (target, len(seeds)))

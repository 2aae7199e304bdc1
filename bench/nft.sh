#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# VIP DNAT with the nftables backend against the iptables backend, in the
# same run, in namespaces (numbers only).
#
# usage: bench/nft.sh [-r ROUNDS] [-V VIPS] [-P PORTS] [-c CONNS] [-B]
#   -r  alternating rounds (default 3; each runs both backends, the order
#       swapped every round)
#   -V  VIPs (default 2000)   -P  ports each (default 4; tcp and udp each:
#       VIPS x PORTS x 2 map elements / rule pairs)
#   -c  connections timed per VIP and round (default 200)
#   -u  datagrams per traffic-counter measurement (default 200000; 0: skip)
#   -B  do not build; use $BUILD_DIR/bench/nft_bench
#   BUILD_DIR: build directory (default build-release in the repo)
#
# Lab: client (10.77.0.2) -- node (10.77.0.1, the first and the last VIP
# on vn) -- container (172.20.0.2, a TCP listener on 8080). Per backend and
# round, nft_bench: loads all rules into the node with one reconcile (cold),
# moves one VIP's 8 rules to another target and back (7 changes, median),
# runs the audit 3 times after someone else's commit and 3 times with no
# commit since the last read (refresh() + the diff of everything; medians),
# then
# the client opens COUNTS connections to port 80 of the VIP matched first and
# as many to the VIP matched last, alternating (iptables: chain order; nft:
# a map has none, so the first and the last VIP loaded); with nft, the
# per-packet cost of the traffic counters: the client sends -u datagrams
# of 32 bytes to udp port 80 of the last VIP (one flow: the nat chains see
# its first packet only), with the two traffic chains in place and with
# them deleted, alternating 5 times (medians of ns per datagram at the
# sender, which includes the node's forwarding); and
# nft_bench removes everything (remove_all). Medians over the rounds, and
# the ratios nft/iptables. Namespaces and processes are removed at exit,
# Ctrl-C included.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
rounds=3
vips=2000
ports=4
conns=200
udp=200000
build=1
while getopts "r:V:P:c:u:Bh" opt; do
  case "$opt" in
    r) rounds=$OPTARG ;;
    V) vips=$OPTARG ;;
    P) ports=$OPTARG ;;
    c) conns=$OPTARG ;;
    u) udp=$OPTARG ;;
    B) build=0 ;;
    *) sed -n '3,33p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
[ "$vips" -ge 2 ] && [ "$vips" -le 62500 ] || { echo "nft.sh: -V 2..62500" >&2; exit 2; }

die() { echo "nft.sh: $*" >&2; exit 1; }
log() { echo "[$(date +%T)] $*" >&2; }
for tool in ip iptables-save nft python3; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"

build_dir=${BUILD_DIR:-$top/build-release}
helper=$build_dir/bench/nft_bench
if [ "$build" = 1 ]; then
  log "building nft_bench (Release) in $build_dir"
  cmake -S "$top" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release \
    -DNETWORKD_TESTS=OFF >/dev/null || die "cmake configure failed"
  cmake --build "$build_dir" -j2 --target nft_bench >/dev/null \
    || die "build failed"
fi
[ -x "$helper" ] || die "no helper at $helper"

pfx=nb$$
node=$pfx-node
client=$pfx-cl
ctr=$pfx-ctr
tmp=$(mktemp -d /tmp/networkd-nft-XXXXXX)
listener=""
sink=""

cleanup() {
  local rc=$? ns p
  set +e
  trap - EXIT INT TERM
  [ -n "$listener" ] && kill "$listener" 2>/dev/null
  [ -n "$sink" ] && kill "$sink" 2>/dev/null
  for ns in "$ctr" "$client" "$node"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

first_vip=10.100.0.1
last_vip=$(python3 -c "v=$vips-1; print(f'10.100.{v//250}.{v%250+1}')")

log "lab in namespaces $pfx-*"
for ns in "$node" "$client" "$ctr"; do
  ip netns add "$ns"
  ip -n "$ns" link set lo up
done
ip link add vc netns "$client" type veth peer name vn netns "$node"
ip link add eth0 netns "$ctr" type veth peer name vb netns "$node"
ip -n "$node" link set vn up
ip -n "$node" link set vb up
ip -n "$client" link set vc up
ip -n "$ctr" link set eth0 up
ip netns exec "$node" sysctl -qw net.ipv4.ip_forward=1
ip -n "$node" addr add 10.77.0.1/24 dev vn
ip -n "$node" addr add "$first_vip/32" dev vn
ip -n "$node" addr add "$last_vip/32" dev vn
ip -n "$node" addr add 172.20.0.1/24 dev vb
ip -n "$client" addr add 10.77.0.2/24 dev vc
ip -n "$client" route add default via 10.77.0.1
ip -n "$ctr" addr add 172.20.0.2/24 dev eth0
ip -n "$ctr" route add default via 172.20.0.1
ip netns exec "$ctr" python3 -c '
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080))
s.listen(4096)
while True:
    c, _ = s.accept()
    c.close()
' &
listener=$!
# The datagrams' sink: bound, never read (a full buffer drops silently).
ip netns exec "$ctr" python3 -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 8080))
while True:
    time.sleep(3600)
' &
sink=$!
sleep 0.3

# The traffic chains of table ip networkd off, and on again (nft 1.0.6
# cannot parse `ct original proto-dst` in a concatenation: nft_bench
# rebuilds the DNAT objects, as networkd's audit would).
traffic_off() {
  ip netns exec "$node" nft -f - <<'NFT'
flush chain ip networkd traffic_prerouting
delete chain ip networkd traffic_prerouting
flush chain ip networkd traffic_output
delete chain ip networkd traffic_output
NFT
}
traffic_on() { # as networkd's audit would: a reconcile of everything
  "$helper" repair --backend nft --netns "$node" --vips "$vips" \
    --ports "$ports" | grep -q '^repair_rebuilt=1'
}
traffic_cost() { # ROUND VIP
  local r=$1 ip=$2 k v
  for ((k = 0; k < 5; k++)); do
    v=$("$helper" udpflood --netns "$client" --ip "$ip" --port 80 \
      --count "$udp" | sed -n 's/^udp_ns_per_packet=//p')
    echo "nft $r udp_counted_ns $v" >>"$results"
    traffic_off || die "cannot delete the traffic chains"
    v=$("$helper" udpflood --netns "$client" --ip "$ip" --port 80 \
      --count "$udp" | sed -n 's/^udp_ns_per_packet=//p')
    echo "nft $r udp_uncounted_ns $v" >>"$results"
    traffic_on || die "cannot put the traffic chains back"
  done
}

results=$tmp/results
run_backend() { # BACKEND ROUND
  local b=$1 r=$2 out k v
  out=$("$helper" load --backend "$b" --netns "$node" --vips "$vips" \
    --ports "$ports") || die "$b load failed"
  while IFS== read -r k v; do echo "$b $r $k $v" >>"$results"; done <<<"$out"
  local fv lv
  fv=$(sed -n 's/^first_vip=//p' <<<"$out")
  lv=$(sed -n 's/^last_vip=//p' <<<"$out")
  # The VIPs must be local addresses (fib / addrtype LOCAL).
  ip -n "$node" addr replace "$fv/32" dev vn
  ip -n "$node" addr replace "$lv/32" dev vn
  out=$("$helper" connect --netns "$client" --ip "$fv" --ip2 "$lv" --port 80 \
    --count "$conns") || die "$b connect failed"
  echo "$b $r connect_first_us $(sed -n 's/^connect_us_median=//p' <<<"$out")" >>"$results"
  echo "$b $r connect_last_us $(sed -n 's/^connect2_us_median=//p' <<<"$out")" >>"$results"
  if [ "$b" = nft ] && [ "$udp" -gt 0 ]; then
    traffic_cost "$r" "$lv"
  fi
  v=$("$helper" remove --backend "$b" --netns "$node" \
    | sed -n 's/^remove_ms=//p') || die "$b remove failed"
  echo "$b $r remove_ms $v" >>"$results"
  # Leftovers would spoil the other backend's round.
  if ip netns exec "$node" nft list table ip networkd >/dev/null 2>&1 \
    || ip netns exec "$node" iptables-save -t nat | grep -q lain-; then
    die "$b left rules behind"
  fi
}

started=$EPOCHREALTIME
for ((r = 1; r <= rounds; r++)); do
  if ((r % 2)); then order="iptables nft"; else order="nft iptables"; fi
  for b in $order; do
    log "round $r/$rounds: $b"
    run_backend "$b" "$r"
  done
done

echo "nft.sh: $(date -u +%Y-%m-%dT%H:%MZ), $vips VIPs x $ports ports x tcp/udp" \
  "= $((vips * ports * 2)) entries, $rounds rounds, $conns connections a VIP;" \
  "load average $(awk '{print $1, $2, $3}' /proc/loadavg)"
python3 - "$results" "$started" <<'EOF'
import statistics, sys, time
rows = [l.split() for l in open(sys.argv[1]) if len(l.split()) == 4]
by = {}
for b, r, k, v in rows:
    try:
        by.setdefault((b, k), []).append(float(v))
    except ValueError:
        pass
keys = [("cold_ms", "cold load of all entries (ms)"),
        ("change_ms_median", "one change: 1 VIP, 8 entries (ms)"),
        ("audit_full_read_ms_median", "audit after a foreign commit: read (ms)"),
        ("audit_full_ms_median", "audit after a foreign commit: read+diff (ms)"),
        ("audit_quiet_read_ms_median", "audit, nothing committed: read (ms)"),
        ("audit_quiet_ms_median", "audit, nothing committed: read+diff (ms)"),
        ("remove_ms", "remove_all (ms)"),
        ("connect_first_us", "new TCP connection, VIP matched first (us)"),
        ("connect_last_us", "new TCP connection, VIP matched last (us)"),
        ("udp_counted_ns", "udp datagram through the VIP, counted (ns)"),
        ("udp_uncounted_ns", "same, traffic chains deleted (ns)")]
print("%-44s %12s %12s %12s" % ("median over rounds", "iptables", "nft",
                                 "nft/iptables"))
med = {}
for k, text in keys:
    i = statistics.median(by.get(("iptables", k), [0]))
    n = statistics.median(by.get(("nft", k), [0]))
    med[k] = (i, n)
    print("%-44s %12.2f %12.2f %12.3f" % (text, i, n, n / i if i else 0))
for b, idx in (("iptables", 0), ("nft", 1)):
    f, l = med["connect_first_us"][idx], med["connect_last_us"][idx]
    print("%s: last VIP / first VIP connection cost = %.2f" % (b, l / f if f else 0))
c, u = med["udp_counted_ns"][1], med["udp_uncounted_ns"][1]
if u:
    print("nft: traffic counters cost %.0f ns a datagram (%.1f%%), medians of"
          " %d measurements each" % (c - u, 100 * (c - u) / u,
                                     len(by.get(("nft", "udp_counted_ns"), []))))
print("run took %.0f s" % (time.time() - float(sys.argv[2])))
EOF

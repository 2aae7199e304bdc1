#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What networkd costs while nothing happens: CPU, wake-ups and memory of two
# nodes at rest, first with no VIPs, then with VIPS VIPs of 2 ports each.
#
# usage: bench/idle.sh [-V VIPS] [-d SECS] [-S SECS] [-0] [-B] [-K DIR]
#   -V  VIPs of the second window (default 100), each with ports 80 and 81,
#       spread over the two nodes by networkd
#   -d  length of each measuring window in seconds (default 60)
#   -S  settle this many seconds after the lab is ready and before a window
#       (default 10: start-up work, the first audits and spreading are over)
#   -0  skip the window without VIPs
#   -B  do not build; use $NETWORKD_BIN or $BUILD_DIR/networkd
#   -K  copy the lab's logs (networkd, etcd, lainlet stubs) to DIR at exit
#   NETWORKD_ENV="VAR=value ...": environment for networkd
#   BUILD_DIR: build directory (default build-release in the repo)
#
# Lab (namespaces this script creates, as in bench/failover.sh; only
# 10.88.0.0/16, 10.89.0.0/16, 172.20.0.0/16 inside them are used): a bridge,
# etcd on 10.88.0.2, nodes n1 and n2 (10.88.0.11/.12) with a "container"
# namespace behind each (172.20.N.2, bench/failover_echo.py on ports 80 and
# 81) and a lainlet stand-in each (bench/lainlet_stub.py). All VIPs belong to
# the app both containers run, so each node holds some and stands by for the
# others. Knobs stay at their defaults. Figures come from /proc, read by
# bench/idle_sample.py at both ends of the window. No pass/fail: it exits
# non-zero only when the lab cannot be set up. Everything started is stopped
# and the namespaces and temp dir removed at exit, Ctrl-C included.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
bench=$top/bench
vips=100
window=60
settle=10
zero=1
build=1
keep_dir=""
while getopts "V:d:S:0BK:h" opt; do
  case "$opt" in
    V) vips=$OPTARG ;;
    d) window=$OPTARG ;;
    S) settle=$OPTARG ;;
    0) zero=0 ;;
    B) build=0 ;;
    K) keep_dir=$OPTARG ;;
    *) sed -n '3,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
[ "$vips" -ge 0 ] && [ "$vips" -le 62500 ] || { echo "idle.sh: -V 0..62500" >&2; exit 2; }

die() { echo "idle.sh: $*" >&2; exit 1; }
log() { echo "[$(date +%T)] $*" >&2; }
for tool in etcd etcdctl ip python3 curl; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"

build_dir=${BUILD_DIR:-$top/build-release}
bin=${NETWORKD_BIN:-$build_dir/networkd}
if [ "$build" = 1 ]; then
  log "building networkd (Release) in $build_dir"
  cmake -S "$top" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release \
    -DNETWORKD_TESTS=OFF >/dev/null || die "cmake configure failed"
  cmake --build "$build_dir" -j2 --target networkd >/dev/null \
    || die "build failed"
fi
[ -x "$bin" ] || die "no networkd binary at $bin"

# --- bookkeeping and cleanup --------------------------------------------------

tmp=$(mktemp -d /tmp/networkd-idle-XXXXXX)
pfx=id$$
namespaces=()
declare -A pid=()

cleanup() {
  local rc=$? p ns n
  set +e
  trap - EXIT INT TERM
  # networkd first, while etcd still answers (SIGTERM releases its VIPs).
  for p in "${!pid[@]}"; do
    case "$p" in *.networkd) kill -TERM "${pid[$p]}" 2>/dev/null ;; esac
  done
  for p in "${!pid[@]}"; do
    case "$p" in *.networkd) waitpid "${pid[$p]}" 200 ;; esac
  done
  for p in "${!pid[@]}"; do kill -TERM "${pid[$p]}" 2>/dev/null; done
  for p in "${!pid[@]}"; do waitpid "${pid[$p]}" 50; done
  for p in "${!pid[@]}"; do kill -KILL "${pid[$p]}" 2>/dev/null; done
  # Anything still running inside our namespaces was started by us.
  for ((n = ${#namespaces[@]} - 1; n >= 0; n--)); do
    ns=${namespaces[$n]}
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  done
  for ((n = ${#namespaces[@]} - 1; n >= 0; n--)); do
    ip netns del "${namespaces[$n]}" 2>/dev/null
  done
  if [ -n "$keep_dir" ]; then
    mkdir -p "$keep_dir" && cp -a "$tmp"/. "$keep_dir"/ && rm -rf "$keep_dir/etcd"
    echo "logs kept in $keep_dir" >&2
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# waitpid PID TENTHS: wait up to TENTHS/10 s for PID to go away.
waitpid() {
  local i
  for ((i = 0; i < $2; i++)); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

# wait_for TENTHS CMD...: run CMD until it succeeds or TENTHS/10 s passed.
wait_for() {
  local end=$(( ${EPOCHREALTIME/./} + $1 * 100000 ))
  shift
  while :; do
    "$@" && return 0
    (( ${EPOCHREALTIME/./} < end )) || return 1
    sleep 0.1
  done
}

# --- the lab ------------------------------------------------------------------

sw=$pfx-sw
etcd_ns=$pfx-etcd
etcd_ep=10.88.0.2:2379
api=127.0.0.1:9100

newns() {
  ip netns add "$1"
  namespaces+=("$1")
  ip -n "$1" link set lo up
}

# plug NS: eth0 in NS, its peer p-NS on the bridge.
plug() {
  local port=p-${1#"$pfx"-}
  ip link add eth0 netns "$1" type veth peer name "$port" netns "$sw"
  ip -n "$sw" link set "$port" master br0 up
  ip -n "$1" link set eth0 up
}

ctl() { ip netns exec "$etcd_ns" etcdctl --endpoints="$etcd_ep" "$@"; }
nsof() { echo "$pfx-$1"; }

lab_up() {
  log "building the lab in namespaces $pfx-* (temp dir $tmp)"
  newns "$sw"
  ip -n "$sw" link add br0 type bridge
  ip -n "$sw" link set br0 up
  newns "$etcd_ns"
  plug "$etcd_ns"
  ip -n "$etcd_ns" addr add 10.88.0.2/24 dev eth0
  ip netns exec "$etcd_ns" etcd --name lab --data-dir "$tmp/etcd" \
    --listen-client-urls "http://$etcd_ep" \
    --advertise-client-urls "http://$etcd_ep" \
    --listen-peer-urls http://127.0.0.1:2380 \
    --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster lab=http://127.0.0.1:2380 \
    --logger=zap --log-level=warn >"$tmp/etcd.log" 2>&1 &
  pid[etcd]=$!
  wait_for 300 ctl endpoint health >/dev/null 2>&1 \
    || die "etcd did not start: $(tail -5 "$tmp/etcd.log")"
  node_up n1 1
  node_up n2 2
}

# node_up NAME INDEX: node namespace, container, lainlet stub.
node_up() {
  local n=$1 i=$2 ns ct
  ns=$(nsof "$n")
  ct=$(nsof "${n}c")
  newns "$ns"
  newns "$ct"
  plug "$ns"
  ip -n "$ns" addr add "10.88.0.1$i/24" dev eth0
  ip link add ct0 netns "$ns" type veth peer name eth0 netns "$ct"
  ip -n "$ns" addr add "172.20.$i.1/24" dev ct0
  ip -n "$ns" link set ct0 up
  ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
  ip -n "$ct" addr add "172.20.$i.2/24" dev eth0
  ip -n "$ct" link set eth0 up
  ip -n "$ct" route add default via "172.20.$i.1"
  ip netns exec "$ct" python3 "$bench/failover_echo.py" "$n" 80,81 \
    >"$tmp/$n.echo.log" 2>&1 &
  pid[$n.echo]=$!
  cat >"$tmp/$n.lainlet.json" <<EOF
{"$n/ct-$n": {"app": "web", "app_version": "1", "proc": "web.main",
  "nodename": "$n", "nodeip": "10.88.0.1$i", "ip": "172.20.$i.2",
  "port": 80, "instanceNo": $i}}
EOF
  ip netns exec "$ns" python3 "$bench/lainlet_stub.py" --listen 127.0.0.1:9300 \
    --data "$tmp/$n.lainlet.json" >"$tmp/$n.lainlet.log" 2>&1 &
  pid[$n.lainlet]=$!
  # In a directory of their own: networkd watches the directory of each,
  # and the logs written next to them would wake it up.
  mkdir "$tmp/$n.etc"
  : >"$tmp/$n.etc/resolv.conf"
  echo "127.0.0.1 localhost" >"$tmp/$n.etc/hosts"
}

networkd_up() {
  local n=$1 i=${1#n} ns
  ns=$(nsof "$n")
  # shellcheck disable=SC2086 # NETWORKD_ENV is a list of VAR=value words
  ip netns exec "$ns" env ${NETWORKD_ENV:-} "$bin" -etcd.endpoint="$etcd_ep" \
    -hostname="$n" -net.interface=eth0 -net.address="10.88.0.1$i" \
    -lainlet.endpoint=127.0.0.1:9300 -godns.addr=127.0.0.1:9153 \
    -api.addr="$api" -lock.filename="$tmp/$n.lock" \
    --resolv-conf="$tmp/$n.etc/resolv.conf" --hosts-file="$tmp/$n.etc/hosts" \
    >>"$tmp/$n.networkd.log" 2>&1 &
  pid[$n.networkd]=$!
  wait_for 600 ready "$n" || die "$n: networkd not ready after 60 s: $(tail -5 "$tmp/$n.networkd.log")"
}

api_get() { ip netns exec "$(nsof "$1")" curl -s -m 3 "http://$api$2"; }
ready() { [ "$(api_get "$1" /readyz)" = ready ]; }

vip_ip() { echo "10.89.$(($1 / 250)).$(($1 % 250 + 1))"; }

# load_vips: the VIP keys, 128 puts per txn (etcd's default --max-txn-ops).
load_vips() {
  local i j batch=128
  for ((i = 0; i < vips; i += batch)); do
    {
      echo
      for ((j = i; j < i + batch && j < vips; j++)); do
        printf 'put /lain/config/vips/%s "{\\"app\\":\\"web\\",\\"proc\\":\\"main\\",\\"ports\\":[{\\"src\\":\\"80\\"},{\\"src\\":\\"81\\"}]}"\n' \
          "$(vip_ip "$j")"
      done
      echo
      echo
    } | ctl txn >/dev/null
  done
}

count_prefix() {
  ctl get --prefix "$1" --limit=1 -w json | python3 -c '
import json, sys
print(json.load(sys.stdin).get("count", 0))'
}

vip_addrs() { ip -n "$(nsof "$1")" -4 -o addr show dev eth0 | awk '$4 ~ /^10\.89\./ { print $4 }'; }
addr_count() { vip_addrs "$1" | wc -l; }

# all_held: every VIP has a lock and an address on one of the nodes.
all_held() {
  [ "$(count_prefix /lain/networkd/vips/10.89.)" = "$vips" ] \
    && [ "$({ vip_addrs n1; vip_addrs n2; } | sort -u | wc -l)" = "$vips" ]
}

# measure TITLE: one window; says so when it was not quiet (warnings in a
# networkd log or VIPs moved), e.g. when a loaded machine starves etcd.
measure() {
  local n lines=() before after
  log "settling for $settle s, then measuring for $window s: $1"
  sleep "$settle"
  for n in n1 n2; do lines+=("$(wc -l <"$tmp/$n.networkd.log")"); done
  before="n1 $(addr_count n1), n2 $(addr_count n2)"
  python3 "$bench/idle_sample.py" --duration "$window" --title "$1" --threads \
    n1="${pid[n1.networkd]}" n2="${pid[n2.networkd]}"
  after="n1 $(addr_count n1), n2 $(addr_count n2)"
  echo "VIPs held at the start: $before; at the end: $after"
  for n in 0 1; do
    if tail -n "+$((lines[n] + 1))" "$tmp/n$((n + 1)).networkd.log" \
        | grep -E ' (warning|error) ' >"$tmp/window.warn"; then
      echo "NOT QUIET: n$((n + 1)) logged $(wc -l <"$tmp/window.warn") warnings/errors" \
        "in the window, first 3:"
      head -3 "$tmp/window.warn" | sed 's/^/  /'
    fi
  done
  [ "$before" = "$after" ] || echo "NOT QUIET: VIPs moved during the window"
  echo
}

# --- main ----------------------------------------------------------------------

lab_up
networkd_up n1
networkd_up n2
echo "networkd idle cost: two nodes, knobs at their defaults, $(nproc) CPUs;" \
  "binary $bin"
echo
[ "$zero" = 1 ] && measure "0 VIPs"
if [ "$vips" -gt 0 ]; then
  load_vips
  wait_for 600 all_held || die "not all $vips VIPs held after 60 s:" \
    "locks $(count_prefix /lain/networkd/vips/10.89.), n1 $(addr_count n1), n2 $(addr_count n2)"
  log "all $vips VIPs held: n1 $(addr_count n1), n2 $(addr_count n2)"
  measure "$vips VIPs x 2 ports"
fi

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# networkd itself at scale with each DNAT data plane, in the same run, in
# namespaces (numbers only): --dataplane=nft against --dataplane=iptables.
#
# usage: bench/nft_daemon.sh [-r ROUNDS] [-V VIPS] [-P PORTS] [-k CHANGES]
#                            [-c CONNS] [-B] [-K DIR] [-v]
#   -r  alternating rounds (default 3; each runs both data planes, the
#       order swapped every round)
#   -V  VIPs on the scale node (default 2000)   -P  tcp ports each (default
#       4: VIPS x PORTS map elements with nft, twice that many rules with
#       iptables, one in lain-PREROUTING and one in lain-OUTPUT)
#   -k  changes timed per round (default 5)
#   -c  connections timed per VIP and round (default 200)
#   -B  do not build; use $NETWORKD_BIN or $BUILD_DIR/networkd (and
#       $BUILD_DIR/bench/nft_bench)
#   -K  copy the lab's logs (networkd, etcd, monitors) to DIR at exit
#   -v  networkd logs at debug level (-verbose): every holder's steps, to
#       see where a cold start or a SIGTERM spends its time
#   BUILD_DIR: build directory (default build-release in the repo)
#
# Lab: a bridge; etcd (10.88.0.2); a client (10.88.0.100); node n1
# (10.88.0.11) serving one VIP, 10.88.0.50:80; node n3 (10.88.0.13) serving
# the VIPS scale VIPs 10.89.x.y, ports 81.. -> its container's 8001..; a
# "container" namespace behind each node (bench/failover_echo.py) and a
# lainlet stand-in per node (bench/lainlet_stub.py). Per round and data
# plane:
#   cold    n3's networkd start -> its last "acquiring -> serving" log line
#           (a holder logs it once its DNAT is in the kernel); the kernel's
#           entries are counted afterwards and must all be there
#   change  etcdctl put of new ports for one VIP -> the new entry's event in
#           `nft monitor` / `xtables-monitor` (stamped as read); median.
#           Also from the put's event in an `etcdctl watch` beside networkd
#           (stamped the same way) to the kernel's: without etcdctl's own
#           start and etcd's commit
#   conn    new TCP connections from the client, alternating: through n3's
#           last VIP (iptables: the last rule of lain-PREROUTING) and
#           through n1's only VIP; medians, and their ratio
#   term    SIGTERM to n3's networkd -> its exit; the kernel must then hold
#           none of its DNAT entries nor VIP addresses
# Medians over the rounds and the ratios nft/iptables are printed. Every
# namespace, process and temp file is removed at exit, Ctrl-C included.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
bench=$top/bench
rounds=3
vips=2000
ports=4
changes=5
conns=200
build=1
keep_dir=""
verbose=()
while getopts "r:V:P:k:c:BK:vh" opt; do
  case "$opt" in
    r) rounds=$OPTARG ;;
    V) vips=$OPTARG ;;
    P) ports=$OPTARG ;;
    k) changes=$OPTARG ;;
    c) conns=$OPTARG ;;
    B) build=0 ;;
    K) keep_dir=$OPTARG ;;
    v) verbose=(-verbose) ;;
    *) sed -n '3,42p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
[ "$vips" -ge 2 ] && [ "$vips" -le 62500 ] || { echo "nft_daemon.sh: -V 2..62500" >&2; exit 2; }
[ "$ports" -ge 1 ] && [ "$ports" -le 8 ] || { echo "nft_daemon.sh: -P 1..8" >&2; exit 2; }

die() { echo "nft_daemon.sh: $*" >&2; exit 1; }
log() { echo "[$(date +%T)] $*" >&2; }
for tool in etcd etcdctl ip nft iptables-save xtables-monitor python3 curl stdbuf; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"

build_dir=${BUILD_DIR:-$top/build-release}
bin=${NETWORKD_BIN:-$build_dir/networkd}
helper=$build_dir/bench/nft_bench
if [ "$build" = 1 ]; then
  log "building networkd and nft_bench (Release) in $build_dir"
  cmake -S "$top" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release \
    -DNETWORKD_TESTS=OFF >/dev/null || die "cmake configure failed"
  cmake --build "$build_dir" -j2 --target networkd nft_bench >/dev/null \
    || die "build failed"
fi
[ -x "$bin" ] || die "no networkd binary at $bin"
[ -x "$helper" ] || die "no nft_bench at $helper"

# --- bookkeeping and cleanup --------------------------------------------------

tmp=$(mktemp -d /tmp/networkd-nftd-XXXXXX)
pfx=nd$$
namespaces=()
declare -A pid=()
results=$tmp/results

waitpid() { # PID TENTHS: wait for PID to be gone (looks every 2 ms: the
  # SIGTERM figure's resolution)
  local k
  for ((k = 0; k < $2 * 50; k++)); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.002
  done
  return 1
}

cleanup() {
  local rc=$? p ns n
  set +e
  trap - EXIT INT TERM
  for p in "${!pid[@]}"; do
    case "$p" in *.networkd) kill -TERM "${pid[$p]}" 2>/dev/null ;; esac
  done
  for p in "${!pid[@]}"; do
    case "$p" in *.networkd) waitpid "${pid[$p]}" 100 ;; esac
  done
  for p in "${!pid[@]}"; do kill -TERM "${pid[$p]}" 2>/dev/null; done
  for p in "${!pid[@]}"; do waitpid "${pid[$p]}" 50; done
  for p in "${!pid[@]}"; do kill -KILL "${pid[$p]}" 2>/dev/null; done
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

now() { echo "$EPOCHREALTIME"; }
ms_since() { python3 -c "print(f'{($EPOCHREALTIME - $1) * 1000:.1f}')"; }
wait_for() { # TENTHS COMMAND...: poll every 0.1 s
  local k t=$1
  shift
  for ((k = 0; k < t; k++)); do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}
nsof() { echo "$pfx-$1"; }
newns() {
  ip netns add "$1"
  namespaces+=("$1")
  ip -n "$1" link set lo up
}
sw=$(nsof sw)
etcd_ns=$(nsof etcd)
cl=$(nsof cl)
etcd_ep=10.88.0.2:2379
api=127.0.0.1:9100
ctl() { ip netns exec "$etcd_ns" etcdctl --endpoints="$etcd_ep" "$@"; }
plug() { # NS: eth0 in NS on the bridge
  ip link add eth0 netns "$1" type veth peer name "p-${1##*-}" netns "$sw"
  ip -n "$sw" link set "p-${1##*-}" master br0 up
  ip -n "$1" link set eth0 up
}
result() { echo "$1 $2 $3 $4" >>"$results"; } # BACKEND ROUND KEY VALUE

# --- lab ----------------------------------------------------------------------

node_up() { # NAME INDEX APP PORTS
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
  ip netns exec "$ct" python3 "$bench/failover_echo.py" "$n" "$4" \
    >"$tmp/$n.echo.log" 2>&1 &
  pid[$n.echo]=$!
  cat >"$tmp/$n.lainlet.json" <<EOF
{"$n/ct-$n": {"app": "$3", "app_version": "1", "proc": "main",
  "nodename": "$n", "nodeip": "10.88.0.1$i", "ip": "172.20.$i.2",
  "port": ${4%%,*}, "instanceNo": $i}}
EOF
  ip netns exec "$ns" python3 "$bench/lainlet_stub.py" --listen 127.0.0.1:9300 \
    --data "$tmp/$n.lainlet.json" >"$tmp/$n.lainlet.log" 2>&1 &
  pid[$n.lainlet]=$!
  : >"$tmp/$n.resolv"
  echo "127.0.0.1 localhost" >"$tmp/$n.hosts"
}

log "lab in namespaces $pfx-*"
newns "$sw"
ip -n "$sw" link add br0 type bridge stp_state 0
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
wait_for 100 ctl endpoint health >/dev/null 2>&1 || die "etcd did not start"
newns "$cl"
plug "$cl"
ip -n "$cl" addr add 10.88.0.100/24 dev eth0
ip -n "$cl" route add 10.89.0.0/16 dev eth0
ip netns exec "$cl" sysctl -qw net.ipv4.conf.all.arp_accept=1
ip netns exec "$cl" sysctl -qw net.ipv4.conf.eth0.arp_accept=1
node_up n1 1 web 80
node_up n3 3 scale "$(seq -s, 8001 $((8000 + ports)))"

scale_ip() { echo "10.89.$(($1 / 250)).$(($1 % 250 + 1))"; }
ports_json() { # BASE: [{"src":"BASE+1","dest":"8001"},...]
  local k s=""
  for ((k = 1; k <= ports; k++)); do
    s+="${s:+,}{\"src\":\"$(($1 + k))\",\"dest\":\"$((8000 + k))\"}"
  done
  echo "[$s]"
}
ctl put /lain/config/vips/10.88.0.50 \
  '{"app":"web","proc":"main","ports":[{"src":"80"}]}' >/dev/null
# The scale keys, 128 puts per txn (etcd's default --max-txn-ops).
pj=$(ports_json 80)
pj=${pj//\"/\\\"}
for ((i = 0; i < vips; i += 128)); do
  {
    echo
    for ((j = i; j < i + 128 && j < vips; j++)); do
      printf 'put /lain/config/vips/%s "{\\"app\\":\\"scale\\",\\"proc\\":\\"main\\",\\"ports\\":%s}"\n' \
        "$(scale_ip "$j")" "$pj"
    done
    echo
    echo
  } | ctl txn >/dev/null
done
log "$vips scale VIP keys in etcd"

networkd_up() { # NODE DATAPLANE
  local n=$1 i=${1#n} ns
  ns=$(nsof "$n")
  echo "=== start $(date +%T.%N)" >>"$tmp/$n.networkd.log"
  ip netns exec "$ns" "$bin" -etcd.endpoint="$etcd_ep" -hostname="$n" \
    -net.interface=eth0 -net.address="10.88.0.1$i" \
    -lainlet.endpoint=127.0.0.1:9300 -godns.addr=127.0.0.1:9153 \
    -api.addr="$api" -lock.filename="$tmp/$n.lock" --dataplane="$2" \
    --resolv-conf="$tmp/$n.resolv" --hosts-file="$tmp/$n.hosts" "${verbose[@]}" \
    >>"$tmp/$n.networkd.log" 2>&1 &
  pid[$n.networkd]=$!
}

networkd_down() { # NODE: SIGTERM, wait up to 60 s (then SIGKILL)
  local p=${pid[$1.networkd]:-}
  [ -n "$p" ] || return 0
  kill -TERM "$p" 2>/dev/null || true
  if ! waitpid "$p" 600; then
    echo "$1: networkd did not exit 60 s after SIGTERM; killed" >>"$tmp/problems"
    kill -KILL "$p" 2>/dev/null || true
  fi
  wait "$p" 2>/dev/null || true
  unset "pid[$1.networkd]"
}

serving_count() { # LOG: holders of the latest run that reached serving
  awk '/^=== start/ { n = 0 } /: acquiring -> serving / { n++ }
       END { print n + 0 }' "$1"
}

last_serving_ms() { # LOG T0: ms from T0 to the latest run's last serving line
  python3 - "$1" "$2" <<'PY'
import datetime, sys
last = None
for line in open(sys.argv[1], errors="replace"):
    if line.startswith("=== start"):
        last = None
    elif ": acquiring -> serving " in line:
        last = line.split(" ", 1)[0]
t = datetime.datetime.strptime(last, "%Y-%m-%dT%H:%M:%S.%f").timestamp()
print(f"{(t - float(sys.argv[2])) * 1000:.1f}")
PY
}

entries() { # NODE BACKEND: DNAT entries of the scale VIPs in the kernel
  if [ "$2" = nft ]; then
    ip netns exec "$(nsof "$1")" nft -j list map ip networkd vip_dnat 2>/dev/null \
      | python3 -c '
import json, sys
try:
    doc = json.load(sys.stdin)
except ValueError:
    print(0); sys.exit()
n = 0
for o in doc.get("nftables", []):
    for e in (o.get("map") or {}).get("elem") or []:
        n += "10.89." in json.dumps(e)
print(n)'
  else
    ip netns exec "$(nsof "$1")" iptables-save -t nat \
      | grep -c '^-A lain-PREROUTING -d 10\.89\.' || true
  fi
}

addresses() { # NODE: scale VIP addresses on eth0
  ip -n "$(nsof "$1")" -4 -o addr show dev eth0 | grep -c ' 10\.89\.' || true
}

served() { # NODE: its admin API answers and NODE serves at least one VIP
  ip netns exec "$(nsof "$1")" curl -s -m 2 "http://$api/v1/vips" \
    | grep -q '"state":"serving"'
}

# monitor_start BACKEND LOG: the kernel's rule / element events, stamped.
monitor_start() {
  local cmd
  if [ "$1" = nft ]; then cmd="nft monitor new elements"; else cmd="xtables-monitor -e"; fi
  # shellcheck disable=SC2086
  ip netns exec "$(nsof n3)" stdbuf -oL $cmd \
    > >(python3 "$bench/probe.py" stamp >"$2") 2>&1 &
  pid[n3.mon]=$!
}

monitor_stop() {
  local p
  for p in n3.mon n3.watch; do
    kill -TERM "${pid[$p]}" 2>/dev/null || true
    wait "${pid[$p]}" 2>/dev/null || true
    unset "pid[$p]"
  done
}

# watch_start LOG: the VIP keys' events as etcd sends them, stamped.
watch_start() {
  ip netns exec "$(nsof n3)" stdbuf -oL etcdctl --endpoints="$etcd_ep" \
    watch --prefix /lain/config/vips/10.89. \
    > >(python3 "$bench/probe.py" stamp >"$1") 2>&1 &
  pid[n3.watch]=$!
}

# stamp_of LOG T0 TEXT: the epoch stamp of the first line from T0 on
# holding TEXT, or NA.
stamp_of() {
  python3 - "$@" <<'PY'
import sys
for line in open(sys.argv[1], errors="replace"):
    ts, _, rest = line.partition(" ")
    try:
        t = float(ts)
    except ValueError:
        continue
    if t >= float(sys.argv[2]) and sys.argv[3] in rest:
        print(ts)
        break
else:
    print("NA")
PY
}

# first_event LOG T0 TEXT...: ms from T0 to the first stamped line holding
# every TEXT, or NA.
first_event() {
  python3 - "$@" <<'PY'
import sys
log, t0, want = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
for line in open(log, errors="replace"):
    ts, _, rest = line.partition(" ")
    try:
        t = float(ts)
    except ValueError:
        continue
    if t >= t0 and all(w in rest for w in want):
        print(f"{(t - t0) * 1000:.2f}")
        break
else:
    print("NA")
PY
}

run_backend() { # BACKEND ROUND
  local b=$1 r=$2 t0 t c k ip port mlog out lv lp
  want=$((vips * ports))
  networkd_up n1 "$b"
  wait_for 150 served n1 || die "$b: n1 does not serve its VIP"
  # cold
  t0=$(now)
  networkd_up n3 "$b"
  for ((k = 0; k < 1200; k++)); do
    [ "$(serving_count "$tmp/n3.networkd.log")" -ge "$vips" ] && break
    sleep 0.05
  done
  [ "$k" -lt 1200 ] || die "$b round $r: $(serving_count "$tmp/n3.networkd.log") of $vips VIPs serving after 60 s"
  t=$(last_serving_ms "$tmp/n3.networkd.log" "$t0")
  c=$(entries n3 "$b")
  [ "$c" -ge "$want" ] || echo "$b round $r: all VIPs serving, $c of $want entries in the kernel" >>"$tmp/problems"
  result "$b" "$r" cold_ms "$t"
  log "$b round $r: cold start -> $vips VIPs serving in $t ms ($c entries, $(addresses n3) addresses)"
  # changes
  mlog=$tmp/n3.$b.$r.mon
  monitor_start "$b" "$mlog"
  watch_start "$mlog.watch"
  sleep 1.5
  for ((k = 1; k <= changes; k++)); do
    # A VIP and ports never used before in this run.
    cn=$((cn + 1))
    ip=$(scale_ip $(((cn * 7) % vips)))
    port=$((1000 + cn * 10))
    t0=$(now)
    ctl put "/lain/config/vips/$ip" \
      "{\"app\":\"scale\",\"proc\":\"main\",\"ports\":$(ports_json $((port - 1)))}" >/dev/null
    if [ "$b" = nft ]; then
      wait_for 50 grep -q "$ip . tcp . $port " "$mlog" || true
      t=$(first_event "$mlog" "$t0" vip_dnat "$ip . tcp . $port ")
    else
      wait_for 50 grep -q -- "-d $ip/32 -p tcp -m tcp --dport $port " "$mlog" || true
      t=$(first_event "$mlog" "$t0" lain-PREROUTING "-d $ip/32 -p tcp -m tcp --dport $port ")
    fi
    result "$b" "$r" change_ms "$t"
    # From etcd's event (the watch saw the value with the new ports).
    local ws
    ws=$(stamp_of "$mlog.watch" "$t0" "\"src\":\"$port\"")
    if [ "$ws" != NA ] && [ "$t" != NA ]; then
      result "$b" "$r" change_event_ms "$(python3 -c "print(f'{$t0 * 1000 + $t - $ws * 1000:.2f}')")"
    fi
  done
  monitor_stop
  # connections: the last VIP against the one-VIP node
  lv=$(scale_ip $((vips - 1)))
  lp=81
  if [ "$b" = iptables ]; then
    out=$(ip netns exec "$(nsof n3)" iptables-save -t nat | grep '^-A lain-PREROUTING -d 10\.89\.' | tail -1)
    lv=$(sed -n 's/.*-d \([0-9.]*\)\/32.*/\1/p' <<<"$out")
    lp=$(sed -n 's/.*--dport \([0-9]*\) .*/\1/p' <<<"$out")
  fi
  out=$("$helper" connect --netns "$cl" --ip "$lv" --port "$lp" \
    --ip2 10.88.0.50 --port2 80 --count "$conns") || die "$b connect failed"
  result "$b" "$r" conn_last_us "$(sed -n 's/^connect_us_median=//p' <<<"$out")"
  result "$b" "$r" conn_one_us "$(sed -n 's/^connect2_us_median=//p' <<<"$out")"
  # SIGTERM
  t0=$(now)
  networkd_down n3
  t=$(ms_since "$t0")
  result "$b" "$r" term_ms "$t"
  c=$(entries n3 "$b")
  log "$b round $r: SIGTERM -> exit in $t ms; entries left $c, addresses left $(addresses n3)"
  [ "$c" = 0 ] && [ "$(addresses n3)" = 0 ] \
    || echo "$b round $r: SIGTERM left $c entries and $(addresses n3) addresses" >>"$tmp/problems"
  networkd_down n1
  # The next round starts cold: n3's locks gone from etcd.
  wait_for 100 bash -c "! ip netns exec $etcd_ns etcdctl --endpoints=$etcd_ep get --prefix /lain/networkd/vips/10.89. --keys-only | grep -q ." \
    || echo "$b round $r: n3's locks still in etcd 10 s after its exit" >>"$tmp/problems"
}

cn=0
started=$EPOCHREALTIME
for ((r = 1; r <= rounds; r++)); do
  if ((r % 2)); then order="iptables nft"; else order="nft iptables"; fi
  for b in $order; do
    log "round $r/$rounds: $b"
    run_backend "$b" "$r"
  done
done

echo "nft_daemon.sh: $(date -u +%Y-%m-%dT%H:%MZ), $vips VIPs x $ports tcp ports" \
  "($((vips * ports)) map elements / $((vips * ports * 2)) iptables rules), $rounds rounds," \
  "$changes changes and $conns connections a round; load average $(awk '{print $1, $2, $3}' /proc/loadavg)"
[ -s "$tmp/problems" ] && { echo "problems:"; sed 's/^/  /' "$tmp/problems"; }
python3 - "$results" "$started" <<'EOF'
import statistics, sys, time
by = {}
for line in open(sys.argv[1]):
    p = line.split()
    if len(p) != 4:
        continue
    try:
        by.setdefault((p[0], p[2]), []).append(float(p[3]))
    except ValueError:
        pass
rows = [("cold_ms", "cold start -> all VIPs serving (ms)", 100),
        ("change_ms", "one change: put -> in the kernel (ms)", None),
        ("change_event_ms", "one change: etcd event -> kernel (ms)", 2),
        ("term_ms", "SIGTERM -> exit, all released (ms)", 100),
        ("conn_last_us", "new connection, last VIP (us)", None),
        ("conn_one_us", "new connection, one-VIP node (us)", None)]
print("%-40s %10s %10s %12s %8s" % ("median", "iptables", "nft", "nft/iptables", "target"))
med = {}
for k, text, target in rows:
    i = statistics.median(by.get(("iptables", k), [0]))
    n = statistics.median(by.get(("nft", k), [0]))
    med[k] = (i, n)
    print("%-40s %10.2f %10.2f %12.3f %8s" % (text, i, n, n / i if i else 0,
                                             "<= %g" % target if target else ""))
for b, idx in (("iptables", 0), ("nft", 1)):
    l, o = med["conn_last_us"][idx], med["conn_one_us"][idx]
    print("%s: last VIP / one-VIP node = %.2f (%.0f vs %.0f connections/s "
          "one at a time)" % (b, l / o if o else 0, 1e6 / l if l else 0,
                              1e6 / o if o else 0))
print("samples: " + ", ".join("%s %s %d" % (b, k, len(v)) for (b, k), v in sorted(by.items())))
print("run took %.0f s" % (time.time() - float(sys.argv[2])))
EOF

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A fleet of networkd nodes in network namespaces against a 3-member etcd
# (issue 14): etcd load at rest, convergence after a cold start and after the
# etcd leader is killed, VIP failover while the whole fleet runs.
#
# usage: bench/fleet.sh [-n NODES] [-v VIPS] [-a VIPS_PER_APP] [-r REPLICAS]
#                       [-k KILLS] [-q SECS] [-t TTL] [-s PHASES] [-S MS]
#                       [-D DIR] [-e NICE] [-B] [-K DIR]
#   -n  networkd nodes (default 50, at most 250)
#   -v  VIPs (default 500)
#   -a  VIPs per app (default 10): VIPS / VIPS_PER_APP apps
#   -r  instances (containers) of each app, on distinct nodes (default 3);
#       a node competes for the VIPs of the apps it runs
#   -k  failover runs (default 3; each kills a node holding VIPs)
#   -q  quiet window for the etcd figures, seconds (default 30)
#   -t  lease TTL in seconds: sets /lain/networkd/config/lease_ttl before the
#       nodes start (default: not set, networkd's default 6 s)
#   -s  phases, letters of "qlf" (default all; the cold start always runs):
#       q quiet window   l etcd leader killed   f failover runs
#   -B  do not build; use $NETWORKD_BIN or $BUILD_DIR/networkd
#   -K  copy the logs to DIR at exit
#   -S  start the nodes MS milliseconds apart at the cold start (default 0:
#       all at once); times are from the first start
#   -D  directory for etcd's data (default a temp dir in /dev/shm: fsync on
#       the shared disk of this machine stalls etcd for seconds)
#   -e  niceness of the etcd members (default -10: on a real cluster etcd has
#       its own machines; here it must not starve behind the fleet)
#   BUILD_DIR: build directory (default build-release in the repo)
#   NETWORKD_ENV="VAR=value ...": environment of every networkd
#
# Lab (namespaces this script creates; only 10.88.0.0/16, 10.89.0.0/16 and
# 172.20.0.0/16 inside them are used): a bridge; etcd members e1-e3 on
# 10.88.0.2-4 (each in its own namespace); node nI on 10.88.1.I with a
# "container" namespace behind it (172.20.I.2, bench/failover_echo.py on
# port 80) and a lainlet stand-in (bench/lainlet_stub.py) listing that node's
# app instances; an observer (bench/fleet_watch.py) in a client namespace on
# 10.88.0.100. Node I lists the etcd members starting with member I mod 3.
# VIP j is 10.89.(j/250).(j%250+1), app fa(j/VIPS_PER_APP), port 80.
#
# "Settled": every VIP's IP/32 on exactly one node's eth0 (the kernel, read
# over netlink) and its lock in etcd naming that node. Everything started is
# stopped and the namespaces and temp dir removed at exit, Ctrl-C included.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
bench=$top/bench
nodes=50
vips=500
per_app=10
replicas=3
kills=3
quiet_s=30
ttl=""
phases=qlf
etcd_nice=-10
stagger_ms=0
data_base=/dev/shm
build=1
keep_dir=""
while getopts "n:v:a:r:k:q:t:s:BK:e:S:D:h" opt; do
  case "$opt" in
    n) nodes=$OPTARG ;;
    v) vips=$OPTARG ;;
    a) per_app=$OPTARG ;;
    r) replicas=$OPTARG ;;
    k) kills=$OPTARG ;;
    q) quiet_s=$OPTARG ;;
    t) ttl=$OPTARG ;;
    s) phases=$OPTARG ;;
    B) build=0 ;;
    K) keep_dir=$OPTARG ;;
    e) etcd_nice=$OPTARG ;;
    S) stagger_ms=$OPTARG ;;
    D) data_base=$OPTARG ;;
    *) sed -n '3,32p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done

die() { echo "fleet.sh: $*" >&2; exit 1; }
log() { echo "[$(date +%T)] $*" >&2; }
((nodes >= 2 && nodes <= 250)) || die "-n: 2 to 250 nodes"
((vips >= 1 && vips <= 62500)) || die "-v: 1 to 62500 VIPs"
((per_app >= 1 && replicas >= 1 && replicas <= nodes)) || die "-a/-r out of range"
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

tmp=$(mktemp -d /tmp/networkd-fleet-XXXXXX)
data=$(mktemp -d "$data_base/networkd-fleet-etcd-XXXXXX")
pfx=fl$$
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
    case "$p" in *.networkd) waitpid "${pid[$p]}" 100 ;; esac
  done
  for p in "${!pid[@]}"; do kill -TERM "${pid[$p]}" 2>/dev/null; done
  for p in "${!pid[@]}"; do waitpid "${pid[$p]}" 30; done
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
    mkdir -p "$keep_dir" && cp -a "$tmp"/. "$keep_dir"/
    echo "logs kept in $keep_dir" >&2
  fi
  rm -rf "$tmp" "$data"
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
cl=$pfx-cl
api_port=9100
members=(e1 e2 e3)
member_ip() { echo "10.88.0.$((${1#e} + 1))"; }
all_eps="10.88.0.2:2379,10.88.0.3:2379,10.88.0.4:2379"
initial_cluster="e1=http://10.88.0.2:2380,e2=http://10.88.0.3:2380,e3=http://10.88.0.4:2380"

newns() {
  ip netns add "$1"
  namespaces+=("$1")
  ip -n "$1" link set lo up
}

# plug NS: eth0 in NS, its peer p-NAME on the bridge.
plug() {
  local port=p-${1#"$pfx"-}
  ip link add eth0 netns "$1" type veth peer name "$port" netns "$sw"
  ip -n "$sw" link set "$port" master br0 up
  ip -n "$1" link set eth0 up
}

ctl() { ip netns exec "$cl" etcdctl --endpoints="$all_eps" --dial-timeout=2s "$@"; }

member_up() {
  local m=$1 ip
  ip=$(member_ip "$m")
  ip netns exec "$pfx-$m" nice -n "$etcd_nice" etcd --name "$m" --data-dir "$data/$m" \
    --listen-client-urls "http://$ip:2379" --advertise-client-urls "http://$ip:2379" \
    --listen-peer-urls "http://$ip:2380" --initial-advertise-peer-urls "http://$ip:2380" \
    --initial-cluster "$initial_cluster" --initial-cluster-state new \
    --initial-cluster-token "$pfx" \
    --logger=zap --log-level=warn >>"$tmp/$m.log" 2>&1 &
  pid[$m.etcd]=$!
  # Out of the job table: bash would report the leader's SIGKILL at exit.
  disown "$!"
}

member_healthy() {
  ip netns exec "$cl" etcdctl --endpoints="$(member_ip "$1"):2379" \
    --dial-timeout=1s --command-timeout=1s endpoint health >/dev/null 2>&1
}

cluster_healthy() {
  local m
  for m in "${members[@]}"; do member_healthy "$m" || return 1; done
}

# leader: the member name of etcd's raft leader.
leader() {
  ctl endpoint status -w json 2>/dev/null | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    st = e.get("Status") or {}
    if st.get("leader") and st.get("header", {}).get("member_id") == st["leader"]:
        print("e%d" % (int(e["Endpoint"].split(":")[0].rsplit(".", 1)[1]) - 1))' || true
}

etcd_up() {
  local m
  newns "$cl"
  plug "$cl"
  ip -n "$cl" addr add 10.88.0.100/16 dev eth0
  for m in "${members[@]}"; do
    newns "$pfx-$m"
    plug "$pfx-$m"
    ip -n "$pfx-$m" addr add "$(member_ip "$m")/16" dev eth0
    member_up "$m"
  done
  wait_for 300 cluster_healthy || die "etcd did not start: $(tail -3 "$tmp"/e1.log)"
  log "etcd up, leader $(leader)"
}

vip_ip() { echo "10.89.$(($1 / 250)).$(($1 % 250 + 1))"; }
apps=$(((vips + per_app - 1) / per_app))

# node_up I: node nI's namespaces, container and lainlet stand-in. Instance r
# (1..replicas) of app k runs on node (k * replicas + r - 1) mod nodes + 1.
node_up() {
  local i=$1 n=n$1 ns ct k r first=1
  ns=$pfx-$n
  ct=$pfx-${n}c
  newns "$ns"
  newns "$ct"
  plug "$ns"
  ip -n "$ns" addr add "10.88.1.$i/16" dev eth0
  ip link add ct0 netns "$ns" type veth peer name eth0 netns "$ct"
  ip -n "$ns" addr add "172.20.$i.1/24" dev ct0
  ip -n "$ns" link set ct0 up
  ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
  ip -n "$ct" addr add "172.20.$i.2/24" dev eth0
  ip -n "$ct" link set eth0 up
  ip -n "$ct" route add default via "172.20.$i.1"
  ip netns exec "$ct" python3 "$bench/failover_echo.py" "$n" 80 \
    >>"$tmp/$n.echo.log" 2>&1 &
  pid[$n.echo]=$!
  {
    echo "{"
    for ((k = 0; k < apps; k++)); do
      for ((r = 1; r <= replicas; r++)); do
        (( (k * replicas + r - 1) % nodes + 1 == i )) || continue
        ((first)) || echo ","
        first=0
        printf '"%s/ct-fa%d-%d": {"app": "fa%d", "app_version": "1", "proc": "fa%d.web", "nodename": "%s", "nodeip": "10.88.1.%d", "ip": "172.20.%d.2", "port": 80, "instanceNo": %d}\n' \
          "$n" "$k" "$r" "$k" "$k" "$n" "$i" "$i" "$r"
      done
    done
    echo "}"
  } >"$tmp/$n.lainlet.json"
  ip netns exec "$ns" python3 "$bench/lainlet_stub.py" --listen 127.0.0.1:9300 \
    --data "$tmp/$n.lainlet.json" >"$tmp/$n.lainlet.log" 2>&1 &
  pid[$n.lainlet]=$!
  : >"$tmp/$n.resolv"
  echo "127.0.0.1 localhost" >"$tmp/$n.hosts"
}

# endpoints I: the three members, starting with member I mod 3.
endpoints() {
  local s=$(($1 % 3)) k out=""
  for k in 0 1 2; do out+="${out:+,}http://10.88.0.$(((s + k) % 3 + 2)):2379"; done
  echo "$out"
}

networkd_up() {
  local i=$1 n=n$1
  echo "=== start $(date +%T.%N)" >>"$tmp/$n.networkd.log"
  # shellcheck disable=SC2086
  ip netns exec "$pfx-$n" env ${NETWORKD_ENV:-} "$bin" \
    -etcd.endpoint="$(endpoints "$i")" -hostname="$n" \
    -net.interface=eth0 -net.address="10.88.1.$i" \
    -lainlet.endpoint=127.0.0.1:9300 -godns.addr=127.0.0.1:9153 \
    -api.addr="127.0.0.1:$api_port" -lock.filename="$tmp/$n.lock" \
    --resolv-conf="$tmp/$n.resolv" --hosts-file="$tmp/$n.hosts" \
    >>"$tmp/$n.networkd.log" 2>&1 &
  pid[$n.networkd]=$!
}

# load_vips: the VIP keys, 128 puts per txn (etcd's default --max-txn-ops).
load_vips() {
  local j k batch=128
  for ((j = 0; j < vips; j++)); do vip_ip "$j"; done >"$tmp/vips"
  for ((j = 0; j < vips; j += batch)); do
    {
      echo
      for ((k = j; k < j + batch && k < vips; k++)); do
        printf 'put /lain/config/vips/%s "{\\"app\\":\\"fa%d\\",\\"proc\\":\\"web\\",\\"ports\\":[{\\"src\\":\\"80\\"}]}"\n' \
          "$(vip_ip "$k")" $((k / per_app))
      done
      echo
      echo
    } | ctl txn >/dev/null
  done
}

observe() {
  ip netns exec "$cl" python3 "$bench/fleet_watch.py" "$@" --ns-prefix "$pfx" \
    --nodes "$nodes" --vips "$tmp/vips" --etcd "$all_eps" --api-port "$api_port"
}

networkd_pids() {
  local i out=""
  for ((i = 1; i <= nodes; i++)); do out+="${out:+,}${pid[n$i.networkd]:-}"; done
  echo "$out"
}

# kv LINE KEY: the value of KEY=value in LINE.
kv() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

# --- phases -------------------------------------------------------------------

report=$tmp/report
say() { echo "$*" | tee -a "$report" >&2; }

phase_cold() {
  local i t0 out
  log "cold start: $nodes networkd, ${stagger_ms} ms apart"
  t0=$EPOCHREALTIME
  for ((i = 1; i <= nodes; i++)); do
    networkd_up "$i"
    ((stagger_ms == 0 || i == nodes)) || sleep "$(printf '%d.%03d' $((stagger_ms / 1000)) $((stagger_ms % 1000)))"
  done
  out=$(observe cold --t0 "$t0" --deadline $((150 + nodes * stagger_ms / 1000))) || true
  say "cold start of $nodes nodes (${stagger_ms} ms apart) -> all ready" \
    "$(kv "$out" ready_ms) ms, all $vips VIPs settled $(kv "$out" settled_ms) ms" \
    "(every VIP on its lock owner: $(kv "$out" covered_ms) ms); VIPs held by two" \
    "nodes at once: at most $(kv "$out" doubles), at the end $(kv "$out" doubles_now)"
  say "  VIPs per node then: min $(kv "$out" per_node_min), median" \
    "$(kv "$out" per_node_median), max $(kv "$out" per_node_max); nodes holding" \
    "none: $(kv "$out" nodes_without) (even spread: $((vips / nodes))-$(((vips + nodes - 1) / nodes)))"
  say "  load right after: $(uptime | sed 's/.*load/load/')"
  [ "$(kv "$out" covered_ms)" != NA ] && [ "$(kv "$out" ready_ms)" != NA ] || return 1
  [ "$(kv "$out" doubles_now)" = 0 ] \
    || say "  (the VIPs held twice stay so: the leader kill and failover runs see them)"
}

phase_quiet() {
  local epids m
  log "quiet: settling 10 s, then a ${quiet_s} s window"
  sleep 10
  epids=""
  for m in "${members[@]}"; do epids+="${epids:+,}${pid[$m.etcd]}"; done
  observe quiet --window "$quiet_s" --pids "$(networkd_pids)" --etcd-pids "$epids" \
    | tee -a "$report" >&2
  say "  load: $(uptime | sed 's/.*load/load/')"
}

phase_leader() {
  local l out
  l=$(leader)
  [ -n "$l" ] || { say "etcd leader kill: no leader found"; return 0; }
  log "etcd leader kill: $l (pid ${pid[$l.etcd]})"
  out=$(observe etcd-kill --pid "${pid[$l.etcd]}" --stable 10 --deadline 120) || true
  waitpid "${pid[$l.etcd]}" 50 || true
  unset "pid[$l.etcd]"
  local nr
  nr="no node went not ready"
  [ "$(kv "$out" nodes_not_ready)" = 0 ] \
    || nr="nodes not ready at some point: $(kv "$out" nodes_not_ready) (at most $(kv "$out" max_not_ready) at once), the last seen not ready at +$(kv "$out" last_not_ready_ms) ms"
  say "etcd leader $l killed: $nr; every node ready and every VIP on its lock owner" \
    "from +$(kv "$out" settled_ms) ms (watched $(kv "$out" observed_ms) ms);" \
    "VIPs moved $(kv "$out" moved), held twice $(kv "$out" doubles)," \
    "unheld $(kv "$out" unheld); new leader $(leader) (etcd answered the" \
    "observer's range again from +$(kv "$out" etcd_back_ms) ms)"
  member_up "$l"
  wait_for 300 cluster_healthy || say "  etcd member $l did not come back in 30 s"
  log "etcd member $l back"
}

phase_failover() {
  local r n i out s times=()
  for ((r = 1; r <= kills; r++)); do
    # A node with VIPs: the lock owner of VIP r * 7 (spread over the fleet).
    n=$(ctl get --print-value-only "/lain/networkd/vips/$(vip_ip $(((r * 7 * per_app + r) % vips))).lock" || true)
    [ -n "$n" ] && [ -n "${pid[$n.networkd]:-}" ] \
      || { say "failover run $r: no running owner found ('$n')"; continue; }
    log "failover run $r: SIGKILL networkd of $n"
    out=$(observe failover --node "$n" --pid "${pid[$n.networkd]}" --deadline 60) || true
    { wait "${pid[$n.networkd]}"; } 2>/dev/null || true
    unset "pid[$n.networkd]"
    say "failover run $r: $n held $(kv "$out" vips) VIPs; settled elsewhere" \
      "first $(kv "$out" first_ms) ms, median $(kv "$out" median_ms) ms," \
      "last $(kv "$out" last_ms) ms; held twice $(kv "$out" doubles)"
    s=$(kv "$out" last_ms)
    [ "$s" = NA ] || times+=("$s")
    i=${n#n}
    networkd_up "$i"
    out=$(observe cold --t0 "$EPOCHREALTIME" --deadline 60) || true
    log "  $n restarted: fleet ready again after $(kv "$out" ready_ms) ms"
  done
  if ((${#times[@]})); then
    say "failover (SIGKILL of a node's networkd -> the last of its VIPs settled elsewhere)," \
      "median over ${#times[@]} runs: $(printf '%s\n' "${times[@]}" | sort -n \
        | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }') ms"
  fi
}

# --- main ---------------------------------------------------------------------

log "lab in namespaces $pfx-* (temp dir $tmp): $nodes nodes, $vips VIPs," \
  "$apps apps x $replicas instances"
newns "$sw"
ip -n "$sw" link add br0 type bridge
ip -n "$sw" link set br0 up
etcd_up
[ -z "$ttl" ] || ctl put /lain/networkd/config/lease_ttl "$ttl" >/dev/null
load_vips
log "loaded $vips VIP keys"
for ((i = 1; i <= nodes; i++)); do node_up "$i"; done
observe stubs --deadline 120 || die "the lainlet stand-ins or containers did not start"
log "nodes set up (lainlet stand-ins and containers answer)"
: >"$report"
say "fleet: $nodes nodes, $vips VIPs ($apps apps x $replicas instances), etcd 3 members," \
  "lease TTL ${ttl:-6 (default)} s; $(nproc) cores; load before: $(uptime | sed 's/.*load/load/')"
if phase_cold; then
  [[ $phases == *q* ]] && phase_quiet
  [[ $phases == *l* ]] && phase_leader
  [[ $phases == *f* ]] && phase_failover
else
  say "the fleet did not converge: etcd figures of the unsettled fleet follow;" \
    "the leader kill and failover runs are skipped"
  [[ $phases == *q* ]] && phase_quiet
fi
errs=$(cat "$tmp"/n*.networkd.log | grep -ciE '\b(error|warn)' || true)
say "networkd log lines with error/warn: $errs (all nodes)"
say "load at the end: $(uptime | sed 's/.*load/load/')"
echo
echo "=== fleet report"
cat "$report"

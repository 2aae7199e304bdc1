#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# dnsperf on loopback: networkd vs dnsmasq vs unbound vs Knot DNS, local
# and cached names; then etcd write -> answer latency of networkd.
#
# usage: bench/dns.sh [-r ROUNDS] [-l SECONDS] [-c CLIENTS] [-T THREADS]
#                     [-q OUTSTANDING] [-Q MAX_QPS] [-W WRITES] [-B] [-H]
#   -r  alternating rounds per scenario (default 3)
#   -l  seconds per dnsperf run (default 10)
#   -c  dnsperf clients (default 20)      -T  dnsperf threads (default 2)
#   -q  dnsperf outstanding queries (default: dnsperf's own, 100)
#   -Q  dnsperf QPS cap (default: none)
#   -W  etcd writes timed until networkd answers them (default 200; 0: none)
#   -B  do not build; use $NETWORKD_BIN or build-release/networkd
#   -H  hold: after the report keep everything running until Ctrl-C (to
#       look at the processes with perf, /proc/PID/smaps, ...)
#   NETWORKD_ENV="VAR=value ..." runs networkd with that environment (e.g.
#   MALLOC_ARENA_MAX=2); UPSTREAM_IP moves the upstream (default 127.0.0.99).
#
# Builds networkd (Release), starts a throwaway etcd, an upstream dnsmasq on
# $UPSTREAM_IP:53 (default 127.0.0.99) that knows the forwarded names, and
# the four servers under test on free loopback ports, all loaded with the
# same names (bench/dns_data.py; Knot from a zone file, authoritatively).
# UDP threads: networkd one worker per core (no knob), unbound and Knot as
# many (num-threads, udp-workers), dnsmasq one (it has no threads).
# Scenario "local": wildcard-matched and exact local names, all four.
# Scenario "cached": names only the upstream knows, after warming the
# caches; not Knot (authoritative only). Runs alternate between the servers
# with the same dnsperf settings. Prints per server the medians of the
# answered QPS, of the answered queries per CPU-second of the server
# process (user + system from /proc/PID/stat over the run; less disturbed by
# other load on the machine than QPS) and of its RSS (largest VmRSS sampled
# during a run), the ratios networkd/other, networkd's RSS split into
# anonymous memory and mapped files, and VmHWM. Then bench/dns_write.py puts
# -W new names into etcd one after another and polls networkd every 1 ms
# until each answers: p50/p90/p99/max. No pass/fail: it exits non-zero only
# when the setup fails. Everything started is stopped and the temp dir
# removed on exit, Ctrl-C included.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
rounds=3
seconds=10
clients=20
threads=2
outstanding=""
max_qps=""
build=1
hold=0
writes=200
while getopts "r:l:c:T:q:Q:W:BHh" opt; do
  case "$opt" in
    r) rounds=$OPTARG ;;
    l) seconds=$OPTARG ;;
    c) clients=$OPTARG ;;
    T) threads=$OPTARG ;;
    q) outstanding=$OPTARG ;;
    Q) max_qps=$OPTARG ;;
    W) writes=$OPTARG ;;
    B) build=0 ;;
    H) hold=1 ;;
    *) sed -n '4,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
upstream_ip=${UPSTREAM_IP:-127.0.0.99}

die() { echo "dns.sh: $*" >&2; exit 1; }
for tool in dnsperf dnsmasq unbound knotd etcd etcdctl dig python3 curl; do
  command -v "$tool" >/dev/null \
    || die "$tool not found (see deploy/install-deps.sh)"
done

bin=${NETWORKD_BIN:-$top/build-release/networkd}
if [ "$build" = 1 ]; then
  echo "== building networkd (Release)"
  launcher=()
  command -v ccache >/dev/null && launcher=(
    -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S "$top" -B "$top/build-release" -DCMAKE_BUILD_TYPE=Release \
    -DNETWORKD_TESTS=OFF "${launcher[@]}" >/dev/null \
    || die "cmake configure failed"
  nice -n 5 cmake --build "$top/build-release" -j2 --target networkd \
    >/dev/null || die "build failed"
fi
[ -x "$bin" ] || die "no networkd binary at $bin"

tmp=$(mktemp -d /tmp/networkd-bench-XXXXXX)
# etcd's data in memory when /dev/shm is there: its fsyncs on a disk shared
# with other work take up to 0.5 s and would swamp the write -> answer times.
etcd_dir=$tmp/etcd
[ -d /dev/shm ] && etcd_dir=$(mktemp -d /dev/shm/networkd-bench-etcd-XXXXXX)
pids=()
fg_pid=""
sampler=""
cleanup() {
  local p
  for p in $fg_pid $sampler "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$tmp" "$etcd_dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run COMMAND...: runs it in the background and waits, so that a signal to
# this script is handled at once, not after the command ends.
run() {
  local rc=0
  "$@" &
  fg_pid=$!
  wait "$fg_pid" || rc=$?
  fg_pid=""
  return "$rc"
}

# A port free for both TCP and UDP on 127.0.0.1.
free_port() {
  python3 - <<'PY'
import socket
while True:
  t = socket.socket()
  t.bind(("127.0.0.1", 0))
  port = t.getsockname()[1]
  u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
  try:
    u.bind(("127.0.0.1", port))
  except OSError:
    continue
  print(port)
  break
PY
}

# wait_for SECONDS COMMAND...: retries COMMAND every 0.2 s.
wait_for() {
  local limit=$(($1 * 5)) i
  shift
  for ((i = 0; i < limit; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

# answers PORT NAME IP [IP_ADDR]: the server on IP_ADDR:PORT answers NAME A
# with IP.
answers() {
  dig +short +time=1 +tries=1 @"${4:-127.0.0.1}" -p "$1" "$2" A \
    | grep -qx "$3"
}

python3 "$top/bench/dns_data.py" "$tmp" || die "generating data failed"

# -- etcd ---------------------------------------------------------------------
etcd_client=$(free_port)
etcd_peer=$(free_port)
etcd --name bench --data-dir "$etcd_dir" \
  --listen-client-urls "http://127.0.0.1:$etcd_client" \
  --advertise-client-urls "http://127.0.0.1:$etcd_client" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-cluster "bench=http://127.0.0.1:$etcd_peer" \
  --max-txn-ops 100000 --log-level error --logger zap \
  >"$tmp/etcd.log" 2>&1 &
pids+=($!)
export ETCDCTL_API=3
ctl() { etcdctl --endpoints="127.0.0.1:$etcd_client" "$@"; }
wait_for 20 ctl endpoint health \
  || die "etcd did not start: $(tail -3 "$tmp/etcd.log")"
if ! ctl txn <"$tmp/etcd.txn" >"$tmp/etcd-txn.out" 2>&1 \
  || ! grep -q SUCCESS "$tmp/etcd-txn.out"; then
  die "loading etcd keys failed ($(head -c 300 "$tmp/etcd-txn.out"))"
fi
echo "== etcd on 127.0.0.1:$etcd_client:" \
  "$(ctl get --prefix --keys-only /lain/config/domains/ | grep -c .)" \
  "domain keys"

# -- upstream -----------------------------------------------------------------
if python3 -c "import socket,sys; s=socket.socket(socket.AF_INET, \
socket.SOCK_DGRAM); s.bind(('$upstream_ip', 53))" 2>/dev/null; then :; else
  die "$upstream_ip:53 is in use; set UPSTREAM_IP to another loopback address"
fi
dnsmasq -k --conf-file="$tmp/upstream.conf" --listen-address="$upstream_ip" \
  --bind-interfaces --port=53 --no-resolv --no-hosts --local-ttl=86400 \
  --pid-file="$tmp/upstream.pid" >"$tmp/upstream.log" 2>&1 &
pids+=($!)

# -- servers under test -------------------------------------------------------
declare -A port pid
port[networkd]=$(free_port)
port[dnsmasq]=$(free_port)
port[unbound]=$(free_port)
port[knot]=$(free_port)
api=$(free_port)
# UDP threads for unbound and Knot: as many as networkd starts (one worker per
# core, std::thread::hardware_concurrency; it has no knob for it).
udp_threads=$(nproc)

printf 'search bench\nnameserver %s\n' "$upstream_ip" >"$tmp/resolv.conf"
: >"$tmp/hosts"
# shellcheck disable=SC2086 # NETWORKD_ENV is a list of words
env ${NETWORKD_ENV:-} "$bin" -etcd.endpoint="127.0.0.1:$etcd_client" \
  -hostname=bench \
  -net.interface=lo -net.address=127.0.0.1 \
  -godns.addr="127.0.0.1:${port[networkd]}" -api.addr="127.0.0.1:$api" \
  -lock.filename="$tmp/networkd.lock" --resolv-conf="$tmp/resolv.conf" \
  --hosts-file="$tmp/hosts" >"$tmp/networkd.log" 2>&1 &
pid[networkd]=$!
pids+=($!)

dnsmasq -k --conf-file="$tmp/dnsmasq.conf" --listen-address=127.0.0.1 \
  --bind-interfaces --port="${port[dnsmasq]}" --no-resolv --no-hosts \
  --server="$upstream_ip" -c 20000 --pid-file="$tmp/dnsmasq.pid" \
  >"$tmp/dnsmasq.log" 2>&1 &
pid[dnsmasq]=$!
pids+=($!)

{
  cat <<CONF
server:
  interface: 127.0.0.1@${port[unbound]}
  port: ${port[unbound]}
  num-threads: $udp_threads
  so-reuseport: yes
  username: ""
  chroot: ""
  directory: "$tmp"
  pidfile: ""
  logfile: ""
  use-syslog: no
  verbosity: 0
  do-not-query-localhost: no
  module-config: "iterator"
  access-control: 127.0.0.0/8 allow
CONF
  cat "$tmp/unbound-local.conf"
  cat <<CONF
forward-zone:
  name: "."
  forward-addr: $upstream_ip@53
CONF
} >"$tmp/unbound.conf"
unbound -d -c "$tmp/unbound.conf" >"$tmp/unbound.log" 2>&1 &
pid[unbound]=$!
pids+=($!)

# Knot DNS: authoritative for "bench." from a zone file with the same names
# (dns_data.py); one SO_REUSEPORT UDP socket per udp-worker. No journal and
# no zone file flushes, so it does no disk I/O while serving.
mkdir -p "$tmp/knot"
cat >"$tmp/knot.conf" <<CONF
server:
  rundir: "$tmp/knot"
  listen: 127.0.0.1@${port[knot]}
  udp-workers: $udp_threads
  tcp-workers: 1
  background-workers: 1
control:
  listen: "$tmp/knot/knot.sock"
database:
  storage: "$tmp/knot"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "$tmp"
    file: "%s.zone"
    journal-content: none
    zonefile-sync: -1
zone:
  - domain: bench.
CONF
knotd -c "$tmp/knot.conf" >"$tmp/knot.log" 2>&1 &
pid[knot]=$!
pids+=($!)

servers=(networkd dnsmasq unbound knot)
forwarders=(networkd dnsmasq unbound)
for s in "${servers[@]}"; do
  checks="$tmp/check.txt"
  [ "$s" = knot ] && checks="$tmp/check-local.txt"
  while read -r name ip; do
    wait_for 30 answers "${port[$s]}" "$name" "$ip" \
      || { tail -5 "$tmp/$s.log" >&2;
           die "$s on port ${port[$s]} does not answer $name with $ip"; }
  done <"$checks"
done
echo "== serving: networkd :${port[networkd]} (pid ${pid[networkd]})," \
  "dnsmasq :${port[dnsmasq]}, unbound :${port[unbound]}," \
  "knot :${port[knot]}, upstream $upstream_ip:53"
nwd_workers=$(sed -n 's/.*listening on.* with \([0-9]*\) workers.*/\1/p' \
  "$tmp/networkd.log" | head -1)
echo "== UDP threads: networkd ${nwd_workers:-?} (one per core, no knob)," \
  "dnsmasq 1 (single-threaded), unbound $udp_threads (num-threads)," \
  "knot $udp_threads (udp-workers); all SO_REUSEPORT but dnsmasq"

perf_args=(-c "$clients" -T "$threads")
[ -n "$outstanding" ] && perf_args+=(-q "$outstanding")
[ -n "$max_qps" ] && perf_args+=(-Q "$max_qps")

# Warm every cache with each forwarded name (twice, to be sure).
for s in "${forwarders[@]}"; do
  run dnsperf -s 127.0.0.1 -p "${port[$s]}" -d "$tmp/forward.queries" -n 2 \
    -c 4 -T 1 -q 20 >"$tmp/warm-$s.txt" 2>&1 \
    || die "warming $s failed: $(tail -3 "$tmp/warm-$s.txt")"
done

# cpu_ticks PID: user + system time of the process so far, in clock ticks.
cpu_ticks() {
  sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# sample_rss PID OUT: writes the largest VmRSS (kB) seen until killed, as
# "VmRSS:RssAnon:RssFile" of that moment (heap and stacks vs. mapped files).
sample_rss() {
  local max=0 v
  while v=$(awk '/^VmRSS:/ {r = $2} /^RssAnon:/ {a = $2} /^RssFile:/ {f = $2}
                 END { if (r) print r ":" a ":" f }' \
              "/proc/$1/status" 2>/dev/null) && [ -n "$v" ]; do
    [ "${v%%:*}" -gt "$max" ] && { max=${v%%:*}; echo "$v" >"$2"; }
    sleep 0.1
  done
}

echo "== dnsperf ${perf_args[*]} -l $seconds, $rounds alternating rounds," \
  "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
results="$tmp/results.tsv"
: >"$results"
loads="$tmp/loads"
: >"$loads"
for scenario in local cached; do
  file="$tmp/local.queries"
  in_run=("${servers[@]}")
  if [ "$scenario" = cached ]; then
    file="$tmp/forward.queries"
    in_run=("${forwarders[@]}")
  fi
  for ((r = 1; r <= rounds; r++)); do
    cut -d' ' -f1 /proc/loadavg >>"$loads"
    for s in "${in_run[@]}"; do
      out="$tmp/run-$scenario-$s-$r.txt"
      rss_file="$tmp/rss-$scenario-$s-$r"
      sample_rss "${pid[$s]}" "$rss_file" &
      sampler=$!
      cpu0=$(cpu_ticks "${pid[$s]}")
      run dnsperf -s 127.0.0.1 -p "${port[$s]}" -d "$file" -l "$seconds" \
        "${perf_args[@]}" >"$out" 2>&1 \
        || die "dnsperf failed: $(tail -3 "$out")"
      cpu1=$(cpu_ticks "${pid[$s]}")
      if [ -n "$sampler" ]; then
        kill "$sampler" 2>/dev/null || true
        wait "$sampler" 2>/dev/null || true
        sampler=""
      fi
      rss=$(cat "$rss_file" 2>/dev/null || echo "-")
      awk -v sc="$scenario" -v sv="$s" -v r="$r" -v rss="$rss" \
        -v cpu=$((cpu1 - cpu0)) -v hz="$(getconf CLK_TCK)" '
        /Queries completed:/ { done = $3 }
        /Queries lost:/ { lost = $3 }
        /Queries per second:/ { qps = $4 }
        /Average Latency/ { lat = $4 }
        # Only NOERROR and NXDOMAIN answers count as served: a server that
        # answered fast SERVFAILs or REFUSEDs must not look fast.
        /Response codes:/ {
          codes = $0; sub(/.*Response codes: */, "", codes)
          n = split(codes, part, /, /)
          for (i = 1; i <= n; i++) {
            split(part[i], f, " ")
            if (f[1] == "NOERROR" || f[1] == "NXDOMAIN") good += f[2]
          }
          gsub(/ /, "_", codes)
        }
        # Answered queries per CPU-second of the server process.
        END { qcpu = cpu > 0 ? good / (cpu / hz) : 0
              ok = done > 0 ? qps * good / done : 0
              printf "%s\t%s\t%s\t%.0f\t%s\t%s\t%s\t%.0f\t%s\n",
                     sc, sv, r, ok, lat, lost, rss, qcpu, codes }' "$out" \
        >>"$results"
      tail -1 "$results" | awk -F'\t' '{ split($7, m, ":")
        printf "   %-6s %-8s round %s: %9.0f answered qps  %6.3f ms  " \
        "%7.0f q/cpu-s  rss %5.1f MB  lost %s  %s\n", $1, $2, $3, $4,
        $5 * 1000, $8, m[1] / 1024, $6, $9 }'
    done
  done
done
cut -d' ' -f1 /proc/loadavg >>"$loads"

echo "== done, load average $(cut -d' ' -f1-3 /proc/loadavg)" \
  "(other work on the machine makes runs noisy)"
hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/${pid[networkd]}/status")
state=$(curl -s "http://127.0.0.1:$api/v1/state" || true)
echo
python3 - "$results" "$hwm" "$state" "$loads" <<'PY'
import json, statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
hwm = int(sys.argv[2])
loads = [float(x) for x in open(sys.argv[4]).read().split()]
servers = ["networkd", "dnsmasq", "unbound", "knot"]
med = statistics.median
by = {}
for sc, sv, r, qps, lat, lost, rss, qcpu, codes in rows:
  d = by.setdefault((sc, sv), {"qps": [], "lat": [], "lost": 0, "rss": [],
                               "qcpu": [], "codes": set()})
  d["codes"].add(codes.replace("_", " "))
  d["qcpu"].append(float(qcpu))
  d["qps"].append(float(qps or 0))
  d["lat"].append(float(lat or 0))
  d["lost"] += int(lost or 0)
  if rss not in ("-", ""):
    d["rss"].append(tuple(int(x) for x in rss.split(":")))

def rss_mb(d):
  return med([x[0] for x in d["rss"]]) / 1024 if d["rss"] else 0

print("Only NOERROR and NXDOMAIN answers count (dnsperf's response codes; "
      "the rcode mix of every run follows the table). q/cpu-s: answered "
      "queries per CPU-second of the server process (utime + stime). RSS: "
      "largest VmRSS sampled during a run. Medians over the rounds.")
print("%-8s %-9s %9s %9s %7s %9s %7s %6s  %s" % (
  "scenario", "server", "QPS", "QPS range", "avg ms", "q/cpu-s", "RSS MB",
  "lost", "runs QPS"))
for sc in ["local", "cached"]:
  for sv in servers:
    d = by.get((sc, sv))
    if not d:
      print("%-8s %-9s %9s  (authoritative only: no forwarding)" % (
        sc, sv, "n/a"))
      continue
    q = d["qps"]
    print("%-8s %-9s %9.0f %9.0f %7.3f %9.0f %7.1f %6d  %s" % (
      sc, sv, med(q), max(q) - min(q), statistics.mean(d["lat"]) * 1000,
      med(d["qcpu"]), rss_mb(d), d["lost"], " ".join("%.0f" % x for x in q)))
print()
for (sc, sv), d in sorted(by.items()):
  print("rcodes %-6s %-8s %s" % (sc, sv, " | ".join(sorted(d["codes"]))))
print()
# The issue's targets (issue 16), shown next to the ratios.
targets = {("local", "qps", "dnsmasq"): 1.6, ("local", "qps", "unbound"): 1.2,
           ("local", "qcpu", "knot"): 1.2, ("cached", "qps", "dnsmasq"): 1.3}
ratio = {}
for sc in ["local", "cached"]:
  if ("networkd" not in [sv for s2, sv in by if s2 == sc]):
    continue
  for metric, label in [("qps", "QPS    "), ("qcpu", "q/cpu-s")]:
    parts = []
    for other in servers[1:]:
      d = by.get((sc, other))
      if not d:
        parts.append("/%s n/a" % other)
        continue
      x = med(by[(sc, "networkd")][metric]) / max(med(d[metric]), 1e-9)
      ratio[(sc, metric, other)] = x
      t = targets.get((sc, metric, other))
      parts.append("/%s %.2f%s" % (other, x,
                                   " (target >= %.1f)" % t if t else ""))
    print("networkd %-6s %s: %s" % (sc, label, ",  ".join(parts)))
peak = max((max(d["rss"]) for (sc, sv), d in by.items()
            if sv == "networkd" and d["rss"]), default=(0, 0, 0))
print()
print("networkd RSS: median %.1f MB local, %.1f MB cached; peak sampled "
      "%.1f MB (anonymous %.1f MB, files %.1f MB), VmHWM (lifetime peak) "
      "%.1f MB (target <= 20 MB)" % (
        rss_mb(by.get(("local", "networkd"), {"rss": []})),
        rss_mb(by.get(("cached", "networkd"), {"rss": []})),
        peak[0] / 1024, peak[1] / 1024, peak[2] / 1024, hwm / 1024))
if loads:
  print("load average (1 min) at each round's start and at the end: "
        "%.2f-%.2f" % (min(loads), max(loads)))
print()
print("markdown (README):")
print("| queries | " + " | ".join(servers) + " | networkd/dnsmasq | "
      "networkd/unbound | networkd/knot |")
print("| --- |" + " ---: |" * 7)
for sc, title in [("local", "local names"), ("cached", "forwarded, cached")]:
  for metric, unit in [("qps", "QPS"), ("qcpu", "q/CPU-s")]:
    cells = []
    for sv in servers:
      d = by.get((sc, sv))
      cells.append("%s" % format(round(med(d[metric])), ",") if d else "n/a")
    for other in servers[1:]:
      x = ratio.get((sc, metric, other))
      cells.append("%.2f" % x if x is not None else "n/a")
    print("| %s, %s | %s |" % (title, unit, " | ".join(cells)))
  cells = []
  for sv in servers:
    d = by.get((sc, sv))
    cells.append("%.1f" % rss_mb(d) if d else "n/a")
  print("| %s, RSS MB | %s | | | |" % (title, " | ".join(cells)))
try:
  st = json.loads(sys.argv[3])
  def find(o, key):
    if isinstance(o, dict):
      for k, v in o.items():
        if k == key:
          return v
        r = find(v, key)
        if r is not None:
          return r
    elif isinstance(o, list):
      for v in o:
        r = find(v, key)
        if r is not None:
          return r
    return None
  keys = ["queries", "local", "cached", "forwarded", "dropped"]
  print()
  print("networkd /v1/state: " + ", ".join(
    "%s %s" % (k, find(st, k)) for k in keys))
except Exception:
  pass
PY

# -- etcd write -> answer ------------------------------------------------------
if [ "$writes" -gt 0 ]; then
  echo
  echo "== etcd write -> answer: $writes new names, one after another," \
    "polling networkd every 1 ms; load average" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
  cpu0=$(cpu_ticks "${pid[networkd]}")
  run python3 "$top/bench/dns_write.py" --etcd "127.0.0.1:$etcd_client" \
    --dns "127.0.0.1:${port[networkd]}" -n "$writes" \
    || echo "dns.sh: the write benchmark failed" >&2
  cpu1=$(cpu_ticks "${pid[networkd]}")
  awk -v t=$((cpu1 - cpu0)) -v hz="$(getconf CLK_TCK)" -v n="$writes" \
    'BEGIN { printf "  networkd CPU during the writes: %.1f ms per write " \
             "(user + system, polls included)\n", t / hz * 1000 / n }'
  echo "== load average after the writes: $(cut -d' ' -f1-3 /proc/loadavg)"
fi

if [ "$hold" = 1 ]; then
  echo
  echo "holding (Ctrl-C stops everything): networkd pid ${pid[networkd]}" \
    "dns 127.0.0.1:${port[networkd]} api 127.0.0.1:$api, dnsmasq" \
    ":${port[dnsmasq]}, unbound :${port[unbound]}, knot :${port[knot]}," \
    "queries in $tmp"
  while :; do run sleep 3600; done
fi

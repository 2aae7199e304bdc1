#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Try networkd on this machine without touching its own files: installs the
# packages, builds, starts a throwaway etcd on loopback loaded with the
# sample keys, and runs networkd against it with DNS and admin on loopback
# ports and resolv.conf / hosts copies in a temp dir. Ctrl-C stops it all.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/deploy/install-deps.sh"
cmake -S "$top" -B "$top/build-release" -DCMAKE_BUILD_TYPE=Release \
  -DNETWORKD_TESTS=OFF >/dev/null
cmake --build "$top/build-release" -j"$(nproc)" --target networkd

tmp=$(mktemp -d /tmp/networkd-try-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
  echo "stopped; removed $tmp"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
etcd_client=$(port); etcd_peer=$(port); dns=$(port); api=$(port)

etcd --name try --data-dir "$tmp/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_client" \
  --advertise-client-urls "http://127.0.0.1:$etcd_client" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-cluster "try=http://127.0.0.1:$etcd_peer" \
  --log-level error --logger zap >"$tmp/etcd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$etcd_client" endpoint health \
    >/dev/null 2>&1 && break
  sleep 0.1
done
"$top/deploy/load-keys.sh" "127.0.0.1:$etcd_client"

cp /etc/resolv.conf "$tmp/resolv.conf" 2>/dev/null \
  || echo "nameserver 127.0.0.53" >"$tmp/resolv.conf"
cp /etc/hosts "$tmp/hosts"

"$top/build-release/networkd" -etcd.endpoint="http://127.0.0.1:$etcd_client" \
  -hostname=try-node -net.interface=lo -net.address=127.0.0.1 \
  -godns.addr="127.0.0.1:$dns" -api.addr="127.0.0.1:$api" \
  -lock.filename="$tmp/networkd.lock" \
  --resolv-conf="$tmp/resolv.conf" --hosts-file="$tmp/hosts" &
pids+=($!)

cat <<TXT

networkd is running (Ctrl-C stops it and removes $tmp).
  admin state:  curl -s http://127.0.0.1:$api/v1/state | python3 -m json.tool
  readiness:    curl -s http://127.0.0.1:$api/readyz
  metrics:      curl -s http://127.0.0.1:$api/metrics
  dns config:   curl -s http://127.0.0.1:$api/v1/dns/config
  a DNS query:  dig @127.0.0.1 -p $dns etcd.lain
  change a key: ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:$etcd_client put /lain/config/domains/new.lain '{"ips":["10.9.9.9"]}'
TXT
wait "${pids[-1]}"

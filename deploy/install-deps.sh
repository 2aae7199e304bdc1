#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs every Debian 12 package networkd needs to build, test and run.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(
  build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
  lld  # links the suite's ~75 executables in a third of ld's time
  llvm  # llvm-profdata and llvm-cov: deploy/coverage.sh
  libcaf-dev libgrpc++-dev libprotobuf-dev protobuf-compiler
  protobuf-compiler-grpc rapidjson-dev libc-ares-dev catch2 libmnl-dev libnftnl-dev
  libcpp-httplib-dev libspdlog-dev libfmt-dev libknot-dev
  libssl-dev zlib1g-dev
  etcd-server etcd-client iptables nftables iproute2 iputils-arping iputils-ping
  dnsutils dnsperf dnsmasq-base unbound procps curl python3 netcat-openbsd
  knot  # Knot DNS: bench/dns.sh's authoritative peer
  keepalived  # VRRP: bench/failover.sh's failover peer
  systemd  # systemd-analyze: the unit's exposure test (setpriv: util-linux)
  groff-base  # groff -ww: the man page test (tests/packaging)
  lintian man-db  # the package test (deploy/package-test.sh)
  chromium  # headless: the status page test (tests/integration/operator_test)
  prometheus  # promtool check metrics: the /metrics tests
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
    || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
# The unbound and knot packages enable system services; networkd's tests and
# benchmarks start their own instances, so keep the packaged ones from
# holding port 53.
if command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now unbound 2>/dev/null || true
  systemctl disable --now knot 2>/dev/null || true
  # bench/failover.sh runs its own keepalived inside the lab's namespaces.
  systemctl disable --now keepalived 2>/dev/null || true
  # The prometheus package is here for promtool only: its server stays off.
  systemctl disable --now prometheus 2>/dev/null || true
fi

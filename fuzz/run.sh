#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds the libFuzzer target with clang in its own build directory and runs
# it for a bounded time: fuzz/run.sh [seconds] (default 30).
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$(dirname "$src")/build-fuzz}
seconds=${1:-30}
CC=clang CXX=clang++ cmake -S "$src" -B "$build" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNETWORKD_FUZZ=ON -DNETWORKD_TESTS=OFF \
  >/dev/null
cmake --build "$build" -j2 --target fuzz_query
corpus="$build/fuzz-corpus"
mkdir -p "$corpus"
# Seeds: a few queries (mode byte, 2-byte length, packet, no upstream data).
python3 - "$corpus" <<'PY'
import os, struct, sys
def name(n):
    out = b""
    for label in n.split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"
def query(n, qtype, edns=False, mode=0):
    hdr = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 1 if edns else 0)
    q = hdr + name(n) + struct.pack(">HH", qtype, 1)
    if edns:
        q += b"\0" + struct.pack(">HHIH", 41, 1232, 0x8000, 0)
    return bytes([mode]) + struct.pack(">H", len(q)) + q
seeds = [query("exact.lain", 1), query("A.Web.Lain", 28, True),
         query("big.lain", 1, False, 0), query("big.lain", 1, True, 1),
         query("3.0.0.10.in-addr.arpa", 12), query("six.example", 255),
         query("www.example.com", 1, True)]
for i, s in enumerate(seeds):
    with open(os.path.join(sys.argv[1], "seed%d" % i), "wb") as f:
        f.write(s)
PY
exec "$build/fuzz/fuzz_query" -max_total_time="$seconds" -max_len=1500 \
  -rss_limit_mb=1024 -print_final_stats=1 "$corpus"

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Line coverage of the suite, to find behaviour that no test runs (not a
# number to chase). Builds networkd and the tests with clang's source-based
# coverage in build-cov/ (Debug, -DNETWORKD_COVERAGE=ON), runs the suite
# with CTest as deploy/test.sh does (same timeouts, two at a time; the
# "script" entries are left out: the .deb test wants the ASan tree of
# deploy/test.sh), and every process the suite starts writes its raw
# profile to build-cov/profiles/: the test executables and every networkd
# they start (the daemons inherit LLVM_PROFILE_FILE). The profiles are
# merged (llvm-profdata) and read back over the networkd binary and every
# test executable (llvm-cov); tests/, bench/, fuzz/, the generated protobuf
# code and system headers are left out.
#
#   deploy/coverage.sh                 build, run the suite, report
#   deploy/coverage.sh --html          the same, plus build-cov/html/index.html
#   deploy/coverage.sh --report-only   report the profiles already there
#
# Prints the line coverage per source folder (net/base, net/etcd, ...,
# dns, actors) and the total; the per-file table goes to
# build-cov/coverage.txt. A failing test does not stop the report: the
# count of failed tests is printed and the script then exits non-zero.
# COVERAGE_CTEST_ARGS adds arguments to ctest (e.g. "-R admin").
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$top/build-cov
profiles=$build/profiles

html=0
report_only=0
for arg in "$@"; do
  case $arg in
    --html) html=1 ;;
    --report-only) report_only=1 ;;
    *) echo "coverage.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

ctest_failed=0
t0=$(date +%s)
t1=$t0
t2=$t0
if [[ $report_only -eq 0 ]]; then
  "$top/deploy/install-deps.sh"
  # ccache with base_dir off: a base_dir (set for sharing the cache
  # between worktrees) rewrites source paths relative to each object's
  # directory, and llvm-cov would then count one header once per
  # directory it was compiled from.
  launcher=()
  command -v ccache >/dev/null \
    && launcher=(-DCMAKE_C_COMPILER_LAUNCHER='env;CCACHE_BASEDIR=;ccache'
                 -DCMAKE_CXX_COMPILER_LAUNCHER='env;CCACHE_BASEDIR=;ccache')
  CC=clang CXX=clang++ cmake -S "$top" -B "$build" \
    -DCMAKE_BUILD_TYPE=Debug -DNETWORKD_TESTS=ON -DNETWORKD_COVERAGE=ON \
    -DCMAKE_INSTALL_PREFIX=/usr "${launcher[@]}" >/dev/null
  # The build runs each test executable once to list its tests (Catch's
  # discovery): those profiles are of no interest.
  LLVM_PROFILE_FILE=/dev/null cmake --build "$build" -j2
  t1=$(date +%s)

  # %4m: at exit each process merges its counts, under a file lock, into
  # one of four files of its binary (chosen by its pid), so the directory
  # holds at most four files per executable however many processes the
  # suite starts. A process killed with SIGKILL writes nothing.
  rm -rf "$profiles"
  mkdir -p "$profiles"
  export LLVM_PROFILE_FILE=$profiles/%4m.profraw
  rm -f "$build/Testing/Temporary/LastTestsFailed.log"
  read -r -a extra <<<"${COVERAGE_CTEST_ARGS:-}"
  ctest --test-dir "$build" --output-on-failure --no-tests=error -j2 \
    --timeout 300 -LE '^script$' "${extra[@]}" || ctest_failed=1
  unset LLVM_PROFILE_FILE
  t2=$(date +%s)
fi

shopt -s nullglob
raw=("$profiles"/*.profraw)
if [[ ${#raw[@]} -eq 0 ]]; then
  echo "coverage: no profiles in $profiles" >&2
  exit 1
fi
# A profile cut short (a process killed while writing) is skipped with a
# warning instead of losing the whole report.
llvm-profdata merge -sparse -failure-mode=all "${raw[@]}" \
  -o "$build/coverage.profdata"

# The networkd binary and every executable a CTest entry runs.
mapfile -t objects < <(
  ctest --test-dir "$build" --show-only=json-v1 | python3 -c '
import json, os, sys
seen = set()
for t in json.load(sys.stdin)["tests"]:
    exe = (t.get("command") or [""])[0]
    if exe.startswith(sys.argv[1] + "/") and exe not in seen \
            and os.path.isfile(exe) and open(exe, "rb").read(4) == b"\x7fELF":
        seen.add(exe)
        print(exe)' "$build")
args=("$build/networkd")
for o in "${objects[@]}"; do
  args+=(-object "$o")
done
top_re=$(printf '%s' "$top" | sed 's/[][\.*^$+?(){}|]/\\&/g')
ignore="^/usr/|^${top_re}/(tests|bench|fuzz|build[^/]*)/|\\.pb\\.(cc|h)\$"
args+=(-instr-profile="$build/coverage.profdata"
       -ignore-filename-regex="$ignore")

llvm-cov report "${args[@]}" >"$build/coverage.txt"
llvm-cov export -summary-only "${args[@]}" >"$build/coverage-summary.json"
if [[ $html -eq 1 ]]; then
  rm -rf "$build/html"
  llvm-cov show -format=html -output-dir="$build/html" \
    -show-line-counts-or-regions "${args[@]}"
fi

# Line coverage per source folder (the file's directory under the
# checkout), then the total.
python3 - "$build/coverage-summary.json" "$top" <<'EOF'
import json, os, sys
data = json.load(open(sys.argv[1]))["data"][0]
folders = {}
for f in data["files"]:
    rel = os.path.relpath(f["filename"], sys.argv[2])
    lines = f["summary"]["lines"]
    c = folders.setdefault(os.path.dirname(rel) or ".", [0, 0, 0])
    c[0] += lines["count"]
    c[1] += lines["covered"]
    c[2] += 1
def row(name, count, covered, files):
    pct = 100.0 * covered / count if count else 0.0
    print(f"{name:<14}{files:>6}{count:>9}{covered:>9}{pct:>8.1f}%")
print(f"{'folder':<14}{'files':>6}{'lines':>9}{'covered':>9}{'cover':>9}")
for name in sorted(folders):
    row(name, folders[name][0], folders[name][1], folders[name][2])
t = data["totals"]["lines"]
row("total", t["count"], t["covered"], len(data["files"]))
EOF

t3=$(date +%s)
echo "coverage: per file in $build/coverage.txt"
[[ $html -eq 0 ]] || echo "coverage: HTML in $build/html/index.html"
echo "coverage: build $((t1 - t0)) s, tests $((t2 - t1)) s," \
     "report $((t3 - t2)) s"
if [[ $ctest_failed -ne 0 ]]; then
  failed=0
  log=$build/Testing/Temporary/LastTestsFailed.log
  [[ -f $log ]] && failed=$(grep -c . "$log")
  echo "coverage: $failed tests FAILED (the report counts what ran)"
  exit 1
fi

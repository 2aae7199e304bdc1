#!/bin/bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets (clang, ASan + UBSan) in build-fuzz/, runs
# every reproducer under fuzz/regressions/<target>/ (each must run clean),
# then fuzzes each target (two at a time, FUZZ_JOBS):
#
#   fuzz/run.sh [seconds-per-target] [target...]   default 600 s, all targets
#   fuzz/run.sh --ci                               all targets, CI budget
#   fuzz/run.sh --build-only [target...]           build, run nothing
#
# Seeds come from fuzz/corpus/<target>/ (committed, read only); what a run
# finds goes to build-fuzz/corpus/<target>/ and crashes to
# build-fuzz/artifacts/<target>/. Prints the executions per target; exits
# non-zero when a reproducer or a target crashes, hangs, leaks or trips
# UBSan. FUZZ_BUILD_DIR overrides the build directory; FUZZ_CI_SECONDS the
# time per target of --ci (default 8); FUZZ_JOBS how many targets run at
# once (default 2).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$src/build-fuzz}
all_targets=(fuzz_query fuzz_upstream fuzz_etcd_keys fuzz_publish
             fuzz_lainlet fuzz_docker fuzz_hosts fuzz_resolv_conf fuzz_http
             fuzz_nft)

seconds=600
build_only=0
if [[ ${1:-} == --build-only ]]; then
  build_only=1
  shift
elif [[ ${1:-} == --ci ]]; then
  seconds=${FUZZ_CI_SECONDS:-8}
  shift
elif [[ ${1:-} =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [[ " ${all_targets[*]} " == *" $t "* ]] \
    || { echo "run.sh: unknown target $t (${all_targets[*]})" >&2; exit 2; }
done

# Largest input libFuzzer makes per target. Run escapes (fuzz_util.hpp) let
# a short input stand for a text of up to 512 KiB, so size and depth limits
# are reached without long inputs.
max_len() {
  case $1 in
    fuzz_query) echo 1500 ;;     # client packet + upstream answer
    fuzz_upstream) echo 4096 ;;  # one answer (EDNS payloads are ~1232)
    fuzz_etcd_keys) echo 4096 ;;
    fuzz_publish) echo 8192 ;;
    fuzz_lainlet) echo 16384 ;;  # several events or pod groups
    fuzz_nft) echo 32768 ;;      # one recv of a map dump (kernel: <= 32 KiB)
    *) echo 8192 ;;
  esac
}

launcher=()
command -v ccache >/dev/null \
  && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache
               -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
start=$(date +%s)
if [[ ! -f $build/CMakeCache.txt ]]; then
  CC=clang CXX=clang++ cmake -S "$src" -B "$build" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNETWORKD_FUZZ=ON \
    -DNETWORKD_TESTS=OFF "${launcher[@]}" >/dev/null
else
  cmake "$build" >/dev/null # targets added since the last run
fi
cmake --build "$build" -j2 --target "${targets[@]}" >"$build/build.log" 2>&1 \
  || { tail -40 "$build/build.log"; echo "fuzz: build FAILED"; exit 1; }
echo "fuzz: built ${#targets[@]} targets in $(($(date +%s) - start)) s"
[[ $build_only -eq 0 ]] || exit 0

# LLVMFuzzerTestOneInput returns normally or the process aborts: leaks are
# findings too (libFuzzer checks them after each new input).
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
failed=0

# Regression pass: every reproducer ever saved must run clean.
for t in "${targets[@]}"; do
  dir=$src/fuzz/regressions/$t
  [[ -d $dir ]] || continue
  files=("$dir"/*)
  [[ -e ${files[0]} ]] || continue
  log=$build/regressions-$t.log
  if "$build/fuzz/$t" -rss_limit_mb=2048 -timeout=25 "${files[@]}" \
       >"$log" 2>&1; then
    echo "fuzz: $t: ${#files[@]} regression inputs clean"
  else
    tail -40 "$log"
    echo "fuzz: $t: regression FAILED (log: $log)"
    failed=1
  fi
done

# Each target for $seconds, two at a time (one per core of the CI machine);
# the lines are printed in target order once all are done.
fuzz_one() {
  local t=$1 corpus=$build/corpus/$1 artifacts=$build/artifacts/$1/
  local log=$build/fuzz-$1.log status=0 execs dict=()
  mkdir -p "$corpus" "$artifacts"
  [[ -f $src/fuzz/dict/$t.dict ]] && dict=(-dict="$src/fuzz/dict/$t.dict")
  "$build/fuzz/$t" -max_total_time="$seconds" -max_len="$(max_len "$t")" \
    -rss_limit_mb=2048 -timeout=25 -print_final_stats=1 \
    -artifact_prefix="$artifacts" "${dict[@]}" \
    "$corpus" "$src/fuzz/corpus/$t" >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if [[ $status -ne 0 ]]; then
    { grep -E 'ERROR|SUMMARY|invariant|runtime error|Test unit written' "$log" \
        | head -10 || true
      echo "fuzz: $t: FAILED after ${execs:-?} executions (log: $log)"
    } >"$build/result-$t"
    return 1
  fi
  echo "fuzz: $t: no crash in ${seconds} s;" \
       "stat::number_of_executed_units: ${execs:-?}" >"$build/result-$t"
}
pids=()
for t in "${targets[@]}"; do
  while [[ $(jobs -rp | wc -l) -ge ${FUZZ_JOBS:-2} ]]; do wait -n || true; done
  fuzz_one "$t" &
  pids+=($!)
done
for i in "${!targets[@]}"; do
  wait "${pids[$i]}" || failed=1
  cat "$build/result-${targets[$i]}"
done
echo "fuzz: total $(($(date +%s) - start)) s"
exit $failed

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the packages, builds networkd with ASan+UBSan and runs the whole
# suite (unit, actor, integration, fuzz smoke). NETWORKD_BUILD=release runs
# the suite against a Release build instead.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/deploy/install-deps.sh"
# Every C++ file as .clang-format wants it (deploy/check-format.sh).
"$top/deploy/check-format.sh"
case "${NETWORKD_BUILD:-asan}" in
  release) dir="$top/build-release"; flags=(-DCMAKE_BUILD_TYPE=Release) ;;
  # Line tables only (-g1): sanitizer reports keep their file:line, and
  # the build takes a fifth less time than with full debug info.
  *) dir="$top/build-asan"
     flags=(-DCMAKE_BUILD_TYPE=Debug -DNETWORKD_SANITIZE=ON
            -DCMAKE_CXX_FLAGS_DEBUG=-g1 -DCMAKE_C_FLAGS_DEBUG=-g1) ;;
esac
# try-it.sh and the benchmarks configure build-release without tests; a
# suite that found no test must not pass.
flags+=(-DNETWORKD_TESTS=ON)
# Install paths of the package, so that packaging_deb_test can build the
# .deb of this tree.
flags+=(-DCMAKE_INSTALL_PREFIX=/usr)
t0=$(date +%s)
cmake -S "$top" -B "$dir" "${flags[@]}"
cmake --build "$dir" -j"$(nproc)"
t1=$(date +%s)
# The fuzz targets (a clang build of their own, about 3 minutes) build at
# the lowest priority while the tests run: most tests wait on etcd, lease
# deadlines and namespaces, and the build takes the CPU they leave idle.
fuzz_log="$dir/fuzz.log"
setsid nice -n 19 "$top/fuzz/run.sh" --build-only >"$dir/fuzz-build.log" 2>&1 &
fuzz_build=$!
# Whatever fails below, the build does not outlive this script.
trap 'kill -- -"$fuzz_build" 2>/dev/null || true' EXIT
# Leak detection on, in the tests and in every networkd they start; the
# only suppressions are named third-party leaks (deploy/lsan.supp).
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export LSAN_OPTIONS="suppressions=$top/deploy/lsan.supp"
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest_status=0
ctest --test-dir "$dir" --output-on-failure --no-tests=error -j2 --timeout 300 \
  || ctest_status=$?
t2=$(date +%s)
[[ $ctest_status -eq 0 ]] || exit "$ctest_status"
# Every Catch test ran under exactly one CTest entry, and no entry ran
# nothing (deploy/check_tests.py; its self-test is a CTest entry above).
python3 "$top/deploy/check_tests.py" "$dir"
# libFuzzer over every parser of outside input (fuzz/run.sh --ci: the
# saved reproducers, then each target for a fixed time, in build-fuzz/;
# about a minute once the build above is done).
if ! wait "$fuzz_build"; then
  tail -40 "$dir/fuzz-build.log"
  echo "fuzz: build FAILED (full log: $dir/fuzz-build.log)"
  exit 1
fi
grep -E '^fuzz: ' "$dir/fuzz-build.log"
if "$top/fuzz/run.sh" --ci >"$fuzz_log" 2>&1; then
  grep -E '^fuzz: ' "$fuzz_log"
else
  tail -50 "$fuzz_log"
  echo "fuzz: FAILED (full log: $fuzz_log)"
  exit 1
fi
t3=$(date +%s)
echo "test.sh: build $((t1 - t0)) s, tests $((t2 - t1)) s," \
     "fuzz after the tests $((t3 - t2)) s"


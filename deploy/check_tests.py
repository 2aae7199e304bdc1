#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks that CTest runs every Catch test of a build, and nothing else.

    deploy/check_tests.py BUILD_DIR      after ctest ran in BUILD_DIR
    deploy/check_tests.py --self-test    a deliberately bad name must fail

For every test executable CTest knows, its Catch test names
(--list-test-names-only) are compared with the CTest entries that run it:
an entry whose name matches no test (a ';' once split one name into two
entries that ran nothing), a test without an entry, and an entry whose
output says "No test cases matched" (LastTest.log) are errors. Exit 1 with
one line per error.
"""
import json
import os
import subprocess
import sys
import tempfile


def unescape(spec):
    """A Catch test spec as catch_discover_tests writes it, back to the name."""
    out, i = [], 0
    while i < len(spec):
        if spec[i] == "\\" and i + 1 < len(spec):
            i += 1
        out.append(spec[i])
        i += 1
    return "".join(out)


def ctest_entries(build):
    """(ctest name, executable, test name) of every entry."""
    raw = subprocess.run(["ctest", "--test-dir", build, "-N",
                          "--show-only=json-v1"], check=True,
                         capture_output=True, text=True).stdout
    entries = []
    for t in json.loads(raw)["tests"]:
        labels = [v for p in t.get("properties", []) if p["name"] == "LABELS"
                  for v in p["value"]]
        # this script's own self-test, and scripts that are no Catch test
        # (deploy/package-test.sh)
        if "guard" in labels or "script" in labels:
            continue
        cmd = t.get("command") or []
        if len(cmd) < 2:
            entries.append((t["name"], cmd[0] if cmd else "", None))
            continue
        entries.append((t["name"], cmd[0], unescape(cmd[1])))
    return entries


def catch_names(exe):
    # Catch 2 exits with the number of tests listed: not an error.
    out = subprocess.run([exe, "--list-test-names-only"],
                         capture_output=True, text=True).stdout
    return {line for line in out.splitlines() if line.strip()}


def check(build):
    errors = []
    by_exe = {}
    for name, exe, test in ctest_entries(build):
        if test is None:
            errors.append(f"{name}: runs no Catch test name")
            continue
        by_exe.setdefault(exe, []).append((name, test))
    for exe, entries in sorted(by_exe.items()):
        names = catch_names(exe)
        seen = set()
        for name, test in entries:
            if test not in names:
                errors.append(f"{name}: matches no test of {exe}")
            seen.add(test)
        for missing in sorted(names - seen):
            errors.append(f"{exe}: test '{missing}' has no CTest entry")
    log = os.path.join(build, "Testing", "Temporary", "LastTest.log")
    if os.path.exists(log):
        with open(log, errors="replace") as f:
            if "No test cases matched" in f.read():
                errors.append(f"{log}: an entry reported 'No test cases matched'")
    return errors


def self_test():
    """A fake build whose one executable has two tests; CTest entries for
    one of them, and for a name split at a ';'. The guard must report both
    the stray entry and the test without one."""
    with tempfile.TemporaryDirectory() as d:
        exe = os.path.join(d, "fake_test")
        with open(exe, "w") as f:
            f.write("#!/bin/sh\nprintf 'first, with a comma\\na; b\\n'\n")
        os.chmod(exe, 0o755)
        with open(os.path.join(d, "CTestTestfile.cmake"), "w") as f:
            f.write(f'add_test("fake:first" "{exe}" "first\\\\, with a comma")\n')
            f.write(f'add_test("fake:a" "{exe}" "a")\n')
        errors = check(d)
    want = ["fake:a: matches no test", "test 'a; b' has no CTest entry"]
    ok = all(any(w in e for e in errors) for w in want) and len(errors) == 2
    print("\n".join(errors))
    print("self-test:", "ok" if ok else "FAILED (the guard missed a bad name)")
    return 0 if ok else 1


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    errors = check(sys.argv[1])
    for e in errors:
        print("check_tests:", e)
    print(f"check_tests: {'FAILED' if errors else 'every Catch test has one CTest entry'}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

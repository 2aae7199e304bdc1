#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fails when a tracked C++ file differs from what clang-format makes of it
# with the repository's .clang-format. Fix with:
#   git ls-files '*.cpp' '*.hpp' | xargs clang-format -i
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cpp' '*.hpp')
if ! clang-format --dry-run -Werror "${files[@]}" 2>/tmp/networkd-format.$$; then
  head -40 /tmp/networkd-format.$$
  rm -f /tmp/networkd-format.$$
  echo "format: FAILED (run: git ls-files '*.cpp' '*.hpp' | xargs clang-format -i)"
  exit 1
fi
rm -f /tmp/networkd-format.$$
echo "format: ${#files[@]} files as .clang-format wants them"

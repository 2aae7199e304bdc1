#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Loads KEY VALUE lines (see sample-keys.txt) into etcd with etcdctl (v3).
# usage: load-keys.sh ENDPOINTS [FILE]
set -euo pipefail
endpoints=${1:?usage: load-keys.sh ENDPOINTS [FILE]}
file=${2:-$(dirname "$0")/sample-keys.txt}
n=0
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in ''|'#'*) continue ;; esac
  key=${line%% *}
  value=${line#* }
  ETCDCTL_API=3 etcdctl --endpoints="$endpoints" put -- "$key" "$value" \
    >/dev/null
  n=$((n + 1))
done < "$file"
echo "loaded $n keys into $endpoints"

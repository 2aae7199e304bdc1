#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the Debian package and checks it: control fields and conffiles
# (dpkg-deb -I/-e), the file list (dpkg-deb -c), the files themselves
# unpacked into a temp dir (dpkg-deb -x: the unit names the packaged
# binary, the binary runs, the man page renders without warnings), and
# lintian. Exit 0: all good.
#   deploy/package-test.sh                 a Release tree (build-release/,
#                                          as try-it.sh uses it; configured
#                                          and built here when missing)
#   deploy/package-test.sh --tree DIR      an already built tree, configured
#                                          with -DCMAKE_INSTALL_PREFIX=/usr
#                                          (the suite's: CTest runs this as
#                                          packaging_deb_test)
#   ... --install                          also installs the package with
#                                          dpkg -i on this machine, checks
#                                          the installed unit, man page and
#                                          conffile, and purges it again
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir="${NETWORKD_RELEASE_DIR:-$top/build-release}"
tree=
install=
while [ $# -gt 0 ]; do
  case "$1" in
    --tree) tree=$2; dir=$2; shift 2 ;;
    --install) install=1; shift ;;
    *) echo "usage: $0 [--tree DIR] [--install]" >&2; exit 2 ;;
  esac
done

if [ -z "$tree" ]; then
  flags=(-DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr)
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    flags+=(-DNETWORKD_TESTS=OFF)
    command -v ccache >/dev/null && flags+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  fi
  cmake -S "$top" -B "$dir" "${flags[@]}" >/dev/null
  cmake --build "$dir" -j"${JOBS:-$(nproc)}" --target networkd networkd_man networkd_changelog
fi
# A sanitizer build's binary needs the sanitizer runtimes: its Depends
# names them, which a Release package must not.
sanitized=
grep -qx 'NETWORKD_SANITIZE:BOOL=ON' "$dir/CMakeCache.txt" && sanitized=1
rm -f "$dir"/networkd_*.deb
(cd "$dir" && cpack -G DEB >cpack.log 2>&1) || {
  cat "$dir/cpack.log"; echo "package-test: cpack failed"; exit 1; }
debs=("$dir"/networkd_*.deb)
[ ${#debs[@]} -eq 1 ] && [ -f "${debs[0]}" ] || {
  echo "package-test: expected one networkd_*.deb in $dir"; exit 1; }
deb=${debs[0]}

tmp=$(mktemp -d /tmp/networkd-pkg-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "package-test: FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "package-test: ok: $*"; }

# --- control fields ----------------------------------------------------------
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:[A-Z]*=//p' "$dir/CMakeCache.txt")
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = networkd ] && ok "Package: networkd" \
  || fail "Package is '$(field Package)'"
[ -n "$version" ] && [ "$(field Version)" = "$version" ] \
  && ok "Version: $version" || fail "Version '$(field Version)', project '$version'"
[ "$(field Section)" = net ] && ok "Section: net" \
  || fail "Section is '$(field Section)'"
depends=$(field Depends)
for d in libc6 iptables; do
  printf '%s\n' "$depends" | tr ',|' '\n\n' | sed 's/^ *//; s/[ (].*//' \
    | grep -qx -- "$d" && ok "Depends names $d" \
    || fail "Depends '$depends' lacks $d"
done
if [ -n "$sanitized" ]; then
  ok "sanitizer build: Depends may name the sanitizer runtimes"
elif [[ "$depends" == *libasan* || "$depends" == *libubsan* ]]; then
  fail "Depends names the sanitizer runtime: not a Release build"
fi
desc=$(field Description)
[ "$(printf '%s\n' "$desc" | wc -l)" -ge 3 ] && ok "Description has a body" \
  || fail "Description too short: $desc"
dpkg-deb -e "$deb" "$tmp/control"
[ "$(cat "$tmp/control/conffiles" 2>/dev/null)" = /etc/default/networkd ] \
  && ok "conffiles: /etc/default/networkd" \
  || fail "conffiles: '$(cat "$tmp/control/conffiles" 2>/dev/null)'"
for s in postinst prerm postrm preinst; do
  [ ! -e "$tmp/control/$s" ] || fail "unexpected maintainer script $s"
done

# --- file list ---------------------------------------------------------------
listing=$(dpkg-deb -c "$deb")
want=(./usr/sbin/networkd ./lib/systemd/system/networkd.service
      ./etc/default/networkd ./usr/share/man/man8/networkd.8.gz
      ./usr/share/doc/networkd/README.md ./usr/share/doc/networkd/LICENSE
      ./usr/share/doc/networkd/copyright ./usr/share/doc/networkd/changelog.gz)
for f in "${want[@]}"; do
  printf '%s\n' "$listing" | awk '{print $1, $2, $NF}' \
    | grep -qxE -- "-[rwx-]{9} root/root ${f//./\\.}" \
    && ok "contains $f (root/root)" || fail "no $f owned by root in the package"
done
nfiles=$(printf '%s\n' "$listing" | grep -c '^-' || true)
[ "$nfiles" -eq ${#want[@]} ] && ok "no other files" \
  || fail "$nfiles files, expected ${#want[@]}: $listing"

# --- the files ---------------------------------------------------------------
root="$tmp/root"
dpkg-deb -x "$deb" "$root"
unit="$root/lib/systemd/system/networkd.service"
exec_path=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit")
[ "$exec_path" = /usr/sbin/networkd ] && [ -x "$root$exec_path" ] \
  && ok "unit's ExecStart=$exec_path is the packaged binary" \
  || fail "unit's ExecStart='$exec_path'"
grep -qx 'EnvironmentFile=-/etc/default/networkd' "$unit" \
  && ok "unit reads /etc/default/networkd" || fail "unit's EnvironmentFile="
grep -q '^Documentation=.*man:networkd(8)' "$unit" \
  && grep -q '^Documentation=.*file:///usr/share/doc/networkd/README.md' "$unit" \
  && ok "unit's Documentation= names the man page and the README" \
  || fail "unit's Documentation="
cmp -s "$root/etc/default/networkd" "$top/deploy/networkd.env" \
  && ok "/etc/default/networkd is deploy/networkd.env" \
  || fail "/etc/default/networkd differs from deploy/networkd.env"
v=$("$root/usr/sbin/networkd" -version 2>&1) \
  && [ "$v" = "networkd Version: $version" ] \
  && ok "packaged binary runs: $v" || fail "packaged binary -version: '$v'"
set +e
"$root/usr/sbin/networkd" -no-such-flag >/dev/null 2>&1
rc=$?
set -e
[ "$rc" -eq 2 ] && ok "a bad flag exits 2" || fail "a bad flag exits $rc"
zcat "$root/usr/share/man/man8/networkd.8.gz" >"$tmp/networkd.8"
cmp -s "$tmp/networkd.8" "$top/docs/networkd.8" \
  && ok "man page is docs/networkd.8" || fail "man page differs"
warn=$(groff -man -ww -z "$tmp/networkd.8" 2>&1)
[ -z "$warn" ] && ok "man page renders without warnings" \
  || fail "groff: $warn"
# The unit's syntax, with ExecStart= pointed at the unpacked binary (the
# real path is not installed here; --man=no: neither is the man page).
mkdir "$tmp/unit"
sed "s|^ExecStart=/usr/sbin/networkd |ExecStart=$root/usr/sbin/networkd |" \
  "$unit" >"$tmp/unit/networkd.service"
out=$(systemd-analyze verify --man=no "$tmp/unit/networkd.service" 2>&1) \
  && [ -z "$out" ] && ok "systemd-analyze verify: clean" \
  || fail "systemd-analyze verify: $out"

logged=$(zcat "$root/usr/share/doc/networkd/changelog.gz" | sed -n '1s/^networkd (\([^)]*\)).*/\1/p')
[ "$logged" = "$version" ] && ok "changelog's last entry is $version" \
  || fail "changelog's last entry is '$logged', the project $version (deploy/debian/changelog)"

# --- lintian -----------------------------------------------------------------
# Errors and warnings fail.
lint_rc=0
lint=$(lintian --fail-on error,warning --display-level '>=warning' "$deb" 2>&1) \
  || lint_rc=$?
lint=$(printf '%s\n' "$lint" | grep -v 'running with root privileges' || true)
[ "$lint_rc" -eq 0 ] && [ -z "$lint" ] && ok "lintian: no errors or warnings" \
  || fail "lintian (exit $lint_rc): $lint"

# --- installed on this machine (--install) -------------------------------------
if [ -n "$install" ]; then
  if dpkg-query -W -f='${Status}' networkd 2>/dev/null | grep -q installed; then
    fail "a networkd package is installed already: not touching it"
  else
    purge() { dpkg --purge networkd >/dev/null 2>&1 || true; }
    trap 'purge; rm -rf "$tmp"' EXIT
    out=$(dpkg -i "$deb" 2>&1) && ok "dpkg -i" || fail "dpkg -i: $out"
    [ -x /usr/sbin/networkd ] && [ "$(/usr/sbin/networkd -version 2>&1)" \
      = "networkd Version: $version" ] && ok "installed binary runs" \
      || fail "installed /usr/sbin/networkd -version"
    out=$(systemd-analyze verify --man=no /lib/systemd/system/networkd.service 2>&1) \
      && [ -z "$out" ] && ok "systemd-analyze verify of the installed unit: clean" \
      || fail "systemd-analyze verify (installed): $out"
    [ "$(man -w networkd 2>/dev/null)" = /usr/share/man/man8/networkd.8.gz ] \
      && ok "man networkd finds the page" || fail "man -w networkd: '$(man -w networkd 2>&1)'"
    dpkg-query -W -f='${Conffiles}\n' networkd | grep -q '^ /etc/default/networkd ' \
      && ok "dpkg knows /etc/default/networkd as a conffile" \
      || fail "no conffile /etc/default/networkd in dpkg's database"
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
      state=$(systemctl is-active networkd 2>/dev/null || true)
      [ "$state" != active ] && ok "installing did not start the service ($state)" \
        || fail "the service runs after dpkg -i"
    fi
    out=$(dpkg --purge networkd 2>&1) && ok "dpkg --purge" || fail "dpkg --purge: $out"
    left=
    for f in /usr/sbin/networkd /lib/systemd/system/networkd.service \
             /etc/default/networkd /usr/share/man/man8/networkd.8.gz \
             /usr/share/doc/networkd; do
      [ -e "$f" ] && left="$left $f"
    done
    [ -z "$left" ] && ok "purge left nothing behind" || fail "left after purge:$left"
    trap 'rm -rf "$tmp"' EXIT
  fi
fi

if [ "$fails" -ne 0 ]; then
  echo "package-test: $fails check(s) failed ($deb)"
  exit 1
fi
echo "package-test: OK $deb"

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# The Debian packages (debian/, scripts/package), three ctest tiers:
#   build SRC BUILD OUT      packages BUILD twice, as versions ~test1 and ~test2 of the project's
#                            version, into OUT/test1 and OUT/test2 (package.Build, the fixture)
#   lintian OUT              lintian on the ~test2 packages: no error, no warning that is not
#                            overridden in debian/ with a reason (package.Lintian)
#   install SRC OUT          as root on this host: installs ~test1, upgrades to ~test2 with a
#                            modified conffile, removes, purges, and checks each step's files
#                            exactly (package.InstallUpgradePurge). The host is left as found,
#                            also on failure.
# Exit 77 (skipped) where it cannot run; under CI=true that is a failure.
set -euo pipefail

die() { echo "package_test.sh: $*" >&2; exit 1; }
skip() {
  [ "${CI:-}" = true ] && die "cannot run under CI: $*"
  echo "package_test.sh: skipped: $*"
  exit 77
}
need() {
  for tool in "$@"; do command -v "$tool" >/dev/null || skip "$tool is not installed (run ./scripts/setup)"; done
}
project_version() { sed -n 's/^project(dupcache VERSION \([0-9.]*\).*/\1/p' "$1/CMakeLists.txt"; }

build() {
  local src=$1 build=$2 out=$3 v
  need dpkg-buildpackage dh
  v=$(project_version "$src")
  for t in test1 test2; do
    "$src/scripts/package" --build-dir "$build" --version "$v~$t" --out "$out/$t"
  done
}

lint() {
  local out=$1 log
  need lintian
  log=$(mktemp)
  # --fail-on warning: a warning fails unless debian/*.lintian-overrides says why it stays.
  if ! lintian --fail-on error,warning --display-info --show-overrides "$out"/test2/*.deb >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    die "lintian found errors or warnings in $out/test2"
  fi
  cat "$log"
  rm -f "$log"
  echo "package_test.sh: lintian: no errors, no warnings"
}

# --- install / upgrade / remove / purge -------------------------------------------------------
pkgs=(dupcache dupcache-dkms)
# dpkg's state of a package: "ii" installed, "rc" removed with its conffiles left, "" not
# installed (unknown to dpkg, or known but purged).
state() {
  local s
  s=$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null || true)
  s=${s// /}
  case $s in ?n*) echo ;; *) echo "$s" ;; esac
}
# apt resolves the packages' dependencies and waits for the dpkg lock (another tier may hold it:
# the guest tier installs kernel headers) instead of failing.
apt_get() {
  DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=600 "$@" </dev/null
}
expect_eq() { [ "$1" = "$2" ] || die "$3: got [$1], want [$2]"; }

cleanup() {
  local left=()
  for p in "${pkgs[@]}"; do [ -z "$(state "$p")" ] || left+=("$p"); done
  if [ ${#left[@]} -gt 0 ]; then
    echo "package_test.sh: cleanup: purging ${left[*]}" >&2
    apt_get purge "${left[@]}" >/dev/null 2>&1 || dpkg --purge "${left[@]}" >&2 || true
  fi
  if [ -e /var/lib/dkms/dupcache ]; then
    for d in /var/lib/dkms/dupcache/*/; do
      d=${d%/}
      [ -d "$d" ] && { dkms remove -m dupcache -v "${d##*/}" --all >&2 || true; }
    done
    rm -rf /var/lib/dkms/dupcache
  fi
  rm -rf /var/log/dupcache "$tmp"
}

install_test() {
  local src=$1 out=$2 v kernel
  [ "$(id -u)" = 0 ] || skip "needs root (installs the packages on this host)"
  need apt-get dpkg dkms
  v=$(project_version "$src")
  kernel=$(uname -r)
  local old_d new_d old_k new_k
  if ! { old_d=$(ls "$out"/test1/dupcache_*_amd64.deb) && old_k=$(ls "$out"/test1/dupcache-dkms_*_all.deb) &&
    new_d=$(ls "$out"/test2/dupcache_*_amd64.deb) && new_k=$(ls "$out"/test2/dupcache-dkms_*_all.deb); }; then
    die "the packages of package.Build are missing in $out"
  fi

  # The host must be clean to start with, so that "as found" is "without them".
  for p in "${pkgs[@]}"; do
    [ -z "$(state "$p")" ] || die "$p is already known to dpkg (state $(state "$p")): purge it first"
  done
  for d in /etc/dupcache /var/lib/dkms/dupcache /usr/src/dupcache-"$v" /var/log/dupcache; do
    [ ! -e "$d" ] || die "$d exists before the packages are installed: remove it first"
  done
  tmp=$(mktemp -d /tmp/dupcache-package.XXXXXX)
  trap cleanup EXIT

  # What each package ships, exactly: the tree's man pages compressed, and the fixed files.
  local want=(/usr/sbin/dupcache /etc/dupcache/dupcache.toml /lib/systemd/system/dupcache.service
    /usr/share/bash-completion/completions/dupcache /usr/share/zsh/vendor-completions/_dupcache
    /usr/share/fish/vendor_completions.d/dupcache.fish
    /usr/share/doc/dupcache/examples/dupcache.toml /usr/share/doc/dupcache/examples/dupcache-daemonset.yaml
    /usr/share/doc/dupcache/examples/dupcache-seccomp.json /usr/share/doc/dupcache/examples/dupcache-merge.conf
    /usr/share/doc/dupcache/examples/dupcache-dedupe.conf
    /usr/share/doc/dupcache/changelog.gz /usr/share/doc/dupcache/copyright
    /usr/src/dupcache-"$v"/dupcache.c /usr/src/dupcache-"$v"/dupcache_kmod.h /usr/src/dupcache-"$v"/Kbuild
    /usr/src/dupcache-"$v"/Makefile /usr/src/dupcache-"$v"/dkms.conf /usr/include/dupcache/dupcache_kmod.h
    /usr/share/doc/dupcache-dkms/changelog.gz /usr/share/doc/dupcache-dkms/copyright)
  for page in "$src"/man/*.[58]; do
    want+=("/usr/share/man/man${page##*.}/${page##*/}.gz")
  done
  [ -d "$src/debian" ] && for o in "$src"/debian/*.lintian-overrides; do
    [ -e "$o" ] && { o=${o##*/}; want+=("/usr/share/lintian/overrides/${o%.lintian-overrides}"); }
  done
  printf '%s\n' "${want[@]}" | sort >"$tmp/want"

  # Every path the packages hold, and whether it exists before: after the purge exactly those
  # that existed must exist (shared directories such as /usr/share/man stay, ours go).
  for deb in "$old_d" "$old_k"; do dpkg-deb --fsys-tarfile "$deb" | tar -t; done |
    sed 's|^\./|/|; s|/$||' | grep -v '^/\?$' | sort -u >"$tmp/paths"
  while read -r p; do [ -e "$p" ] && echo "$p"; done <"$tmp/paths" >"$tmp/before" || true

  echo "package_test.sh: installing dupcache $v~test1"
  apt_get install "$old_d" "$old_k" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log" >&2; die "installing ~test1 failed"; }
  check_installed "$v~test1" "$tmp/install.log"
  cmp -s /etc/dupcache/dupcache.toml "$src/packaging/dupcache.toml" || die "the installed configuration is not the tree's"
  cmp -s /lib/systemd/system/dupcache.service "$src/packaging/systemd/dupcache.service" || die "the installed unit is not the tree's"

  # The operator's change to the conffile must survive the upgrade, without a question (stdin
  # is /dev/null: a conffile prompt would fail the upgrade).
  echo "# changed by package_test.sh" >>/etc/dupcache/dupcache.toml
  cp /etc/dupcache/dupcache.toml "$tmp/conf.modified"
  # The daemon's action journal, as the running daemon would leave it: the purge removes it.
  mkdir -p /var/log/dupcache && echo '{}' >/var/log/dupcache/actions.jsonl

  echo "package_test.sh: upgrading to dupcache $v~test2"
  apt_get install "$new_d" "$new_k" >"$tmp/upgrade.log" 2>&1 || { cat "$tmp/upgrade.log" >&2; die "upgrading to ~test2 failed"; }
  grep -q "Unpacking dupcache ($v~test2) over ($v~test1)" "$tmp/upgrade.log" ||
    { cat "$tmp/upgrade.log" >&2; die "apt did not upgrade dupcache from ~test1 to ~test2"; }
  check_installed "$v~test2" "$tmp/upgrade.log"
  cmp -s /etc/dupcache/dupcache.toml "$tmp/conf.modified" || die "the upgrade did not keep the modified conffile"
  # dpkg still knows the conffile by the packaged file's checksum, so it sees the change.
  expect_eq "$(dpkg-query -W -f='${Conffiles}' dupcache | sed 's/^ //')" \
    "/etc/dupcache/dupcache.toml $(md5sum <"$src/packaging/dupcache.toml" | cut -d' ' -f1)" "dupcache's conffiles"

  echo "package_test.sh: removing"
  apt_get remove "${pkgs[@]}" >"$tmp/remove.log" 2>&1 || { cat "$tmp/remove.log" >&2; die "apt-get remove failed"; }
  # dupcache keeps its conffile ("rc"); dupcache-dkms has none and no postrm, so dpkg forgets it.
  expect_eq "$(state dupcache)/$(state dupcache-dkms)" "rc/" "states after remove (dupcache/dupcache-dkms)"
  # Removed, not purged: only the conffile stays, as the operator left it.
  cmp -s /etc/dupcache/dupcache.toml "$tmp/conf.modified" || die "remove did not keep the modified conffile"
  while read -r f; do
    [ "$f" = /etc/dupcache/dupcache.toml ] || [ ! -e "$f" ] || die "$f is left after remove"
  done <"$tmp/want"
  [ ! -e /var/lib/dkms/dupcache ] || die "/var/lib/dkms/dupcache is left after remove: $(dkms status dupcache)"

  echo "package_test.sh: purging"
  apt_get purge "${pkgs[@]}" >"$tmp/purge.log" 2>&1 || { cat "$tmp/purge.log" >&2; die "apt-get purge failed"; }
  expect_eq "$(state dupcache)$(state dupcache-dkms)" "" "states after purge"
  for d in /etc/dupcache /var/lib/dkms/dupcache /var/log/dupcache /usr/src/dupcache-"$v"; do
    [ ! -e "$d" ] || die "$d is left after purge"
  done
  while read -r p; do [ -e "$p" ] && echo "$p"; done <"$tmp/paths" >"$tmp/after" || true
  diff -u "$tmp/before" "$tmp/after" >&2 || die "the purge left the packages' paths other than it found them (diff above)"
  find /lib/modules -path '*/dupcache.ko*' | grep . >&2 && die "a built dupcache.ko is left under /lib/modules"
  echo "package_test.sh: install, upgrade, remove and purge left no stray files"
}

# Installed VERSION: both packages, exactly the wanted files, the tree's contents, the binary
# runs, and DKMS holds the module's source (built when the running kernel's headers exist).
check_installed() {
  local version=$1 log=$2 v=${1%%[~+-]*}
  expect_eq "$(state dupcache) $(state dupcache-dkms)" "ii ii" "states"
  expect_eq "$(dpkg-query -W -f='${Version} ' "${pkgs[@]}")" "$version $version " "versions"
  # dpkg -L of two packages separates them with an empty line.
  dpkg -L "${pkgs[@]}" | while read -r f; do [ -z "$f" ] || [ -d "$f" ] || echo "$f"; done | sort >"$tmp/got"
  diff -u "$tmp/want" "$tmp/got" >&2 || die "the installed files of $version are not the expected ones (diff above)"
  cmp -s /usr/src/dupcache-"$v"/dupcache.c "$src/kmod/dupcache.c" || die "the DKMS tree's dupcache.c is not the tree's"
  grep -qx "PACKAGE_VERSION=\"$v\"" /usr/src/dupcache-"$v"/dkms.conf || die "dkms.conf does not name version $v"
  zcat /usr/share/man/man8/dupcache.8.gz | cmp -s - "$src/man/dupcache.8" || die "dupcache(8) is not the tree's"
  local out
  out=$(/usr/sbin/dupcache --version) || die "/usr/sbin/dupcache --version failed"
  case $out in "dupcache $v (BPF ABI "*) ;; *) die "/usr/sbin/dupcache --version printed [$out]" ;; esac
  if [ -e "/lib/modules/$kernel/build/include" ]; then
    expect_eq "$(dkms status dupcache/"$v" -k "$kernel")" "dupcache/$v, $kernel, $(uname -m): installed" "dkms status"
  else
    # This host's case: no headers for its kernel (6.18 has none, and no module support).
    # (apt runs dpkg on a terminal of its own: its lines end in \r\n.)
    tr -d '\r' <"$log" | grep -qx "dupcache-dkms: module not built: no headers for the running kernel $kernel in /lib/modules/$kernel/build" ||
      { cat "$log" >&2; die "the postinst did not say why it built no module"; }
    expect_eq "$(dkms status dupcache)" "dupcache/$v: added" "dkms status"
  fi
}

mode=${1:-}
shift || true
case $mode in
  build) [ $# = 3 ] || die "usage: package_test.sh build SRC BUILD OUT"; build "$@" ;;
  lintian) [ $# = 1 ] || die "usage: package_test.sh lintian OUT"; lint "$@" ;;
  install) [ $# = 2 ] || die "usage: package_test.sh install SRC OUT"; src=$1; install_test "$@" ;;
  *) die "usage: package_test.sh build|lintian|install ..." ;;
esac

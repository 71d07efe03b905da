#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# The kernel matrix on what the packages ship: the dupcache binary and the dupcache-dkms module
# tree, unpacked from the .deb files that package.Build made. The busybox guests have no dpkg, so
# the packages' contents are unpacked here (dpkg-deb -x), the binary is copied into each guest
# and DKMS builds the module from the package's /usr/src/dupcache-VERSION for each guest kernel
# (matrix.sh, kmod_test.sh).
# usage: matrix_debs.sh DEB_DIR [SERIES...]
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: matrix_debs.sh DEB_DIR [SERIES...]" >&2; exit 2; }
debs=$1
shift
shopt -s nullglob
bin_debs=("$debs"/dupcache_*_amd64.deb)
dkms_debs=("$debs"/dupcache-dkms_*_all.deb)
if [ ${#bin_debs[@]} -ne 1 ] || [ ${#dkms_debs[@]} -ne 1 ]; then
  echo "matrix_debs.sh: $debs: expected one dupcache_*_amd64.deb and one dupcache-dkms_*_all.deb" \
       "(found ${#bin_debs[@]} and ${#dkms_debs[@]}; run scripts/package)" >&2
  exit 1
fi
tmp=$(mktemp -d /tmp/dupcache-debs.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -x "${bin_debs[0]}" "$tmp/root"
dpkg-deb -x "${dkms_debs[0]}" "$tmp/root"
srcs=("$tmp"/root/usr/src/dupcache-*)
[ ${#srcs[@]} -eq 1 ] && [ -f "${srcs[0]}/dkms.conf" ] ||
  { echo "matrix_debs.sh: ${dkms_debs[0]} holds no /usr/src/dupcache-VERSION/dkms.conf" >&2; exit 1; }
echo "matrix_debs.sh: $(basename "${bin_debs[0]}") and $(basename "${dkms_debs[0]}")"
status=0
"$(dirname "$0")/matrix.sh" "$tmp/root/usr/sbin/dupcache" "${srcs[0]}" "$@" || status=$?
exit $status

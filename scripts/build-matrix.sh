#!/usr/bin/env bash
# Every build type with both compilers, with Debian's default flags (dpkg-buildflags: the
# CFLAGS/CPPFLAGS/LDFLAGS a Debian package build uses) and warnings as errors, tests included.
# Run by .ci/run; prints one line a configuration and exits non-zero if any fails.
# Usage: scripts/build-matrix.sh [WORKDIR]
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$top/build-matrix}
eval "$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --export=sh)"
export CFLAGS CPPFLAGS LDFLAGS
CFLAGS="$CFLAGS $CPPFLAGS"
mkdir -p "$work"
fail=0; n=0
for cc in gcc clang; do
  for type in Release Debug MinSizeRel RelWithDebInfo; do
    d=$work/$cc-$type
    n=$((n + 1))
    if CC=$cc cmake -S "$top" -B "$d" -DCMAKE_BUILD_TYPE=$type -DMG_WERROR=ON >"$d.log" 2>&1 \
       && cmake --build "$d" -j "$(nproc)" >>"$d.log" 2>&1; then
      echo "ok   $cc $type (dpkg-buildflags, -Werror)"
      rm -rf "$d" "$d.log"
    else
      echo "FAIL $cc $type: see $d.log"; tail -20 "$d.log"; fail=$((fail + 1))
    fi
  done
done
echo "build-matrix: $((n - fail)) passed, $fail failed"
exit $((fail > 0))

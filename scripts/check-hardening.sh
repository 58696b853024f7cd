#!/usr/bin/env bash
# Check that the built tool and library carry the hardening flags (readelf): PIE, full RELRO
# (GNU_RELRO + BIND_NOW), a non-executable stack, the stack protector and _FORTIFY_SOURCE.
# Usage: scripts/check-hardening.sh BUILD_DIR   (the hardened build, not the sanitizer one)
set -uo pipefail
build=${1:-build}
fail=0
check() {  # check FILE WHAT CONDITION-OUTPUT
  if [ -n "$3" ]; then echo "ok   $1: $2"; else echo "FAIL $1: $2"; fail=1; fi
}
for f in "$build/modelgate" "$build/libmodelgate.so"; do
  [ -f "$f" ] || { echo "FAIL $f: missing"; fail=1; continue; }
  hdr=$(readelf -hW "$f"); seg=$(readelf -lW "$f"); dyn=$(readelf -dW "$f"); sym=$(readelf -sW --dyn-syms "$f")
  check "$f" "position independent (ELF type DYN)" "$(grep -E 'Type:\s+DYN' <<<"$hdr")"
  check "$f" "RELRO segment" "$(grep GNU_RELRO <<<"$seg")"
  check "$f" "BIND_NOW (full RELRO)" "$(grep -E 'BIND_NOW|FLAGS_1.*NOW' <<<"$dyn")"
  check "$f" "non-executable stack" "$(grep GNU_STACK <<<"$seg" | grep -v RWE)"
  check "$f" "stack protector (__stack_chk_fail)" "$(grep __stack_chk_fail <<<"$sym")"
  check "$f" "_FORTIFY_SOURCE (__*_chk calls)" "$(grep -E '__[a-z]+_chk@' <<<"$sym" | grep -v __stack_chk)"
done
[ "$(readelf -hW "$build/modelgate" | grep -c 'DYN')" = 1 ] && readelf -dW "$build/modelgate" | grep -q 'PIE' \
  && echo "ok   $build/modelgate: PIE flag" || { echo "FAIL $build/modelgate: PIE flag"; fail=1; }
exit $fail

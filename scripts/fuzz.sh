#!/usr/bin/env bash
# Build the libFuzzer harnesses (clang, ASan + UBSan) and run them.
#   scripts/fuzz.sh build            build every fuzz/fuzz_*.c into fuzz/build/
#   scripts/fuzz.sh run NAME SECS    fuzz one harness for SECS seconds on its corpus
#   scripts/fuzz.sh all SECS         fuzz every harness for SECS seconds each, two at a time
# New inputs go to fuzz/build/new-NAME (scratch); the committed corpus fuzz/corpus/NAME is read
# and only grows by a deliberate merge. A crash leaves fuzz/build/crash-NAME-* and fails.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out="$top/fuzz/build"
mkdir -p "$out/obj"
CC=${CC_FUZZ:-clang}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all"
CFLAGS="-g -O1 -fno-omit-frame-pointer $SAN -I$top/include -I$top/src"
LIBS="$(pkg-config --libs libcrypto jansson libzip libseccomp zlib) -lpthread -ldl"

build_lib() {  # the library once, instrumented for coverage
  local objs=() src obj
  for src in "$top"/src/*.c "$top"/src/util/*.c "$top"/src/format/*.c; do
    obj="$out/obj/$(echo "${src#$top/src/}" | tr / _).o"
    if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ -n "$(find "$top/src" "$top/include" -name '*.h' -newer "$obj" -print -quit)" ]; then
      # shellcheck disable=SC2086
      $CC $CFLAGS -fsanitize=fuzzer-no-link -c "$src" -o "$obj"
    fi
    objs+=("$obj")
  done
  ar rcs "$out/libmg-fuzz.a" "${objs[@]}"
}

build_one() {
  local name=$1
  # shellcheck disable=SC2086
  $CC $CFLAGS -fsanitize=fuzzer "$top/fuzz/fuzz_$name.c" "$out/libmg-fuzz.a" $LIBS -o "$out/fuzz_$name"
}

run_one() {
  local name=$1 secs=$2
  mkdir -p "$top/fuzz/corpus/$name" "$out/new-$name"
  "$out/fuzz_$name" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
      -artifact_prefix="$out/crash-$name-" -print_final_stats=1 \
      "$out/new-$name" "$top/fuzz/corpus/$name" > "$out/$name.log" 2>&1 || {
    echo "fuzz: $name FAILED (see $out/$name.log):"; grep -A5 'ERROR\|runtime error\|deadly' "$out/$name.log" | head -20
    return 1
  }
  echo "fuzz: $name $(grep -E 'stat::number_of_executed_units' "$out/$name.log" | awk '{print $2}') executions, $(grep -oE 'cov: [0-9]+' "$out/$name.log" | tail -1) edges, no crash"
}

names() { for src in "$top"/fuzz/fuzz_*.c; do n=$(basename "$src" .c); echo "${n#fuzz_}"; done; }

case "${1:-}" in
  build)
    build_lib
    for n in $(names); do build_one "$n"; done ;;
  run)
    build_lib; build_one "$2"; run_one "$2" "$3" ;;
  all)
    build_lib
    for n in $(names); do build_one "$n"; done
    # two at a time (one per core of the CI machine); any failure fails the whole run
    export -f run_one; export top out
    names | xargs -P 2 -I{} bash -c 'run_one "$1" "$2"' _ {} "$2" ;;
  *) echo "usage: $0 build | run NAME SECS | all SECS" >&2; exit 2 ;;
esac

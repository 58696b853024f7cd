#!/usr/bin/env bash
# Build the libFuzzer harnesses (clang, ASan + UBSan) and run them.
#   scripts/fuzz.sh build            build every fuzz/fuzz_*.c into fuzz/build/
#   scripts/fuzz.sh run NAME SECS    fuzz one harness for SECS seconds on its corpus
#   scripts/fuzz.sh all SECS         fuzz every harness for SECS seconds each
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out="$top/fuzz/build"
mkdir -p "$out"
CC=${CC_FUZZ:-clang}
CFLAGS="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all"
LIBS="$(pkg-config --libs libcrypto jansson libzip libcurl zlib) -lpthread"

build_one() {
  local src=$1 name
  name=$(basename "$src" .c)
  # shellcheck disable=SC2086
  $CC $CFLAGS -I"$top/include" -I"$top/src" "$src" "$top"/src/*.c "$top"/src/util/*.c \
      "$top"/src/format/*.c $LIBS -o "$out/$name"
}

case "${1:-}" in
  build)
    for src in "$top"/fuzz/fuzz_*.c; do build_one "$src"; done ;;
  run)
    name=$2 secs=$3
    build_one "$top/fuzz/fuzz_$name.c"
    mkdir -p "$top/fuzz/corpus/$name" "$out/new-$name"
    # New inputs go to a scratch folder; the committed corpus is only read (merge by hand).
    "$out/fuzz_$name" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
        -artifact_prefix="$out/crash-$name-" -print_final_stats=1 \
        "$out/new-$name" "$top/fuzz/corpus/$name" ;;
  all)
    secs=$2
    for src in "$top"/fuzz/fuzz_*.c; do
      name=$(basename "$src" .c); name=${name#fuzz_}
      "$0" run "$name" "$secs"
    done ;;
  *) echo "usage: $0 build | run NAME SECS | all SECS" >&2; exit 2 ;;
esac

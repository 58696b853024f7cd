#!/usr/bin/env bash
# make lint: gcc -fanalyzer, cppcheck and clang-tidy over the library and the tool; any
# finding fails. Suppressions are in the code (each with the reason) and in .clang-tidy.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${LINT_BUILD:-build-lint}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DMG_TESTS=OFF >/dev/null || exit 1
sources=(src/*.c src/util/*.c src/format/*.c tools/modelgate/*.c)
fail=0
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "lint: gcc -fanalyzer (${#sources[@]} files)"
printf '%s\n' "${sources[@]}" | xargs -P "$(nproc)" -I{} sh -c \
  'gcc -std=gnu11 -fanalyzer -O1 -Wall -Wextra -Iinclude -Isrc -Itools/modelgate -c "$1" -o /dev/null 2>&1' _ {} \
  > "$out/analyzer.txt"
if grep -q 'warning:\|error:' "$out/analyzer.txt"; then
  grep -E 'warning:|error:' "$out/analyzer.txt"; fail=1
fi

echo "lint: cppcheck"
cppcheck --quiet --enable=warning,portability,performance --inline-suppr --error-exitcode=1 \
  --suppress=missingIncludeSystem --library=cmake/cppcheck-jansson.cfg -D__GNUC__ \
  -Iinclude -Isrc -Itools/modelgate src tools 2> "$out/cppcheck.txt" || fail=1
grep -E 'error|warning|style|portability|performance' "$out/cppcheck.txt" && fail=1

echo "lint: clang-tidy (.clang-tidy)"
clang-tidy -p "$build" --quiet "${sources[@]}" > "$out/tidy.txt" 2>&1 || fail=1
grep -E '(warning|error): ' "$out/tidy.txt" && fail=1

if [ "$fail" -ne 0 ]; then
  echo "lint: findings above"
  exit 1
fi
echo "lint: no findings"

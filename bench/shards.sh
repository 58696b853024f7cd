#!/usr/bin/env bash
# The sharded rows of `make bench` only (issue 16: a 1 GiB single-file model signed with
# 64 MiB shards, as an OMS bundle and as a modelgate manifest, against openssl dgst -sha256):
# makes bench/work/one.safetensors if it is missing, then writes bench/work/SHARDS.md.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
MG=$(realpath "${1:-$top/build/modelgate}")
work="$top/bench/work"
mkdir -p "$work"
chmod 700 "$work"
/usr/bin/python3 "$top/bench/make_inputs.py" "$work" one
BENCH_ONLY=oms,sharded /usr/bin/python3 "$top/bench/bench.py" "$MG" "$work" "$work/SHARDS.md"

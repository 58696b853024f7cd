#!/usr/bin/env bash
# make bench: build inputs (once, in bench/work/, about 4 GiB), then time verified loading
# against openssl dgst, sha256sum and Python hashlib on the same files; writes bench/RESULTS.md.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
MG=$(realpath "${1:-$top/build/modelgate}")
work="$top/bench/work"
mkdir -p "$work"
chmod 700 "$work"
/usr/bin/python3 "$top/bench/make_inputs.py" "$work"
/usr/bin/python3 "$top/bench/bench.py" "$MG" "$work" "$top/bench/RESULTS.md"
# pymodelgate against hashlib + numpy.load / a pure-Python safetensors reader (issue 12).
MODELGATE_LIBRARY="$(dirname "$MG")/libmodelgate.so.0" \
  /usr/bin/python3 "$top/bench/python_bench.py" --out "$top/bench/PYTHON_RESULTS.md"

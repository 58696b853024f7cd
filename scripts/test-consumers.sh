#!/usr/bin/env bash
# The library as its users take it (make check, test "consumers"): install the build into a
# temporary prefix, move the prefix elsewhere (the package must be relocatable), then
#   1. ABI: the shared library exports exactly the functions modelgate.h declares with MG_API,
#      all in version node MODELGATE_0, and its soname is libmodelgate.so.0;
#   2. build examples/c three ways against the installed copy: pkg-config (shared),
#      pkg-config --static (the static archive), CMake find_package(modelgate CONFIG) (shared,
#      static, and a C++ program);
#   3. run each on the bundled tiny-mlp model under a fresh policy and compare what it prints
#      with the tensors read independently from the safetensors file; a tampered copy is
#      refused with the integrity status (1) and no tensor printed.
# Usage: scripts/test-consumers.sh BUILD_DIR
set -euo pipefail
build=$(realpath "${1:-build}")
top=$(cd "$(dirname "$0")/.." && pwd)
ws=$(mktemp -d /tmp/mg-consumers.XXXXXX)
chmod 700 "$ws"
trap 'rm -rf "$ws"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$ws/stage" >/dev/null
mv "$ws/stage" "$ws/prefix"          # relocated: nothing may still point at stage/
P=$ws/prefix
lib=$(find "$P" -name 'libmodelgate.so.0' | head -1)
[ -n "$lib" ] || fail "libmodelgate.so.0 not installed"
libdir=$(dirname "$lib")

# 0. What a package ships besides the library: every manual page of man/, the licence, the
#    CMake package and modelgate.pc (the latter two are used below).
for page in "$top"/man/*.[0-9]; do
  [ -e "$page" ] || continue
  n=$(basename "$page"); sec=${n##*.}
  [ -f "$P/share/man/man$sec/$n" ] || fail "manual page $n not installed in share/man/man$sec"
done
[ -f "$P/share/doc/modelgate/LICENSE" ] || fail "LICENSE not installed in share/doc/modelgate"
echo "ok   installed: manual pages ($(ls "$top"/man/*.[0-9] 2>/dev/null | wc -l)), LICENSE"

# 1. ABI
exported=$(nm -D --defined-only "$lib" | awk '$2 == "T" {print $3}' | sort)
declared=$(grep -oE '^MG_API [^(]*\bmg_[a-z0-9_]+\(' "$P/include/modelgate.h" \
           | grep -oE 'mg_[a-z0-9_]+\($' | tr -d '(' | sort)
[ -n "$declared" ] || fail "no MG_API declarations found in the installed header"
unversioned=$(grep -v '@@MODELGATE_0$' <<<"$exported" || true)
[ -z "$unversioned" ] || fail "exported without version MODELGATE_0: $unversioned"
if ! diff <(sed 's/@@MODELGATE_0$//' <<<"$exported") <(echo "$declared") >"$ws/abi.diff"; then
  cat "$ws/abi.diff" >&2
  fail "exported symbols (<) differ from the header's MG_API functions (>)"
fi
others=$(nm -D --defined-only "$lib" | awk '$2 != "T" && $2 != "A" {print $3}')
[ -z "$others" ] || fail "exported data or other symbols: $others"
readelf -dW "$lib" | grep -q 'SONAME.*\[libmodelgate\.so\.0\]' || fail "soname is not libmodelgate.so.0"
# libcurl is opened at the first HTTPS transfer (src/curl_api.c), never linked.
readelf -dW "$lib" | grep -q 'NEEDED.*libcurl' && fail "libmodelgate.so links libcurl"
echo "ok   ABI: $(wc -l <<<"$declared") functions exported, exactly the header's, version MODELGATE_0"

# 2. Build the consumers.
export PKG_CONFIG_PATH=$libdir/pkgconfig
[ "$(pkg-config --variable=libdir modelgate | xargs realpath)" = "$(realpath "$libdir")" ] \
  || fail "modelgate.pc does not resolve to the relocated prefix"
cp -r "$top/examples/c" "$ws/src"
make -s -C "$ws/src" >/dev/null || fail "pkg-config builds"
cmake -S "$ws/src" -B "$ws/cm" -DCMAKE_PREFIX_PATH="$P" -DCMAKE_BUILD_TYPE=Release >/dev/null \
  || fail "find_package(modelgate CONFIG)"
cmake --build "$ws/cm" >/dev/null || fail "CMake consumer build"
readelf -d "$ws/src/load_model" | grep -q 'NEEDED.*libmodelgate\.so\.0' || fail "shared consumer does not use libmodelgate.so.0"
readelf -d "$ws/src/load_model_static" | grep -q 'libmodelgate' && fail "static consumer still needs libmodelgate.so"
readelf -d "$ws/cm/load_model_static" | grep -q 'libmodelgate' && fail "CMake static consumer still needs libmodelgate.so"
readelf -d "$ws/cm/load_model" | grep -q 'NEEDED.*libmodelgate\.so\.0' || fail "CMake consumer does not use libmodelgate.so.0"
for c in src/load_model_static cm/load_model_static; do
  readelf -d "$ws/$c" | grep -q 'NEEDED.*libcurl' && fail "$c links libcurl"
done
echo "ok   built: pkg-config shared, pkg-config --static, CMake shared/static/C++"

# 3. Run them on the bundled model.
mkdir -m 700 "$ws/cfg" "$ws/mirror"
cp "$top/examples/models/tiny-mlp/"* "$ws/mirror/"
chmod u+w "$ws/mirror/model.safetensors"
"$P/bin/modelgate" policy pin -n tiny-mlp "$top/examples/models/tiny-mlp" >"$ws/entry.json"
/usr/bin/python3 - "$ws" "$top/examples/models/tiny-mlp/model.safetensors" <<'PY'
import json, os, struct, sys
ws, st = sys.argv[1], sys.argv[2]
e = json.load(open(os.path.join(ws, "entry.json")))
mirror = dict(e, name="mirror", source=os.path.join(ws, "mirror") + "/")
pol = os.path.join(ws, "cfg", "policy.json")
with open(pol, "w") as f:
    json.dump({"modelgate_policy": 1, "models": [e, mirror]}, f)
os.chmod(pol, 0o600)
# What a correct consumer prints, from the file itself (safetensors: u64 header length, JSON).
data = open(st, "rb").read()
n = struct.unpack("<Q", data[:8])[0]
hdr = json.loads(data[8:8 + n])
hdr.pop("__metadata__", None)
lines = []
for name, t in sorted(hdr.items(), key=lambda kv: kv[1]["data_offsets"][0]):
    a, b = t["data_offsets"]
    blob = data[8 + n + a:8 + n + b]
    lines.append("tensor %s %s [%s] %d bytes sum %d" % (name, t["dtype"], ",".join(map(str, t["shape"])),
                                                       len(blob), sum(blob) % 2**32))
open(os.path.join(ws, "want.txt"), "w").write("\n".join(lines) + "\n")
open(os.path.join(ws, "want-names.txt"), "w").write(
    "".join("%s %d\n" % (l.split()[1], int(l.split()[4])) for l in lines))
# tamper the mirror copy after pinning
with open(os.path.join(ws, "mirror", "model.safetensors"), "r+b") as f:
    f.seek(n + 8 + 3); b = f.read(1); f.seek(n + 8 + 3); f.write(bytes([b[0] ^ 1]))
PY
pol=$ws/cfg/policy.json
for prog in "$ws/src/load_model" "$ws/src/load_model_static" "$ws/cm/load_model" "$ws/cm/load_model_static"; do
  out=$("$prog" "$pol" tiny-mlp) || fail "$prog exited $?"
  grep '^model tiny-mlp: 2 files, ' <<<"$out" >/dev/null || fail "$prog: header line: $out"
  diff <(grep '^tensor ' <<<"$out") "$ws/want.txt" || fail "$prog: tensors differ from the file's"
  grep -qx 'asset config.json 71 bytes' <<<"$out" || fail "$prog: no verified config.json asset"
  # The policy from $MODELGATE_POLICY, as the README's example does.
  MODELGATE_POLICY=$pol "$prog" tiny-mlp >/dev/null || fail "$prog via \$MODELGATE_POLICY"
  set +e
  "$prog" "$pol" mirror >"$ws/out" 2>"$ws/err"; rc=$?
  set -e
  [ "$rc" = 1 ] || fail "$prog on the tampered copy exited $rc, not 1"
  grep -q '^refused: integrity: model.safetensors: ' "$ws/err" || fail "$prog: $(cat "$ws/err")"
  [ ! -s "$ws/out" ] || fail "$prog printed something for a refused model"
  echo "ok   $(basename "$(dirname "$prog")")/$(basename "$prog"): tensors equal the file's; tampered copy refused (1)"
done
"$ws/cm/list_tensors" "$pol" tiny-mlp >"$ws/cxx.txt" || fail "C++ consumer"
diff "$ws/cxx.txt" "$ws/want-names.txt" || fail "C++ consumer output"
echo "ok   C++ consumer (modelgate::modelgate)"

# 4. The parser helper: installed in libexec, and the one the installed library and tool run
#    (found relative to themselves in the relocated prefix), with the files parsed confined.
helper=$P/libexec/modelgate/modelgate-parse
[ -x "$helper" ] || fail "modelgate-parse not installed in libexec/modelgate"
for prog in "$ws/src/load_model $pol tiny-mlp" "$P/bin/modelgate inspect -p $pol tiny-mlp"; do
  env -u MODELGATE_PARSER strace -f -qq -e trace=execve -o "$ws/trace" $prog >/dev/null \
    || fail "$prog under strace"
  grep -q "execve(\"$helper\"" "$ws/trace" || fail "$prog did not run the installed helper"
done
echo "ok   parser helper installed and run by the shared consumer and the installed tool"
echo "consumers: 9 passed, 0 failed"

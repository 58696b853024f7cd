#!/usr/bin/env bash
# make demo: pin the bundled example models, verify, load and list them, then show a tampered
# copy (exit 1) and an unlisted source (exit 4) being refused. Fails if any step does not give
# the exit code it should.
set -uo pipefail
MG=$(realpath "${1:-build/modelgate}")
top=$(cd "$(dirname "$0")/.." && pwd)
ex="$top/examples/models"
ws=$(mktemp -d /tmp/modelgate-demo.XXXXXX)
chmod 700 "$ws"
trap 'rm -rf "$ws"' EXIT
failures=0

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() {  # run EXPECTED_EXIT CMD...
  local want=$1; shift
  printf '$ %s\n' "$*" | sed "s#$MG#modelgate#; s#$ws#\$WS#g; s#$top/##g"
  "$@"
  local rc=$?
  if [ "$rc" != "$want" ]; then
    echo "demo: expected exit $want, got $rc" >&2
    failures=$((failures + 1))
  else
    echo "(exit $rc, as expected)"
  fi
}

step "1. Pin what is there now (prints policy entries)"
"$MG" policy pin -n tiny-mlp "$ex/tiny-mlp" > "$ws/tiny.json" || failures=$((failures + 1))
"$MG" policy pin -n linreg "$ex/linreg-mxnet" > "$ws/linreg.json" || failures=$((failures + 1))
"$MG" policy pin -n llama-tiny "$ex/llama-2-tiny-random.gguf" > "$ws/llama.json" || failures=$((failures + 1))
cat "$ws/tiny.json"

step "2. A tampered copy of tiny-mlp on a 'mirror', listed with the real digests"
mkdir -p "$ws/mirror"
cp "$ex/tiny-mlp/"* "$ws/mirror/"
chmod u+w "$ws/mirror/model.safetensors"
printf '\x7f' | dd of="$ws/mirror/model.safetensors" bs=1 seek=600 conv=notrunc status=none

/usr/bin/python3 - "$ws" <<'PY'
import json, os, sys
ws = sys.argv[1]
entries = [json.load(open(os.path.join(ws, n))) for n in ("tiny.json", "linreg.json", "llama.json")]
mirror = dict(entries[0], name="tiny-mlp-mirror", source=os.path.join(ws, "mirror") + "/")
policy = {"modelgate_policy": 1, "audit_log": os.path.join(ws, "audit.jsonl"),
          "models": entries + [mirror]}
with open(os.path.join(ws, "policy.json"), "w") as f:
    json.dump(policy, f, indent=1)
os.chmod(os.path.join(ws, "policy.json"), 0o600)
PY
export MODELGATE_POLICY="$ws/policy.json"
run 0 "$MG" policy check

step "3. Verify, load and list the pinned models"
run 0 "$MG" verify tiny-mlp
run 0 "$MG" inspect tiny-mlp
run 0 "$MG" inspect linreg
run 0 "$MG" inspect llama-tiny
printf '$ modelgate dump tiny-mlp layers.1.bias | od -An -tf4\n'
"$MG" dump tiny-mlp layers.1.bias | od -An -tf4 || failures=$((failures + 1))

step "4. The tampered copy is refused: integrity (exit 1)"
run 1 "$MG" inspect tiny-mlp-mirror

step "5. An unlisted source is refused before any byte is read: untrusted (exit 4)"
cp "$ex/tiny-mlp/model.safetensors" "$ws/unlisted.safetensors"
run 4 "$MG" inspect "$ws/unlisted.safetensors"
run 4 "$MG" inspect https://models.example.com/llama-tiny/

step "6. The audit log"
sed "s#$ws#\$WS#g" "$ws/audit.jsonl"

echo
if [ "$failures" -ne 0 ]; then
  echo "demo: $failures step(s) did not behave as expected" >&2
  exit 1
fi
echo "demo: every step behaved as expected"

#!/usr/bin/env bash
# The confined parser under attack: builds the tool once more with -DMG_SANDBOX_TEST_TRIGGERS=ON
# (the parse step crashes, loops, allocates without bound or calls open/socket/execve on a
# trigger string) in BUILD/sandbox-triggers, then runs tests/cli/sandbox_triggers.py on it, with
# the parser helper and with a forked child.
#   scripts/test-sandbox-triggers.sh BUILD_DIR
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: $0 BUILD_DIR}/sandbox-triggers
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMG_WERROR=ON -DMG_TESTS=OFF \
      -DMG_SANDBOX_TEST_TRIGGERS=ON >/dev/null
cmake --build "$build" -j2 --target modelgate_cli modelgate_parse >/dev/null
# Once with the parser helper beside the tool, once with a forked child.
unset MODELGATE_PARSER
MODELGATE_BIN="$build/modelgate" MG_SOURCE_DIR="$top" /usr/bin/python3 "$top/tests/cli/sandbox_triggers.py"
MODELGATE_PARSER=none MODELGATE_BIN="$build/modelgate" MG_SOURCE_DIR="$top" \
    /usr/bin/python3 "$top/tests/cli/sandbox_triggers.py"

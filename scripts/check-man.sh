#!/usr/bin/env bash
# Lint every manual page in man/ with both mandoc and groff; any message fails the check.
# Usage: scripts/check-man.sh [PAGE...]   (default: every man/*.[0-9] of the source tree)
set -uo pipefail
cd "$(dirname "$0")/.."

for tool in mandoc groff; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "check-man: $tool is missing (scripts/install-deps.sh installs it)" >&2
    exit 1
  fi
done

pages=("$@")
if [ ${#pages[@]} -eq 0 ]; then
  shopt -s nullglob
  pages=(man/*.[0-9])
fi
if [ ${#pages[@]} -eq 0 ]; then
  echo "check-man: no manual page found in man/" >&2
  exit 1
fi

failed=0
for page in "${pages[@]}"; do
  # mandoc: every message down to style level; groff: all warnings, no output.
  m_out=$(mandoc -T lint -W style "$page" 2>&1)
  m_rc=$?
  g_out=$(LC_ALL=C.UTF-8 groff -ww -z -b -man "$page" 2>&1)
  g_rc=$?
  if [ $m_rc -ne 0 ] || [ $g_rc -ne 0 ] || [ -n "$m_out" ] || [ -n "$g_out" ]; then
    echo "check-man: $page:" >&2
    [ -n "$m_out" ] && printf '%s\n' "$m_out" >&2
    [ -n "$g_out" ] && printf '%s\n' "$g_out" >&2
    failed=1
  else
    echo "check-man: $page ok"
  fi
done
exit $failed

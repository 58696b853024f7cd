#!/usr/bin/env bash
# Install what modelgate needs to build and test on Debian 12 (run as root on a fresh
# machine; a no-op when everything is there). Used by `make check`, `make demo`, `make bench`.
#   scripts/install-deps.sh          Debian packages only (apt-get)
#   scripts/install-deps.sh --test   also the npm GGUF reader of the interop test (network)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake pkg-config
  libssl-dev openssl libjansson-dev libzip-dev libcurl4-openssl-dev zlib1g-dev
  libcmocka-dev
  python3 python3-numpy python3-cryptography python3-pip python3-setuptools python3-venv
  minisign
  # the OCI registry tests: the CNCF distribution registry and htpasswd for its basic auth
  docker-registry apache2-utils
  # the static-link consumer test: what `pkg-config --static --libs modelgate` names
  libnghttp2-dev libidn2-dev librtmp-dev libssh2-1-dev libpsl-dev libkrb5-dev libldap2-dev
  libzstd-dev libbrotli-dev libbz2-dev
  clang libclang-rt-14-dev
  valgrind cppcheck clang-tidy
  mandoc groff-base
  # the confined parser (seccomp filter) and its test (strace -f)
  libseccomp-dev strace
  # spill files cloned with FICLONE: a btrfs image on a loop device (tests/cli/test_spill.py)
  btrfs-progs
)
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ "${1:-}" = --test ] && { ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; }; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing packages (run as root): ${missing[*]}" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The independent GGUF reader used by the interop test (npm registry package): tests only.
if [ "${1:-}" = --test ] && [ -f tests/gguf-reader/package.json ] && [ ! -d tests/gguf-reader/node_modules ]; then
  echo "install-deps: npm ci in tests/gguf-reader"
  npm ci --prefix tests/gguf-reader --no-audit --no-fund --loglevel=error
fi

#!/usr/bin/env bash
# Installs exactly the Debian packages Quarry's build, tests and benchmarks need.
# Idempotent: installs only what is missing, and runs `apt-get update` only then.
set -euo pipefail

# build + tests
pkgs=(build-essential cmake pkg-config clang libclang-rt-14-dev
      libzstd-dev libxxhash-dev libroaring-dev libuv1-dev zlib1g-dev
      lemon re2c zstd gzip python3 tmux libedit-dev libpcre2-dev
      libhttp-parser-dev nettle-dev libcurl4-openssl-dev)
# benchmarks (peers run side by side): ripgrep, sqlite3 (FTS5), jansson (JSON parser comparison)
pkgs+=(ripgrep sqlite3 libjansson-dev)

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

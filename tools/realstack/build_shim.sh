#!/bin/sh
# Build afalg_shim.so (btvirt on kernels without AF_ALG) with gcc against the runtime
# libcrypto of OpenSSL 3 (Debian: libssl3, which python3 already needs; no -dev package).
#   build_shim.sh OUT.so
set -e
OUT="${1:?usage: build_shim.sh OUT.so}"
HERE="$(cd "$(dirname "$0")" && pwd)"
gcc -O2 -Wall -shared -fPIC -o "$OUT" "$HERE/afalg_shim.c" -ldl -l:libcrypto.so.3

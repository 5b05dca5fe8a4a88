#!/bin/sh
# Build a unix-port `micropython` with MicroPython's real NimBLE binding (and axTLS, for
# the `cryptolib` that RPA resolution needs), plus afalg_shim.so for btvirt, from source
# trees you already have. Nothing is downloaded.
#
#   tools/realstack/build.sh --micropython DIR [--nimble DIR] [--axtls DIR]
#                            [--micropython-lib DIR] [--out DIR] [--jobs N] [--m32]
#                            [--cccd] [--frozen]
#
#   --micropython      a git checkout of micropython/micropython (tested: 1c3c2011)
#   --nimble, --axtls, --micropython-lib
#                      git repositories holding the commits DIR pins for lib/mynewt-nimble
#                      (micropython/mynewt-nimble), lib/axtls (micropython/axtls) and
#                      lib/micropython-lib; needed only where DIR/lib/<name> is empty.
#                      The pinned commit is exported into DIR/lib/<name> (git archive).
#   --out              where micropython and afalg_shim.so go (default: ./realstack-build)
#   --m32              a 32-bit build (gcc-multilib), OUT/micropython-32, the size boards
#                      have (footprint benches: AIOBLE_PM_BENCH_MICROPYTHON); no shim
#   --cccd             with the CCCD-persistence module (native/aioble_pm_cccd):
#                      OUT/micropython-cccd (AIOBLE_PM_NIMBLE_CCCD_MICROPYTHON)
#   --frozen           aioble_pm and aioble frozen into the firmware through this
#                      repository's manifest.py, as a board build does: OUT/micropython-frozen
#                      (-32-frozen with --m32); the footprint bench then measures the frozen heap
#   USER_C_MODULES=... (environment) is passed to make, for a user C module.
#
# Then: AIOBLE_PM_NIMBLE_MICROPYTHON=OUT/micropython ./dev test -m nimble
set -e
HERE="$(cd "$(dirname "$0")" && pwd)"
MP="" NIMBLE="" AXTLS="" MPLIB="" OUT="realstack-build" JOBS="${JOBS:-2}" M32="" CCCD="" FROZEN=""
while [ $# -gt 0 ]; do
    case "$1" in
        --m32) M32=1; shift; continue ;;
        --cccd) CCCD=1; shift; continue ;;
        --frozen) FROZEN=1; shift; continue ;;
        --micropython) MP="$2" ;;
        --nimble) NIMBLE="$2" ;;
        --axtls) AXTLS="$2" ;;
        --micropython-lib) MPLIB="$2" ;;
        --out) OUT="$2" ;;
        --jobs) JOBS="$2" ;;
        *) sed -n '2,20p' "$0" >&2; exit 2 ;;
    esac
    shift 2 || { echo "build.sh: $1 needs a value" >&2; exit 2; }
done
[ -n "$MP" ] || { sed -n '2,20p' "$0" >&2; exit 2; }
[ -f "$MP/py/mpconfig.h" ] || { echo "build.sh: $MP is not a MicroPython source tree" >&2; exit 2; }
git -C "$MP" rev-parse HEAD >/dev/null 2>&1 || { echo "build.sh: $MP is not a git checkout (the pins are read from it)" >&2; exit 2; }
for tool in make gcc git tar; do
    command -v "$tool" >/dev/null || { echo "build.sh: $tool not found" >&2; exit 2; }
done

# lib/<name> at the commit the MicroPython tree pins, from the given repository
need() {
    name="$1" src="$2" flag="$3"
    pin=$(git -C "$MP" ls-tree HEAD "lib/$name" | awk '{print $3}')
    [ -n "$pin" ] || { echo "build.sh: $MP pins no lib/$name" >&2; exit 2; }
    dir="$MP/lib/$name"
    if [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then  # populated: it must be the pinned commit
        if [ -f "$dir/.aioble_pm-pin" ]; then
            have=$(cat "$dir/.aioble_pm-pin")
        else
            have=$(git -C "$dir" rev-parse HEAD 2>/dev/null || echo "unknown (not a git checkout)")
        fi
        [ "$have" = "$pin" ] || {
            echo "build.sh: lib/$name is at $have, the tree pins $pin: check out the pin or empty it" >&2; exit 2; }
        return 0
    fi
    if [ -z "$src" ]; then
        echo "build.sh: lib/$name is empty: pass $flag DIR, a clone holding commit $pin" >&2
        exit 2
    fi
    git -C "$src" cat-file -e "$pin^{commit}" 2>/dev/null || {
        echo "build.sh: $src has no commit $pin (pinned for lib/$name): fetch it there first" >&2; exit 2; }
    mkdir -p "$dir"
    git -C "$src" archive "$pin" | tar -x -C "$dir"
    echo "$pin" > "$dir/.aioble_pm-pin"
    echo "build.sh: lib/$name <- $src at $pin"
}
need mynewt-nimble "$NIMBLE" --nimble
need axtls "$AXTLS" --axtls
need micropython-lib "$MPLIB" --micropython-lib   # the unix port freezes asyncio etc. from it

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
make -C "$MP/mpy-cross" -j"$JOBS"
# BTREE and FFI need submodules we do not use; SSL through axTLS gives cryptolib.
# A changed variable needs a clean BUILD directory, hence a name of our own.
if [ -n "$M32" ]; then  # own BUILD dir and output name: objects and binary differ in size
    BUILD=build-aioble_pm-nimble-32 EXE=micropython-32 BITS="CFLAGS_EXTRA=-m32 LDFLAGS_EXTRA=-m32"
else
    BUILD=build-aioble_pm-nimble EXE=micropython BITS=""
fi
if [ -n "$CCCD" ]; then
    BUILD=$BUILD-cccd EXE=$EXE-cccd USER_C_MODULES="$(cd "$HERE/../../native" && pwd)"
fi
if [ -n "$FROZEN" ]; then  # the port's own frozen modules plus ours (which requires aioble)
    BUILD=$BUILD-frozen EXE=$EXE-frozen
    printf 'include("$(PORT_DIR)/variants/standard/manifest.py")\ninclude("%s/manifest.py")\n' \
        "$(cd "$HERE/../.." && pwd)" > "$OUT/frozen_manifest.py"
    # the unix port sets no mpy-cross architecture, so viper code needs it named
    FREEZE="FROZEN_MANIFEST=$OUT/frozen_manifest.py MPY_CROSS_FLAGS=-march=$([ -n "$M32" ] && echo x86 || echo x64)"
fi
make -C "$MP/ports/unix" -j"$JOBS" BUILD=$BUILD $BITS \
    MICROPY_PY_BLUETOOTH=1 MICROPY_BLUETOOTH_NIMBLE=1 \
    MICROPY_PY_BTREE=0 MICROPY_PY_FFI=0 \
    MICROPY_PY_SSL=1 MICROPY_SSL_AXTLS=1 MICROPY_SSL_MBEDTLS=0 \
    ${USER_C_MODULES:+USER_C_MODULES="$USER_C_MODULES"} ${FREEZE:-}
cp "$MP/ports/unix/$BUILD/micropython" "$OUT/$EXE"
[ -n "$M32$FROZEN" ] || sh "$HERE/build_shim.sh" "$OUT/afalg_shim.so"
"$OUT/$EXE" -c "import bluetooth, cryptolib, sys; print('build.sh: ok,', sys.implementation._build if hasattr(sys.implementation, '_build') else '', sys.version)"
if [ -n "$M32$FROZEN" ]; then echo "build.sh: $OUT/$EXE"; else echo "build.sh: $OUT/$EXE and $OUT/afalg_shim.so"; fi

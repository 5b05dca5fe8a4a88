"""Host test: NimBLE's struct ble_store_value_sec layouts, as a C compiler lays them
out, against the offsets aioble_pm/nimble.py uses.

The C file declares the struct from its documented field lists (upstream
mynewt-nimble, esp-nimble 1.5 and 1.4), prints offsetof/sizeof and the byte and
mask of every one-bit flag, and dumps filled-in sample structs. The offsets are
compared with nimble.py's `_NAME = const(N)` lines, and the samples are parsed by
nimble.parse_sec on the MicroPython unix port.
"""
import os
import re
import shutil
import subprocess

import pytest

import mpharness

C_SOURCE = r"""
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct { uint8_t type; uint8_t val[6]; } addr_t;

/* mynewt-nimble (MicroPython's pin) */
struct sec_nimble {
    addr_t peer_addr;
    uint8_t key_size;
    uint16_t ediv;
    uint64_t rand_num;
    uint8_t ltk[16];
    uint8_t ltk_present:1;
    uint8_t irk[16];
    uint8_t irk_present:1;
    uint8_t csrk[16];
    uint8_t csrk_present:1;
    unsigned authenticated:1;
    uint8_t sc:1;
};

/* esp-nimble 1.5 (bond_count, sign_counter) */
struct sec_esp15 {
    addr_t peer_addr;
    uint16_t bond_count;
    uint8_t key_size;
    uint16_t ediv;
    uint64_t rand_num;
    uint8_t ltk[16];
    uint8_t ltk_present:1;
    uint8_t irk[16];
    uint8_t irk_present:1;
    uint8_t csrk[16];
    uint8_t csrk_present:1;
    uint32_t sign_counter;
    unsigned authenticated:1;
    uint8_t sc:1;
};

/* esp-nimble 1.4 (bond_count only) */
struct sec_esp14 {
    addr_t peer_addr;
    uint16_t bond_count;
    uint8_t key_size;
    uint16_t ediv;
    uint64_t rand_num;
    uint8_t ltk[16];
    uint8_t ltk_present:1;
    uint8_t irk[16];
    uint8_t irk_present:1;
    uint8_t csrk[16];
    uint8_t csrk_present:1;
    unsigned authenticated:1;
    uint8_t sc:1;
};

static void flag(const char *tag, const char *name, const void *s, size_t n) {
    const uint8_t *p = s;
    for (size_t i = 0; i < n; i++)
        if (p[i]) printf("%s bit %s %u %u\n", tag, name, (unsigned)i, (unsigned)p[i]);
}

static void dump(const char *tag, int sample, const void *s, size_t n) {
    const uint8_t *p = s;
    printf("%s sample%d ", tag, sample);
    for (size_t i = 0; i < n; i++) printf("%02x", p[i]);
    printf("\n");
}

static const uint8_t IRK[16] = {0x9b, 0x7d, 0x39, 0x0a, 0xa6, 0x10, 0x10, 0x34,
                                0x05, 0xad, 0xc8, 0x57, 0xa3, 0x34, 0x02, 0xec};

#define FIELD(S, tag, f) printf("%s off %s %u\n", tag, #f, (unsigned)offsetof(struct S, f))
#define FLAG(S, tag, f) do { struct S s; memset(&s, 0, sizeof s); s.f = 1; flag(tag, #f, &s, sizeof s); } while (0)
#define FILL(S, tag, n, ks, au, sc_, cs) do {                                   \
        struct S s; memset(&s, 0, sizeof s);                                    \
        s.peer_addr.type = 1;                                                   \
        for (int i = 0; i < 6; i++) s.peer_addr.val[i] = 0x55 + 0x11 * i;       \
        s.key_size = ks; s.ediv = 0xBEEF; s.rand_num = 0x0123456789ABCDEFull;   \
        for (int i = 0; i < 16; i++) { s.ltk[i] = 0x10 + i; s.csrk[i] = 0x30 + i; } \
        memcpy(s.irk, IRK, 16);                                                 \
        s.ltk_present = 1; s.irk_present = 1; s.csrk_present = cs;              \
        s.authenticated = au; s.sc = sc_;                                       \
        dump(tag, n, &s, sizeof s);                                             \
    } while (0)
#define COMMON(S, tag) do {                                                     \
        printf("%s sizeof %u\n", tag, (unsigned)sizeof(struct S));              \
        printf("%s align %u\n", tag, (unsigned)_Alignof(struct S));             \
        FIELD(S, tag, peer_addr); FIELD(S, tag, key_size); FIELD(S, tag, ediv); \
        FIELD(S, tag, rand_num); FIELD(S, tag, ltk); FIELD(S, tag, irk);        \
        FIELD(S, tag, csrk);                                                    \
        FLAG(S, tag, ltk_present); FLAG(S, tag, irk_present);                   \
        FLAG(S, tag, csrk_present); FLAG(S, tag, authenticated); FLAG(S, tag, sc); \
        FILL(S, tag, 1, 16, 1, 0, 1);                                           \
        FILL(S, tag, 2, 7, 0, 1, 0);                                            \
    } while (0)

int main(void) {
    COMMON(sec_nimble, "nimble");
    COMMON(sec_esp15, "esp15");
    FIELD(sec_esp15, "esp15", bond_count);
    FIELD(sec_esp15, "esp15", sign_counter);
    COMMON(sec_esp14, "esp14");
    FIELD(sec_esp14, "esp14", bond_count);
    return 0;
}
"""

# Field -> name of nimble.py's offset constant, per layout. Flags map to
# (byte constant, mask constant).
SHARED = {"peer_addr": "_ADDR", "rand_num": "_RAND", "ltk": "_LTK", "irk": "_IRK", "csrk": "_CSRK"}
SHARED_FLAGS = {
    "ltk_present": ("_LTK_PRESENT", "_PRESENT_BIT"),
    "irk_present": ("_IRK_PRESENT", "_PRESENT_BIT"),
    "csrk_present": ("_CSRK_PRESENT", "_CSRK_BIT"),
}
FLAGS_80 = {"authenticated": ("_FLAGS", "_AUTH_BIT"), "sc": ("_FLAGS", "_SC_BIT")}
FLAGS_ESP = {"authenticated": ("_ESP_FLAGS", "_ESP_AUTH_BIT"), "sc": ("_ESP_FLAGS", "_ESP_SC_BIT")}
ESP_FIELDS = {"key_size": "_ESP_KEY_SIZE", "ediv": "_ESP_EDIV", "bond_count": "_ESP_BOND_COUNT"}
LAYOUTS = {
    "nimble": ("_SIZE", dict(SHARED, key_size="_KEY_SIZE", ediv="_EDIV"), dict(SHARED_FLAGS, **FLAGS_80)),
    "esp15": ("_ESP_SIZE", dict(SHARED, sign_counter="_ESP_SIGN_COUNTER", **ESP_FIELDS), dict(SHARED_FLAGS, **FLAGS_ESP)),
    "esp14": ("_SIZE", dict(SHARED, **ESP_FIELDS), dict(SHARED_FLAGS, **FLAGS_80)),
}
SPEC_IRK_MSB = "ec0234a357c8ad05341010a60a397d9b"


def nimble_constants():
    src = open(os.path.join(mpharness.ROOT, "aioble_pm", "nimble.py")).read()
    pairs = re.findall(r"^(_[A-Z0-9_]+) = const\((0x[0-9A-Fa-f]+|\d+)\)", src, re.M)
    return {name: int(value, 0) for name, value in pairs}


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        pytest.skip("no C compiler (cc/gcc/clang) on PATH: struct layouts not checked")
    d = tmp_path_factory.mktemp("nimble_layout")
    (d / "layout.c").write_text(C_SOURCE)
    exe = d / "layout"
    subprocess.run([cc, "-std=c11", "-Wall", "-Werror", "-o", str(exe), str(d / "layout.c")], check=True)
    out = subprocess.run([str(exe)], check=True, stdout=subprocess.PIPE, text=True).stdout
    facts = {}
    for line in out.splitlines():
        tag, kind, rest = line.split(" ", 2)
        facts.setdefault(tag, {}).setdefault(kind, []).append(rest)
    return facts


def test_compiler_matches_documented_sizes(layout):
    # FACTS 3.2: 80 / 88 / 80 bytes, 8-byte aligned (u64 rand_num) on 64-bit hosts
    # and 32-bit ARM/RISC-V alike.
    assert layout["nimble"]["sizeof"] == ["80"]
    assert layout["esp15"]["sizeof"] == ["88"]
    assert layout["esp14"]["sizeof"] == ["80"]
    for tag in LAYOUTS:
        assert layout[tag]["align"] == ["8"], tag


@pytest.mark.parametrize("tag", sorted(LAYOUTS))
def test_offsets_match_nimble_py(layout, tag):
    consts = nimble_constants()
    size_name, fields, flags = LAYOUTS[tag]
    assert consts[size_name] == int(layout[tag]["sizeof"][0])
    seen = set()
    for entry in layout[tag]["off"]:
        field, off = entry.split()
        seen.add(field)
        name = fields[field]
        assert consts[name] == int(off), "%s.%s: compiler %s, nimble.py %s = %d" % (tag, field, off, name, consts[name])
    assert seen == set(fields), (tag, seen ^ set(fields))
    seen = set()
    for entry in layout[tag]["bit"]:
        field, byte, mask = entry.split()
        seen.add(field)
        byte_name, mask_name = flags[field]
        got = (consts[byte_name], consts[mask_name])
        assert got == (int(byte), int(mask)), "%s.%s: compiler byte %s mask %s, nimble.py %s" % (tag, field, byte, mask, got)
    assert seen == set(flags), (tag, seen ^ set(flags))


PARSE = r"""
import binascii, sys
from aioble_pm import nimble
for line in sys.argv[1:]:
    i = nimble.parse_sec(binascii.unhexlify(line))
    print(i.addr_type, binascii.hexlify(i.addr).decode(), i.key_size, i.ediv,
          int(i.ltk_present), int(i.csrk_present), int(i.authenticated), int(i.sc),
          binascii.hexlify(i.irk).decode(), i.layout, int(i.esp))
"""


def test_compiler_samples_parse(layout, tmp_path):
    blobs, expect = [], []
    for tag in ("nimble", "esp15", "esp14"):
        size = int(layout[tag]["sizeof"][0])
        esp = 0 if tag == "nimble" else 1
        for entry in layout[tag]["sample1"] + layout[tag]["sample2"]:
            blobs.append(entry)
        # values the C side filled in; address val[] = 55 66 77 88 99 aa (LSB-first)
        expect.append("1 aa9988776655 16 48879 1 1 1 0 %s %d %d" % (SPEC_IRK_MSB, size, esp))
        expect.append("1 aa9988776655 7 48879 1 0 0 1 %s %d %d" % (SPEC_IRK_MSB, size, esp))
    script = tmp_path / "parse.py"
    script.write_text(PARSE)
    proc = mpharness.run([str(script)] + blobs, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.splitlines() == expect

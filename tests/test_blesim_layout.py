"""ble_store_value_sec as a C compiler lays it out (field lists of FACTS 3.2) against the
simulator's layout table (tests/blesim/layout.py, read through micropython)."""
import json
import os
import shutil
import subprocess

import pytest

import mpharness

C_SOURCE = r"""
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct { uint8_t type; uint8_t val[6]; } ble_addr_t;

/* mynewt-nimble (MicroPython's pin) */
struct sec80 {
    ble_addr_t peer_addr;
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

/* esp-nimble nimble-1.5.0-idf */
struct sec88 {
    ble_addr_t peer_addr;
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

/* Where a bit field lives: set it in a zeroed struct, report byte and mask. */
#define BIT(S, F) do { struct S s; memset(&s, 0, sizeof s); s.F = 1; \
    const uint8_t *p = (const uint8_t *)&s; for (size_t i = 0; i < sizeof s; i++) \
    if (p[i]) printf("%s\"%s\": [%zu, %u]", first ? "" : ", ", #F, i, p[i]); first = 0; } while (0)
#define OFF(S, F) do { printf("%s\"%s\": [%zu, %zu]", first ? "" : ", ", #F, offsetof(struct S, F), \
    sizeof(((struct S *)0)->F)); first = 0; } while (0)

int main(void) {
    int first;
    printf("{\"80\": {\"size\": %zu, \"fields\": {", sizeof(struct sec80)); first = 1;
    OFF(sec80, peer_addr); OFF(sec80, key_size); OFF(sec80, ediv); OFF(sec80, rand_num);
    OFF(sec80, ltk); OFF(sec80, irk); OFF(sec80, csrk);
    printf("}, \"bits\": {"); first = 1;
    BIT(sec80, ltk_present); BIT(sec80, irk_present); BIT(sec80, csrk_present);
    BIT(sec80, authenticated); BIT(sec80, sc);
    printf("}}, \"88\": {\"size\": %zu, \"fields\": {", sizeof(struct sec88)); first = 1;
    OFF(sec88, peer_addr); OFF(sec88, bond_count); OFF(sec88, key_size); OFF(sec88, ediv);
    OFF(sec88, rand_num); OFF(sec88, ltk); OFF(sec88, irk); OFF(sec88, csrk); OFF(sec88, sign_counter);
    printf("}, \"bits\": {"); first = 1;
    BIT(sec88, ltk_present); BIT(sec88, irk_present); BIT(sec88, csrk_present);
    BIT(sec88, authenticated); BIT(sec88, sc);
    printf("}}}\n");
    return 0;
}
"""

SIM = """
import json
from blesim import layout
print(json.dumps({str(n): {"fields": layout.FIELDS[n], "bits": layout.BITS[n]} for n in layout.SIZES}))
"""


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc) on PATH")
def test_layouts_match_c_compiler(tmp_path):
    src = tmp_path / "sec.c"
    src.write_text(C_SOURCE)
    exe = tmp_path / "sec"
    subprocess.run(["cc", "-std=c11", "-Wall", "-o", str(exe), str(src)], check=True)
    c = json.loads(subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout)
    (tmp_path / "dump.py").write_text(SIM)
    out = mpharness.run([str(tmp_path / "dump.py")], cwd=str(tmp_path))
    assert out.returncode == 0, out.stdout
    sim = json.loads(out.stdout)
    for size in ("80", "88"):
        assert c[size]["size"] == int(size)
        assert c[size]["fields"] == {k: list(v) for k, v in sim[size]["fields"].items()}, size
        assert c[size]["bits"] == {k: list(v) for k, v in sim[size]["bits"].items()}, size

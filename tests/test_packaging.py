"""Host checks of how the package is shipped: mip package.json, freeze manifest.py,
the ESP32 board files (partition table) and the OpenMV notes."""
import csv
import io
import json
import os
import re
import sys

import pytest

import mpharness
from mpharness import ROOT

PKG = os.path.join(ROOT, "aioble_pm")
BOARD = os.path.join(ROOT, "boards", "ESP32_GENERIC")


def modules():
    return sorted("aioble_pm/" + f for f in os.listdir(PKG) if f.endswith(".py"))


def version_of_init():
    text = open(os.path.join(PKG, "__init__.py")).read()
    return re.search(r'__version__ = "([^"]+)"', text).group(1)


def test_package_json_lists_every_module_and_only_existing_files():
    pkg = json.load(open(os.path.join(ROOT, "package.json")))
    targets = [t for t, _ in pkg["urls"]]
    assert sorted(targets) == modules(), "package.json urls must list exactly the modules"
    for target, url in pkg["urls"]:
        assert url == target, "relative url (resolved against package.json by mip)"
        assert os.path.isfile(os.path.join(ROOT, url)), url
    assert ["aioble", "latest"] in pkg["deps"]
    assert pkg["version"] == version_of_init()


class ManifestRecorder:
    """Stand-ins for the functions MicroPython's tools/manifestfile.py gives a manifest."""

    def __init__(self, manifest_dir):
        self.dir = manifest_dir
        self.calls = []

    def globals(self, extra=()):
        names = ("metadata", "require", "package", "module", "include", "freeze")
        g = {n: (lambda *a, _n=n, **k: self.calls.append((_n, a, k))) for n in names}
        g.update(extra)
        return g

    def run(self, path):
        exec(compile(open(path).read(), path, "exec"), self.globals())
        return self.calls


def test_manifest_freezes_the_package_and_requires_aioble():
    calls = ManifestRecorder(ROOT).run(os.path.join(ROOT, "manifest.py"))
    kinds = [c[0] for c in calls]
    assert ("require", ("aioble",), {}) in calls
    meta = [c for c in calls if c[0] == "metadata"][0][2]
    assert meta["version"] == version_of_init()
    pkgs = [c for c in calls if c[0] == "package"]
    assert len(pkgs) == 1 and pkgs[0][1] == ("aioble_pm",)
    assert os.path.isfile(os.path.join(ROOT, pkgs[0][1][0], "__init__.py"))
    assert "freeze" not in kinds and "module" not in kinds


def test_board_manifest_includes_port_default_and_ours():
    calls = ManifestRecorder(BOARD).run(os.path.join(BOARD, "manifest.py"))
    includes = [c[1][0] for c in calls if c[0] == "include"]
    assert "$(PORT_DIR)/boards/manifest.py" in includes
    ours = [i for i in includes if i.startswith("$(BOARD_DIR)")]
    assert len(ours) == 1
    resolved = os.path.normpath(ours[0].replace("$(BOARD_DIR)", BOARD))
    assert resolved == os.path.join(ROOT, "manifest.py")
    cmake = open(os.path.join(BOARD, "mpconfigboard.cmake")).read()
    assert "partitions-bonds.csv" in cmake and "MICROPY_FROZEN_MANIFEST" in cmake


def parse_partitions(text):
    rows = []
    for row in csv.reader(io.StringIO(text)):
        if not row or row[0].strip().startswith("#"):
            continue
        name, ptype, subtype, offset, size = [c.strip() for c in row[:5]]
        rows.append((name, ptype, subtype, int(offset, 0), int(size, 0)))
    return rows


# Live data of 32 bonds in the ZMS store: two NimBLE secrets of up to 88 bytes each
# (data + 16-byte ATE), a rank (4 bytes, inline in its ATE), up to 64 bytes of app data.
ZMS_ATE = 16
BOND_BYTES = 2 * (88 + ZMS_ATE) + ZMS_ATE + (64 + ZMS_ATE)
SECTOR = 4096
SECTOR_USABLE = SECTOR - 3 * ZMS_ATE  # empty, close and gc_done ATEs


def test_esp32_partition_table():
    parts = parse_partitions(open(os.path.join(BOARD, "partitions-bonds.csv")).read())
    names = [p[0] for p in parts]
    assert len(set(names)) == len(names)
    assert {"nvs", "phy_init", "factory", "bonds"} <= set(names)
    end_prev = 0x9000  # bootloader + partition table come first
    for name, ptype, subtype, offset, size in sorted(parts, key=lambda p: p[3]):
        align = 0x10000 if ptype == "app" else 0x1000
        assert offset % align == 0, "%s offset not %#x-aligned" % (name, align)
        assert size % 0x1000 == 0, "%s size not sector-aligned" % name
        assert offset >= end_prev, "%s overlaps the previous partition" % name
        end_prev = offset + size
    assert end_prev <= 4 * 1024 * 1024, "does not fit a 4 MiB flash"
    assert end_prev < 4 * 1024 * 1024 - 1024 * 1024, "leaves >= 1 MiB for the vfs filesystem"
    bonds = [p for p in parts if p[0] == "bonds"][0]
    assert bonds[1] == "data"
    sectors = bonds[4] // SECTOR
    live = 32 * BOND_BYTES
    # ZMS keeps one sector empty for GC; keep the live data under half of the rest
    assert (sectors - 1) * SECTOR_USABLE >= 2 * live, (sectors, live)


def test_board_readmes_exist_and_name_the_steps():
    esp = open(os.path.join(BOARD, "README.md")).read()
    for needle in ("BOARD_DIR", "partitions-bonds.csv", "bonds", "vfs", "idf.py" if "idf.py" in esp else "make"):
        assert needle in esp, needle
    omv = open(os.path.join(ROOT, "boards", "OPENMV", "README.md")).read()
    assert "manifest.py" in omv and "bonds.zms" in omv


# The core (import, PeerManager(), sec_params, attach) loads none of the optional parts;
# each loads when its first user calls (issue 10: heap of the core).
_LAZY = ("more", "secproc", "pairing", "attempts", "privacy", "access", "gattc", "gatts", "migrate", "peerinfo",
         "policy", "backup", "whitelist", "ramflash", "cipher", "bonding", "zms_gc", "scanning")
_CORE_PROBE = """
import sys, bluetooth
import aioble_pm
from aioble_pm.flash import FileFlash
pm = aioble_pm.PeerManager(FileFlash("bonds.zms", 32768))
pm.sec_params(bond=True)
pm.attach(bluetooth.BLE(), None)
def loaded():
    return sorted(m[10:] for m in sys.modules if m.startswith("aioble_pm."))
print("core", " ".join(loaded()))
pm.rank_highest  # now-and-then calls: more.py
aioble_pm.security.new_passkey()  # pairing.py
aioble_pm.security.RepeatedAttempts()  # attempts.py
aioble_pm.flash.RamFlash(8192)  # ramflash.py
print("later", " ".join(loaded()))
"""


def test_core_loads_no_optional_part(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(_CORE_PROBE)
    out = mpharness.run([str(script)], cwd=str(tmp_path)).stdout
    core = next(l for l in out.splitlines() if l.startswith("core")).split()[1:]
    later = next(l for l in out.splitlines() if l.startswith("later")).split()[1:]
    assert "secman" in core and "zms" in core, out
    assert not set(_LAZY) & set(core), "the core loaded %s" % sorted(set(_LAZY) & set(core))
    assert {"more", "pairing", "attempts", "ramflash"} <= set(later), out


# Import nesting (issue 10: boards have small C stacks; the 32-bit unix port's 40000-byte
# limit once stopped the README's three lines): the deepest chain of module loads that
# attach() starts must be no deeper than `import aioble`'s own (bench/host_footprint.py's
# trace). bluetooth is imported first in both: the simulator's stand-in nests deeper
# than a firmware's built-in module.
def _nesting(tmp_path, work):
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    try:
        import host_footprint
    finally:
        sys.path.pop(0)
    script = tmp_path / "nest.py"
    script.write_text("import bluetooth\n" + host_footprint.TRACE % {"work": work})
    out = mpharness.run([str(script)], cwd=str(tmp_path)).stdout
    assert "outcome ok" in out, out
    return int(host_footprint.field(out, "depth").split()[0]), out


def test_attach_nests_imports_no_deeper_than_aioble(tmp_path):
    if not os.path.isdir(os.path.expanduser("~/.micropython/lib/aioble")):
        pytest.skip("aioble not in ~/.micropython/lib (see README: aioble for local runs)")
    attach, out = _nesting(tmp_path, "import aioble_pm; aioble_pm.PeerManager(aioble_pm.flash.RamFlash(8192)).attach()")
    aioble, out2 = _nesting(tmp_path, "import aioble")
    assert attach <= aioble, "attach() nests %d deep, import aioble %d:\n%s\n%s" % (attach, aioble, out, out2)

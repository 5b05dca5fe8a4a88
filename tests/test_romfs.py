"""tools/romfs.py: the package in a ROMFS image, imported from it (zero-copy, as on a board
with a ROMFS partition) and run through tests of the MicroPython suite on the simulator.
The unix port has VfsRom; the image is mounted at /rom in the test process and /rom/lib
goes first on sys.path, as a board's boot does."""
import os
import subprocess
import sys

import pytest

import mpharness

sys.path.insert(0, os.path.join(mpharness.ROOT, "tools"))
import romfs  # noqa: E402

AIOBLE = os.path.expanduser("~/.micropython/lib/aioble")
MARCH = {1: "x86", 2: "x64"}

# bonds, reboot, re-encryption, RPAs (viper resolver and whitelist), eviction, the ZMS
# scanner, export/restore (cipher), and aioble's path: scan/connect helpers, GATT cache
CASES = [
    ("mp_manager", "test_bond_reboot_reencrypt_and_resolve"),
    ("mp_manager", "test_full_store_evicts_least_recently_used"),
    ("mp_whitelist", "test_bonded_peer_found_across_rpa_rotations_stranger_never"),
    ("mp_zms_viper", "test_scan_matches_reference_in_every_mode"),
    ("mp_backup", "test_restore_onto_a_reflashed_board_reencrypts_without_pairing"),
    ("mp_aioble_pm", "test_connect_to_bonded_peer_behind_rotating_rpas"),
    ("mp_aioble_pm", "test_scan_yields_whitelisted_peers_once"),
    ("mp_gattc", "test_bonded_peer_reads_without_discovery_on_reconnect"),
]

MOUNT = """import vfs
vfs.mount(vfs.VfsRom(open(%r, "rb").read()), "/rom")
sys.path.insert(0, "/rom/lib")"""

WRAPPER = """
import sys
%(mount)s
sys.argv[1:] = [%(mod)r, %(func)r]
exec(open(%(mprun)r).read())  # ends with its marker line; sys.exit(1) on a failure
mods = [(m, getattr(sys.modules[m], "__file__", "")) for m in sys.modules if m.split(".")[0] in ("aioble_pm", "aioble")]
print("@@romfs:", len(mods), [m for m, f in mods if not f.startswith("/rom/lib/")])
"""

CODE = """
import sys
%s
import aioble_pm
print("@@code:", aioble_pm.capabilities()["code"], aioble_pm.__file__)
"""


def _arch():
    out = mpharness.run(["-c", "import sys; print(sys.implementation._mpy >> 10 & 15)"]).stdout
    return MARCH.get(int(out.split()[-1]))


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    arch = _arch()
    if arch is None:
        pytest.skip("the unix micropython is neither x86 nor x64")
    path = str(tmp_path_factory.mktemp("romfs") / "pm.romfs")
    with open(path, "wb") as f:
        f.write(romfs.build(arch, AIOBLE if os.path.isdir(AIOBLE) else None))
    return path


@pytest.mark.parametrize("mod,func", CASES)
def test_suite_case_runs_from_the_romfs_image(image, mod, func, tmp_path):
    script = tmp_path / "romrun.py"
    script.write_text(WRAPPER % {"mount": MOUNT % image, "mod": mod, "func": func,
                                 "mprun": os.path.join(mpharness.LIB, "mprun.py")})
    out = mpharness.run([str(script)], cwd=str(tmp_path), timeout=180).stdout
    if "@@mptest:SKIP" in out:
        pytest.skip(out.split("@@mptest:SKIP", 1)[1].strip().splitlines()[0])
    assert "@@mptest:PASS" in out, out
    loaded, elsewhere = out.split("@@romfs:", 1)[1].strip().split(" ", 1)
    assert int(loaded) > 1 and elsewhere == "[]", "modules not from the image: " + out


def test_capabilities_say_where_the_code_came_from(image, tmp_path):
    """capabilities()["code"]: "py" from the repository, "mpy" from compiled files on the
    file system (bytecode in RAM), "romfs" from the image (run in place)."""
    mpy = tmp_path / "mpy"
    romfs.compile_dir(romfs.find_mpy_cross(), os.path.join(mpharness.ROOT, "aioble_pm"),
                      str(mpy / "aioble_pm"), _arch())
    for setup, want in (("", "py"), ("sys.path.insert(0, %r)" % str(mpy), "mpy"), (MOUNT % image, "romfs")):
        script = tmp_path / "code.py"
        script.write_text(CODE % setup)
        out = mpharness.run([str(script)], cwd=str(tmp_path)).stdout
        assert "@@code: %s " % want in out, out


def _tool(*args):
    return subprocess.run([sys.executable, os.path.join(mpharness.ROOT, "tools", "romfs.py")] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_tool_writes_an_image_and_names_bad_input(tmp_path):
    out = tmp_path / "x.romfs"
    proc = _tool("--march", "xtensawin", "-o", str(out))
    assert proc.returncode == 0, proc.stdout
    data = out.read_bytes()
    assert data[:3] == b"\xd2\xcd\x31" and b"zms_scan.mpy" in data and b"aioble_pm" in data
    proc = _tool("--march", "z80", "-o", str(out))
    assert proc.returncode != 0 and "--march must be one of" in proc.stdout
    proc = _tool("--march", "x64", "--aioble", str(tmp_path), "-o", str(out))
    assert proc.returncode != 0 and "holds no aioble package" in proc.stdout

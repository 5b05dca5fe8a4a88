"""The host tool tools/bond_export.py: its pure-Python AES-128 against FIPS-197, its
CMAC against RFC 4493, and exports written by the MicroPython PM read back with the key
(no secrets printed unless --secrets; wrong key or damaged file: an error, exit 1)."""
import os
import subprocess
import sys

import mpharness

sys.path.insert(0, os.path.join(mpharness.ROOT, "tools"))
import bond_export  # noqa: E402

TOOL = os.path.join(mpharness.ROOT, "tools", "bond_export.py")
H = bytes.fromhex
KEY = bytes(range(16))


def test_aes128_matches_fips197_appendix_c1_and_b():
    assert bond_export.aes128_encrypt(KEY, H("00112233445566778899aabbccddeeff")) == H("69c4e0d86a7b0430d8cdb78070b4c55a")
    # FIPS-197 appendix B
    assert bond_export.aes128_encrypt(H("2b7e151628aed2a6abf7158809cf4f3c"), H("3243f6a8885a308d313198a2e0370734")) == \
        H("3925841d02dc09fbdc118597196a0b32")
    assert bond_export.SBOX[0x00] == 0x63 and bond_export.SBOX[0x53] == 0xED  # FIPS-197 figure 7


def test_cmac_and_ctr_match_rfc4493_and_sp800_38a():
    k = H("2b7e151628aed2a6abf7158809cf4f3c")
    m = H("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411"
          "e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
    for n, tag in ((0, "bb1d6929e95937287fa37d129b756746"), (16, "070a16b46b4d4144f79bdd9dd04a287c"),
                   (40, "dfa66747de9ae63030ca32611497c827"), (64, "51f0bebf7e3b9d92fc49741779363cfe")):
        assert bond_export.cmac(k, m[:n]).hex() == tag
    assert bond_export.ctr(k, H("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"), m[:16]) == H("874d6191b620e3261bef6864990db6ce")


MAKE = """
import asyncio, aioble_pm
from pmsim import PM, Peer, accept, disconnect
async def main():
    a = PM()
    for i in range(2):
        p = Peer("phone%d" % i)
        h = await accept(a, p)
        await a.pm.secure(h)
        await disconnect(a, h)
    a.pm.pin(1, True)
    a.pm.set_app_data(0, b"abc")
    open("export.bin", "wb").write(a.pm.export(key=bytes(range(16))))
    for p in a.pm.peer_ids():
        i = a.pm.peer(p)
        print("ID", p, ":".join("%02x" % b for b in i.addr), i.rank)
asyncio.run(main())
"""


def make_export(tmp_path):
    proc = mpharness.run(["-c", MAKE], cwd=str(tmp_path), timeout=120)
    assert proc.returncode == 0, proc.stdout
    ids = [line.split()[1:] for line in proc.stdout.splitlines() if line.startswith("ID ")]
    return (tmp_path / "export.bin").read_bytes(), ids


def run_tool(*args):
    return subprocess.run([sys.executable, TOOL, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_tool_reads_an_export_of_the_micropython_pm(tmp_path):
    data, ids = make_export(tmp_path)
    export = bond_export.parse(bond_export.open_export(data, KEY))
    assert [(str(p["peer_id"]), ":".join("%02x" % b for b in bond_export.sec_fields(p["peer"][7:])["addr"]), str(p["rank"]))
            for p in export["peers"]] == [tuple(i) for i in ids]
    assert [p["pinned"] for p in export["peers"]] == [False, True]
    assert export["peers"][0]["app"] == b"abc"
    assert len(export["our_irk"]) == 16
    out = run_tool(str(tmp_path / "export.bin"), "--key", KEY.hex())
    assert out.returncode == 0, out.stderr
    assert "2 bond(s)" in out.stdout and "pinned" in out.stdout and ids[0][1] in out.stdout
    ltk = bond_export.sec_fields(export["peers"][0]["peer"][7:])["ltk"].hex()
    assert ltk not in out.stdout and "LTK" not in out.stdout and export["our_irk"].hex() not in out.stdout
    out = run_tool(str(tmp_path / "export.bin"), "--key", KEY.hex(), "--secrets")
    assert ltk in out.stdout and export["our_irk"].hex() in out.stdout


def test_tool_refuses_a_wrong_key_or_damaged_file(tmp_path):
    data, _ = make_export(tmp_path)
    out = run_tool(str(tmp_path / "export.bin"), "--key", "00" * 16)
    assert out.returncode == 1 and "authentication failed" in out.stderr
    bad = bytearray(data)
    bad[20] ^= 0x40
    (tmp_path / "bad.bin").write_bytes(bytes(bad))
    out = run_tool(str(tmp_path / "bad.bin"), "--key", KEY.hex())
    assert out.returncode == 1 and "authentication failed" in out.stderr
    out = run_tool(str(tmp_path / "export.bin"), "--key", "abcd")
    assert out.returncode == 2 and "32 hex digits" in out.stderr

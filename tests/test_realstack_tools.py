"""The real-NimBLE harness's own parts, checked without btvirt (so they run in CI):
the AF_ALG shim against FIPS-197 and RFC 4493, the relay's H4 framing and ordering,
build.sh's pin checks, and what the bench says is missing."""
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

import mpharness

RS = os.path.join(mpharness.ROOT, "tools", "realstack")
sys.path.insert(0, RS)
import bed  # noqa: E402
import hcirelay  # noqa: E402

# FIPS-197 appendix C.1; RFC 4493 section 4 (the four AES-CMAC examples)
AES_KEY, AES_PT, AES_CT = bytes(range(16)), "00112233445566778899aabbccddeeff", "69c4e0d86a7b0430d8cdb78070b4c55a"
CMAC_KEY = "2b7e151628aed2a6abf7158809cf4f3c"
CMAC_MSG = ("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
            "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
CMAC = {0: "bb1d6929e95937287fa37d129b756746", 16: "070a16b46b4d4144f79bdd9dd04a287c",
        40: "dfa66747de9ae63030ca32611497c827", 64: "51f0bebf7e3b9d92fc49741779363cfe"}

# BlueZ's call pattern (src/shared/crypto.c), through Python's socket module
DRIVER = textwrap.dedent("""
    import socket, sys
    def op(kind, name, key):
        s = socket.socket(socket.AF_ALG, socket.SOCK_SEQPACKET, 0)
        s.bind((kind, name))
        s.setsockopt(socket.SOL_ALG, socket.ALG_SET_KEY, key)
        return s.accept()[0]
    ecb = op("skcipher", "ecb(aes)", bytes(range(16)))
    ecb.sendmsg_afalg([bytes.fromhex(sys.argv[1])], op=socket.ALG_OP_ENCRYPT)
    print(ecb.recv(16).hex())
    key, msg = bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3])
    for n in (0, 16, 40, 64):
        c = op("hash", "cmac(aes)", key)
        c.send(msg[:n])
        print(n, c.recv(16).hex())
    with open(sys.argv[4], "w") as f:  # ordinary files and sockets still reach libc
        f.write("ok")
    print(socket.socketpair()[0].family == socket.AF_UNIX)
""")


def _libcrypto():
    out = subprocess.run(["gcc", "-print-file-name=libcrypto.so.3"], capture_output=True, text=True).stdout.strip()
    return os.path.isabs(out) and os.path.exists(out)


@pytest.mark.skipif(not shutil.which("gcc"), reason="gcc not found (Debian package gcc)")
def test_afalg_shim_matches_fips197_and_rfc4493(tmp_path):
    if not _libcrypto():
        pytest.skip("OpenSSL 3's libcrypto.so.3 not found (Debian package libssl3)")
    so = tmp_path / "afalg_shim.so"
    subprocess.run(["sh", os.path.join(RS, "build_shim.sh"), str(so)], check=True)
    (tmp_path / "driver.py").write_text(DRIVER)
    env = dict(os.environ, LD_PRELOAD=str(so))
    out = subprocess.run([sys.executable, str(tmp_path / "driver.py"), AES_PT, CMAC_KEY, CMAC_MSG,
                          str(tmp_path / "file.txt")], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("\n")
    assert lines[0] == AES_CT
    for n, line in zip(CMAC, lines[1:5]):
        assert line == "%d %s" % (n, CMAC[n])
    assert lines[5] == "True" and (tmp_path / "file.txt").read_text() == "ok"


def test_relay_splits_h4_packets_across_reads():
    s = hcirelay.Stream()
    cmd_complete = bytes.fromhex("040e0401030c00")
    acl = bytes.fromhex("022a200600020006000508")
    enc_change = bytes.fromhex("040804002a0001")
    data = cmd_complete + acl + enc_change
    got = []
    for i in range(0, len(data), 3):  # three bytes at a time, as a pty may give them
        got += s.packets(data[i:i + 3])
    assert got == [cmd_complete, acl, enc_change] and s.buf == b""


def test_relay_counts_att_pdus_both_ways(tmp_path):
    # host side: a command, then an ATT Read Request (CID 4) split over two reads;
    # controller side: an SMP PDU (CID 6), an ATT Read Response in two ACL fragments
    read_req = bytes.fromhex("0200000700" "0300" "0400" "0a1500")
    cmd = bytes.fromhex("01030c00")
    smp = bytes.fromhex("022a200600020006000508")
    rsp_start = bytes.fromhex("0200200500" "1600" "0400" "0b")
    rsp_cont = bytes.fromhex("0200100300" "102030")
    link = str(tmp_path / "hci0")
    att, host = hcirelay.AttCount(link + ".att"), hcirelay.Stream()
    assert open(link + ".att").read() == "0"
    att.add(host.packets(cmd + read_req[:5]))
    att.add(host.packets(read_req[5:]))
    att.add(hcirelay.Stream().packets(smp + rsp_start + rsp_cont))
    assert [hcirelay.is_att(p) for p in (read_req, cmd, smp, rsp_start, rsp_cont)] == [True, False, False, True, False]
    assert open(link + ".att").read() == "2"


def test_relay_holds_air_traffic_in_order():
    # command status/complete pass at once; events and data wait; nothing is reordered
    held = [p[0] == 0x02 or (p[0] == 0x04 and p[1] not in hcirelay._CMD_DONE)
            for p in (bytes.fromhex("040f0400011920"), bytes.fromhex("040804002a0001"), bytes.fromhex("040e0401030c00"))]
    assert held == [False, True, False]


def _fake_tree(tmp_path, pins):
    tree = tmp_path / "mp"
    (tree / "py").mkdir(parents=True)
    (tree / "py" / "mpconfig.h").write_text("")
    git = ["git", "-C", str(tree), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git + ["init", "-q"], check=True)
    for name, sha in pins.items():
        subprocess.run(git + ["update-index", "--add", "--cacheinfo", "160000,%s,lib/%s" % (sha, name)], check=True)
    subprocess.run(git + ["add", "py"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "t"], check=True)
    return tree


@pytest.mark.skipif(not shutil.which("git"), reason="git not found")
def test_build_sh_names_what_is_missing(tmp_path):
    build = os.path.join(RS, "build.sh")
    r = subprocess.run(["sh", build, "--micropython", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 2 and "not a MicroPython source tree" in r.stderr
    sha = "42849560ba7906f023f61e5f7ff3709ba2c1dfca"
    tree = _fake_tree(tmp_path, {"mynewt-nimble": sha, "axtls": "1" * 40, "micropython-lib": "2" * 40})
    r = subprocess.run(["sh", build, "--micropython", str(tree)], capture_output=True, text=True)
    assert r.returncode == 2 and "lib/mynewt-nimble is empty: pass --nimble DIR, a clone holding commit " + sha in r.stderr
    empty = tmp_path / "nimble"
    subprocess.run(["git", "init", "-q", str(empty)], check=True)
    r = subprocess.run(["sh", build, "--micropython", str(tree), "--nimble", str(empty)], capture_output=True, text=True)
    assert r.returncode == 2 and "has no commit %s (pinned for lib/mynewt-nimble)" % sha in r.stderr
    (tree / "lib" / "mynewt-nimble").mkdir(parents=True)
    (tree / "lib" / "mynewt-nimble" / ".aioble_pm-pin").write_text("0" * 40)
    r = subprocess.run(["sh", build, "--micropython", str(tree)], capture_output=True, text=True)
    assert r.returncode == 2 and "the tree pins %s: check out the pin or empty it" % sha in r.stderr


def test_bench_names_what_is_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no btvirt, no socat
    assert "btvirt not found (Debian package bluez-test-tools)" in bed.missing(None)


def test_bench_reads_btvirts_socket_paths_from_the_binary(tmp_path):
    exe = tmp_path / "btvirt"
    exe.write_bytes(b"\x7fELF\x00junk\x00/run/x/bt-server-le\x00/run/x/bt-server-bredrle\x00%s\x00")
    assert bed.btvirt_servers(str(exe)) == ("/run/x/bt-server-bredrle", ["/run/x/bt-server-bredrle", "/run/x/bt-server-le"])
    exe.write_bytes(b"\x7fELF\x00/run/x/bt-server-le\x00")
    with pytest.raises(RuntimeError, match="no bt-server-bredrle"):
        bed.btvirt_servers(str(exe))
    real = shutil.which("btvirt")
    if real:  # BlueZ's own binary, when installed: the path it serves on
        assert bed.btvirt_servers(real)[0].endswith("/bt-server-bredrle")

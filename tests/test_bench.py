"""The benchmarks run (quick mode) and print well-formed `bench:` lines. No timing is
asserted here: figures are compared in the benchmark output itself."""
import os
import re
import subprocess
import sys

import mpharness

LINE = re.compile(r"^bench: ([a-z0-9_]+) = (-?[0-9.]+) ([a-zA-Z/%]+)$")


def test_benchmarks_print_their_figures():
    proc = subprocess.run([sys.executable, os.path.join(mpharness.ROOT, "bench", "run.py"), "--quick"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    figures = {}
    for line in proc.stdout.splitlines():
        if line.startswith("bench:"):
            m = LINE.match(line)
            assert m, "malformed bench line: %r" % line
            figures[m.group(1)] = float(m.group(2))
    print(proc.stdout)
    for arch in ("x64", "x86", "xtensawin", "armv7emsp", "armv7emdp", "rv32imc"):
        assert figures["mpy_size_" + arch] > 0
    for name in ("resolver_miss_n32", "aes_floor_n32", "naive_miss_n32", "resolver_cache_hit_n32"):
        assert figures[name] > 0, name
    # host_footprint.py on the pinned binary: the core from .mpy files and from a ROMFS
    # image, and the optional parts measured separately (issue 10)
    for prefix in ("heap_pm_core_mpy_", "heap_pm_core_romfs_", "heap_opt_whitelist_mpy_",
                   "heap_opt_bonding_path_romfs_", "heap_opt_all_mpy_"):
        assert any(k.startswith(prefix) and v > 0 for k, v in figures.items()), prefix

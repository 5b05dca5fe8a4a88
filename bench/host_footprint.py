"""Footprint of the Peer Manager's core against aioble's own, per `micropython` binary,
side by side in one run (issue 10): heap of `import aioble` vs the core (import +
PeerManager() + sec_params + attach) from .py and from .mpy (pinned mpy-cross, the
binary's architecture) and from a ROMFS image of the same .mpy files (tools/romfs.py,
run in place), the heap each optional module adds when it first loads, the import
nesting of attach() and the C stack it needs, and,
for a binary given explicitly, every bench/bench_*.py (hot paths, heap per peer, boot).
Host-side (CPython).

    python bench/host_footprint.py [quick]
    AIOBLE_PM_BENCH_MICROPYTHON=path/micropython,path/micropython-32 python bench/host_footprint.py

A binary built with `tools/realstack/build.sh --frozen` (aioble_pm and aioble frozen in, as
on a board) gets `frozen` lines instead, measured from the firmware's modules.

Default binary: the pinned wheel's (bench/run.py already runs the bench_*.py files on it).
A binary without a `bluetooth` module gets the simulator's (tests/lib/bluetooth.py), whose
BLE object allocates heap of its own: each line's tag says which one ran (`_bt`: the
binary's own module, `_sim`: the simulator). aioble is taken from ~/.micropython/lib
(where `mip install aioble` puts it); without it the aioble lines are skipped.
"""
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "lib"))
import mpharness  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools"))
import romfs  # noqa: E402

AIOBLE_LIB = os.path.expanduser("~/.micropython/lib")
# sys.implementation._mpy >> 10: MicroPython's native architecture numbers
ARCHS = {1: "x86", 2: "x64", 3: "armv6", 4: "armv6m", 5: "armv7m", 6: "armv7em",
         7: "armv7emsp", 8: "armv7emdp", 9: "xtensa", 10: "xtensawin", 11: "rv32imc"}
THREAD_MARGIN = 8192  # ports/unix/mpthreadport.c: a thread's limit is its stack size minus this

PROBE = """
import sys
try:
    import bluetooth
    bt = 1
except ImportError:
    bt = 0
try:
    import cryptolib
    cr = 1
except ImportError:
    cr = 0
try:  # (only the firmware's frozen modules are on the path here)
    import aioble_pm
    fz = 1
except ImportError:
    fz = 0
print("probe", getattr(sys.implementation, "_mpy", 0) >> 10 & 15, int(sys.maxsize > 1 << 32), bt, cr, fz)
"""

HEAP = """
import gc, sys, bluetooth, asyncio
%(setup)s
%(pre)s
gc.collect()
gc.collect()
before = gc.mem_alloc()
%(body)s
gc.collect()
gc.collect()
print("heap", gc.mem_alloc() - before)
print("modules", " ".join(sorted(m[10:] for m in sys.modules if m.startswith("aioble_pm."))))
"""
AIOBLE_BODY = "import aioble"
PM_BODY = """import aioble_pm
pm = aioble_pm.PeerManager()
pm.sec_params(bond=True)
pm.attach(%s)"""

# every module load (not a lookup of a loaded one) with the C stack in use when it starts;
# the wrapper adds a frame per level, so these are upper figures: the thread probe is exact
TRACE = """
import sys, builtins, micropython
_imp = builtins.__import__
chain = []
deepest = [0, "", 0]
def imp(name, g=None, l=None, fl=(), level=0):
    target = name
    if level and g:
        base = g["__name__"]
        if "__path__" not in g:
            base = base.rsplit(".", 1)[0]
        target = base + ("." + name if name else "")
    if fl and not name:
        target += "." + fl[0]
    new = target not in sys.modules
    if new:
        chain.append(target)
        used = micropython.stack_use()
        if len(chain) > deepest[0]:
            deepest[:] = [len(chain), " > ".join(chain), used]
    try:
        return _imp(name, g, l, fl, level)
    finally:
        if new:
            chain.pop()
builtins.__import__ = imp
try:
    %(work)s
    print("outcome ok")
except Exception as e:
    print("outcome", type(e).__name__, e)
print("depth", deepest[0], deepest[2])
print("chain", deepest[1])
"""

PLAIN = """
try:
    %(work)s
    print("outcome ok")
except Exception as e:
    print("outcome", type(e).__name__, e)
"""

THREAD = """
import _thread
res = []
done = _thread.allocate_lock()
done.acquire()
def run():
    try:
        %(work)s
        res.append("ok")
    except Exception as e:
        res.append("%%s %%s" %% (type(e).__name__, e))
    done.release()
_thread.stack_size(%(size)d)
_thread.start_new_thread(run, ())
done.acquire()  # no time.sleep: the simulator's time.py would stand in
print("outcome", res[0])
"""


def binaries():
    given = os.environ.get("AIOBLE_PM_BENCH_MICROPYTHON", "")
    return [b.strip() for b in given.split(",") if b.strip()] or [mpharness.micropython_exe()]


def run(exe, code, path, cwd, timeout=120):
    with tempfile.NamedTemporaryFile("w", suffix=".py", dir=cwd, delete=False) as f:
        f.write(code)
    env = dict(os.environ, MICROPYPATH=os.pathsep.join(path))
    proc = subprocess.run([exe, f.name], cwd=cwd, env=env, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    os.unlink(f.name)
    return proc.stdout


def field(out, key):
    m = re.search(r"^%s (.*)$" % key, out, re.M)
    if not m:
        raise RuntimeError("no '%s' line in:\n%s" % (key, out))
    return m.group(1)


class Binary:
    def __init__(self, exe, tmp):
        self.exe = exe
        out = run(exe, PROBE, [".frozen"], tmp)
        arch, wide, bt, self.crypto, self.frozen = (int(v) for v in field(out, "probe").split())
        self.arch = ARCHS.get(arch) or ("x64" if wide else "x86")
        self.bt = bool(bt)
        self.tag = self.arch + ("_bt" if bt else "_sim") + ("_fz" if self.frozen else "")
        # the simulator's bluetooth and its helpers only where the binary has none: a
        # built-in bluetooth is extensible, so tests/lib/bluetooth.py would shadow it
        self.sim = [] if bt else [mpharness.LIB, mpharness.TESTS]

    def describe(self):
        return "(%s: %s, %s, bluetooth: %s, cryptolib: %s, aioble_pm frozen in: %s)" % (
            self.tag, self.exe, self.arch,
            "the binary's own" if self.bt else "simulator (tests/lib, allocates heap of its own)",
            "yes" if self.crypto else "no", "yes" if self.frozen else "no")


def compile_tree(arch, out):
    """aioble_pm/ (and aioble, if installed) as .mpy files for `arch`, under `out`."""
    trees = [(os.path.join(mpharness.ROOT, "aioble_pm"), "aioble_pm")]
    if os.path.isdir(os.path.join(AIOBLE_LIB, "aioble")):
        trees.append((os.path.join(AIOBLE_LIB, "aioble"), "aioble"))
    for src, name in trees:
        os.makedirs(os.path.join(out, name), exist_ok=True)
        for f in sorted(os.listdir(src)):
            if f.endswith(".py"):
                subprocess.run([mpharness.mpy_cross_exe(), "-march=" + arch, "-o",
                                os.path.join(out, name, f[:-3] + ".mpy"), os.path.join(src, f)], check=True)
    return out


# kind "romfs": the .mpy files in a ROMFS image (tools/romfs.py) mounted at /rom before
# the measurement, /rom/lib first on sys.path, as a board with a ROMFS partition boots
ROMFS_SETUP = """import vfs
vfs.mount(vfs.VfsRom(open(%r, "rb").read()), "/rom")
sys.path.insert(0, "/rom/lib")"""


def heap_lines(b, kind, path, tmp, have_aioble, setup=""):
    if have_aioble:
        out = run(b.exe, HEAP % {"setup": setup, "pre": "", "body": AIOBLE_BODY}, path, tmp)
        aioble = int(field(out, "heap"))
        print("bench: heap_aioble_import_%s_%s = %d bytes" % (kind, b.tag, aioble))
        pm_pre, pm_body = "import aioble", PM_BODY % ""
    else:
        print("(%s, %s: aioble lines skipped: no aioble in %s)" % (b.tag, kind, AIOBLE_LIB))
        pm_pre, pm_body = "ble = bluetooth.BLE()", PM_BODY % "ble"
    work = tempfile.mkdtemp(dir=tmp)  # PeerManager(): a FileFlash ./bonds.zms here
    out = run(b.exe, HEAP % {"setup": setup, "pre": pm_pre, "body": pm_body}, path, work)
    pm = int(field(out, "heap"))
    print("bench: heap_pm_core_%s_%s = %d bytes" % (kind, b.tag, pm))
    core = field(out, "modules").split()
    print("(%s, %s: the core loaded %d modules: %s)" % (b.tag, kind, len(core), " ".join(core)))
    if have_aioble:
        print("bench: heap_pm_core_vs_aioble_%s_%s = %.2f x" % (kind, b.tag, pm / aioble))
    sys.stdout.flush()
    return core


# what the first bond loads beyond the core: secure(), the bond's storage, the method
# table and passkeys, the repeated-attempts tracker (its first failure)
BONDING_PATH = ("secproc", "bonding", "pairing", "attempts")


def optional_lines(b, kind, path, tmp, core, have_aioble, setup=""):
    """Heap each optional module adds when it first loads after the core (issue 10: the
    optional parts are measured separately), with what it pulled in; then the bonding
    path together and every optional module together. Objects a call makes (a
    whitelist's tables, a database cache) come on top."""
    pre = ("import aioble\n" if have_aioble else "ble = bluetooth.BLE()\n") + PM_BODY % ("" if have_aioble else "ble")
    names = sorted(f[:-3] for f in os.listdir(os.path.join(mpharness.ROOT, "aioble_pm"))
                   if f.endswith(".py") and f[:-3] not in core and f != "__init__.py")
    groups = [(n, (n,)) for n in names] + [("bonding_path", BONDING_PATH), ("all", names)]
    for label, mods in groups:
        body = "from aioble_pm import " + ", ".join(mods)
        out = run(b.exe, HEAP % {"setup": setup, "pre": pre, "body": body}, path, tempfile.mkdtemp(dir=tmp))
        extra = sorted(set(field(out, "modules").split()) - set(core) - set(mods))
        print("bench: heap_opt_%s_%s_%s = %s bytes" % (label, kind, b.tag, field(out, "heap")))
        if extra and label != "all":
            print("(%s, %s: %s also loaded %s)" % (b.tag, kind, label, " ".join(extra)))
    sys.stdout.flush()


def need(b, work, path, tmp):
    """The smallest C stack limit (bytes, 512-byte steps) `work` runs in, in a thread."""
    def ok(limit):
        out = run(b.exe, THREAD % {"work": work, "size": limit + THREAD_MARGIN}, path, tempfile.mkdtemp(dir=tmp))
        return "\noutcome ok" in "\n" + out  # a crash (no outcome line) is a failure too

    lo, hi = 2048, 160 * 1024
    if not ok(hi):
        return None
    while hi - lo > 512:
        mid = (lo + hi) // 2 // 512 * 512
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


def stack_lines(b, kind, path, tmp, have_aioble, quick):
    if have_aioble:
        work, label = "import aioble_pm; aioble_pm.PeerManager().attach()", "attach"
    else:
        work, label = "import aioble_pm, bluetooth; aioble_pm.PeerManager().attach(bluetooth.BLE())", "attach_raw"
        print("(%s, %s: no aioble: nesting of attach(ble) instead of attach())" % (b.tag, kind))
    out = run(b.exe, PLAIN % {"work": work}, path, tempfile.mkdtemp(dir=tmp))
    print("(%s, %s: `%s` on the main thread: %s)" % (b.tag, kind, work, field(out, "outcome")))
    if b.bt:  # the simulator's bluetooth shadows the binary's (it is extensible): the test setup
        out = run(b.exe, PLAIN % {"work": work}, [mpharness.LIB, mpharness.TESTS] + path, tempfile.mkdtemp(dir=tmp))
        print("(%s, %s: same with the simulator's bluetooth on the path: %s)" % (b.tag, kind, field(out, "outcome")))
    out = run(b.exe, TRACE % {"work": work}, path, tempfile.mkdtemp(dir=tmp))
    depth, used = field(out, "depth").split()
    print("bench: import_depth_%s_%s_%s = %s modules" % (label, kind, b.tag, depth))
    print("bench: cstack_at_deepest_import_%s_%s_%s = %s bytes" % (label, kind, b.tag, used))
    print("(%s, %s: deepest chain: %s)" % (b.tag, kind, field(out, "chain")))
    if have_aioble:
        out = run(b.exe, TRACE % {"work": "import aioble"}, path, tempfile.mkdtemp(dir=tmp))
        depth, used = field(out, "depth").split()
        print("bench: import_depth_aioble_%s_%s = %s modules" % (kind, b.tag, depth))
        print("(%s, %s: deepest chain of import aioble: %s)" % (b.tag, kind, field(out, "chain")))
    if not quick:  # bisection: a dozen processes per figure
        for name, w in [(label, work)] + ([("aioble", "import aioble")] if have_aioble else []):
            n = need(b, w, path, tmp)
            print("bench: cstack_need_%s_%s_%s = %s bytes" % (name, kind, b.tag, n if n else "over 160K"))
    sys.stdout.flush()


def bench_lines(b, quick, tmp):
    """Every bench/bench_*.py on this binary (the hot paths, heap per peer, boot), lines
    tagged; those that need the simulator only where the binary has no bluetooth."""
    # tests/lib's bluetooth.py stays off the path of a binary that has its own; a
    # firmware's frozen aioble_pm comes before the repository's
    path = mpharness.micropython_path() if b.sim else os.pathsep.join(
        [".frozen", mpharness.ROOT] if b.frozen else [mpharness.ROOT, ".frozen"])
    env = dict(os.environ, MICROPYPATH=path)
    for name in sorted(os.listdir(HERE)):
        if not (name.startswith("bench_") and name.endswith(".py")):
            continue
        with open(os.path.join(HERE, name)) as f:
            if not b.sim and "import blesim" in f.read():
                print("(%s: %s skipped: it needs the simulator's bluetooth)" % (b.tag, name))
                continue
        proc = subprocess.run([b.exe, os.path.join(HERE, name)] + (["quick"] if quick else []),
                              cwd=tempfile.mkdtemp(dir=tmp), env=env, timeout=1800,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout.splitlines():
            m = re.match(r"bench: (\w+) = (.*)$", line)
            print("bench: %s_%s = %s" % (m.group(1), b.tag, m.group(2)) if m else "(%s) %s" % (b.tag, line))
        if proc.returncode:
            raise RuntimeError("%s failed on %s" % (name, b.exe))
        sys.stdout.flush()


def main():
    quick = "quick" in sys.argv
    explicit = bool(os.environ.get("AIOBLE_PM_BENCH_MICROPYTHON"))
    have_aioble = os.path.isdir(os.path.join(AIOBLE_LIB, "aioble"))
    with tempfile.TemporaryDirectory(prefix="footprint-") as tmp:
        seen, mpy = set(), {}
        for exe in binaries():
            b = Binary(exe, tmp)
            while b.tag in seen:
                b.tag += "x"
            seen.add(b.tag)
            print(b.describe())
            if b.arch not in mpy:
                mpy[b.arch] = compile_tree(b.arch, os.path.join(tmp, "mpy-" + b.arch))
            kinds = [("py", [mpharness.ROOT, AIOBLE_LIB, ".frozen"] + b.sim),
                     ("mpy", [mpy[b.arch], ".frozen"] + b.sim)]
            if b.frozen:  # a build.sh --frozen binary: aioble_pm and aioble in its firmware,
                # whose names are in ROM then: .py/.mpy loads would intern fewer strings
                print("(%s: frozen lines only: .py/.mpy figures come from a binary without them)" % b.tag)
                kinds = [("frozen", [".frozen"] + b.sim)]
            for kind, path in kinds:
                core = heap_lines(b, kind, path, tmp, have_aioble or kind == "frozen")
                optional_lines(b, kind, path, tmp, core, have_aioble or kind == "frozen")
                stack_lines(b, kind, path, tmp, have_aioble or kind == "frozen", quick)
            if not b.frozen:  # the same .mpy files, run in place from a ROMFS image
                image = os.path.join(tmp, "pm-%s.romfs" % b.arch)
                with open(image, "wb") as f:
                    f.write(romfs.build(b.arch, os.path.join(AIOBLE_LIB, "aioble") if have_aioble else None))
                setup, path = ROMFS_SETUP % image, [".frozen"] + b.sim
                core = heap_lines(b, "romfs", path, tmp, have_aioble, setup)
                optional_lines(b, "romfs", path, tmp, core, have_aioble, setup)
            if explicit:
                bench_lines(b, quick, tmp)
        if not explicit:
            print("(the bench_*.py lines of the pinned binary: bench/run.py prints them)")


if __name__ == "__main__":
    main()

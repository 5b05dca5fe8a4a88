# `micropython romfs_boot.py IMAGE SCRIPT [ARGS]`: boots a board with aioble_pm (and
# aioble) imported from a ROMFS image (tools/romfs.py), mounted at /rom with /rom/lib
# first on sys.path as a board with a ROMFS partition boots; then runs SCRIPT as __main__
# with ARGS (AIOBLE_PM_ROMFS=1, see stacks.py).
import sys
import vfs

vfs.mount(vfs.VfsRom(open(sys.argv.pop(1), "rb").read()), "/rom")
sys.path.insert(0, "/rom/lib")
import aioble_pm  # noqa: E402

if not aioble_pm.__file__.startswith("/rom/lib/"):
    raise SystemExit("romfs_boot: aioble_pm came from %s, not the image" % aioble_pm.__file__)
path = sys.argv.pop(1)
with open(path) as f:
    code = f.read()
exec(compile(code, path, "exec"), {"__name__": "__main__"})

# Runs an unmodified aioble app (argv[1]) with its IRQs traced (irqtrace.py): aioble is
# imported first and its dispatcher wrapped, then the app runs as __main__.
import sys
import aioble  # noqa: F401  (creates aioble's BLE object and installs its dispatcher)
import irqtrace

irqtrace.install_aioble()
path = sys.argv.pop(1)
with open(path) as f:
    code = f.read()
exec(compile(code, path, "exec"), {"__name__": "__main__"})

"""Host launcher for the demo: runs examples/demo.py on the MicroPython unix port with
the repository (and the BLE simulator in tests/) on MICROPYPATH."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
import mpharness  # noqa: E402

os.execve(mpharness.micropython_exe(),
          ["micropython", os.path.join(mpharness.ROOT, "examples", "demo.py")] + sys.argv[1:],
          mpharness.micropython_env())

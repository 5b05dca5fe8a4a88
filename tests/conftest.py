# The MicroPython test harness lives in lib/mpplugin.py (so it can also be loaded with -p);
# tests/lib holds the helpers, tests/ the test files.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from mpplugin import pytest_pycollect_makemodule  # noqa: F401

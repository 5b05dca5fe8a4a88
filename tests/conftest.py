# The MicroPython test harness lives in mpplugin.py (so it can also be loaded with -p).
from mpplugin import pytest_pycollect_makemodule  # noqa: F401

"""Fixtures of the two-stack scenarios: `stack` runs each scenario once on the simulator
and once on real NimBLE (marked `nimble`; see stacks.py for when it runs or skips)."""
import os

import pytest

import stacks


@pytest.fixture(params=["sim", pytest.param("nimble", marks=pytest.mark.nimble)])
def stack(request, tmp_path):
    if request.param == "nimble":
        why = stacks.nimble_missing()
        if why:
            if os.environ.get(stacks.ENV):
                pytest.fail(why)  # asked for the real stack: a missing piece is an error
            pytest.skip(why)
    with stacks.open_stack(request.param, str(tmp_path), n=3) as s:
        yield s
        for k, b in enumerate(s.boots):  # shown by pytest when the test failed
            print("--- %s#%d (%s)\n%s" % (b.name, k, s.name, b.out if b.out is not None else "(not waited for)"))


@pytest.fixture
def aioble_app(stack):
    """For scenarios that run unmodified aioble apps: aioble must be installed."""
    if stacks.aioble_dir() is None:
        why = "aioble not found on MICROPYPATH or in ~/.micropython/lib (see README: aioble for local runs)"
        if stack.name == "nimble":
            pytest.fail(why)
        pytest.skip(why)


@pytest.fixture
def cccd_firmware(stack):
    """For scenarios with a board on firmware with the CCCD module: on real NimBLE that
    is a second build (tools/realstack/build.sh --cccd); without it they are skipped."""
    if stack.name == "nimble":
        why = stacks.cccd_missing()
        if why:
            pytest.skip(why)

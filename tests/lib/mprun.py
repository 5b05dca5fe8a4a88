# MicroPython side of the test harness: `micropython mprun.py MODULE FUNCTION`.
# Imports MODULE, calls FUNCTION (running it under asyncio if it is async) and ends
# with one marker line that conftest.py reads. Failures print the MicroPython traceback.
import sys
import mptest

MARK = "\n@@mptest:"


def main():
    mod_name, func_name = sys.argv[1], sys.argv[2]
    try:
        mod = __import__(mod_name)
        result = getattr(mod, func_name)()
        if hasattr(result, "send"):  # async def -> generator-based coroutine
            import asyncio

            asyncio.run(result)
    except mptest.Skip as e:
        print(MARK + "SKIP " + str(e.args[0] if e.args else ""))
        return
    except BaseException as e:  # report everything, including SystemExit/KeyboardInterrupt
        sys.print_exception(e)
        print(MARK + "FAIL")
        sys.exit(1)
    print(MARK + "PASS")


main()

# Freeze description for MicroPython firmware builds (ports/*/boards/*/manifest.py can
# include() this file). aioble itself comes from micropython-lib.
metadata(
    description="Peer Manager for aioble: bonds on flash (ZMS records), peer IDs, security, privacy.",
    version="0.1.0",
    license="MIT",
)

require("aioble")

# opt=1 drops asserts (the package validates with exceptions, not asserts) but keeps line
# numbers for tracebacks; viper/native code is compiled to machine code for the target
# by the firmware's mpy-cross: board ports set the architecture; the unix port does not,
# so freeze into it with `make ... MPY_CROSS_FLAGS=-march=x64` (or x86 for a -m32 build).
# ESP32-C3/C6 (rv32imc) need mpy-cross >= 1.24 for the viper code.
package("aioble_pm", opt=1)

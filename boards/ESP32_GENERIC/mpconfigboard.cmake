# ESP32_GENERIC with a "bonds" partition and aioble_pm frozen in. Build with
#   make BOARD_DIR=<this directory>   (from micropython/ports/esp32)
include(boards/mpconfigboard_esp32_common.cmake)

# ESP-IDF resolves a relative partition-table path against the port directory, so write
# a one-line sdkconfig fragment that names our CSV by absolute path.
file(WRITE ${CMAKE_BINARY_DIR}/sdkconfig.bonds
    "CONFIG_PARTITION_TABLE_CUSTOM=y\nCONFIG_PARTITION_TABLE_CUSTOM_FILENAME=\"${MICROPY_BOARD_DIR}/partitions-bonds.csv\"\n")

list(APPEND SDKCONFIG_DEFAULTS
    boards/sdkconfig.csi
    ${CMAKE_BINARY_DIR}/sdkconfig.bonds
)

set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)

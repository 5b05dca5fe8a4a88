# Firmware manifest: the port's default modules plus aioble_pm (and aioble).
include("$(PORT_DIR)/boards/manifest.py")
include("$(BOARD_DIR)/../../manifest.py")

#define MICROPY_HW_BOARD_NAME "Generic ESP32 module with aioble_pm"
#define MICROPY_HW_MCU_NAME "ESP32"

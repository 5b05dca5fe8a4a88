# CMake ports (esp32, rp2): make USER_C_MODULES=<aioble_pm>/native/aioble_pm_cccd/micropython.cmake
add_library(usermod_aioble_pm_cccd INTERFACE)
target_sources(usermod_aioble_pm_cccd INTERFACE ${CMAKE_CURRENT_LIST_DIR}/aioble_pm_cccd.c)
target_link_libraries(usermod INTERFACE usermod_aioble_pm_cccd)

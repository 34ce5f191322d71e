# CMake toolchain file: bare-metal Cortex-M4F with arm-none-eabi-gcc (Debian: gcc-arm-none-eabi).
#   cmake -S GENERATED_FOLDER -B build -DCMAKE_TOOLCHAIN_FILE=firmware/cmake/cortex-m4.cmake
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_AR arm-none-eabi-ar)
set(CMAKE_RANLIB arm-none-eabi-ranlib)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)  # no startup code here: test the compiler on a library
set(CMAKE_C_FLAGS_INIT "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -ffunction-sections -fdata-sections")

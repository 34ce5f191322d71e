# Cortex-M33 (ARMv8-M mainline, single-precision FPU, DSP) on QEMU mps2-an505 (IoTKit), running in the
# Secure state it resets into: code in the Secure alias of SSRAM1 (0x10000000, where VTOR_S points at reset),
# data in the Secure alias of SSRAM2 (0x38000000). 20 MHz SysTick clock.
CPU                := cortex-m33
CPU_FLAGS          := -mcpu=cortex-m33 -mthumb -mfloat-abi=hard -mfpu=fpv5-sp-d16
FPU                := fpv5-sp-d16
FLOAT_ABI          := hard
MACHINE            := mps2-an505
BOARD              := mps2-an505
LDSCRIPT           := mps2-an505.ld
INSNS_PER_TICK_NUM := 50
INSNS_PER_TICK_DEN := 1

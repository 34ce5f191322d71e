# Cortex-M7 (ARMv7E-M, double-precision FPU) on QEMU mps2-an500: 25 MHz SysTick clock.
CPU                := cortex-m7
CPU_FLAGS          := -mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-d16
FPU                := fpv5-d16
FLOAT_ABI          := hard
MACHINE            := mps2-an500
BOARD              := mps2-an500
LDSCRIPT           := mps2.ld
INSNS_PER_TICK_NUM := 40
INSNS_PER_TICK_DEN := 1

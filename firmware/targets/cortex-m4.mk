# Cortex-M4F (ARMv7E-M, single-precision FPU) on QEMU mps2-an386: 25 MHz SysTick clock.
CPU                := cortex-m4
CPU_FLAGS          := -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
FPU                := fpv4-sp-d16
FLOAT_ABI          := hard
MACHINE            := mps2-an386
BOARD              := mps2-an386
LDSCRIPT           := mps2.ld
INSNS_PER_TICK_NUM := 40
INSNS_PER_TICK_DEN := 1

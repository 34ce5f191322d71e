# Cortex-M3 (ARMv7-M) on QEMU mps2-an385: 25 MHz SysTick clock.
CPU                := cortex-m3
CPU_FLAGS          := -mcpu=cortex-m3 -mthumb -mfloat-abi=soft
FPU                := none
FLOAT_ABI          := soft
MACHINE            := mps2-an385
BOARD              := mps2-an385
LDSCRIPT           := mps2.ld
# -icount shift=0: 1 instruction = 1 ns of virtual time; 25 MHz -> 40 instructions per SysTick tick.
INSNS_PER_TICK_NUM := 40
INSNS_PER_TICK_DEN := 1

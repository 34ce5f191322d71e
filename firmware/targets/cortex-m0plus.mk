# Cortex-M0+ (ARMv6-M): compile and link only; QEMU has no Cortex-M0+ board.
# Memory map: a generic small MCU, 256 KB flash at 0x00000000 and 32 KB SRAM at 0x20000000
# (for example a SAMD21G18); change ld/generic-m0plus.ld to your part.
CPU                := cortex-m0plus
CPU_FLAGS          := -mcpu=cortex-m0plus -mthumb -mfloat-abi=soft
FPU                := none
FLOAT_ABI          := soft
MACHINE            :=
BOARD              := generic-m0plus
LDSCRIPT           := generic-m0plus.ld
# No emulator: on hardware, SysTick on the processor clock counts core cycles (1 tick = 1 cycle).
INSNS_PER_TICK_NUM := 1
INSNS_PER_TICK_DEN := 1

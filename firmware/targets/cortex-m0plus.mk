# Cortex-M0+ code (ARMv6-M) on QEMU microbit: the BBC micro:bit's nRF51822 has a Cortex-M0, whose instruction set
# the M0+ shares (ARMv6-M), 256 KB of flash at 0x00000000 and 16 KB of SRAM at 0x20000000.
# QEMU's model gives the core the architectural SysTick on the 16 MHz system clock (the nRF51 silicon itself has
# none: on hardware, time with TIMER0 or RTC instead); under -icount shift=0 one tick is 1e9 / 16e6 = 62.5
# instructions, calibrated with app/calib.
CPU                := cortex-m0plus
CPU_FLAGS          := -mcpu=cortex-m0plus -mthumb -mfloat-abi=soft
FPU                := none
FLOAT_ABI          := soft
MACHINE            := microbit
BOARD              := microbit
LDSCRIPT           := microbit.ld
INSNS_PER_TICK_NUM := 125
INSNS_PER_TICK_DEN := 2

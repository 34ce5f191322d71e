# Cortex-M55 (ARMv8.1-M mainline, MVE integer + float, double-precision FPU) on QEMU mps3-an547
# (Corstone SSE-300), Secure state: code in the ITCM (Secure alias 0x10000000), data in the DTCM
# (Secure alias 0x30000000). 32 MHz SysTick clock: 31.25 instructions per tick.
CPU                := cortex-m55
CPU_FLAGS          := -mcpu=cortex-m55 -mthumb -mfloat-abi=hard
FPU                := auto: +mve.fp+fp.dp (FPv5 double precision and MVE, implied by -mcpu=cortex-m55)
FLOAT_ABI          := hard
MACHINE            := mps3-an547
BOARD              := mps3-an547
LDSCRIPT           := mps3-an547.ld
INSNS_PER_TICK_NUM := 125
INSNS_PER_TICK_DEN := 4

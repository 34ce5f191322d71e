/*
 * delrec_port: the timing port of the firmware, on the SysTick timer every Cortex-M core has.
 *
 *   port_timer_init()  start SysTick on the processor clock (CSR = CLKSOURCE | TICKINT | ENABLE), reload
 *                      0xFFFFFF, and count its wraps in SysTick_Handler
 *   port_ticks()       ticks since port_timer_init(), 64 bits, monotonic; wraps are counted in the interrupt
 *                      and the read is race-free (interrupts masked for a few instructions, a wrap that is
 *                      pending but not yet counted is detected through ICSR.PENDSTSET)
 *
 * What a tick means. Under QEMU with `-icount shift=0` every executed guest instruction advances the virtual
 * clock by exactly 1 ns, and SysTick counts that virtual clock at the board's CPU clock frequency, so
 *
 *     emulator instructions = ticks * PORT_INSNS_PER_TICK_NUM / PORT_INSNS_PER_TICK_DEN
 *
 * These are instructions executed by the emulator, not cycles: QEMU models no pipeline, caches, wait
 * states, multi-cycle multiplies or load latencies. They are exactly reproducible, and a fair measure of how
 * much code the model executes per step or per inference. Calibrated ratios (firmware/app/calib):
 *
 *     board         core        SysTick clock   NUM/DEN
 *     mps2-an385    cortex-m3   25 MHz          40/1
 *     mps2-an386    cortex-m4   25 MHz          40/1
 *     mps2-an500    cortex-m7   25 MHz          40/1
 *     mps2-an505    cortex-m33  20 MHz          50/1
 *     mps3-an547    cortex-m55  32 MHz          125/4   (31.25 instructions per tick)
 *
 * The build (targets/<target>.mk) passes the ratio as -D flags. On real hardware SysTick on the processor
 * clock counts core clock cycles; the default 1/1 then makes the "instruction" figures cycle counts.
 *
 *   port_printf        the apps' console output: newlib's iprintf (printf without floating point, which
 *                      -std=c99 leaves undeclared) where newlib is the C library, else printf
 */
#ifndef DELREC_PORT_H
#define DELREC_PORT_H

#include <stdint.h>
#include <stdio.h>

#if defined(__NEWLIB__)
int iprintf(const char *format, ...) __attribute__((format(printf, 1, 2))); /* hidden by -std=c99 */
#define port_printf iprintf
#else
#define port_printf printf
#endif

#ifndef PORT_INSNS_PER_TICK_NUM
#define PORT_INSNS_PER_TICK_NUM 1
#endif
#ifndef PORT_INSNS_PER_TICK_DEN
#define PORT_INSNS_PER_TICK_DEN 1
#endif

#ifdef __cplusplus
extern "C" {
#endif

void port_timer_init(void);
uint64_t port_ticks(void);

#ifdef __cplusplus
}
#endif

#endif /* DELREC_PORT_H */

/*
 * Calibration app: checks the board's instructions-per-SysTick-tick ratio (PORT_INSNS_PER_TICK_NUM/DEN)
 * under QEMU -icount shift=0 by timing a loop of a known number of instructions, and checks port_ticks().
 *
 *   make -C firmware TARGET=cortex-m4 APP=calib BUILD_DIR=/tmp/calib-m4 run
 *
 * The loop is two instructions per iteration (subs + bne); the difference between two loop lengths cancels
 * the fixed cost of the calls around it. Build with EXTRA_CFLAGS=-DCALIB_WRAP to also watch port_ticks()
 * across a SysTick wrap (2^24 ticks: about 0.7e9 emulated instructions, several seconds of QEMU).
 * Exit status 0 when the measured ratio matches the configured one to within one tick.
 */
#include <stdint.h>
#include <stdio.h>

#include "delrec_port.h"

#if defined(__thumb__) && !defined(__thumb2__)
#define CALIB_UNIFIED ".syntax unified\n\t"
#define CALIB_DIVIDED ".syntax divided\n\t"
#else
#define CALIB_UNIFIED
#define CALIB_DIVIDED
#endif

static char calib_stdout_buffer[128];

static uint64_t calib_loop(uint32_t iterations)
{
    uint32_t n = iterations;
    uint64_t t0 = port_ticks(), t1;
    /* GCC emits Thumb-1 (ARMv6-M) inline assembly in divided syntax: switch to unified for it. */
    __asm__ volatile(CALIB_UNIFIED
                     "1:\n\t"
                     "subs %0, %0, #1\n\t"
                     "bne 1b\n\t" CALIB_DIVIDED
                     : "+l"(n)
                     :
                     : "cc");
    t1 = port_ticks();
    return t1 - t0;
}

int main(void)
{
    const uint32_t n1 = 1000000u, n2 = 9000000u;
    uint64_t a, b, c, d_ticks, d_insns, lhs, rhs, diff;
    int ok;
    (void)setvbuf(stdout, calib_stdout_buffer, _IOLBF, sizeof calib_stdout_buffer);
    port_timer_init();

    a = port_ticks();
    b = port_ticks();
    printf("calib configured insns_per_tick=%lu/%lu\n", (unsigned long)PORT_INSNS_PER_TICK_NUM,
           (unsigned long)PORT_INSNS_PER_TICK_DEN);
    printf("calib back_to_back_ticks=%llu\n", (unsigned long long)(b - a));

    a = calib_loop(n1);
    c = calib_loop(n2);
    d_ticks = c - a;
    d_insns = 2u * (uint64_t)(n2 - n1);
    printf("calib loop insns=%llu ticks=%llu\n", (unsigned long long)(2u * (uint64_t)n1), (unsigned long long)a);
    printf("calib loop insns=%llu ticks=%llu\n", (unsigned long long)(2u * (uint64_t)n2), (unsigned long long)c);
    printf("calib measured insns_per_tick=%llu/%llu\n", (unsigned long long)d_insns, (unsigned long long)d_ticks);
    lhs = d_insns * PORT_INSNS_PER_TICK_DEN;
    rhs = d_ticks * PORT_INSNS_PER_TICK_NUM;
    diff = lhs > rhs ? lhs - rhs : rhs - lhs;
    ok = diff <= (uint64_t)PORT_INSNS_PER_TICK_NUM;
    printf("calib ratio %s\n", ok ? "ok" : "MISMATCH");

#ifdef CALIB_WRAP
    {
        uint64_t prev = port_ticks(), now, max_step = 0u;
        const uint64_t target = prev + 9ull * (1ull << 21); /* 1.125 wraps of 2^24 ticks */
        int monotonic = 1;
        do {
            now = port_ticks();
            if (now < prev) monotonic = 0;
            if (now - prev > max_step) max_step = now - prev;
            prev = now;
        } while (now < target);
        printf("calib wrap ticks=%llu monotonic=%d max_step=%llu\n", (unsigned long long)now, monotonic,
               (unsigned long long)max_step);
        if (!monotonic || max_step > 16u) ok = 0;
    }
#endif
    printf("done\n");
    return ok ? 0 : 1;
}

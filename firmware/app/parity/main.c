/*
 * Parity app: runs the generated model on the test samples of app_config.h and prints every value the host
 * compares with the integer reference model, plus SysTick counts (see port/delrec_port.h).
 *
 * Model-agnostic: app_config.h (generated into APP_DIR) includes the model header and maps the prefixed
 * API onto APP_STATE, APP_RESET, APP_STEP, APP_CLASSIFY, APP_PREDICT, APP_N_INPUTS, APP_N_CLASSES, and
 * provides APP_N_STEPS, APP_N_SAMPLES, APP_MODEL_SHA256, APP_HASH_INIT, app_inputs[][] and app_hash_state().
 *
 * For every sample i:
 *   1. reset a static state, run APP_N_STEPS steps with APP_STEP, timing each call alone with port_ticks()
 *      (sum and maximum of the per-step deltas) and measuring its stack by painting (below), folding the state
 *      into the hash after each step (untimed), then APP_PREDICT;
 *   2. run the sample again with APP_CLASSIFY on a second static state, timed as a whole.
 * Output (stdout, semihosting):
 *   delrec-parity 2 samples=<N> steps=<T> classes=<K> insns_per_tick=<NUM>/<DEN> model=<sha256>
 *   sample <i> class <c> hash <016x> step_ticks_sum <u64> step_ticks_max <u64> step_stack_max <bytes>
 *   readout <i> <u_0> ... <u_K-1>            final readout of the last APP_STEP (int32)
 *   scores <i> <s_0> ... <s_K-1>             the scores APP_CLASSIFY wrote (int64)
 *   classify <i> class <c> ticks <u64>
 *   ... (four lines per sample)
 *   done
 * Exit status 0; on the first model call that returns an error: a line "error ..." and status 1.
 *
 * Stack: before each step the free stack (from __StackLimit up to just below the stack pointer of main) is
 * filled with a pattern; after the step the lowest word that no longer holds it marks the deepest the step
 * went. step_stack_max is the largest such depth over the sample, in bytes from main's stack pointer at the
 * call: the step's frames and any interrupt frame pushed during it (SysTick). The painting is written inline
 * in main (a macro): a function doing it would paint over its own frame.
 */
#include <stdint.h>
#include <stdio.h>

#include "app_config.h"
#include "delrec_port.h"

/* newlib's integer-only printf (same format language, %lld/%llu included, no floating point): it keeps
   the double-precision formatting code (about 13 KB) out of the image. */
#define app_printf port_printf /* delrec_port.h */

extern uint32_t __StackLimit[]; /* linker script: the lowest address of the stack */
#define APP_STACK_PAINT 0x5ac3a55au

static inline uintptr_t app_sp(void)
{
    uintptr_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

/* fill [__StackLimit, top) with the pattern; `top` is main's stack pointer rounded down, minus one word */
#define APP_PAINT_STACK(top)                                                                                   \
    do {                                                                                                       \
        uint32_t *app_p_;                                                                                      \
        for (app_p_ = __StackLimit; app_p_ < (top); app_p_++) *app_p_ = APP_STACK_PAINT;                      \
    } while (0)

/* bytes between `sp` and the lowest word below `top` that lost the pattern (0: none did) */
static uint32_t app_stack_depth(const uint32_t *top, uintptr_t sp)
{
    const uint32_t *p = __StackLimit;
    while (p < top && *p == APP_STACK_PAINT) p++;
    return p < top ? (uint32_t)(sp - (uintptr_t)p) : 0u;
}

static APP_STATE app_state_step;
static APP_STATE app_state_classify;
static int32_t app_readout[APP_N_CLASSES];
static int64_t app_scores[APP_N_CLASSES];
static char app_stdout_buffer[128]; /* static line buffer: stdio needs no heap */

static int app_error(const char *call, unsigned sample, unsigned step, int rc)
{
    app_printf("error %s returned %d (sample %u step %u)\n", call, rc, sample, step);
    return 1;
}

int main(void)
{
    unsigned i, t, k;
    (void)setvbuf(stdout, app_stdout_buffer, _IOLBF, sizeof app_stdout_buffer);
    port_timer_init();
    app_printf("delrec-parity 2 samples=%u steps=%u classes=%u insns_per_tick=%lu/%lu model=%s\n",
           (unsigned)APP_N_SAMPLES, (unsigned)APP_N_STEPS, (unsigned)APP_N_CLASSES,
           (unsigned long)PORT_INSNS_PER_TICK_NUM, (unsigned long)PORT_INSNS_PER_TICK_DEN, APP_MODEL_SHA256);

    for (i = 0u; i < (unsigned)APP_N_SAMPLES; i++) {
        const uint8_t *x = app_inputs[i];
        uint64_t h = APP_HASH_INIT, sum = 0u, max = 0u, t0, t1;
        uint32_t stack_max = 0u, depth;
        int rc, predicted, classified;

        rc = APP_RESET(&app_state_step);
        if (rc < 0) return app_error("reset", i, 0u, rc);
        for (t = 0u; t < (unsigned)APP_N_STEPS; t++) {
            const uintptr_t sp = app_sp();
            uint32_t *const top = (uint32_t *)(sp & ~(uintptr_t)3u) - 1;
            APP_PAINT_STACK(top);
            t0 = port_ticks();
            rc = APP_STEP(&app_state_step, x + (size_t)t * (size_t)APP_N_INPUTS, (size_t)APP_N_INPUTS,
                          app_readout, (size_t)APP_N_CLASSES);
            t1 = port_ticks();
            if (rc < 0) return app_error("step", i, t, rc);
            depth = app_stack_depth(top, sp);
            if (depth > stack_max) stack_max = depth;
            sum += t1 - t0;
            if (t1 - t0 > max) max = t1 - t0;
            h = app_hash_state(h, &app_state_step);
        }
        predicted = APP_PREDICT(&app_state_step);
        if (predicted < 0) return app_error("predict", i, t, predicted);

        t0 = port_ticks();
        classified = APP_CLASSIFY(&app_state_classify, x, (size_t)APP_N_STEPS, (size_t)APP_N_INPUTS, app_scores,
                                  (size_t)APP_N_CLASSES);
        t1 = port_ticks();
        if (classified < 0) return app_error("classify", i, t, classified);

        app_printf("sample %u class %d hash %016llx step_ticks_sum %llu step_ticks_max %llu step_stack_max %lu\n", i,
               predicted, (unsigned long long)h, (unsigned long long)sum, (unsigned long long)max,
               (unsigned long)stack_max);
        app_printf("readout %u", i);
        for (k = 0u; k < (unsigned)APP_N_CLASSES; k++) app_printf(" %ld", (long)app_readout[k]);
        app_printf("\nscores %u", i);
        for (k = 0u; k < (unsigned)APP_N_CLASSES; k++) app_printf(" %lld", (long long)app_scores[k]);
        app_printf("\nclassify %u class %d ticks %llu\n", i, classified, (unsigned long long)(t1 - t0));
    }
    app_printf("done\n");
    return 0;
}

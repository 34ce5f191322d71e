/*
 * Dense baseline: int8 matrix-vector products of given layer shapes, timed with port_ticks(), for comparison
 * with the event-driven kernels of the generated models (delrec-edge bench-density).
 *
 * dense_config.h (in APP_DIR) provides DENSE_N_LAYERS, dense_rows[], dense_cols[] (outputs, inputs per layer),
 * dense_weights_<i>[rows * cols] (int8, row-major: weight of input j to output i at i * cols + j, cols a multiple
 * of 16) and dense_input_<i>[cols] (int8). For every layer the app computes y = W x with int32 sums, once
 * untimed and DENSE_REPEATS times timed, and prints
 *   delrec-dense 1 layers=<L> repeats=<R> insns_per_tick=<NUM>/<DEN>
 *   layer <i> rows <r> cols <c> ticks <u64> checksum <016llx>     (ticks of all repeats; FNV-1a over y)
 *   done
 * The host recomputes every checksum with numpy: the kernel is exact.
 *
 * Kernels (the best plain form for each core, in the style of CMSIS-NN):
 *   MVE  VMLADAVA.S8: 16 multiply-accumulates of int8 into a 32-bit sum per instruction, four rows at a time
 *        sharing the input vector;
 *   DSP  the input widened once to int16 pairs, then SXTB16 + SMLAD: two multiply-accumulates per instruction,
 *        two rows at a time sharing the input pairs;
 *   else plain C.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dense_config.h"
#include "delrec_port.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include <arm_mve.h>
#elif defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
#endif

#define app_printf port_printf /* delrec_port.h */

#ifndef DENSE_REPEATS
#define DENSE_REPEATS 4
#endif

static int32_t dense_out[DENSE_MAX_ROWS];
static char dense_stdout_buffer[128];

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
static void dense_matvec(const int8_t *w, const int8_t *x, uint32_t rows, uint32_t cols, int32_t *y)
{
    uint32_t i = 0u, j;
    for (; i + 4u <= rows; i += 4u) {
        const int8_t *w0 = w + i * cols, *w1 = w0 + cols, *w2 = w1 + cols, *w3 = w2 + cols;
        int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (j = 0u; j < cols; j += 16u) {
            const int8x16_t v = vld1q_s8(x + j);
            s0 = vmladavaq_s8(s0, vld1q_s8(w0 + j), v);
            s1 = vmladavaq_s8(s1, vld1q_s8(w1 + j), v);
            s2 = vmladavaq_s8(s2, vld1q_s8(w2 + j), v);
            s3 = vmladavaq_s8(s3, vld1q_s8(w3 + j), v);
        }
        y[i] = s0;
        y[i + 1u] = s1;
        y[i + 2u] = s2;
        y[i + 3u] = s3;
    }
    for (; i < rows; i++) {
        int32_t s = 0;
        for (j = 0u; j < cols; j += 16u) s = vmladavaq_s8(s, vld1q_s8(w + i * cols + j), vld1q_s8(x + j));
        y[i] = s;
    }
}
#elif defined(__ARM_FEATURE_DSP)
static int16_t dense_pairs[2u * DENSE_MAX_COLS];

/* x widened to int16 in the lane order of SXTB16: for each word of 4 inputs, (x0, x2) then (x1, x3). */
static void dense_widen(const int8_t *x, uint32_t cols)
{
    uint32_t j;
    for (j = 0u; j < cols; j += 4u) {
        dense_pairs[j] = x[j];
        dense_pairs[j + 1u] = x[j + 2u];
        dense_pairs[j + 2u] = x[j + 1u];
        dense_pairs[j + 3u] = x[j + 3u];
    }
}

static inline int32_t dense_sxtb16_ror8(int32_t x)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

static void dense_matvec(const int8_t *w, const int8_t *x, uint32_t rows, uint32_t cols, int32_t *y)
{
    uint32_t i = 0u, j;
    dense_widen(x, cols);
    for (; i + 2u <= rows; i += 2u) {
        const int8_t *w0 = w + i * cols, *w1 = w0 + cols;
        int32_t s0 = 0, s1 = 0;
        for (j = 0u; j < cols; j += 4u) {
            int32_t a, b, x02, x13;
            memcpy(&x02, dense_pairs + j, 4);
            memcpy(&x13, dense_pairs + j + 2u, 4);
            memcpy(&a, w0 + j, 4);
            memcpy(&b, w1 + j, 4);
            s0 = __smlad(__sxtb16(a), x02, s0);
            s0 = __smlad(dense_sxtb16_ror8(a), x13, s0);
            s1 = __smlad(__sxtb16(b), x02, s1);
            s1 = __smlad(dense_sxtb16_ror8(b), x13, s1);
        }
        y[i] = s0;
        y[i + 1u] = s1;
    }
    for (; i < rows; i++) {
        int32_t s = 0;
        for (j = 0u; j < cols; j++) s += (int32_t)w[i * cols + j] * (int32_t)x[j];
        y[i] = s;
    }
}
#else
static void dense_matvec(const int8_t *w, const int8_t *x, uint32_t rows, uint32_t cols, int32_t *y)
{
    uint32_t i, j;
    for (i = 0u; i < rows; i++) {
        int32_t s = 0;
        for (j = 0u; j < cols; j++) s += (int32_t)w[i * cols + j] * (int32_t)x[j];
        y[i] = s;
    }
}
#endif

int main(void)
{
    uint32_t layer, r, k;
    (void)setvbuf(stdout, dense_stdout_buffer, _IOLBF, sizeof dense_stdout_buffer);
    port_timer_init();
    app_printf("delrec-dense 1 layers=%u repeats=%u insns_per_tick=%lu/%lu\n", (unsigned)DENSE_N_LAYERS,
               (unsigned)DENSE_REPEATS, (unsigned long)PORT_INSNS_PER_TICK_NUM, (unsigned long)PORT_INSNS_PER_TICK_DEN);
    for (layer = 0u; layer < (uint32_t)DENSE_N_LAYERS; layer++) {
        const uint32_t rows = dense_rows[layer], cols = dense_cols[layer];
        uint64_t h = 0xcbf29ce484222325ull, t0, t1;
        dense_matvec(dense_weights[layer], dense_inputs[layer], rows, cols, dense_out);
        for (k = 0u; k < rows; k++) h = (h ^ (uint32_t)dense_out[k]) * 0x100000001b3ull;
        t0 = port_ticks();
        for (r = 0u; r < (uint32_t)DENSE_REPEATS; r++) {
            dense_matvec(dense_weights[layer], dense_inputs[layer], rows, cols, dense_out);
        }
        t1 = port_ticks();
        app_printf("layer %u rows %u cols %u ticks %llu checksum %016llx\n", (unsigned)layer, (unsigned)rows,
                   (unsigned)cols, (unsigned long long)(t1 - t0), (unsigned long long)h);
    }
    app_printf("done\n");
    return 0;
}

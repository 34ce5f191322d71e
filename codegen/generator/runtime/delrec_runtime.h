/*
 * delrec runtime: the hand-written fixed-point kernels every generated model calls.
 *
 * Header only (static inline), so several generated models can share a firmware image. C99, integers only,
 * no allocation, nothing from libc beyond <string.h>. Each kernel documents its layout and the ranges
 * it relies on; the integer reference model (codegen/integer/refmodel.py) is the definition they reproduce,
 * and the code generator refuses any model whose intermediates could leave these ranges
 * (codegen/integer/overflow.py). The header compiles as C99 and as C++ (extern "C" is the includer's).
 *
 * Kernel selection at compile time: the default kernels are event-driven (work proportional to the number
 * of input spikes); define DELREC_REFERENCE_KERNELS to use the plain nested-loop reference kernels
 * instead. Both give identical results bit for bit.
 *
 * Layouts:
 *   spike vectors   bit j of word j / 32 (uint32_t words, unused high bits are zero)
 *   weight matrix   input-major: w[j * n + i] is the weight from input j to neuron i, so one input's
 *                   fan-out is contiguous
 *   conv kernel     [c_out][c_in][k], neurons channel-major: neuron c * width + p is position p of channel c
 *   spike ring      `slots` slots of `words` words; slot `head` is written by the current step
 */
#ifndef DELREC_RUNTIME_H
#define DELREC_RUNTIME_H

#include <stdint.h>
#include <string.h>

/* restrict is C99 only; C++ compilers spell it __restrict__ (gcc, clang) or __restrict (MSVC) */
#if defined(__cplusplus)
#if defined(_MSC_VER)
#define DELREC_RESTRICT __restrict
#else
#define DELREC_RESTRICT __restrict__
#endif
#else
#define DELREC_RESTRICT restrict
#endif

/* The rounded shifts below need the arithmetic (flooring) right shift of negative values, which C99 leaves
 * to the implementation; gcc, clang and armcc all provide it. Refuse to compile where it is missing. */
typedef char delrec_requires_arithmetic_right_shift[((-7 >> 1) == -4) ? 1 : -1];

/* ------------------------------------------------------------------------------------------ arithmetic */

/* Round half up on a right shift: (a + 2^(k-1)) >> k; a itself for k == 0.
 * Range: 0 <= k <= 30 and a + 2^(k-1) inside int32 (guaranteed by the overflow analysis). */
static inline int32_t delrec_rshift_round(int32_t a, uint32_t k)
{
    /* (2^k) >> 1 is the rounding bias 2^(k-1), and 0 for k == 0: no branch */
    return (a + (((int32_t)1 << k) >> 1)) >> k;
}

/* The same rule on a 64-bit register (the readout leak). Range: 0 <= k <= 30, a + 2^(k-1) inside int64. */
static inline int64_t delrec_rshift_round64(int64_t a, uint32_t k)
{
    return (a + (((int64_t)1 << k) >> 1)) >> k;
}

static inline int32_t delrec_clamp(int32_t a, int32_t lo, int32_t hi)
{
    return a < lo ? lo : (a > hi ? hi : a);
}

static inline int32_t delrec_sat32(int64_t a)
{
    return a < INT32_MIN ? INT32_MIN : (a > INT32_MAX ? INT32_MAX : (int32_t)a);
}

/* Saturating a + b for |b| < 2^31 (the spec's sat64 of the score): the class score of an endless stream
 * sticks at the int64 limits (after at least 2^32 steps at full scale) instead of wrapping. */
static inline int64_t delrec_add_sat64(int64_t a, int32_t b)
{
    if (b > 0 && a > INT64_MAX - b) return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b) return INT64_MIN;
    return a + b;
}

/* ---------------------------------------------------------------------------------------- spike words */

static inline uint32_t delrec_words(uint32_t n)
{
    return (n + 31u) >> 5;
}

static inline uint32_t delrec_bit(const uint32_t *bits, uint32_t j)
{
    return (bits[j >> 5] >> (j & 31u)) & 1u;
}

static inline void delrec_set_bit(uint32_t *bits, uint32_t j)
{
    bits[j >> 5] |= (uint32_t)1u << (j & 31u);
}

/* Index of the lowest set bit of m != 0. */
static inline uint32_t delrec_ctz(uint32_t m)
{
#if defined(__GNUC__) || defined(__clang__)
    return (uint32_t)__builtin_ctz(m);
#else
    uint32_t b = 0u;
    while ((m & 1u) == 0u) {
        m >>= 1;
        b++;
    }
    return b;
#endif
}

/* ----------------------------------------------------------------------------------- delay ring buffer */

/* The slot holding the spikes of `lag` steps ago, 1 <= lag <= slots - 1. `head` stays in 0..slots-1, so
 * the index never overflows however long the stream runs. */
static inline const uint32_t *delrec_ring_lag(const uint32_t *ring, uint32_t words, uint32_t slots, uint32_t head,
                                              uint32_t lag)
{
    uint32_t slot = head + slots - lag;
    if (slot >= slots) slot -= slots;
    return ring + slot * words;
}

/* Delayed spikes: bit j of z is neuron j's spike from 1 + d_j steps ago, read from slot head + offset[j]
 * (mod slots) where offset[j] = slots - 1 - d_j, 1 <= offset[j] <= slots - 1. */
static inline void delrec_ring_gather(const uint32_t *ring, uint32_t words, uint32_t slots, uint32_t head,
                                      const uint16_t *offset, uint32_t n, uint32_t *z)
{
    uint32_t j;
    memset(z, 0, words * sizeof(uint32_t));
    for (j = 0u; j < n; j++) {
        uint32_t slot = head + offset[j];
        if (slot >= slots) slot -= slots;
        if (delrec_bit(ring + slot * words, j)) delrec_set_bit(z, j);
    }
}

/* The same delayed spikes, one delay group at a time: for each distinct delay g, the slot of lag lags[g]
 * ANDed with masks[g * words ..] (the neurons with that delay). Work: groups x words instead of n. */
static inline void delrec_ring_gather_groups(const uint32_t *ring, uint32_t words, uint32_t slots, uint32_t head,
                                             const uint16_t *lags, const uint32_t *masks, uint32_t groups,
                                             uint32_t *z)
{
    uint32_t g, w;
    memset(z, 0, words * sizeof(uint32_t));
    for (g = 0u; g < groups; g++) {
        const uint32_t *slot = delrec_ring_lag(ring, words, slots, head, lags[g]);
        const uint32_t *mask = masks + g * words;
        for (w = 0u; w < words; w++) z[w] |= slot[w] & mask[w];
    }
}

/* Store this step's spikes in slot `head` and advance it, wrapping at `slots`. */
static inline void delrec_ring_push(uint32_t *ring, uint32_t words, uint32_t slots, uint32_t *head,
                                    const uint32_t *spikes)
{
    memcpy(ring + *head * words, spikes, words * sizeof(uint32_t));
    *head = (*head + 1u == slots) ? 0u : *head + 1u;
}

/* ------------------------------------------------------------------------------------- neuron updates */

/* Constants of one LIF layer, all computed by the code generator. */
typedef struct {
    int32_t leak_mul;    /* leak factor m / 2^leak_shift, 0 <= m <= 2^leak_shift */
    uint32_t leak_shift; /* 0..15 */
    int32_t v_min;       /* membrane saturation range (the layer's state width) */
    int32_t v_max;
    int32_t threshold;   /* 1..v_max */
    uint32_t subtract;   /* 1: reset by subtracting the threshold, 0: reset to zero */
} delrec_lif_params;

/* current[i] = acc[i] * ff_scale + rec[i] * rec_scale + bias[i], in place in acc; rec may be NULL.
 * Scales are powers of two (exact left shifts written as products, which C defines for negative values).
 * Range: every partial sum inside int32. */
static inline void delrec_current(int32_t *acc, int32_t ff_scale, const int32_t *rec, int32_t rec_scale,
                                  const int32_t *bias, uint32_t n)
{
    uint32_t i;
    for (i = 0u; i < n; i++) {
        int32_t c = acc[i] * ff_scale;
        if (rec != NULL) c += rec[i] * rec_scale;
        acc[i] = c + bias[i];
    }
}

/* One neuron: h = clamp(rshift_round(v * m, k) + current); fires when h >= threshold; returns the new
 * membrane (h, or h reset) and sets *fired. Range: v * m + 2^(k-1) and leak(v) + current inside int32. */
static inline int32_t delrec_lif_neuron(int32_t v, int32_t current, const delrec_lif_params *p, uint32_t *fired)
{
    const int32_t h = delrec_clamp(delrec_rshift_round(v * p->leak_mul, p->leak_shift) + current, p->v_min, p->v_max);
    if (h < p->threshold) {
        *fired = 0u;
        return h;
    }
    *fired = 1u;
    return p->subtract ? h - p->threshold : 0;
}

/* LIF update of n neurons with 16-bit membranes; writes the spike bits (all words rewritten). */
static inline void delrec_lif_s16(int16_t *v, const int32_t *current, uint32_t n, const delrec_lif_params *p,
                                  uint32_t *spikes)
{
    uint32_t i, fired;
    memset(spikes, 0, delrec_words(n) * sizeof(uint32_t));
    for (i = 0u; i < n; i++) {
        v[i] = (int16_t)delrec_lif_neuron(v[i], current[i], p, &fired);
        if (fired) delrec_set_bit(spikes, i);
    }
}

/* LIF update of n neurons with membranes of 17..32 bits. */
static inline void delrec_lif_s32(int32_t *v, const int32_t *current, uint32_t n, const delrec_lif_params *p,
                                  uint32_t *spikes)
{
    uint32_t i, fired;
    memset(spikes, 0, delrec_words(n) * sizeof(uint32_t));
    for (i = 0u; i < n; i++) {
        v[i] = delrec_lif_neuron(v[i], current[i], p, &fired);
        if (fired) delrec_set_bit(spikes, i);
    }
}

/* Leaky readout of k classes: u = sat32(rshift_round64(u * m, shift) + acc * out_scale + bias), then
 * score += u (saturating). Range: acc * out_scale + bias inside int32. */
static inline void delrec_readout(int32_t *u, int64_t *score, const int32_t *acc, int32_t out_scale,
                                  const int32_t *bias, uint32_t k, int32_t leak_mul, uint32_t leak_shift)
{
    uint32_t c;
    for (c = 0u; c < k; c++) {
        const int32_t drive = acc[c] * out_scale + bias[c];
        const int64_t leaked = delrec_rshift_round64((int64_t)u[c] * leak_mul, leak_shift);
        u[c] = delrec_sat32(leaked + drive);
        score[c] = delrec_add_sat64(score[c], u[c]);
    }
}

/* First index of the largest value. */
static inline uint32_t delrec_argmax64(const int64_t *x, uint32_t n)
{
    uint32_t i, best = 0u;
    for (i = 1u; i < n; i++) {
        if (x[i] > x[best]) best = i;
    }
    return best;
}

/* ----------------------------------------------------------------------------- weight-typed kernels */

#define DELREC_W int8_t
#define DELREC_SUFFIX i8
#include "delrec_kernels.inc"
#undef DELREC_W
#undef DELREC_SUFFIX

#define DELREC_W int16_t
#define DELREC_SUFFIX i16
#include "delrec_kernels.inc"
#undef DELREC_W
#undef DELREC_SUFFIX

#endif /* DELREC_RUNTIME_H */

/*
 * delrec runtime: the hand-written fixed-point kernels every generated model calls.
 *
 * Header only (static inline), so several generated models can share a firmware image. C99, integers only,
 * no allocation, nothing from libc beyond <string.h>. Each kernel documents its layout and the ranges
 * it relies on; the integer reference model (codegen/integer/refmodel.py) is the definition they reproduce,
 * and the code generator refuses any model whose intermediates could leave these ranges
 * (codegen/integer/overflow.py). The header compiles as C99 and as C++ (extern "C" is the includer's).
 *
 * Kernel selection at compile time, from the core's feature macros (all give identical results bit for bit):
 *   DELREC_KERNELS_MVE   Cortex-M55 (__ARM_FEATURE_MVE): Helium kernels for the accumulations, the LIF update
 *   DELREC_KERNELS_DSP   Cortex-M4/M7/M33 (__ARM_FEATURE_DSP): SIMD32 kernels (SXTAB16, SMLABB, SSAT, ...)
 *   DELREC_KERNELS_PACKED_C  other than Arm (hosts): portable C, event-driven, with 16-bit packed partial sums
 *                        where they are proven exact (vectorised by the compiler)
 *   otherwise            (Cortex-M0+, M3) the portable event-driven kernels with 32-bit sums
 * A build forces the plain event-driven kernels with 32-bit sums (DELREC_PORTABLE_KERNELS) or the nested-loop
 * reference kernels (DELREC_REFERENCE_KERNELS). The Arm kernels need GCC or clang (ACLE intrinsics, inline
 * assembly) and an optimised build (-O1 and up, -Os); other builds get the portable kernels.
 *
 * Layouts:
 *   spike vectors   bit j of word j / 32 (uint32_t words, unused high bits are zero)
 *   weight matrix   input-major: w[j * stride + i] is the weight from input j to neuron i, so one input's
 *                   fan-out is contiguous; int8/int4 rows are padded (delrec_packed.inc), int16 rows are not
 *   conv kernel     [c_out][c_in][k], neurons channel-major: neuron c * width + p is position p of channel c
 *   spike ring      `slots` slots of `words` words; slot `head` is written by the current step
 */
#ifndef DELREC_RUNTIME_H
#define DELREC_RUNTIME_H

#include <stdint.h>
#include <string.h>

/* DELREC_RESTRICT is C99 only; C++ compilers spell it __restrict__ (gcc, clang) or __restrict (MSVC) */
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

#if defined(DELREC_REFERENCE_KERNELS) || defined(DELREC_PORTABLE_KERNELS) || !defined(__GNUC__) || \
    !defined(__OPTIMIZE__)
/* the plain kernels only (unoptimised builds too: the assembly loops need the register allocator's best) */
#elif defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#define DELREC_KERNELS_MVE 1
#include <arm_acle.h>
#include <arm_mve.h>
#elif defined(__ARM_FEATURE_DSP)
#define DELREC_KERNELS_DSP 1
#include <arm_acle.h>
#endif

/* The portable packed kernels pay off where the compiler vectorises them (hosts); Arm cores without the DSP
 * extension (Cortex-M0+, M3) sum in 32 bits, which takes them fewer instructions. */
#if !defined(DELREC_REFERENCE_KERNELS) && !defined(DELREC_PORTABLE_KERNELS) && !defined(DELREC_KERNELS_MVE) && \
    !defined(DELREC_KERNELS_DSP) && !defined(__arm__)
#define DELREC_KERNELS_PACKED_C 1
#endif

/* The kernels whose arguments are the model's constants are always inlined, so that the compiler folds them
 * (leak, shifts, strides, reset mode) into the instructions of each call. */
#if defined(__GNUC__)
#define DELREC_KERNEL static inline __attribute__((__always_inline__))
#else
#define DELREC_KERNEL static inline
#endif

/* Weight matrices are aligned so that the DSP kernels can read them a word at a time. */
#if defined(__GNUC__)
#define DELREC_ALIGNED __attribute__((aligned(8)))
#else
#define DELREC_ALIGNED
#endif

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

/* a[0..n-1] = 0 */
static inline void delrec_zero(int32_t *a, uint32_t n)
{
    uint32_t i;
    for (i = 0u; i < n; i++) a[i] = 0;
}

/* acc[0..n-1] *= scale */
static inline void delrec_scale(int32_t *acc, uint32_t n, int32_t scale)
{
    uint32_t i;
    if (scale == 1) return;
    for (i = 0u; i < n; i++) acc[i] *= scale;
}

/* ---------------------------------------------------------------------------------------- event lists */

/* The step's active inputs of a count vector: for every j with x[j] != 0 (in order), off[e] = j * stride and
 * cnt[e] = x[j]. Returns the number of events; *total is the sum of the counts. Cores that read unaligned words
 * (and hosts) take four inputs at a time and visit only the non-zero bytes (lowest first, by count of trailing
 * zeros); Helium takes sixteen, the non-zero lanes from a compare predicate. */
static inline uint32_t delrec_events_counts(const uint8_t *x, uint32_t n_in, uint32_t stride, uint32_t *off,
                                            uint8_t *cnt, uint32_t *total)
{
    uint32_t j = 0u, e = 0u, sum = 0u;
#if defined(DELREC_KERNELS_MVE)
    for (; j + 16u <= n_in; j += 16u) {
        uint32_t lanes = vcmpneq_n_u8(vld1q_u8(x + j), 0u);
        while (lanes != 0u) {
            const uint32_t i = j + delrec_ctz(lanes), c = x[i];
            lanes &= lanes - 1u;
            off[e] = i * stride;
            cnt[e] = (uint8_t)c;
            sum += c;
            e++;
        }
    }
#elif (!defined(__arm__) || defined(__ARM_FEATURE_UNALIGNED)) && defined(__BYTE_ORDER__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (; j + 4u <= n_in; j += 4u) {
        uint32_t four;
        memcpy(&four, x + j, sizeof four);
        while (four != 0u) {
            const uint32_t at = delrec_ctz(four) & ~7u, c = (four >> at) & 0xFFu, i = j + (at >> 3);
            four &= ~((uint32_t)0xFFu << at);
            off[e] = i * stride;
            cnt[e] = (uint8_t)c;
            sum += c;
            e++;
        }
    }
#endif
    for (; j < n_in; j++) {
        const uint32_t c = x[j];
        if (c == 0u) continue;
        off[e] = j * stride;
        cnt[e] = (uint8_t)c;
        sum += c;
        e++;
    }
    *total = sum;
    return e;
}

/* The active inputs of a spike vector (bits 0..n_in-1): off[e] = j * stride for every spike j. */
static inline uint32_t delrec_events_spikes(const uint32_t *spikes, uint32_t n_in, uint32_t stride, uint32_t *off)
{
    uint32_t word, e = 0u;
    for (word = 0u; word < delrec_words(n_in); word++) {
        uint32_t active = spikes[word];
        while (active != 0u) {
            off[e++] = ((word << 5) + delrec_ctz(active)) * stride;
            active &= active - 1u;
        }
    }
    return e;
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
                                             uint32_t *DELREC_RESTRICT z)
{
    uint32_t g, w = 0u;
#if !defined(DELREC_KERNELS_MVE)
    /* four words at a time in registers over all groups (Helium vectorises the plain loop) */
    for (; w + 4u <= words; w += 4u) {
        uint32_t z0 = 0u, z1 = 0u, z2 = 0u, z3 = 0u;
        for (g = 0u; g < groups; g++) {
            const uint32_t *slot = delrec_ring_lag(ring, words, slots, head, lags[g]) + w;
            const uint32_t *mask = masks + g * words + w;
            z0 |= slot[0] & mask[0];
            z1 |= slot[1] & mask[1];
            z2 |= slot[2] & mask[2];
            z3 |= slot[3] & mask[3];
        }
        z[w] = z0;
        z[w + 1u] = z1;
        z[w + 2u] = z2;
        z[w + 3u] = z3;
    }
#endif
    {
        const uint32_t rest = words - w; /* 0..3 words left (any number with Helium) */
        uint32_t k, *zr = z + w;
        for (k = 0u; k < rest; k++) zr[k] = 0u;
        for (g = 0u; g < groups && rest != 0u; g++) {
            const uint32_t *slot = delrec_ring_lag(ring, words, slots, head, lags[g]) + w;
            const uint32_t *mask = masks + g * words + w;
            for (k = 0u; k < rest; k++) zr[k] |= slot[k] & mask[k];
        }
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
DELREC_KERNEL int32_t delrec_lif_neuron(int32_t v, int32_t current, const delrec_lif_params *p, uint32_t *fired)
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

/* Current and LIF update of n neurons with 16-bit membranes in one pass: I = acc * ff_scale + rec * rec_scale
 * + bias (rec may be NULL; the int32 sums of delrec_current), then delrec_lif_neuron; writes every spike word.
 * Range: as delrec_current and delrec_lif_neuron. */
DELREC_KERNEL void delrec_lif16_portable(int16_t *v, const int32_t *acc, int32_t ff_scale, const int32_t *rec,
                                         int32_t rec_scale, const int32_t *bias, uint32_t n,
                                         const delrec_lif_params *p, uint32_t *spikes)
{
#if defined(DELREC_KERNELS_PACKED_C)
    /* hosts: the update of 32 neurons as one loop without a loop-carried value (vectorised by the compiler), the
     * spike bits packed after it */
    uint32_t w, b;
    for (w = 0u; w < delrec_words(n); w++) {
        const uint32_t base = w << 5, end = n - base < 32u ? n - base : 32u;
        uint32_t bits = 0u;
        uint8_t fired[32];
        for (b = 0u; b < end; b++) {
            const uint32_t i = base + b;
            int32_t c = acc[i] * ff_scale, h;
            if (rec != NULL) c += rec[i] * rec_scale;
            c += bias[i];
            h = delrec_clamp(delrec_rshift_round(v[i] * p->leak_mul, p->leak_shift) + c, p->v_min, p->v_max);
            fired[b] = (uint8_t)(h >= p->threshold);
            v[i] = (int16_t)(h >= p->threshold ? (p->subtract ? h - p->threshold : 0) : h);
        }
        for (b = 0u; b < end; b++) bits |= (uint32_t)fired[b] << b;
        spikes[w] = bits;
    }
#else
    uint32_t w, b;
    for (w = 0u; w < delrec_words(n); w++) {
        const uint32_t base = w << 5, end = n - base < 32u ? n - base : 32u;
        uint32_t bits = 0u;
        for (b = 0u; b < end; b++) {
            const uint32_t i = base + b;
            uint32_t fired;
            int32_t c = acc[i] * ff_scale;
            if (rec != NULL) c += rec[i] * rec_scale;
            v[i] = (int16_t)delrec_lif_neuron(v[i], c + bias[i], p, &fired);
            bits |= fired << b;
        }
        spikes[w] = bits;
    }
#endif
}

/* The same for membranes of 17..32 bits. */
DELREC_KERNEL void delrec_lif32(int32_t *v, const int32_t *acc, int32_t ff_scale, const int32_t *rec,
                                int32_t rec_scale, const int32_t *bias, uint32_t n, const delrec_lif_params *p,
                                uint32_t *spikes)
{
    uint32_t w, b;
    for (w = 0u; w < delrec_words(n); w++) {
        const uint32_t base = w << 5, end = n - base < 32u ? n - base : 32u;
        uint32_t bits = 0u;
        for (b = 0u; b < end; b++) {
            const uint32_t i = base + b;
            uint32_t fired;
            int32_t c = acc[i] * ff_scale;
            if (rec != NULL) c += rec[i] * rec_scale;
            v[i] = delrec_lif_neuron(v[i], c + bias[i], p, &fired);
            bits |= fired << b;
        }
        spikes[w] = bits;
    }
}

/* The LIF update of neurons from..n-1 one at a time, OR-ing their bits into spike words that neurons before
 * `from` in the same word have already filled (a word whose first neuron is here starts at zero). */
DELREC_KERNEL void delrec_lif16_tail(int16_t *v, const int32_t *acc, int32_t ff_scale, const int32_t *rec,
                                     int32_t rec_scale, const int32_t *bias, uint32_t from, uint32_t n,
                                     const delrec_lif_params *p, uint32_t *spikes)
{
    uint32_t i;
    for (i = from; i < n; i++) {
        uint32_t fired;
        int32_t c = acc[i] * ff_scale;
        if (rec != NULL) c += rec[i] * rec_scale;
        v[i] = (int16_t)delrec_lif_neuron(v[i], c + bias[i], p, &fired);
        if ((i & 31u) == 0u) spikes[i >> 5] = 0u;
        spikes[i >> 5] |= fired << (i & 31u);
    }
}

#if defined(DELREC_KERNELS_MVE)
/* Helium: eight neurons per iteration. VLD2 splits the int32 currents into even and odd neurons, which line up
 * with the bottom and top halves of the eight int16 membranes (VMOVLB/VMOVLT); VRSHL by -k is the rounded right
 * shift; VQMOVNB/VQMOVNT saturate to int16 and interleave back (other widths: clamp, then narrow). The compare
 * predicate selects the reset, and VADDV over the lanes' bit weights gives the eight spike bits. */
DELREC_KERNEL void delrec_lif16(int16_t *v, const int32_t *acc, int32_t ff_scale, const int32_t *rec,
                                int32_t rec_scale, const int32_t *bias, uint32_t n, const delrec_lif_params *p,
                                uint32_t *spikes)
{
    static const uint16_t weights[8] = {1u, 2u, 4u, 8u, 16u, 32u, 64u, 128u};
    const uint16x8_t bit = vld1q_u16(weights);
    const int32_t shift = -(int32_t)p->leak_shift;
    const int full = p->v_min == -32768 && p->v_max == 32767;
    const uint32_t vectors = n & ~7u;
    uint32_t i, word = 0u;
    for (i = 0u; i < vectors; i += 8u) {
        const int32x4x2_t a = vld2q_s32(acc + i), b = vld2q_s32(bias + i);
        const int16x8_t old = vld1q_s16(v + i);
        int32x4_t even = vmlaq_n_s32(b.val[0], a.val[0], ff_scale), odd = vmlaq_n_s32(b.val[1], a.val[1], ff_scale);
        int16x8_t h;
        mve_pred16_t fired;
        if (rec != NULL) {
            const int32x4x2_t r = vld2q_s32(rec + i);
            even = vmlaq_n_s32(even, r.val[0], rec_scale);
            odd = vmlaq_n_s32(odd, r.val[1], rec_scale);
        }
        even = vaddq_s32(even, vrshlq_n_s32(vmulq_n_s32(vmovlbq_s16(old), p->leak_mul), shift));
        odd = vaddq_s32(odd, vrshlq_n_s32(vmulq_n_s32(vmovltq_s16(old), p->leak_mul), shift));
        if (full) {
            h = vqmovntq_s32(vqmovnbq_s32(old, even), odd);
        } else {
            const int32x4_t lo = vdupq_n_s32(p->v_min), hi = vdupq_n_s32(p->v_max);
            h = vmovntq_s32(vmovnbq_s32(old, vmaxq_s32(vminq_s32(even, hi), lo)), vmaxq_s32(vminq_s32(odd, hi), lo));
        }
        fired = vcmpgeq_n_s16(h, (int16_t)p->threshold);
        vst1q_s16(v + i, vpselq_s16(p->subtract ? vsubq_n_s16(h, (int16_t)p->threshold) : vdupq_n_s16(0), h, fired));
        word |= vaddvq_p_u16(bit, fired) << (i & 31u);
        if ((i & 31u) == 24u) {
            spikes[i >> 5] = word;
            word = 0u;
        }
    }
    if ((vectors & 31u) != 0u) spikes[vectors >> 5] = word;
    if (vectors < n) delrec_lif16_tail(v, acc, ff_scale, rec, rec_scale, bias, vectors, n, p, spikes);
}
#elif defined(DELREC_KERNELS_DSP)
/* Saturate to int16 (SSAT; the ACLE macro trips -Wsign-conversion in GCC 12). */
static inline int32_t delrec_ssat16(int32_t a)
{
    int32_t r;
    __asm__("ssat %0, #16, %1" : "=r"(r) : "r"(a));
    return r;
}

/* One pair of neurons: the new membranes (two int16 halves) from the saturated sums h0 and h1, and their fired
 * bits in bits 17 (h0) and 18 (h1) of the returned flags. PKHBT packs the halves, SSUB16 sets the GE flags of each
 * half where h >= threshold, SEL takes the reset value there (h - threshold, or 0), MRS reads the flags back: one
 * asm block, so that nothing can come between the flags and their readers. */
static inline uint32_t delrec_dsp_reset_pair(int32_t h0, int32_t h1, int32_t thr2, uint32_t subtract, int32_t *pair)
{
    int32_t packed, t, out;
    uint32_t flags;
    if (subtract) {
        __asm__("pkhbt %3, %4, %5, lsl #16\n\tssub16 %1, %3, %6\n\tsel %0, %1, %3\n\tmrs %2, apsr"
                : "=r"(out), "=&r"(t), "=r"(flags), "=&r"(packed) : "r"(h0), "r"(h1), "r"(thr2));
    } else {
        __asm__("pkhbt %3, %4, %5, lsl #16\n\tssub16 %1, %3, %6\n\tsel %0, %7, %3\n\tmrs %2, apsr"
                : "=r"(out), "=&r"(t), "=r"(flags), "=&r"(packed) : "r"(h0), "r"(h1), "r"(thr2), "r"(0));
    }
    *pair = out;
    return flags;
}

/* Two int32 from *p, and *p advanced by two (LDRD with post-increment, which GCC 12 does not emit itself). */
static inline void delrec_dsp_load2(const int32_t **p, int32_t *x0, int32_t *x1)
{
    int32_t a, b;
    __asm__("ldrd %0, %1, [%2], #8" : "=r"(a), "=r"(b), "+r"(*p) : "m"(*(const int32_t(*)[2]) * p));
    *x0 = a;
    *x1 = b;
}

/* SIMD32: two neurons per iteration for membranes of exactly 16 bits (other widths: the portable loop). The leak
 * products come from SMLABB/SMLATB with the rounding bias as accumulator, SSAT saturates to 16 bits, PKHBT,
 * SSUB16 and SEL compare and reset both halves (delrec_dsp_reset_pair); the spike word fills from the top. */
DELREC_KERNEL void delrec_lif16(int16_t *v, const int32_t *acc, int32_t ff_scale, const int32_t *rec,
                                int32_t rec_scale, const int32_t *bias, uint32_t n, const delrec_lif_params *p,
                                uint32_t *spikes)
{
    const int32_t m = p->leak_mul, rb = (int32_t)(((uint32_t)1u << p->leak_shift) >> 1);
    const int32_t thr2 = (int32_t)((uint32_t)p->threshold * 0x10001u);
    const uint32_t k = p->leak_shift;
    const int32_t *a = acc, *b = bias, *r = rec;
    int16_t *pv = v;
    uint32_t left = n / 2u, *word = spikes;
    if (p->v_min != -32768 || p->v_max != 32767) {
        delrec_lif16_portable(v, acc, ff_scale, rec, rec_scale, bias, n, p, spikes);
        return;
    }
    while (left != 0u) {
        const uint32_t count = left < 16u ? left : 16u;
        uint32_t bits = 0u, j;
        for (j = 0u; j < count; j++) {
            int32_t pair, c0, c1, x0, x1;
            delrec_dsp_load2(&a, &c0, &c1);
            c0 *= ff_scale;
            c1 *= ff_scale;
            if (rec != NULL) {
                delrec_dsp_load2(&r, &x0, &x1);
                c0 += x0 * rec_scale;
                c1 += x1 * rec_scale;
            }
            delrec_dsp_load2(&b, &x0, &x1);
            c0 += x0;
            c1 += x1;
            memcpy(&pair, pv, sizeof pair);
            c0 = delrec_ssat16(c0 + (__smlabb(pair, m, rb) >> k));
            c1 = delrec_ssat16(c1 + (__smlatb(pair, m, rb) >> k));
            bits = (bits >> 2) | ((delrec_dsp_reset_pair(c0, c1, thr2, p->subtract, &pair) & 0x60000u) << 13);
            memcpy(pv, &pair, sizeof pair);
            pv += 2;
        }
        *word++ = bits >> (32u - 2u * count);
        left -= count;
    }
    delrec_lif16_tail(v, acc, ff_scale, rec, rec_scale, bias, n & ~1u, n, p, spikes);
}
#else
DELREC_KERNEL void delrec_lif16(int16_t *v, const int32_t *acc, int32_t ff_scale, const int32_t *rec,
                                int32_t rec_scale, const int32_t *bias, uint32_t n, const delrec_lif_params *p,
                                uint32_t *spikes)
{
    delrec_lif16_portable(v, acc, ff_scale, rec, rec_scale, bias, n, p, spikes);
}
#endif

/* The leaked readout state rshift_round64(u * m, k), which fits int32 (m <= 2^k makes |leaked| <= |u|): without
 * the 64-bit product when the reduced leak is a pure shift (m = 1) or zero. */
static inline int32_t delrec_readout_leak(int32_t u, int32_t m, uint32_t k)
{
    if (m == 0) return 0;
    if (m == 1) return k == 0u ? u : (u >> k) + ((u >> (k - 1u)) & 1); /* floor(u / 2^k + 1/2) */
    return (int32_t)delrec_rshift_round64((int64_t)u * m, k);
}

/* Leaky readout of k classes: u = sat32(rshift_round64(u * m, shift) + acc * out_scale + bias), then
 * score += u (saturating). Range: acc * out_scale + bias inside int32. The saturated sum of two int32 values is
 * QADD on cores with the DSP extension; the score's overflow test is the add's own (GCC, clang). */
DELREC_KERNEL void delrec_readout(int32_t *u, int64_t *score, const int32_t *acc, int32_t out_scale,
                                  const int32_t *bias, uint32_t k, int32_t leak_mul, uint32_t leak_shift)
{
    uint32_t c;
    for (c = 0u; c < k; c++) {
        const int32_t drive = acc[c] * out_scale + bias[c];
        const int32_t leaked = delrec_readout_leak(u[c], leak_mul, leak_shift);
#if defined(DELREC_KERNELS_DSP) || defined(DELREC_KERNELS_MVE)
        u[c] = __qadd(leaked, drive);
#else
        u[c] = delrec_sat32((int64_t)leaked + drive);
#endif
#if defined(__GNUC__)
        if (__builtin_add_overflow(score[c], (int64_t)u[c], &score[c])) score[c] = u[c] > 0 ? INT64_MAX : INT64_MIN;
#else
        score[c] = delrec_add_sat64(score[c], u[c]);
#endif
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

#include "delrec_packed.inc"

#endif /* DELREC_RUNTIME_H */

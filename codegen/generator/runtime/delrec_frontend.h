/*
 * delrec front end: the hand-written fixed-point kernels of the integer audio front end (int16 PCM in, spike
 * counts per channel and bin out). Header only (static inline), C99, integers only, no allocation.
 *
 * The definition they reproduce bit for bit is the integer reference, codegen/integer/frontend_ref.py (its
 * module docstring in codegen/integer/frontend.py lists every operation); the code generator refuses a front
 * end whose registers could overflow for any int16 input (codegen/integer/frontend_bounds.py), so the ranges
 * each kernel states below always hold.
 *
 * Per completed bin: delrec_fe_spectrum (window, bit-reversed packing, radix-2 FFT, real split, power and
 * filterbank energies), delrec_fe_log2 per channel, delrec_fe_gain (noise floor and peak trackers), then
 * delrec_fe_encode (LIF encoder at sub-steps -> counts). Samples enter through delrec_fe_push.
 *
 * Kernel selection at compile time: the FFT has a plain reference form (every butterfly multiplies) and a
 * default form that skips the multiplications of the trivial twiddle (1, which is exact in Q14); define
 * DELREC_REFERENCE_KERNELS for the reference form. Both give identical results bit for bit.
 */
#ifndef DELREC_FRONTEND_H
#define DELREC_FRONTEND_H

#include <stdint.h>
#include <string.h>

/* DELREC_NOINLINE keeps a function out of its callers (gcc, clang; empty elsewhere): the per-bin work of the
 * front end then returns, freeing its FFT buffers, before the network step runs, so the two stacks never add. */
#if defined(__GNUC__) || defined(__clang__)
#define DELREC_NOINLINE __attribute__((noinline))
#else
#define DELREC_NOINLINE
#endif

/* Rounded shifts below need the arithmetic right shift of negative values (as delrec_runtime.h checks too). */
typedef char delrec_fe_requires_arithmetic_right_shift[((-7 >> 1) == -4) ? 1 : -1];

#define DELREC_FE_TWIDDLE_BITS 14u
#define DELREC_FE_WINDOW_BITS 15u
#define DELREC_FE_FILTER_ONE 4096u /* filterbank weight 1.0 (2^12) */
#define DELREC_FE_LOG_TABLE_BITS 5u
#define DELREC_FE_LOG_INTERP_BITS 8u
#define DELREC_FE_LOGADD_STEP_BITS 1u /* the log-add table is indexed by |L - lp| >> 1 */

/* Every constant of one front end, computed by the code generator (the tables live in flash). */
typedef struct {
    uint32_t frame;            /* N: samples per frame and FFT length, a power of two */
    uint32_t half;             /* M = N / 2: length of the complex FFT */
    uint32_t hop;              /* samples per bin */
    uint32_t stages;           /* log2(M) */
    uint32_t channels;         /* C */
    uint32_t log_frac;         /* F: fraction bits of log2(energy) */
    uint32_t floor_frac;       /* G: extra fraction bits of the trackers */
    uint32_t floor_rise_shift; /* the floor rises by 1/2^k of the difference per bin */
    uint32_t floor_fall_shift; /* and falls by 1/2^k */
    uint32_t peak_fall_shift;  /* the peak falls by 1/2^k (it rises at once) */
    int32_t floor_min;         /* Q(F): the lowest level the floor counts as */
    int32_t offset;            /* Q(F): a channel fires this far above its floor */
    int32_t depth;             /* Q(F): and within this far of the peak */
    int32_t threshold;         /* encoder threshold; its input is clamped to 0..threshold - 1 */
    uint32_t substeps;         /* encoder sub-steps per bin */
    uint32_t refractory;       /* sub-steps without integration after a spike, 0..255 */
    uint32_t leak_shift;       /* encoder leak v -= rshift(v, k) per sub-step; 0: none */
    uint32_t pool_bins;        /* 1: levels from this bin's frame; 2: from this bin's and the previous one's */
    uint32_t logadd_last;      /* A - 1: the last index of logadd (whose entry is 0) */
    const int16_t *window;     /* [N] Hann, Q15, 0..32767 */
    const int16_t *cosine;     /* [M + 1] Q14 cos(2 pi k / N) */
    const int16_t *sine;       /* [M + 1] Q14 sin(2 pi k / N) */
    const uint16_t *bitrev;    /* [M] bit-reversal permutation of 0..M-1 */
    const uint8_t *shifts;     /* [stages] 0 or 1: the rounded shift after each FFT stage */
    const int16_t *chan;       /* [M + 1] channel whose rising edge holds bin k, -1..C */
    const int16_t *weight;     /* [M + 1] its weight, 0..4096; channel chan[k] - 1 gets 4096 - weight */
    const int16_t *log_table;  /* [2^5 + 1] Q(F) log2(1 + i / 32) */
    const uint8_t *logadd;     /* [A] Q(F) log2(1 + 2^(-2j / 2^F)): log2(2^a + 2^b) - max(a, b) at |a - b| >> 1 == j */
} delrec_fe_params;

/* (a + 2^(k-1)) >> k; a for k == 0. Range: 0 <= k <= 30, a + 2^(k-1) inside int32. */
static inline int32_t delrec_fe_rshift(int32_t a, uint32_t k)
{
    return (a + (((int32_t)1 << k) >> 1)) >> k;
}

/* Copy samples into the ring (slot *pos, wrapping at frame) until the current bin is complete (*fill reaches
 * hop) or the input ends; returns how many were taken. Range: *pos < frame, *fill < hop (checked by callers). */
static inline uint32_t delrec_fe_push(int16_t *ring, uint32_t *pos, uint32_t *fill, const int16_t *pcm, uint32_t n,
                                      const delrec_fe_params *p)
{
    const uint32_t mask = p->frame - 1u;
    uint32_t take = p->hop - *fill, i, at = *pos;
    if (take > n) take = n;
    for (i = 0u; i < take; i++) {
        ring[at] = pcm[i];
        at = (at + 1u) & mask;
    }
    *pos = at;
    *fill += take;
    return take;
}

/* The frame (ring read from slot pos, oldest sample first) windowed and packed into z[m] = y[2m] + i y[2m+1],
 * stored in bit-reversed order: re[m], im[m] = z[bitrev[m]]. Range: |x * w| <= 2^30. */
static inline void delrec_fe_pack(const int16_t *ring, uint32_t pos, const delrec_fe_params *p, int32_t *re,
                                  int32_t *im)
{
    const uint32_t mask = p->frame - 1u;
    uint32_t m;
    for (m = 0u; m < p->half; m++) {
        const uint32_t n = 2u * (uint32_t)p->bitrev[m];
        const int32_t x0 = ring[(pos + n) & mask], x1 = ring[(pos + n + 1u) & mask];
        re[m] = delrec_fe_rshift(x0 * (int32_t)p->window[n], DELREC_FE_WINDOW_BITS);
        im[m] = delrec_fe_rshift(x1 * (int32_t)p->window[n + 1u], DELREC_FE_WINDOW_BITS);
    }
}

/* One radix-2 butterfly on elements a and b with twiddle (c, s) and output shift sh:
 *   t = rshift(c*br + s*bi, 14) + i rshift(c*bi - s*br, 14),  a' = rshift(a + t, sh),  b' = rshift(a - t, sh).
 * Range: every product, sum and bias inside int32 (proven by the static analysis). */
static inline void delrec_fe_butterfly(int32_t *re, int32_t *im, uint32_t a, uint32_t b, int32_t c, int32_t s,
                                       uint32_t sh)
{
    const int32_t tr = delrec_fe_rshift(c * re[b] + s * im[b], DELREC_FE_TWIDDLE_BITS);
    const int32_t ti = delrec_fe_rshift(c * im[b] - s * re[b], DELREC_FE_TWIDDLE_BITS);
    const int32_t ar = re[a], ai = im[a];
    re[a] = delrec_fe_rshift(ar + tr, sh);
    im[a] = delrec_fe_rshift(ai + ti, sh);
    re[b] = delrec_fe_rshift(ar - tr, sh);
    im[b] = delrec_fe_rshift(ai - ti, sh);
}

/* The same butterfly for the twiddle 1 (c = 2^14, s = 0): rshift(2^14 * x, 14) == x exactly, so t = b. */
static inline void delrec_fe_butterfly_one(int32_t *re, int32_t *im, uint32_t a, uint32_t b, uint32_t sh)
{
    const int32_t tr = re[b], ti = im[b], ar = re[a], ai = im[a];
    re[a] = delrec_fe_rshift(ar + tr, sh);
    im[a] = delrec_fe_rshift(ai + ti, sh);
    re[b] = delrec_fe_rshift(ar - tr, sh);
    im[b] = delrec_fe_rshift(ai - ti, sh);
}

/* In-place radix-2 decimation-in-time FFT of M points (input in bit-reversed order, output natural).
 * At half-size h the pair (i, i + h) of each block of 2h uses the twiddle of index j * N / (2h), j = i mod 2h. */
static inline void delrec_fe_fft(int32_t *re, int32_t *im, const delrec_fe_params *p)
{
    uint32_t stage, h = 1u, i, j;
    for (stage = 0u; stage < p->stages; stage++, h <<= 1) {
        const uint32_t stride = p->frame / (2u * h), sh = p->shifts[stage];
#if defined(DELREC_REFERENCE_KERNELS)
        j = 0u;
#else
        for (i = 0u; i < p->half; i += 2u * h) delrec_fe_butterfly_one(re, im, i, i + h, sh);
        j = 1u;
#endif
        for (; j < h; j++) {
            const int32_t c = p->cosine[j * stride], s = p->sine[j * stride];
            for (i = j; i < p->half; i += 2u * h) delrec_fe_butterfly(re, im, i, i + h, c, s, sh);
        }
    }
}

/* |x|^2 + |y|^2 in uint32. Range: |x|, |y| <= 65535 and the sum below 2^32. */
static inline uint32_t delrec_fe_power(int32_t x, int32_t y)
{
    const uint32_t ux = (uint32_t)(x < 0 ? -x : x), uy = (uint32_t)(y < 0 ? -y : y);
    return ux * ux + uy * uy;
}

/* The N-point real spectrum X[k], k = 0..M, from the M-point FFT of the packed frame, its power, and the
 * channel energies energy[c] = sum_k g[c][k] * P[k] (cleared first). Range: energies below 2^63. */
static inline void delrec_fe_split_bank(const int32_t *re, const int32_t *im, const delrec_fe_params *p,
                                        uint64_t *energy)
{
    const uint32_t mask = p->half - 1u, channels = p->channels;
    uint32_t k;
    memset(energy, 0, channels * sizeof(uint64_t));
    for (k = 0u; k <= p->half; k++) {
        const uint32_t k1 = k & mask, k2 = (p->half - k) & mask;
        const int32_t ar = re[k1] + re[k2], ai = im[k1] - im[k2];
        const int32_t br = re[k1] - re[k2], bi = im[k1] + im[k2];
        const int32_t c = p->cosine[k], s = p->sine[k];
        const int32_t tr = delrec_fe_rshift(c * bi + (-s) * br, DELREC_FE_TWIDDLE_BITS);
        const int32_t ti = delrec_fe_rshift((-c) * br + (-s) * bi, DELREC_FE_TWIDDLE_BITS);
        const uint32_t power = delrec_fe_power(delrec_fe_rshift(ar + tr, 1u), delrec_fe_rshift(ai + ti, 1u));
        const int32_t ch = p->chan[k];
        const uint32_t w = (uint32_t)p->weight[k];
        if (ch >= 0 && (uint32_t)ch < channels) energy[ch] += (uint64_t)w * power;
        if (ch >= 1 && (uint32_t)ch <= channels) energy[ch - 1] += (uint64_t)(DELREC_FE_FILTER_ONE - w) * power;
    }
}

/* Leading zeros of e != 0. */
static inline uint32_t delrec_fe_clz64(uint64_t e)
{
#if defined(__GNUC__) || defined(__clang__)
    return (uint32_t)__builtin_clzll(e);
#else
    uint32_t n = 0u;
    while ((e & ((uint64_t)1 << 63)) == 0u) {
        e <<= 1;
        n++;
    }
    return n;
#endif
}

/* log2(e) in Q(F): 0 for e == 0; else (msb << F) + tab[i] + rshift((tab[i+1] - tab[i]) * r, 8) with i the 5 bits
 * after the leading one and r the next 8. Range: the result below 64 * 2^F. */
static inline int32_t delrec_fe_log2(uint64_t e, const delrec_fe_params *p)
{
    uint32_t msb, index, rest;
    uint64_t normal;
    int32_t lo;
    if (e == 0u) return 0;
    msb = 63u - delrec_fe_clz64(e);
    normal = e << (63u - msb);
    index = (uint32_t)(normal >> (63u - DELREC_FE_LOG_TABLE_BITS)) & ((1u << DELREC_FE_LOG_TABLE_BITS) - 1u);
    rest = (uint32_t)(normal >> (63u - DELREC_FE_LOG_TABLE_BITS - DELREC_FE_LOG_INTERP_BITS)) &
           ((1u << DELREC_FE_LOG_INTERP_BITS) - 1u);
    lo = p->log_table[index];
    return (int32_t)(msb << p->log_frac) + lo +
           delrec_fe_rshift((p->log_table[index + 1u] - lo) * (int32_t)rest, DELREC_FE_LOG_INTERP_BITS);
}

/* Pooling over two bins (pool_bins 2): log[c] becomes log2(E + E_prev) = max(L, lp) + logadd[min(|L - lp| >> 1,
 * A - 1)] (without the table term when L or lp is 0, the log of no energy) and prev[c] the bin's own L. With
 * pool_bins 1 nothing changes. Range: 0 <= L, lp < 2^15 (int16 state). */
static inline void delrec_fe_pool(int32_t *log, int16_t *prev, const delrec_fe_params *p)
{
    uint32_t c;
    if (p->pool_bins != 2u) return;
    for (c = 0u; c < p->channels; c++) {
        const int32_t l = log[c], lp = prev[c];
        uint32_t j = (uint32_t)(l > lp ? l - lp : lp - l) >> DELREC_FE_LOGADD_STEP_BITS;
        if (j > p->logadd_last) j = p->logadd_last;
        prev[c] = (int16_t)l;
        log[c] = (l > lp ? l : lp) + (l > 0 && lp > 0 ? (int32_t)p->logadd[j] : 0);
    }
}

/* A level tracker: d = x * 2^G - t; t + rshift(d, up) if d > 0, else t + rshift(d, down). Range: int32. */
static inline int32_t delrec_fe_track(int32_t t, int32_t x, uint32_t frac, uint32_t up, uint32_t down)
{
    const int32_t d = x * ((int32_t)1 << frac) - t;
    return t + delrec_fe_rshift(d, d > 0 ? up : down);
}

/* The gain control of one bin: the encoder input f[c] from log[c] and the trackers as they were, then the
 * trackers updated (the floor per channel, the peak from the loudest channel). */
static inline void delrec_fe_gain(int32_t *floor, int32_t *peak, const int32_t *log, int32_t *f,
                                  const delrec_fe_params *p)
{
    const int32_t loud = delrec_fe_rshift(*peak, p->floor_frac) - p->depth;
    int32_t loudest = 0;
    uint32_t c;
    for (c = 0u; c < p->channels; c++) {
        int32_t quiet = delrec_fe_rshift(floor[c], p->floor_frac);
        int32_t d;
        if (quiet < p->floor_min) quiet = p->floor_min;
        quiet += p->offset;
        d = log[c] - (quiet > loud ? quiet : loud);
        f[c] = d < 0 ? 0 : (d > p->threshold - 1 ? p->threshold - 1 : d);
        if (log[c] > loudest) loudest = log[c];
        floor[c] = delrec_fe_track(floor[c], log[c], p->floor_frac, p->floor_rise_shift, p->floor_fall_shift);
    }
    *peak = delrec_fe_track(*peak, loudest, p->floor_frac, 0u, p->peak_fall_shift);
}

/* The LIF encoder of one bin: per channel `substeps` sub-steps of constant input f[c]; counts[c] spikes.
 * Range: 0 <= v < threshold between sub-steps, so v + f < 2 * threshold. */
static inline void delrec_fe_encode(int32_t *v, uint8_t *refractory, const int32_t *f, uint8_t *counts,
                                    const delrec_fe_params *p)
{
    uint32_t c, s;
    for (c = 0u; c < p->channels; c++) {
        int32_t m = v[c];
        uint32_t r = refractory[c], count = 0u;
        for (s = 0u; s < p->substeps; s++) {
            if (p->leak_shift != 0u) m -= delrec_fe_rshift(m, p->leak_shift);
            if (r != 0u) {
                r--;
                continue;
            }
            m += f[c];
            if (m >= p->threshold) {
                m -= p->threshold;
                count++;
                r = p->refractory;
            }
        }
        v[c] = m;
        refractory[c] = (uint8_t)r;
        counts[c] = (uint8_t)count;
    }
}

#endif /* DELREC_FRONTEND_H */

/* What zoomer's compiled CPU kernels share: lanes of one SIMD vector, each its own run.
 *
 * A vec holds one value of LANES independent runs (or pixels); every operation below is a
 * full-width vector op, so each lane's arithmetic is the same whatever its neighbours are.
 * The vectorised tanh and the small matrix products on views are written once here and
 * used by cpu_kernel.c (training runs) and perturbation_kernel.c (pixels as differences
 * from a reference run). REAL_BITS (64 or 32) is set on the compiler's command line.
 */
#ifndef ZOOMER_LANES_H
#define ZOOMER_LANES_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if REAL_BITS == 64
typedef double real;
typedef int64_t lane_int;
#define MANTISSA_BITS 52
#else
typedef float real;
typedef int32_t lane_int;
#define MANTISSA_BITS 23
#endif

#if defined(__AVX512F__)
#define VBYTES 64
#elif defined(__AVX__)
#define VBYTES 32
#else
#define VBYTES 16
#endif
typedef real vec __attribute__((vector_size(VBYTES), aligned(VBYTES)));
typedef lane_int ivec __attribute__((vector_size(VBYTES)));
#define LANES ((int)(VBYTES / sizeof(real)))


enum { TANH, RELU, IDENTITY }; /* the order of zoomer.experiment.NONLINEARITIES */

/* The helpers below are small and hot: inlined, their sizes and strides become constants. */
#define INLINE static inline __attribute__((always_inline))

INLINE vec splat(real s) { return s - (vec){0}; } /* exact, unlike 0 + s */

/* |x|, lane-wise: the sign bit cleared (NaN stays NaN). */
INLINE vec vabs(vec x) { return (vec)((ivec)x & ~(ivec)splat(-0.0)); }

/* Lane-wise mask ? a : b (GCC's vector ?: is C++ only). */
INLINE vec blend(ivec mask, vec a, vec b) {
    return (vec)(((ivec)a & mask) | ((ivec)b & ~mask));
}

/* ---- tanh, vectorised and branch-free, ~1 ulp ------------------------------------------
 * Cephes' method: tanh|x| = |x| + |x| s P(s)/Q(s), s = x^2, below 0.625; above it
 * 1 - 2/(exp(2|x|) + 1). Both are A + B/C, so the lanes pick A, B, C and share one
 * division. exp: 2|x| = k ln2 + r with |r| <= ln2/2, exp(r) by its Taylor series to where
 * the next term is below an ulp, 2^k added to the exponent bits. */
#if REAL_BITS == 64
#define TANH_CLAMP 20.0 /* tanh rounds to 1 well below this; exp(2 * 20) cannot overflow */
static const real TANH_P[] = {-9.64399179425052238628e-1, -9.92877231001918586564e1,
                              -1.61468768441708447952e3};
static const real TANH_Q[] = {1.12811678491632931402e2, 2.23548839060100448583e3,
                              4.84406305325125486048e3}; /* leading 1 implied */
#define EXP_DEGREE 13
#define SHIFTER 0x1.8p52 /* adding it rounds to an integer, left in the low mantissa bits */
#define LN2_HI 6.93147180369123816490e-01 /* Cody-Waite split: k * LN2_HI is exact */
#define LN2_LO 1.90821492927058770002e-10
#else
#define TANH_CLAMP 10.0f
static const real TANH_P[] = {-5.70498872745e-3f, 2.06390887954e-2f, -5.37397155531e-2f,
                              1.33314422036e-1f, -3.33332819422e-1f};
#define EXP_DEGREE 7
#define SHIFTER 0x1.8p23f
#define LN2_HI 0.693359375f
#define LN2_LO -2.12194440e-4f
#endif
#define LOG2E 1.44269504088896340736
#define N_TANH_P ((int)(sizeof(TANH_P) / sizeof(TANH_P[0])))

/* sum_n c[n] x^n (n <= 16) by Estrin's scheme: t[i] + t[i+1] x for even i, then pairs of
 * those with x^2, and so on; a tree of depth log2(n) where Horner's rule is a chain of n
 * multiply-adds that would leave the pipelines waiting. */
INLINE vec polynomial(vec x, const real *c, int n) {
    vec t[16];
    for (int i = 0; i < n; i++) t[i] = splat(c[i]);
#pragma GCC unroll 4
    for (int stride = 1; stride < 16; stride *= 2, x *= x)
#pragma GCC unroll 8
        for (int i = 0; i + stride < n; i += 2 * stride) t[i] += t[i + stride] * x;
    return t[0];
}

/* exp(y) for 0 <= y <= 709 (tanh needs up to 2 * TANH_CLAMP). */
INLINE vec vexp(vec y) {
    vec t = y * (real)LOG2E + SHIFTER;
    vec k = t - SHIFTER;
    vec r = y - k * LN2_HI - k * LN2_LO;
    real inv_factorial[EXP_DEGREE + 1] = {1}; /* folded to constants by the compiler */
    for (int n = 1; n <= EXP_DEGREE; n++) inv_factorial[n] = inv_factorial[n - 1] / n;
    vec p = polynomial(r, inv_factorial, EXP_DEGREE + 1);
    return p * (vec)(((ivec)t << MANTISSA_BITS) + (ivec)splat(1)); /* times 2^k; NaN stays NaN */
}

/* tanh of TANH_WAYS vectors, in place. Each step runs over all of them before the next, so
 * their instructions interleave: while one waits on its exp or its division the pipelines
 * have the others' work (the whole kernel ran ~10% faster than with one at a time). */
#define TANH_WAYS 4
#define EACH for (int w = 0; w < TANH_WAYS; w++)
INLINE void vtanh(vec x[TANH_WAYS]) {
    const ivec sign = (ivec)splat(-0.0);
    vec ax[TANH_WAYS], s[TANH_WAYS], p[TANH_WAYS], q[TANH_WAYS], e[TANH_WAYS];
    EACH ax[w] = vabs(x[w]);
    EACH ax[w] = blend(ax[w] > TANH_CLAMP, splat(TANH_CLAMP), ax[w]); /* keeps NaN */
    EACH s[w] = ax[w] * ax[w];
    EACH p[w] = splat(TANH_P[0]);
    for (int i = 1; i < N_TANH_P; i++) EACH p[w] = p[w] * s[w] + TANH_P[i];
#if REAL_BITS == 64
    EACH q[w] = ((s[w] + TANH_Q[0]) * s[w] + TANH_Q[1]) * s[w] + TANH_Q[2];
#else
    EACH q[w] = splat(1);
#endif
    EACH e[w] = vexp(ax[w] + ax[w]);
    EACH {
        ivec small = ax[w] < (real)0.625;
        vec a = blend(small, ax[w], splat(1));
        vec b = blend(small, ax[w] * s[w] * p[w], splat(-2));
        vec c = blend(small, q[w], e[w] + 1);
        x[w] = (vec)((ivec)(a + b / c) | ((ivec)x[w] & sign));
    }
}

/* ---- small matrix products, every lane its own ---------------------------------------
 * A view of a matrix of vectors: element (p, q) is at[p * row + q * col], so a transpose
 * is just other strides. All sizes and strides are constants once inlined. */
typedef struct {
    const vec *at;
    int row, col;
} View;
#define AT(v, p, q) ((v).at[(p) * (v).row + (q) * (v).col])

/* Tile sides: the largest of these that divides n, so tiles never overhang a matrix. */
#define ROW_TILE(n) ((n) % 6 == 0 ? 6 : (n) % 4 == 0 ? 4 : (n) % 2 == 0 ? 2 : 1)
#define COLUMN_TILE(n) ((n) % 2 == 0 ? 2 : 1)

/* c[p][q] (+)= sum_s a(p, s) b(s, q) over one tile, its pt x qt sums held in registers. */
INLINE void product_tile(int p0, int q0, int pt, int qt, int n, View a, View b, vec *c,
                         int c_row, int accumulate) {
    vec acc[6][2]; /* up to ROW_TILE x COLUMN_TILE */
    for (int p = 0; p < pt; p++)
        for (int q = 0; q < qt; q++)
            acc[p][q] = accumulate ? c[(p0 + p) * c_row + q0 + q] : splat(0);
    for (int s = 0; s < n; s++)
        for (int p = 0; p < pt; p++)
            for (int q = 0; q < qt; q++) acc[p][q] += AT(a, p0 + p, s) * AT(b, s, q0 + q);
    for (int p = 0; p < pt; p++)
        for (int q = 0; q < qt; q++) c[(p0 + p) * c_row + q0 + q] = acc[p][q];
}

/* c (m x k, row-major) (+)= a (m x n) b (n x k), in tiles of up to 6 x 2: twelve
 * independent sums hide the latency of the fused multiply-adds, and each value loaded
 * serves two or six of them. */
INLINE void product(int m, int n, int k, View a, View b, vec *c, int accumulate) {
    const int pt = ROW_TILE(m), qt = COLUMN_TILE(k);
    for (int p = 0; p < m; p += pt)
        for (int q = 0; q < k; q += qt) product_tile(p, q, pt, qt, n, a, b, c, k, accumulate);
}

/* The views a layer's products use: rows of activations, its weights, their transposes. */
#define ROWS_OF(m, width) ((View){(const vec *)(m), (width), 1})
#define COLUMNS_OF(m, width) ((View){(const vec *)(m), 1, (width)})

#endif
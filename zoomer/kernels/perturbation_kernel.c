/* Perturbation's pixels, one step: every pixel's run as a float64 difference from one
 * reference run (zoomer/perturbation.py says why and derives each formula).
 *
 * The reference's pass of this step (its pre-activations, activations, residuals and
 * backward values, computed in double-double by perturbation.py) is shared by every
 * pixel and read row by row; each SIMD lane is one pixel, holding only its weight
 * differences. The step mirrors perturbation._Net's forward_difference, loss_difference
 * and backward_difference for a net of two layers, then the glitch test and the update of
 * the differences, in one pass over the data rows in blocks of ROWS, as cpu_kernel.c
 * trains a run (a minibatch step adds a forward-only pass over the full batch, which its
 * loss is scored on). perturbation.py takes the torch path for the rest (deeper nets,
 * other devices).
 *
 * Compiled with -D REAL_BITS=64 WIDTH TARGET_DIM ROWS by zoomer/kernels/cpu.py.
 */
#include <math.h>

#include "lanes.h"

#define FAR 20.0               /* perturbation._FAR */

/* The reference's values over some data rows, each (n_rows, WIDTH) or (n_rows,
 * TARGET_DIM) with rows zero-padded to a multiple of ROWS (a zero row adds nothing). The
 * backward values (slope, pre, g) are read only for the rows a step trains on. */
typedef struct {
    const real *X;            /* inputs */
    const real *a_hi, *a_lo;  /* tanh: gain * pre-activation; relu: the pre-activation */
    const real *h, *s2;       /* hidden activations; tanh's 1 - h^2 */
    const real *slope, *pre;  /* d h / d p; dL/dh of the hidden layer */
    const real *r, *g;        /* residuals; dL/d(output pre-activation) */
    long n_rows;
} Rows;

/* The reference's step: the rows it trains on (the full batch or this step's minibatch),
 * the rows its loss is scored on (the full batch; n_rows 0 when they are the same), and
 * its weights and gradients (float64 parts of its double-doubles). */
typedef struct {
    Rows step, scored;
    const real *w0, *w1;      /* weights (WIDTH, WIDTH), (WIDTH, TARGET_DIM) */
    const real *grad0, *grad1;
    real lr0, lr1;            /* the layers' rates */
    real gain, out_scale, grad_scale, loss_scale, loss_hi, loss_lo, glitch_ratio;
    int nonlinearity;
} Reference;

/* One lane group's state and the blocks of its pass, allocated once per thread. */
typedef struct {
    vec dw0[WIDTH][WIDTH], dw1[WIDTH][TARGET_DIM];   /* the pixels' weight differences */
    vec w1[WIDTH][TARGET_DIM];                       /* the pixels' own output weights */
    vec dgrad0[WIDTH][WIDTH], dgrad1[WIDTH][TARGET_DIM];
    vec dlr0, dlr1;
    vec x[ROWS][WIDTH], h[ROWS][WIDTH], dh[ROWS][WIDTH], dslope[ROWS][WIDTH];
    vec dg0[ROWS][WIDTH];
    vec g[ROWS][TARGET_DIM], dr[ROWS][TARGET_DIM], part[ROWS][TARGET_DIM];
} Group;

/* Rows r0 .. r0 + ROWS - 1 of a shared (n_rows, width) array, one value per lane. */
INLINE void broadcast(vec *out, const real *m, long r0, int width) {
    for (int i = 0; i < ROWS * width; i++) out[i] = splat(m[r0 * width + i]);
}

INLINE vec vmax(vec a, vec b) { return blend(a > b, a, b); }

/* cosh and sinh from one exp: sinh's E - 1/E loses at most two bits where it is used,
 * |y| > 0.55 (below, 1 + h tanh(y) cannot be under 1/2). exp overflows past 709. */
#define EXP_MAX (real)700
INLINE vec vcosh(vec y) {
    vec e = vexp(blend(vabs(y) > EXP_MAX, splat(EXP_MAX), vabs(y)));
    return (e + 1 / e) * (real)0.5;
}
INLINE vec vsinh(vec y) {
    vec e = vexp(vabs(y));
    vec s = (e - 1 / e) * (real)0.5;
    return blend(y < 0, -s, s);
}

/* tanh(a + b) - tanh(a) where 1 + h tanh(b) is small (b and a of opposite signs, both
 * units near saturation): perturbation._tanh_difference's other forms, sinh(b) sech(a) /
 * cosh(a + b) while |b| < FAR, and the plain difference past it. */
INLINE vec tanh_difference_far(real a_hi, real a_lo, vec b, real h, real s2) {
    ivec near = vabs(b) < FAR;
    vec bn = blend(near, b, splat(0));
    vec d = vsinh(bn) * sqrt(s2) / vcosh((a_hi + bn) + a_lo);
    int all_near = 1;
    for (int lane = 0; lane < LANES; lane++) all_near &= near[lane] != 0;
    if (all_near) return d;
    vec t[TANH_WAYS] = {(a_hi + b) + a_lo};
    vtanh(t);
    return blend(near, d, t[0] - h);
}

/* The hidden layer's differences (dh, dslope) from its pre-activation differences,
 * already in g->dh on entry. */
static void activation_difference(const Reference *ref, const Rows *rows, Group *g, long r0) {
    const vec k = splat(ref->gain);
    vec *dh = &g->dh[0][0], *ds = &g->dslope[0][0];
    const int n = ROWS * WIDTH;
    const long at = r0 * WIDTH;
    switch (ref->nonlinearity) {
    case TANH: {
        vec tb[ROWS * WIDTH];
        for (int i = 0; i < n; i++) tb[i] = dh[i] * k; /* b, the difference of tanh's argument */
        memcpy(dh, tb, sizeof tb);
        for (int i = 0; i < n; i += TANH_WAYS) vtanh(&tb[i]);
        for (int i = 0; i < n; i++) {
            const real h = rows->h[at + i], s2 = rows->s2[at + i];
            vec den = 1 + h * tb[i];
            vec d = tb[i] * s2 / den;
            ivec far = den < (real)0.5;
            int any = 0;
            for (int lane = 0; lane < LANES; lane++) any |= far[lane] != 0;
            if (any) d = blend(far, tanh_difference_far(rows->a_hi[at + i], rows->a_lo[at + i], dh[i], h, s2), d);
            dh[i] = d;
            ds[i] = -d * (2 * h + d) * k; /* (1 - h'^2) - (1 - h^2), times the gain */
        }
        break;
    }
    case RELU: /* read at the kink from the pixel's own pre-activation's sign */
        for (int i = 0; i < n; i++) {
            const real p_hi = rows->a_hi[at + i], p_lo = rows->a_lo[at + i];
            ivec on_pixel = (p_hi + dh[i]) + p_lo > 0;
            vec on_ref = splat(p_hi > 0);
            vec diff = p_hi > 0 ? blend(on_pixel, dh[i], splat(-p_hi))
                                : blend(on_pixel, (p_hi + dh[i]) + p_lo, splat(0));
            dh[i] = diff * k;
            ds[i] = (blend(on_pixel, splat(1), splat(0)) - on_ref) * k;
        }
        break;
    default:
        for (int i = 0; i < n; i++) {
            dh[i] *= k;
            ds[i] = splat(0);
        }
    }
}

/* One pass over the rows: the lanes' summed dr (2 r + dr), and with backward their
 * gradient differences in g->dgrad0, g->dgrad1. */
static vec pass(const Reference *ref, const Rows *rows, Group *g, int backward) {
    vec loss = splat(0);
    if (backward) {
        memset(g->dgrad0, 0, sizeof g->dgrad0);
        memset(g->dgrad1, 0, sizeof g->dgrad1);
    }
    for (long r0 = 0; r0 < rows->n_rows; r0 += ROWS) {
        /* forward: dp = X dW0, then dr = (h dW1 + dh (W1 + dW1)) out_scale */
        broadcast(&g->x[0][0], rows->X, r0, WIDTH);
        product(ROWS, WIDTH, WIDTH, ROWS_OF(g->x, WIDTH), ROWS_OF(g->dw0, WIDTH), &g->dh[0][0], 0);
        activation_difference(ref, rows, g, r0);
        broadcast(&g->h[0][0], rows->h, r0, WIDTH);
        product(ROWS, WIDTH, TARGET_DIM, ROWS_OF(g->h, WIDTH), ROWS_OF(g->dw1, TARGET_DIM), &g->dr[0][0], 0);
        product(ROWS, WIDTH, TARGET_DIM, ROWS_OF(g->dh, WIDTH), ROWS_OF(g->w1, TARGET_DIM), &g->part[0][0], 0);
        for (int r = 0; r < ROWS; r++)
            for (int o = 0; o < TARGET_DIM; o++) {
                vec dr = (g->dr[r][o] + g->part[r][o]) * ref->out_scale;
                loss += dr * (2 * rows->r[(r0 + r) * TARGET_DIM + o] + dr);
                g->dr[r][o] = dr * ref->grad_scale;  /* from here on dg, the residual's gradient */
            }
        if (!backward) continue;
        broadcast(&g->g[0][0], rows->g, r0, TARGET_DIM);
        for (int r = 0; r < ROWS; r++)
            for (int o = 0; o < TARGET_DIM; o++) g->part[r][o] = g->g[r][o] + g->dr[r][o]; /* the pixel's own g */
        /* backward: dgrad1 = h^T dg + dh^T (g + dg); dpre = dg (W1 + dW1)^T + g dW1^T */
        product(WIDTH, ROWS, TARGET_DIM, COLUMNS_OF(g->h, WIDTH), ROWS_OF(g->dr, TARGET_DIM), &g->dgrad1[0][0], 1);
        product(WIDTH, ROWS, TARGET_DIM, COLUMNS_OF(g->dh, WIDTH), ROWS_OF(g->part, TARGET_DIM), &g->dgrad1[0][0], 1);
        product(ROWS, TARGET_DIM, WIDTH, ROWS_OF(g->dr, TARGET_DIM), COLUMNS_OF(g->w1, TARGET_DIM), &g->dg0[0][0], 0);
        product(ROWS, TARGET_DIM, WIDTH, ROWS_OF(g->g, TARGET_DIM), COLUMNS_OF(g->dw1, TARGET_DIM), &g->dg0[0][0], 1);
        /* the hidden layer's dg = dpre (slope + dslope) + pre dslope, then dgrad0 = X^T dg */
        const long at = r0 * WIDTH;
        vec *dg = &g->dg0[0][0], *ds = &g->dslope[0][0];
        for (int i = 0; i < ROWS * WIDTH; i++) dg[i] = dg[i] * (rows->slope[at + i] + ds[i]) + rows->pre[at + i] * ds[i];
        product(WIDTH, ROWS, WIDTH, COLUMNS_OF(g->x, WIDTH), ROWS_OF(g->dg0, WIDTH), &g->dgrad0[0][0], 1);
    }
    return loss;
}

/* Lanes whose largest weight difference is glitch_ratio times their largest weight
 * (perturbation.GLITCH_RATIO's test), before the update. */
static vec lost(const Reference *ref, const Group *g) {
    vec d = splat(0), w = splat(0);
    for (int i = 0; i < WIDTH; i++) {
        for (int j = 0; j < WIDTH; j++) {
            d = vmax(d, vabs(g->dw0[i][j]));
            w = vmax(w, vabs(ref->w0[i * WIDTH + j] + g->dw0[i][j]));
        }
        for (int o = 0; o < TARGET_DIM; o++) {
            d = vmax(d, vabs(g->dw1[i][o]));
            w = vmax(w, vabs(g->w1[i][o]));
        }
    }
    return blend(d > ref->glitch_ratio * w, splat(1), splat(0));
}

/* Lane `lane` holds pixel b (or, for a lane past the last pixel, pixel 0, never stored). */
static void load(const Reference *ref, Group *g, const real *dw0, const real *dw1, const real *dlrs,
                 int lane, long b) {
    for (int i = 0; i < WIDTH; i++) {
        for (int j = 0; j < WIDTH; j++) g->dw0[i][j][lane] = dw0[(b * WIDTH + i) * WIDTH + j];
        for (int o = 0; o < TARGET_DIM; o++) {
            g->dw1[i][o][lane] = dw1[(b * WIDTH + i) * TARGET_DIM + o];
            g->w1[i][o][lane] = ref->w1[i * TARGET_DIM + o] + g->dw1[i][o][lane];
        }
    }
    g->dlr0[lane] = dlrs[2 * b];
    g->dlr1[lane] = dlrs[2 * b + 1];
}

/* d <- d - (lr dgrad + dlr (grad + dgrad)), written back for the lanes that hold pixels. */
static void update(const Reference *ref, const Group *g, real *dw0, real *dw1, int lane, long b) {
    const real lr0 = ref->lr0, lr1 = ref->lr1, dlr0 = g->dlr0[lane], dlr1 = g->dlr1[lane];
    for (int i = 0; i < WIDTH; i++) {
        for (int j = 0; j < WIDTH; j++) {
            real dgrad = g->dgrad0[i][j][lane];
            dw0[(b * WIDTH + i) * WIDTH + j] =
                g->dw0[i][j][lane] - (lr0 * dgrad + dlr0 * (ref->grad0[i * WIDTH + j] + dgrad));
        }
        for (int o = 0; o < TARGET_DIM; o++) {
            real dgrad = g->dgrad1[i][o][lane];
            dw1[(b * WIDTH + i) * TARGET_DIM + o] =
                g->dw1[i][o][lane] - (lr1 * dgrad + dlr1 * (ref->grad1[i * TARGET_DIM + o] + dgrad));
        }
    }
}

/* One step of B pixels against the reference's pass: each pixel's loss (B,), whether it
 * glitched (B,: 1 or 0, judged before the step), and its weight differences dw0 (B, WIDTH,
 * WIDTH), dw1 (B, WIDTH, TARGET_DIM) stepped in place. dlrs (B, 2): each pixel's rates
 * minus the reference's. The step trains on the rows X .. g; a minibatch step's loss is
 * scored on the full batch's rows sX .. sr (n_scored 0: the step's own rows). Returns 0,
 * or -1 if a thread could not allocate its workspace. */
int zoomer_perturbed_step(int nonlinearity, long n_rows, const real *X, const real *a_hi,
                          const real *a_lo, const real *h, const real *s2, const real *slope,
                          const real *pre, const real *r, const real *g, long n_scored,
                          const real *sX, const real *sa_hi, const real *sa_lo, const real *sh,
                          const real *ss2, const real *sr, const real *w0,
                          const real *w1, const real *grad0, const real *grad1, real lr0, real lr1,
                          real gain, real out_scale, real grad_scale, real loss_scale, real loss_hi,
                          real loss_lo, real glitch_ratio, long B, const real *dlrs, real *dw0,
                          real *dw1, real *loss, real *glitched, int threads) {
    const Reference ref = {{X, a_hi, a_lo, h, s2, slope, pre, r, g, n_rows},
                           {sX, sa_hi, sa_lo, sh, ss2, NULL, NULL, sr, NULL, n_scored},
                           w0, w1, grad0, grad1, lr0, lr1,
                           gain, out_scale, grad_scale, loss_scale, loss_hi, loss_lo, glitch_ratio,
                           nonlinearity};
    const long groups = (B + LANES - 1) / LANES;
    int failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        size_t size = (sizeof(Group) + VBYTES - 1) / VBYTES * VBYTES;
        Group *grp = aligned_alloc(VBYTES, size);
        failed = grp == NULL;
#pragma omp for schedule(dynamic)
        for (long k = 0; k < groups; k++) {
            if (!grp) continue;
            for (int lane = 0; lane < LANES; lane++) {
                long b = k * LANES + lane;
                load(&ref, grp, dw0, dw1, dlrs, lane, b < B ? b : 0);
            }
            vec sse = ref.scored.n_rows ? pass(&ref, &ref.scored, grp, 0) : splat(0);
            vec stepped = pass(&ref, &ref.step, grp, 1);
            if (!ref.scored.n_rows) sse = stepped;
            vec out = (loss_hi + sse * loss_scale) + loss_lo;
            vec bad = lost(&ref, grp);
            for (int lane = 0; lane < LANES; lane++) {
                long b = k * LANES + lane;
                if (b >= B) break;
                loss[b] = out[lane];
                glitched[b] = bad[lane];
                update(&ref, grp, dw0, dw1, lane, b);
            }
        }
        free(grp);
    }
    return failed ? -1 : 0;
}

/* ---- the reference run's pass, in double-double ----------------------------------------
 * The same algorithms as zoomer.perturbation.DD and _Net.forward / backward (the QD
 * library's: Dekker, Knuth), one element at a time: a pass of the reference's step is a
 * few hundred thousand double-double operations, which as torch ops on small tensors cost
 * more in dispatch than in arithmetic. two_prod uses the fused multiply-add. */
typedef struct {
    double hi, lo;
} dd;

static inline dd two_sum(double a, double b) {
    double s = a + b, v = s - a;
    return (dd){s, (a - (s - v)) + (b - v)};
}
static inline dd quick_two_sum(double a, double b) {
    double s = a + b;
    return (dd){s, b - (s - a)};
}
static inline dd two_prod(double a, double b) {
    double p = a * b;
    return (dd){p, fma(a, b, -p)};
}
static inline dd dd_add(dd a, dd b) {
    dd s = two_sum(a.hi, b.hi), t = two_sum(a.lo, b.lo);
    s = quick_two_sum(s.hi, s.lo + t.hi);
    return quick_two_sum(s.hi, s.lo + t.lo);
}
static inline dd dd_neg(dd a) { return (dd){-a.hi, -a.lo}; }
static inline dd dd_mul(dd a, dd b) {
    dd p = two_prod(a.hi, b.hi);
    return quick_two_sum(p.hi, p.lo + (a.hi * b.lo + a.lo * b.hi));
}
static inline dd dd_of(double a) { return (dd){a, 0}; }
static inline dd dd_times(double a, dd b) { /* a float64 times a double-double */
    dd p = two_prod(a, b.hi);
    return quick_two_sum(p.hi, p.lo + a * b.lo);
}
static inline dd dd_div(dd a, dd b) {
    double q1 = a.hi / b.hi;
    dd r = dd_add(a, dd_neg(dd_mul(b, dd_of(q1))));
    double q2 = r.hi / b.hi;
    r = dd_add(r, dd_neg(dd_mul(b, dd_of(q2))));
    return dd_add(quick_two_sum(q1, q2), dd_of(r.hi / b.hi));
}
static inline dd dd_ldexp(dd a, int e) { return (dd){ldexp(a.hi, e), ldexp(a.lo, e)}; }
static inline dd dd_at(const double *hi, const double *lo, long i) { return (dd){hi[i], lo[i]}; }
static inline void dd_put(double *hi, double *lo, long i, dd v) { hi[i] = v.hi, lo[i] = v.lo; }

#define EXPM1_TERMS 10 /* perturbation._EXPM1_TERMS, _EXPM1_HALVINGS */
#define EXPM1_HALVINGS 8

/* expm1(r) for |r| <= ln2 / 2: Taylor on r / 2^8, then expm1(2x) = e (e + 2), 8 times. */
static dd expm1_reduced(dd r, const dd *inv_fact) {
    dd x = dd_ldexp(r, -EXPM1_HALVINGS), s = inv_fact[EXPM1_TERMS - 1];
    for (int k = EXPM1_TERMS - 2; k >= 0; k--) s = dd_add(inv_fact[k], dd_mul(x, s));
    s = dd_mul(x, s);
    for (int i = 0; i < EXPM1_HALVINGS; i++) s = dd_mul(s, dd_add(s, dd_of(2)));
    return s;
}

/* tanh(a) and 1 - tanh(a)^2, as perturbation._tanh_and_sech2. */
static void tanh_and_sech2(dd a, dd ln2, const dd *inv_fact, dd *t, dd *s2) {
    double sign = a.hi < 0 ? -1 : 1;
    dd x = fabs(a.hi) < 350 ? (dd){a.hi * sign, a.lo * sign} : dd_of(350);
    dd r2 = dd_mul(x, dd_of(-2));
    double m = nearbyint(r2.hi / ln2.hi);
    dd s = expm1_reduced(dd_add(r2, dd_neg(dd_mul(ln2, dd_of(m)))), inv_fact);
    dd E = dd_ldexp(dd_add(s, dd_of(1)), (int)m); /* exp(-2|a|) */
    dd one_minus_E = m == 0 ? dd_neg(s) : dd_add(dd_of(1), dd_neg(E));
    dd one_plus_E = dd_add(E, dd_of(1));
    dd q = dd_div(one_minus_E, one_plus_E);
    *t = (dd){q.hi * sign, q.lo * sign};
    *s2 = dd_div(dd_mul(E, dd_of(4)), dd_mul(one_plus_E, one_plus_E));
}

/* The reference's forward and backward pass over n data rows (X (n, WIDTH), Y (n,
 * TARGET_DIM)) with weights W0 (WIDTH, WIDTH), W1 (WIDTH, TARGET_DIM): every output in
 * hi and lo halves, as _Pass holds them. p, h, s2, slope, pre, g0 (n, WIDTH); r, g
 * (n, TARGET_DIM) (g: dL/d(output pre-activation), g0: dL/dp); grad0, grad1 like W0, W1;
 * loss (hi, lo). consts: gain, out_scale, ln2, then 1/k! for k = 1 .. EXPM1_TERMS, each
 * hi, lo. s2 is written for tanh only. Rows, then the gradients' rows, are shared among
 * `threads` threads; each value's arithmetic is the same whatever the thread count. */
void zoomer_reference_pass(int nonlinearity, long n, const double *X, const double *Y,
                           const double *w0_hi, const double *w0_lo, const double *w1_hi,
                           const double *w1_lo, const double *consts,
                           double *p_hi, double *p_lo, double *h_hi, double *h_lo, double *s2_hi,
                           double *s2_lo, double *slope_hi, double *slope_lo, double *r_hi,
                           double *r_lo, double *g_hi, double *g_lo, double *pre_hi, double *pre_lo,
                           double *g0_hi, double *g0_lo, double *grad0_hi, double *grad0_lo,
                           double *grad1_hi, double *grad1_lo, double *loss, int threads) {
    const dd gain = {consts[0], consts[1]}, out_scale = {consts[2], consts[3]}, ln2 = {consts[4], consts[5]};
    dd inv_fact[EXPM1_TERMS];
    for (int k = 0; k < EXPM1_TERMS; k++) inv_fact[k] = (dd){consts[6 + 2 * k], consts[7 + 2 * k]};
    const double no = (double)(n * TARGET_DIM);
    const dd gscale = dd_mul(out_scale, dd_of(2.0 / no));
    dd sse = dd_of(0);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (long r = 0; r < n; r++) {
        dd h[WIDTH], slope[WIDTH];
        for (int j = 0; j < WIDTH; j++) {
            dd p = dd_of(0);
            for (int k = 0; k < WIDTH; k++)
                p = dd_add(p, dd_times(X[r * WIDTH + k], dd_at(w0_hi, w0_lo, k * WIDTH + j)));
            const long at = r * WIDTH + j;
            dd_put(p_hi, p_lo, at, p);
            dd pk = dd_mul(p, gain);
            if (nonlinearity == TANH) {
                dd s2;
                tanh_and_sech2(pk, ln2, inv_fact, &h[j], &s2);
                dd_put(s2_hi, s2_lo, at, s2);
                slope[j] = dd_mul(s2, gain);
            } else if (nonlinearity == RELU) {
                h[j] = p.hi > 0 ? pk : dd_of(0);
                slope[j] = p.hi > 0 ? gain : dd_of(0);
            } else {
                h[j] = pk;
                slope[j] = gain;
            }
            dd_put(h_hi, h_lo, at, h[j]);
            dd_put(slope_hi, slope_lo, at, slope[j]);
        }
        for (int o = 0; o < TARGET_DIM; o++) {
            dd out = dd_of(0);
            for (int j = 0; j < WIDTH; j++)
                out = dd_add(out, dd_mul(h[j], dd_at(w1_hi, w1_lo, j * TARGET_DIM + o)));
            dd res = dd_add(dd_mul(out, out_scale), dd_of(-Y[r * TARGET_DIM + o]));
            dd_put(r_hi, r_lo, r * TARGET_DIM + o, res);
            dd_put(g_hi, g_lo, r * TARGET_DIM + o, dd_mul(res, gscale));
        }
        for (int j = 0; j < WIDTH; j++) { /* pre = g W1^T, the hidden layer's g = pre * slope */
            dd pre = dd_of(0);
            for (int o = 0; o < TARGET_DIM; o++)
                pre = dd_add(pre, dd_mul(dd_at(g_hi, g_lo, r * TARGET_DIM + o), dd_at(w1_hi, w1_lo, j * TARGET_DIM + o)));
            dd_put(pre_hi, pre_lo, r * WIDTH + j, pre);
            dd_put(g0_hi, g0_lo, r * WIDTH + j, dd_mul(pre, slope[j]));
        }
    }
    for (long i = 0; i < n * TARGET_DIM; i++) { /* the squared residuals, in row order */
        dd res = dd_at(r_hi, r_lo, i);
        sse = dd_add(sse, dd_mul(res, res));
    }
    dd l = dd_div(sse, dd_of(no));
    loss[0] = l.hi, loss[1] = l.lo;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int i = 0; i < WIDTH; i++) { /* grad1 = h^T g, grad0 = X^T g0 */
        for (int o = 0; o < TARGET_DIM; o++) {
            dd s = dd_of(0);
            for (long r = 0; r < n; r++)
                s = dd_add(s, dd_mul(dd_at(h_hi, h_lo, r * WIDTH + i), dd_at(g_hi, g_lo, r * TARGET_DIM + o)));
            dd_put(grad1_hi, grad1_lo, i * TARGET_DIM + o, s);
        }
        for (int j = 0; j < WIDTH; j++) {
            dd s = dd_of(0);
            for (long r = 0; r < n; r++) s = dd_add(s, dd_times(X[r * WIDTH + i], dd_at(g0_hi, g0_lo, r * WIDTH + j)));
            dd_put(grad0_hi, grad0_lo, i * WIDTH + j, s);
        }
    }
}

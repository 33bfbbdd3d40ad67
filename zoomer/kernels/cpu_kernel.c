/* Fused CPU trainer: many independent training runs of zoomer's mean-field net at once.
 *
 * One SIMD lane = one run. A lane group (a vector's worth of runs) keeps its weights,
 * gradients and a block of activations in cache (~36 KB at width 16 in float64); every
 * operation, tanh included, is a full-width vector op on the group, and the data rows
 * (shared by every run) are broadcast. Each gradient is a sum over data rows whose
 * backward needs only that row's forward, so a step is one pass over the rows in small
 * blocks, nothing materialised. Each thread has one group; a lane whose run ends starts
 * the next unclaimed run (train_runs). Lanes never mix, so a run's result does not depend
 * on its neighbours, its lane, its position or the thread count.
 *
 * The shape is fixed at compile time (-D REAL_BITS=64|32 WIDTH TARGET_DIM DEPTH, and ROWS:
 * data rows per block of the pass) so that every loop below has constant bounds and
 * unrolls. zoomer/kernels/cpu.py builds and loads one library per shape; the maths mirrors
 * zoomer.net.Net.
 */
#include "lanes.h"

#define TAIL 20
#define CAP 1e6

/* ---- the net ------------------------------------------------------------------------- */
typedef struct {
    vec hidden[DEPTH - 1][WIDTH][WIDTH]; /* layers 0 .. DEPTH-2, (fan_in, fan_out) */
    vec out[WIDTH][TARGET_DIM];          /* the last layer */
} Weights;

/* Everything one lane group needs, allocated once per thread. */
typedef struct {
    Weights w, grad;
    vec lr[DEPTH];
    vec h[DEPTH][ROWS][WIDTH];      /* h[0] = the input rows, h[l] = hidden layer l's output */
    vec delta[ROWS][WIDTH];         /* dL/d(pre-activation) of the layer being back-propagated */
    vec delta_out[ROWS][TARGET_DIM];
} Group;

typedef struct {
    int nonlinearity;
    real act_scale[DEPTH]; /* sqrt2/sqrt(fan_in) (tanh, relu) or 1/sqrt(fan_in) per layer */
    real out_scale;        /* 1/fan_in of the last layer: its 1/sqrt(fan_in), applied twice */
} Net;


/* ---- the net, one block of ROWS data rows at a time ------------------------------------ */
/* Hidden layer `layer`'s output from its pre-activations p = h @ W, in place. One loop per
 * nonlinearity, so the independent tanh's of a block overlap in the pipeline. */
INLINE void activate(const Net *net, int layer, vec p[ROWS][WIDTH]) {
    const vec c = splat(net->act_scale[layer]);
    vec *e = &p[0][0];
    const int n = ROWS * WIDTH;
    switch (net->nonlinearity) {
    case TANH: /* n is a multiple of TANH_WAYS, as ROWS is */
        for (int i = 0; i < n; i++) e[i] *= c;
        for (int i = 0; i < n; i += TANH_WAYS) vtanh(&e[i]);
        break;
    case RELU: /* NaN stays NaN, like torch.relu */
        for (int i = 0; i < n; i++) e[i] = blend(e[i] < 0, splat(0), e[i]) * c;
        break;
    default:
        for (int i = 0; i < n; i++) e[i] *= c;
    }
}

/* delta *= d act / d p of hidden layer `layer`, written with its output h. */
INLINE void times_activation_grad(const Net *net, int layer, const vec h[ROWS][WIDTH],
                                  vec delta[ROWS][WIDTH]) {
    const vec c = splat(net->act_scale[layer]);
    const vec *y = &h[0][0];
    vec *d = &delta[0][0];
    const int n = ROWS * WIDTH;
    switch (net->nonlinearity) {
    case TANH:
        for (int i = 0; i < n; i++) d[i] *= (1 - y[i] * y[i]) * c;
        break;
    case RELU:
        for (int i = 0; i < n; i++) d[i] *= blend(y[i] > 0, c, splat(0));
        break;
    default:
        for (int i = 0; i < n; i++) d[i] *= c;
    }
}

/* One pass over `rows` data rows (a multiple of ROWS): the summed squared error of every
 * lane, and with `backward` also grad += grad_scale * (1/2) d(summed squared error)/dw. */
static vec pass(const Net *net, Group *g, const real *X, const real *Y, long rows,
                int backward, real grad_scale) {
    vec sse = splat(0);
    for (long r0 = 0; r0 < rows; r0 += ROWS) {
        for (int r = 0; r < ROWS; r++)
            for (int i = 0; i < WIDTH; i++) g->h[0][r][i] = splat(X[(r0 + r) * WIDTH + i]);
        for (int l = 0; l < DEPTH - 1; l++) {
            product(ROWS, WIDTH, WIDTH, ROWS_OF(g->h[l], WIDTH), ROWS_OF(g->w.hidden[l], WIDTH),
                    &g->h[l + 1][0][0], 0);
            activate(net, l, g->h[l + 1]);
        }
        product(ROWS, WIDTH, TARGET_DIM, ROWS_OF(g->h[DEPTH - 1], WIDTH),
                ROWS_OF(g->w.out, TARGET_DIM), &g->delta_out[0][0], 0);
        for (int r = 0; r < ROWS; r++)
            for (int k = 0; k < TARGET_DIM; k++) {
                vec res = g->delta_out[r][k] * net->out_scale - Y[(r0 + r) * TARGET_DIM + k];
                sse += res * res;
                g->delta_out[r][k] = res * grad_scale;
            }
        if (!backward) continue;

        /* grad_W = h^T delta; delta below = (delta W^T) * act'(h) */
        product(WIDTH, ROWS, TARGET_DIM, COLUMNS_OF(g->h[DEPTH - 1], WIDTH),
                ROWS_OF(g->delta_out, TARGET_DIM), &g->grad.out[0][0], 1);
        product(ROWS, TARGET_DIM, WIDTH, ROWS_OF(g->delta_out, TARGET_DIM),
                COLUMNS_OF(g->w.out, TARGET_DIM), &g->delta[0][0], 0);
        times_activation_grad(net, DEPTH - 2, g->h[DEPTH - 1], g->delta);
        for (int l = DEPTH - 2; l >= 0; l--) {
            product(WIDTH, ROWS, WIDTH, COLUMNS_OF(g->h[l], WIDTH), ROWS_OF(g->delta, WIDTH),
                    &g->grad.hidden[l][0][0], 1);
            if (l == 0) break;
            vec below[ROWS][WIDTH];
            product(ROWS, WIDTH, WIDTH, ROWS_OF(g->delta, WIDTH),
                    COLUMNS_OF(g->w.hidden[l], WIDTH), &below[0][0], 0);
            times_activation_grad(net, l - 1, g->h[l], below);
            memcpy(g->delta, below, sizeof below);
        }
    }
    return sse;
}

/* The running sums of zoomer.score.ScoreAccumulator, one lane group's worth. */
typedef struct {
    real *l0, *sum_v, *sum_inv, *tail;
    int64_t *dead_at;
} Sums;

/* ScoreAccumulator.add for step t of run b; returns whether the run lives on (its loss
 * is finite). */
static int record(const Sums *s, long b, int t, int steps, real l) {
    int finite = l - l == 0;
    if (t == 0) s->l0[b] = finite ? l : (real)CAP;
    int alive = s->dead_at[b] == steps;
    real keep = alive && finite;
    real v = (finite ? l : s->l0[b]) / s->l0[b];
    if (v > (real)CAP) v = CAP;
    s->sum_v[b] += v * keep;
    s->sum_inv[b] += keep / (v < (real)(1 / CAP) ? (real)(1 / CAP) : v); /* 1/v capped, as score.py */
    if (t >= steps - TAIL) s->tail[b] += v * keep;
    if (alive && !finite) s->dead_at[b] = t;
    return alive && finite;
}

typedef struct {
    int steps;
    long n_rows, batch_rows; /* rows in X and per minibatch, zero-padded to a multiple of ROWS */
    real loss_scale, grad_scale; /* 1/(n k) and 2 out_scale/(m k) for m gradient rows */
    const real *X, *Y;             /* (n_rows, WIDTH), (n_rows, TARGET_DIM), zero-padded */
    const real *batch_X, *batch_Y; /* (steps, batch_rows, ...) minibatch rows, or NULL */
    const real *init[DEPTH];       /* initial weights (fan_in, fan_out), shared */
    const real *lrs, *offsets;     /* (B, DEPTH), (B,) */
    int offset_every_step;         /* 0: offset added once, to the initial weights; 1: before every step */
    long B;
} Problem;

/* Lane `lane` starts run b: its learning rates and its initial weights. */
static void load_run(const Problem *p, Group *g, vec *offset, int lane, long b) {
    (*offset)[lane] = p->offsets[b];
    for (int l = 0; l < DEPTH; l++) g->lr[l][lane] = p->lrs[b * DEPTH + l];
    for (int l = 0; l < DEPTH - 1; l++)
        for (int i = 0; i < WIDTH; i++)
            for (int j = 0; j < WIDTH; j++)
                g->w.hidden[l][i][j][lane] = p->init[l][i * WIDTH + j] + (l == 0 ? p->offsets[b] : 0);
    for (int i = 0; i < WIDTH; i++)
        for (int k = 0; k < TARGET_DIM; k++) g->w.out[i][k][lane] = p->init[DEPTH - 1][i * TARGET_DIM + k];
}

/* The next run no thread has taken yet, or -1 when every run is taken. */
static long claim(long *next, long B) {
    long b;
#pragma omp atomic capture
    b = (*next)++;
    return b < B ? b : -1;
}

/* Train runs claimed from `next` until none is left. Each lane trains its own run at its
 * own step, and a lane whose run ends (its loss went non-finite, or it took every step)
 * starts the next unclaimed run at once, so a lane never idles beside a long run while
 * runs wait: converged runs take every step, diverged ones a few hundred. Lanes never
 * mix, so each run's arithmetic is the same whichever lane, thread or neighbours it has.
 * Minibatches share one row sequence per step, so there the lanes keep one step clock
 * and start new runs together, once all of theirs have ended. */
static void train_runs(const Problem *p, const Net *net, const Sums *sums, Group *g, long *next) {
    const int lockstep = p->batch_X != NULL;
    long run[LANES];
    int step[LANES];
    vec offset = {0};
    int active = 0;
    for (int lane = 0; lane < LANES; lane++) {
        run[lane] = claim(next, p->B);
        step[lane] = 0;
        if (run[lane] >= 0) active++;
        /* an idle lane trains a copy of the first run, never recorded */
        load_run(p, g, &offset, lane, run[lane] >= 0 ? run[lane] : run[0] >= 0 ? run[0] : 0);
    }
    int exhausted = active < LANES;
    while (active) {
        int t = 0;
        for (int lane = 0; lane < LANES; lane++)
            if (run[lane] >= 0) t = step[lane]; /* in lockstep, every live lane's step */
        memset(&g->grad, 0, sizeof(Weights));
        vec sse;
        if (!lockstep) {
            sse = pass(net, g, p->X, p->Y, p->n_rows, 1, p->grad_scale);
        } else { /* the scored loss is the full-batch loss; the step uses the minibatch */
            sse = pass(net, g, p->X, p->Y, p->n_rows, 0, 0);
            pass(net, g, p->batch_X + t * p->batch_rows * WIDTH,
                 p->batch_Y + t * p->batch_rows * TARGET_DIM, p->batch_rows, 1, p->grad_scale);
        }
        vec loss = sse * p->loss_scale;
        for (int l = 0; l < DEPTH - 1; l++)
            for (int i = 0; i < WIDTH; i++)
                for (int j = 0; j < WIDTH; j++)
                    g->w.hidden[l][i][j] -= g->lr[l] * g->grad.hidden[l][i][j];
        for (int i = 0; i < WIDTH; i++)
            for (int k = 0; k < TARGET_DIM; k++)
                g->w.out[i][k] -= g->lr[DEPTH - 1] * g->grad.out[i][k];
        if (p->offset_every_step) /* the notebook's reading: shifted again before the next step */
            for (int i = 0; i < WIDTH; i++)
                for (int j = 0; j < WIDTH; j++) g->w.hidden[0][i][j] += offset;
        for (int lane = 0; lane < LANES; lane++) {
            if (run[lane] < 0) continue;
            int lives = record(sums, run[lane], step[lane], p->steps, loss[lane]);
            if (lives && ++step[lane] < p->steps) continue;
            run[lane] = -1;
            active--;
        }
        if (exhausted || (lockstep && active)) continue;
        for (int lane = 0; lane < LANES && !exhausted; lane++) {
            if (run[lane] >= 0) continue;
            long b = claim(next, p->B);
            if (b < 0) {
                exhausted = 1;
                break;
            }
            run[lane] = b;
            step[lane] = 0;
            active++;
            load_run(p, g, &offset, lane, b);
        }
    }
}

/* Train B runs and fill their running sums (l0, sum_v, sum_inv, tail, dead_at: (B,)).
 * n_data and batch_size are the real row counts (batch_X NULL: full batch), n_rows and
 * batch_rows the padded ones. offsets are added to the input layer's initial weights, and
 * with offset_every_step again before every later step. Returns 0, or -1 if a thread
 * could not allocate its workspace. */
int zoomer_train(int nonlinearity, int steps, long n_data, long n_rows, long batch_size,
                 long batch_rows, const real *X, const real *Y, const real *batch_X,
                 const real *batch_Y,
                 const real *const *init, const real *lrs, const real *offsets,
                 int offset_every_step, long B,
                 real *l0, real *sum_v, real *sum_inv, real *tail, int64_t *dead_at,
                 int threads) {
    double c = 1 / __builtin_sqrt((double)WIDTH); /* every layer's fan_in is WIDTH */
    Net net = {.nonlinearity = nonlinearity, .out_scale = c * c};
    for (int l = 0; l < DEPTH; l++)
        net.act_scale[l] = nonlinearity == IDENTITY ? c : __builtin_sqrt(2.0) * c;
    long grad_rows = batch_X ? batch_size : n_data;
    Problem p = {
        .steps = steps, .n_rows = n_rows, .batch_rows = batch_rows,
        .loss_scale = 1.0 / ((double)n_data * TARGET_DIM),
        .grad_scale = 2 * c * c / ((double)grad_rows * TARGET_DIM),
        .X = X, .Y = Y, .batch_X = batch_X, .batch_Y = batch_Y, .lrs = lrs, .offsets = offsets,
        .offset_every_step = offset_every_step, .B = B,
    };
    for (int l = 0; l < DEPTH; l++) p.init[l] = init[l];
    Sums sums = {l0, sum_v, sum_inv, tail, dead_at};
    for (long b = 0; b < B; b++) {
        l0[b] = sum_v[b] = sum_inv[b] = tail[b] = 0;
        dead_at[b] = steps;
    }
    long next = 0; /* the first run no thread has claimed */
    int failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        size_t size = (sizeof(Group) + VBYTES - 1) / VBYTES * VBYTES;
        Group *g = aligned_alloc(VBYTES, size);
        failed = g == NULL;
        if (g) train_runs(&p, &net, &sums, g, &next);
        free(g);
    }
    return failed ? -1 : 0;
}

/* Runs per SIMD vector (lane group), for the benchmarks. */
int zoomer_lanes(void) { return LANES; }

/* tanh of n values, for the accuracy test. */
void zoomer_tanh(const real *x, real *out, long n) {
    for (long i = 0; i < n; i += TANH_WAYS * LANES) {
        vec v[TANH_WAYS] = {{0}};
        long m = n - i < TANH_WAYS * LANES ? n - i : TANH_WAYS * LANES;
        memcpy(v, x + i, m * sizeof(real));
        vtanh(v);
        memcpy(out + i, v, m * sizeof(real));
    }
}

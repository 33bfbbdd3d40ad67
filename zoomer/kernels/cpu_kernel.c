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

/* The net's activations of data rows r0 .. r0+ROWS-1, layer by layer, into g->h. With
 * `saturated`, its lanes stay set only where every hidden activation of a real data row
 * (below n_data; padding rows read 0) is exactly +-1. */
INLINE void forward(const Net *net, Group *g, const real *X, long r0, long n_data, ivec *saturated) {
    for (int r = 0; r < ROWS; r++)
        for (int i = 0; i < WIDTH; i++) g->h[0][r][i] = splat(X[(r0 + r) * WIDTH + i]);
    for (int l = 0; l < DEPTH - 1; l++) {
        product(ROWS, WIDTH, WIDTH, ROWS_OF(g->h[l], WIDTH), ROWS_OF(g->w.hidden[l], WIDTH),
                &g->h[l + 1][0][0], 0);
        activate(net, l, g->h[l + 1]);
        if (saturated)
            for (int r = 0; r < ROWS && r0 + r < n_data; r++)
                for (int i = 0; i < WIDTH; i++) *saturated &= vabs(g->h[l + 1][r][i]) == (real)1;
    }
}

/* The output of one block of rows from its last hidden layer h: the residuals' squares
 * added to *sse, and delta_out = grad_scale * residual. */
INLINE void readout(const Net *net, View h, View w_out, vec delta_out[ROWS][TARGET_DIM],
                    const real *Y, long r0, real grad_scale, vec *sse) {
    product(ROWS, WIDTH, TARGET_DIM, h, w_out, &delta_out[0][0], 0);
    for (int r = 0; r < ROWS; r++)
        for (int k = 0; k < TARGET_DIM; k++) {
            vec res = delta_out[r][k] * net->out_scale - Y[(r0 + r) * TARGET_DIM + k];
            *sse += res * res;
            delta_out[r][k] = res * grad_scale;
        }
}

/* The output layer's backward for one block: grad_out += h^T delta_out, and the last hidden
 * layer's delta (before its activation's derivative) = delta_out w_out^T. */
INLINE void output_backward(View h, const vec delta_out[ROWS][TARGET_DIM],
                            const vec w_out[WIDTH][TARGET_DIM], vec grad_out[WIDTH][TARGET_DIM],
                            vec delta[ROWS][WIDTH]) {
    product(WIDTH, ROWS, TARGET_DIM, h, ROWS_OF(delta_out, TARGET_DIM), &grad_out[0][0], 1);
    product(ROWS, TARGET_DIM, WIDTH, ROWS_OF(delta_out, TARGET_DIM), COLUMNS_OF(w_out, TARGET_DIM),
            &delta[0][0], 0);
}

/* One pass over `rows` data rows (a multiple of ROWS, n_data of them real): the summed
 * squared error of every lane, and with `backward` also grad += grad_scale * (1/2)
 * d(summed squared error)/dw. `saturated` as in forward(), over the whole pass. */
static vec pass(const Net *net, Group *g, const real *X, const real *Y, long rows, long n_data,
                int backward, real grad_scale, ivec *saturated) {
    vec sse = splat(0);
    for (long r0 = 0; r0 < rows; r0 += ROWS) {
        forward(net, g, X, r0, n_data, saturated);
        readout(net, ROWS_OF(g->h[DEPTH - 1], WIDTH), ROWS_OF(g->w.out, TARGET_DIM), g->delta_out,
                Y, r0, grad_scale, &sse);
        if (!backward) continue;

        /* grad_W = h^T delta; delta below = (delta W^T) * act'(h) */
        output_backward(COLUMNS_OF(g->h[DEPTH - 1], WIDTH), g->delta_out, g->w.out, g->grad.out,
                        g->delta);
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
    int64_t *frozen_at; /* the step a run went on in a Frozen group (below), or steps */
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
    long n_data;             /* real rows in X */
    long n_rows, batch_rows; /* rows in X and per minibatch, zero-padded to a multiple of ROWS */
    real loss_scale, grad_scale; /* 1/(n k) and 2 out_scale/(m k) for m gradient rows */
    const real *X, *Y;             /* (n_rows, WIDTH), (n_rows, TARGET_DIM), zero-padded */
    const real *batch_X, *batch_Y; /* (steps, batch_rows, ...) minibatch rows, or NULL */
    const real *init[DEPTH];       /* initial weights (fan_in, fan_out), shared */
    const real *lrs, *offsets;     /* (B, DEPTH), (B,) */
    int offset_every_step;         /* 0: offset added once, to the initial weights; 1: before every step */
    int may_freeze;                /* whether saturated runs may move to a Frozen group */
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

/* ---- saturated runs: only the output layer still trains ------------------------------
 * Once every hidden activation of a tanh run is exactly +-1 at a step, 1 - h^2 is exactly
 * 0, so every hidden layer's gradient is exactly zero and its weights stay as they are:
 * every later step has the same hidden activations, and only the output layer's weights
 * move. A run whose loss overflows spends most of its steps so (benchmarks.run_steps).
 * Such a run leaves its lane for a Frozen group, which keeps
 * its last hidden layer for every data row and replays only the output layer's arithmetic,
 * through the same functions as pass(), so every bit is the same at a fraction of the
 * cost. The one way the hidden layers could move again: delta_out w_out^T overflows, and
 * inf * 0 makes their gradient NaN, so the next loss is NaN; a Frozen run gets NaN output
 * weights then, which makes its next loss NaN just the same. (At the step a run is
 * frozen, its last hidden layer is computed from the weights after that step, so a NaN
 * that reached them then carries over the same way.) */
#define LOOK_EVERY 8 /* steps of a lane group between looks for saturated runs */

typedef struct {
    vec out[WIDTH][TARGET_DIM], grad[WIDTH][TARGET_DIM];
    vec lr;                          /* the output layer's */
    vec delta_out[ROWS][TARGET_DIM];
    vec delta[ROWS][WIDTH];
    long run[LANES];                 /* -1: a free slot */
    int step[LANES];
    int used;
    vec *H;                          /* (n_rows, WIDTH): the last hidden layer, every data row */
} Frozen;

/* One step of every Frozen run: the output layer's part of pass() and of the update, then
 * each run's loss recorded; a run that ended frees its slot. */
static void frozen_step(const Problem *p, const Net *net, const Sums *sums, Frozen *f) {
    memset(f->grad, 0, sizeof f->grad);
    vec sse = splat(0);
    ivec overflow = (ivec)splat(0) != 0;
    for (long r0 = 0; r0 < p->n_rows; r0 += ROWS) {
        const vec *h = f->H + r0 * WIDTH;
        readout(net, ROWS_OF(h, WIDTH), ROWS_OF(f->out, TARGET_DIM), f->delta_out, p->Y, r0,
                p->grad_scale, &sse);
        output_backward(COLUMNS_OF(h, WIDTH), f->delta_out, f->out, f->grad, f->delta);
        for (int r = 0; r < ROWS; r++)
            for (int i = 0; i < WIDTH; i++) overflow |= f->delta[r][i] - f->delta[r][i] != 0;
    }
    vec loss = sse * p->loss_scale;
    for (int i = 0; i < WIDTH; i++)
        for (int k = 0; k < TARGET_DIM; k++)
            f->out[i][k] = blend(overflow, splat(__builtin_nan("")), f->out[i][k] - f->lr * f->grad[i][k]);
    for (int slot = 0; slot < LANES; slot++) {
        if (f->run[slot] < 0) continue;
        int lives = record(sums, f->run[slot], f->step[slot], p->steps, loss[slot]);
        if (lives && ++f->step[slot] < p->steps) continue;
        f->run[slot] = -1;
        f->used--;
        for (int i = 0; i < WIDTH; i++) /* an idle slot computes on zeros */
            for (int k = 0; k < TARGET_DIM; k++) f->out[i][k][slot] = 0;
    }
}

/* Move the lanes set in `leaving` from the Group to free Frozen slots (stepping the Frozen
 * runs until enough are free): their output weights and rate, their run and step, and
 * their last hidden layer for every data row, computed once more. */
static void freeze(const Problem *p, const Net *net, const Sums *sums, Group *g, Frozen *f,
                   const int leaving[LANES], const long run[LANES], const int step[LANES]) {
    int n = 0, slot_of[LANES];
    for (int lane = 0; lane < LANES; lane++) n += leaving[lane];
    while (f->used + n > LANES) frozen_step(p, net, sums, f);
    for (int lane = 0, slot = 0; lane < LANES; lane++) {
        slot_of[lane] = -1;
        if (!leaving[lane]) continue;
        while (f->run[slot] >= 0) slot++;
        slot_of[lane] = slot;
        f->run[slot] = run[lane];
        f->step[slot] = step[lane];
        sums->frozen_at[run[lane]] = step[lane];
        f->lr[slot] = g->lr[DEPTH - 1][lane];
        for (int i = 0; i < WIDTH; i++)
            for (int k = 0; k < TARGET_DIM; k++) f->out[i][k][slot] = g->w.out[i][k][lane];
        f->used++;
    }
    for (long r0 = 0; r0 < p->n_rows; r0 += ROWS) {
        forward(net, g, p->X, r0, p->n_data, NULL);
        for (int lane = 0; lane < LANES; lane++)
            if (slot_of[lane] >= 0)
                for (int r = 0; r < ROWS; r++)
                    for (int i = 0; i < WIDTH; i++)
                        f->H[(r0 + r) * WIDTH + i][slot_of[lane]] = g->h[DEPTH - 1][r][i][lane];
    }
}

/* Train runs claimed from `next` until none is left. Each lane trains its own run at its
 * own step, and a lane whose run ends (its loss went non-finite, or it took every step)
 * starts the next unclaimed run at once, so a lane never idles beside a long run while
 * runs wait: converged runs take every step, diverged ones a few hundred. Lanes never
 * mix, so each run's arithmetic is the same whichever lane, thread or neighbours it has.
 * Minibatches share one row sequence per step, so there the lanes keep one step clock
 * and start new runs together, once all of theirs have ended. With a Frozen group `f`, a
 * run whose hidden layers saturated goes on there and its lane takes the next run. */
static void train_runs(const Problem *p, const Net *net, const Sums *sums, Group *g, Frozen *f,
                       long *next) {
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
    for (long iteration = 1; active; iteration++) {
        /* saturation lasts, so looking for it now and then is enough and costs less */
        const int look = f && iteration % LOOK_EVERY == 0;
        int t = 0;
        for (int lane = 0; lane < LANES; lane++)
            if (run[lane] >= 0) t = step[lane]; /* in lockstep, every live lane's step */
        memset(&g->grad, 0, sizeof(Weights));
        vec sse;
        ivec saturated = (ivec)splat(0) == 0;
        if (!lockstep) {
            sse = pass(net, g, p->X, p->Y, p->n_rows, p->n_data, 1, p->grad_scale,
                       look ? &saturated : NULL);
        } else { /* the scored loss is the full-batch loss; the step uses the minibatch */
            sse = pass(net, g, p->X, p->Y, p->n_rows, p->n_data, 0, 0, NULL);
            pass(net, g, p->batch_X + t * p->batch_rows * WIDTH,
                 p->batch_Y + t * p->batch_rows * TARGET_DIM, p->batch_rows, p->batch_rows, 1,
                 p->grad_scale, NULL);
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
        int leaving[LANES] = {0}, ending[LANES] = {0}, any_leaving = 0;
        for (int lane = 0; lane < LANES; lane++) {
            if (run[lane] < 0) continue;
            int lives = record(sums, run[lane], step[lane], p->steps, loss[lane]);
            if (lives && ++step[lane] < p->steps) {
                if (!look || !saturated[lane]) continue;
                leaving[lane] = any_leaving = 1;
            }
            ending[lane] = 1;
        }
        if (any_leaving) freeze(p, net, sums, g, f, leaving, run, step);
        for (int lane = 0; lane < LANES; lane++)
            if (ending[lane]) {
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
    while (f && f->used) frozen_step(p, net, sums, f);
}

/* size rounded up to whole vectors, as aligned_alloc wants */
static size_t whole_vectors(size_t size) { return (size + VBYTES - 1) / VBYTES * VBYTES; }

/* Train B runs and fill their running sums (l0, sum_v, sum_inv, tail, dead_at: (B,)) and
 * frozen_at (B,).
 * n_data and batch_size are the real row counts (batch_X NULL: full batch), n_rows and
 * batch_rows the padded ones. offsets are added to the input layer's initial weights, and
 * with offset_every_step again before every later step. With may_freeze, a tanh run whose
 * hidden layers saturate finishes in a Frozen group (the same bits, faster). Returns 0, or
 * -1 if a thread could not allocate its workspace. */
int zoomer_train(int nonlinearity, int steps, long n_data, long n_rows, long batch_size,
                 long batch_rows, const real *X, const real *Y, const real *batch_X,
                 const real *batch_Y,
                 const real *const *init, const real *lrs, const real *offsets,
                 int offset_every_step, int may_freeze, long B,
                 real *l0, real *sum_v, real *sum_inv, real *tail, int64_t *dead_at,
                 int64_t *frozen_at, int threads) {
    double c = 1 / __builtin_sqrt((double)WIDTH); /* every layer's fan_in is WIDTH */
    Net net = {.nonlinearity = nonlinearity, .out_scale = c * c};
    for (int l = 0; l < DEPTH; l++)
        net.act_scale[l] = nonlinearity == IDENTITY ? c : __builtin_sqrt(2.0) * c;
    long grad_rows = batch_X ? batch_size : n_data;
    Problem p = {
        .steps = steps, .n_data = n_data, .n_rows = n_rows, .batch_rows = batch_rows,
        .loss_scale = 1.0 / ((double)n_data * TARGET_DIM),
        .grad_scale = 2 * c * c / ((double)grad_rows * TARGET_DIM),
        .X = X, .Y = Y, .batch_X = batch_X, .batch_Y = batch_Y, .lrs = lrs, .offsets = offsets,
        .offset_every_step = offset_every_step, .B = B,
        /* only a tanh saturates; minibatch lanes keep one clock; a shift every step moves
         * the hidden weights */
        .may_freeze = may_freeze && nonlinearity == TANH && !batch_X && !offset_every_step,
    };
    for (int l = 0; l < DEPTH; l++) p.init[l] = init[l];
    Sums sums = {l0, sum_v, sum_inv, tail, dead_at, frozen_at};
    for (long b = 0; b < B; b++) {
        l0[b] = sum_v[b] = sum_inv[b] = tail[b] = 0;
        dead_at[b] = frozen_at[b] = steps;
    }
    if (B == 0) return 0; /* idle lanes copy the first run: there must be one */
    long next = 0; /* the first run no thread has claimed */
    int failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        Group *g = aligned_alloc(VBYTES, whole_vectors(sizeof(Group)));
        Frozen *f = p.may_freeze ? aligned_alloc(VBYTES, whole_vectors(sizeof(Frozen))) : NULL;
        vec *H = p.may_freeze ? aligned_alloc(VBYTES, whole_vectors(n_rows * WIDTH * sizeof(vec))) : NULL;
        failed = g == NULL || (p.may_freeze && (f == NULL || H == NULL));
        if (!failed) {
            if (f) {
                memset(f, 0, sizeof(Frozen));
                memset(H, 0, n_rows * WIDTH * sizeof(vec));
                for (int slot = 0; slot < LANES; slot++) f->run[slot] = -1;
                f->H = H;
            }
            train_runs(&p, &net, &sums, g, f, &next);
        }
        free(H);
        free(f);
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

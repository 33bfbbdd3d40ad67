"""Fused Triton kernel: every training run of a chunk stays on chip for all of its steps.

The torch path writes each run's activations (n x width per run, 35 KB in float64 for the
paper's net) to memory and reads them back several times a step, so it is memory bound.
Here one program owns RUNS runs and loops over the training steps itself. Their weights
and gradient accumulators live in registers; the shared data X, Y (35 KB, the same for
every run) is streamed from L1/L2 in tiles of ROWS rows. A row's backward pass needs only
its own forward pass and every gradient is a sum over rows, so one step is one sweep over
the row tiles: forward, loss and backward of a tile, then the next tile (minibatch
training adds a forward-only sweep of the full batch for the scored loss). Nothing but
the five score sums of each run (score.finish) is written back.

What maps onto tensor cores. Per run-step the work is two matmuls of n x w x w,
P = X @ W1 (forward) and dW1 = X^T @ dP (weight gradient), which are tl.dot's of a row
tile (M = ROWS) against the run's w x w weights: with w = 16 these are whole fp64 DMMA
tiles (H100: 67 TFLOP/s on tensor cores against 34 for fp64 FMA). A width below 16 is
zero-padded to 16 (padded weights get zero gradients and stay zero), which wastes
(16 / w)^2 of the tensor-core work but keeps one code path. The output layer has N = 1
(target_dim), which no MMA shape fits, so it runs on the FMA pipe as a multiply and a
row sum; so does the nonlinearity: tanh (an exp and a division) and its derivative are
~35 flops per hidden unit and row, about half of the matmuls' 4 w = 64 at width 16. So
at best DMMA saves about a third of the time (430k -> ~290k FMA-equivalent flops per
run-step): the elementwise work on the FMA pipe is the floor. Runs are the batch
dimension of a 3-D tl.dot, so RUNS runs share each X tile load.
float32 uses input_precision="ieee" (plain FMA, like torch with TF32 off): TF32 tensor
cores keep 10 mantissa bits, too few for this map; 3xTF32 ("tf32x3") would recover about
float32 accuracy on tensor cores and is the first thing to try if float32 is < 2x float64.

tanh is written with tl.exp (Triton has no portable tanh and its interpreter lacks
libdevice), with a Taylor series near 0 where exp loses relative precision.

Compiled offline for sm_90 (Triton 3.9, no GPU needed; the tests do this): the float64
dots lower to mma.sync.m8n8k4.f64 (Ampere's DMMA shape, not Hopper's m16n8k16), with 238
registers a thread and no spills at RUNS=4, ROWS=16, 4 warps (float32: 128, FMA dots);
RUNS=8 or ROWS=32 spill. 238 registers leave room for 2 programs (8 warps) per SM.

GPU checklist (not yet measured; no GPU was lent when this was written):
- correctness: `pytest tests/test_kernels_triton.py` on a CUDA machine (the CUDA-only
  tests compare the compiled kernel with the torch path on a bigger grid);
- throughput: run-steps/s of the paper's tanh net (w 16, n 272, 100 steps, ~1M runs) in
  float64 and float32; achieved flop/s = run-steps/s x 3.1e5 against 67 TFLOP/s (DMMA)
  and 34 TFLOP/s (fp64 FMA); float32 should be >= 2x float64;
- tuning: sweep RUNS x ROWS x NUM_WARPS (1-8, 16-64, 1-8) and compare with the torch path;
  if DMMA m8n8k4 or the occupancy is the limit, try an FMA-only variant (tl.sum dots).
"""
from __future__ import annotations

import math

import torch

from ..net import Net
from ..experiment import Experiment, Problem
from ..score import CAP, TAIL, finish

try:
    import triton
    import triton.language as tl
except ImportError:  # the torch path (or another kernel) serves instead
    triton = None

# Whether the jit decorators below built interpreted (CPU, numpy) kernels: it is decided
# when this module is imported, from TRITON_INTERPRET.
INTERPRET = triton is not None and triton.knobs.runtime.interpret
# Launch shape: runs per program, data rows per tile, warps per program. Correctness does
# not depend on them (only the order of the row sums does); speed does: tune on the GPU.
# The interpreter pays per operation, not per element, so it gets big blocks.
RUNS, ROWS = (32, 64) if INTERPRET else (4, 16)
NUM_WARPS = 4
# Contract a * b + c into one FMA (one rounding, not two). Triton 3.9 does so by default
# and 3.10 will not: asked for explicitly, an upgrade does not change the results.
FP_FUSION = True
# tl.dot needs every dimension >= 16.
MIN_DOT = 16


def supports(exp: Experiment, device, dtype) -> bool:
    """The paper's nets (depth 2, one output, loss readout) on CUDA, or anywhere interpreted."""
    if triton is None:
        return False
    on_chip = torch.device(device).type == "cuda" or INTERPRET
    return (
        on_chip
        and exp.depth == 2
        and exp.target_dim == 1
        and exp.readout == "loss"
        and dtype in (torch.float32, torch.float64)
    )


def train(exp: Experiment, prob: Problem, lrs: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Scores (B,) of the runs with learning rates lrs (B, 2) and input-weight offsets (B,)."""
    X, dtype, device = prob.X.contiguous(), prob.X.dtype, prob.X.device
    n, w = X.shape
    runs = lrs.shape[0]
    scale = Net.of(exp).scale
    # The same constants, computed the same way, as net.Net (rounded once to dtype).
    gain = scale[0] * (1.0 if exp.nonlinearity == "identity" else math.sqrt(2))
    out_scale = scale[1] ** 2
    rows_per_step = n if prob.batches is None else prob.batches.shape[1]
    consts = torch.tensor(
        [gain, out_scale, 2 * out_scale / n, 2 * out_scale / rows_per_step], dtype=dtype, device=device
    )
    batches = prob.batches if prob.batches is not None else torch.zeros(1, dtype=torch.int64, device=device)
    sums = torch.empty(4, runs, dtype=dtype, device=device)
    dead_at = torch.empty(runs, dtype=torch.int32, device=device)
    _train_kernel[(triton.cdiv(runs, RUNS),)](
        X, prob.Y.contiguous(), prob.weights[0].contiguous(), prob.weights[1].contiguous(),
        lrs.contiguous(), offsets.contiguous(), batches.contiguous(), consts, sums, dead_at,
        runs, n, w, rows_per_step, exp.steps,
        ACT=exp.nonlinearity, MINIBATCH=prob.batches is not None, OFFSET_EVERY_STEP=exp.offset_every_step,
        RUNS=RUNS, ROWS=ROWS, WP=max(MIN_DOT, triton.next_power_of_2(w)), CAP=CAP, TAIL=TAIL,
        num_warps=NUM_WARPS, enable_fp_fusion=FP_FUSION,
    )  # fmt: skip
    return finish(exp.steps, *sums, dead_at.to(torch.int64))


def _jit(fn):
    """triton.jit, or without triton a plain function that nothing calls (supports() is False)."""
    return triton.jit(fn) if triton is not None else fn


@_jit
def _tanh(x):
    """tanh from exp: (1 - e) / (1 + e) with e = exp(-2|x|); a Taylor series below 0.01,
    where 1 - e cancels (its error there is < 1e-17 relative)."""
    ax = tl.abs(x)
    e = tl.exp(-2 * ax)
    big = (1 - e) / (1 + e)
    x2 = ax * ax
    small = ax * (1 + x2 * (-1 / 3 + x2 * (2 / 15 + x2 * (-17 / 315))))
    t = tl.where(ax < 0.01, small, big)
    return tl.where(x < 0, -t, t)


@_jit
def _sweep(X, Y, IDX, count, w, W1, W2, gain, out_scale, grad_scale,
           ACT: tl.constexpr, GATHER: tl.constexpr, GRAD: tl.constexpr,
           ROWS: tl.constexpr, WP: tl.constexpr):  # fmt: skip
    """One pass over `count` data rows (rows IDX[0..count) if GATHER, else 0..count):
    the runs' summed squared errors (RUNS,) and, if GRAD, their weight gradients."""
    k = tl.arange(0, WP)
    sq = tl.zeros((W1.shape[0], ROWS), W1.dtype)
    g1 = tl.zeros(W1.shape, W1.dtype)
    g2 = tl.zeros((W1.shape[0], ROWS, WP), W1.dtype)  # dW2 per row, summed once at the end
    for start in range(0, count, ROWS):
        pos = start + tl.arange(0, ROWS)
        valid = pos < count
        rows = tl.load(IDX + pos, mask=valid, other=0) if GATHER else pos
        # Padded rows and columns load as 0, so they add nothing to any sum below.
        x = tl.load(X + rows[:, None] * w + k[None, :], mask=valid[:, None] & (k < w)[None, :], other=0.0)
        y = tl.load(Y + rows, mask=valid, other=0.0)
        xb = tl.broadcast_to(x[None, :, :], (W1.shape[0], ROWS, WP))
        p = tl.dot(xb, W1, input_precision="ieee")  # (RUNS, ROWS, WP): X @ W1 per run
        if ACT == "tanh":
            h = _tanh(p * gain)
        elif ACT == "relu":
            h = tl.maximum(p, 0.0) * gain
        else:
            h = p * gain
        r = tl.sum(h * W2[:, None, :], axis=2) * out_scale - y[None, :]
        sq += r * r
        if GRAD:
            g = r * grad_scale  # d loss / d output, per run and row
            if ACT == "tanh":
                dact = (1 - h * h) * gain
            elif ACT == "relu":
                dact = tl.where(h > 0, gain, 0.0)
            else:
                dact = gain
            dp = g[:, :, None] * W2[:, None, :] * dact
            g1 += tl.dot(tl.trans(xb, (0, 2, 1)), dp, input_precision="ieee")  # X^T @ dP
            g2 += h * g[:, :, None]
    return tl.sum(sq, axis=1), g1, tl.sum(g2, axis=1)


@_jit
def _train_kernel(X, Y, W1_init, W2_init, LRS, OFFSETS, BATCHES, CONSTS, SUMS, DEAD_AT,
                  runs, n, w, batch, steps,
                  ACT: tl.constexpr, MINIBATCH: tl.constexpr, OFFSET_EVERY_STEP: tl.constexpr, RUNS: tl.constexpr,
                  ROWS: tl.constexpr, WP: tl.constexpr, CAP: tl.constexpr, TAIL: tl.constexpr):  # fmt: skip
    """Train RUNS runs for `steps` steps and store their score sums (as ScoreAccumulator)."""
    run = tl.program_id(0) * RUNS + tl.arange(0, RUNS)
    real = run < runs
    k = tl.arange(0, WP)
    kk = (k < w)[:, None] & (k < w)[None, :]
    lr1 = tl.load(LRS + 2 * run, mask=real, other=0.0)
    lr2 = tl.load(LRS + 2 * run + 1, mask=real, other=0.0)
    offset = tl.load(OFFSETS + run, mask=real, other=0.0)
    W1 = tl.load(W1_init + k[:, None] * w + k[None, :], mask=kk, other=0.0)[None, :, :]
    shift = tl.where(kk[None, :, :], offset[:, None, None], 0.0)  # padding stays 0
    W1 = W1 + shift
    W2 = tl.broadcast_to(tl.load(W2_init + k, mask=k < w, other=0.0)[None, :], (RUNS, WP))
    gain, out_scale = tl.load(CONSTS), tl.load(CONSTS + 1)
    full_scale, step_scale = tl.load(CONSTS + 2), tl.load(CONSTS + 3)

    l0 = tl.zeros((RUNS,), W1.dtype)
    sum_v, sum_inv, tail = l0, l0, l0
    dead_at = tl.full((RUNS,), steps, tl.int32)
    t = 0
    # A dead run's remaining steps are added in closed form by finish(), so stop once all
    # of this program's runs are dead.
    while (t < steps) & (tl.max((real & (dead_at == steps)).to(tl.int32)) > 0):
        if MINIBATCH:  # the scored loss is the full batch's; the step uses the minibatch
            sq = _sweep(X, Y, BATCHES, n, w, W1, W2, gain, out_scale, full_scale,
                        ACT, False, False, ROWS, WP)[0]  # fmt: skip
            _, g1, g2 = _sweep(X, Y, BATCHES + t * batch, batch, w, W1, W2, gain, out_scale, step_scale,
                               ACT, True, True, ROWS, WP)  # fmt: skip
        else:
            sq, g1, g2 = _sweep(X, Y, BATCHES, n, w, W1, W2, gain, out_scale, full_scale,
                                ACT, False, True, ROWS, WP)  # fmt: skip
        loss = sq / n
        # ScoreAccumulator.add, for this program's runs.
        finite = (loss == loss) & (tl.abs(loss) < float("inf"))
        l0 = tl.where(t == 0, tl.where(finite, loss, CAP), l0)
        alive = dead_at == steps
        keep = alive & finite
        v = tl.minimum(tl.where(finite, loss, l0) / l0, CAP)
        sum_v += tl.where(keep, v, 0.0)
        sum_inv += tl.where(keep, 1 / tl.maximum(v, 1 / CAP), 0.0)  # as score.py: 1/v capped
        tail += tl.where(keep & (t >= steps - TAIL), v, 0.0)
        dead_at = tl.where(alive & ~finite, t, dead_at)

        W1 -= lr1[:, None, None] * g1
        W2 -= lr2[:, None] * g2
        if OFFSET_EVERY_STEP:  # the notebook's reading: the next step starts from shifted weights
            W1 += shift
        t += 1

    tl.store(SUMS + run, l0, mask=real)
    tl.store(SUMS + runs + run, sum_v, mask=real)
    tl.store(SUMS + 2 * runs + run, sum_inv, mask=real)
    tl.store(SUMS + 3 * runs + run, tail, mask=real)
    tl.store(DEAD_AT + run, dead_at, mask=real)

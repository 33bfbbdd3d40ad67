"""The torch path: one chunk of runs trained step by step, all runs batched together.

The hot loop is plain PyTorch with the backward pass written out by hand (the net is
small and fixed, so autograd's bookkeeping would cost more than the maths). Runs share the
data and initial weights and differ only in their hyperparameters. Each run's arithmetic
does not depend on which runs share its chunk (zoomer.net), so a run gives the same bits
alone, in any chunk, resumed or in another shard. Every fused kernel is checked against
this path before it is trusted (zoomer.kernels).
"""
from __future__ import annotations

import torch

from .experiment import Experiment, Problem
from .net import Net
from .score import CAP, ScoreAccumulator

# How often (in steps) the loop looks for diverged runs to drop from the batch.
COMPACT_EVERY = 8


def train_torch(exp: Experiment, prob: Problem, lrs: torch.Tensor, offsets: torch.Tensor,
                compact: bool = True) -> torch.Tensor:
    """Readouts (B,) of one chunk of runs, on prob's device and dtype (as engine.train_chunk).

    With `compact`, runs whose loss went non-finite are dropped from the batch every
    COMPACT_EVERY steps; their scores are already decided, so results are unchanged.
    """
    net = Net.of(exp)
    B, steps = lrs.shape[0], exp.steps
    weights = [w.expand(B, -1, -1).clone() for w in prob.weights]
    offsets = offsets[:, None, None]
    lr = [lrs[:, i, None, None] for i in range(exp.depth)]
    acc = ScoreAccumulator(B, steps, prob.X.device, prob.X.dtype)
    rows = torch.arange(B, device=prob.X.device)
    dead = torch.zeros(B, dtype=torch.bool, device=prob.X.device)

    for t in range(steps):
        if t == 0 or exp.offset_every_step:  # the step is taken at the shifted weights
            weights[0] += offsets
        if prob.batches is None:
            loss, grads = net.loss_and_grads(weights, prob.X, prob.Y)
        else:  # the scored loss is the full-batch loss; the step uses the minibatch
            loss = net.loss(weights, prob.X, prob.Y)
            idx = prob.batches[t]
            grads = net.loss_and_grads(weights, prob.X[idx], prob.Y[idx])[1]
        dead |= acc.add(t, loss, None if rows.shape[0] == B else rows)
        for w, g, a in zip(weights, grads, lr):
            w.sub_(a * g)
        if compact and (t + 1) % COMPACT_EVERY == 0 and bool(dead.any()):
            keep = ~dead
            rows, weights = rows[keep], [w[keep] for w in weights]
            lr, dead, offsets = [a[keep] for a in lr], dead[keep], offsets[keep]
            if rows.numel() == 0:
                break

    if exp.readout == "loss":
        return acc.scores()
    return _probe_readout(net, exp, prob, weights, rows, acc, B)


def _probe_readout(net, exp, prob, weights, rows, acc, batch) -> torch.Tensor:
    """The net's first output at the probe input; a run that diverged reads as +CAP."""
    out = torch.full((batch,), CAP, dtype=prob.X.dtype, device=prob.X.device)
    if rows.numel():
        value = net.forward(weights, prob.probe[None, :])[1][:, 0, 0]
        value = torch.nan_to_num(value, nan=CAP, posinf=CAP, neginf=-CAP).clamp(-CAP, CAP)
        out[rows] = value
    out[acc.dead_at < exp.steps] = CAP
    return out



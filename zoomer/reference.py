"""The slow, obvious engine: one run at a time, torch autograd, the loss history kept whole.

It shares nothing with the batched engine but the Experiment and the score definition,
so the tests can hold every fast path against it.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .experiment import Experiment, activation
from .score import CAP, score_from_losses


def predict(exp: Experiment, weights, x):
    act = activation(exp.nonlinearity)
    h = x
    for i, w in enumerate(weights):
        z = h @ w / math.sqrt(w.shape[0])
        h = act(z) if i < len(weights) - 1 else z
    return h / math.sqrt(weights[-1].shape[0])


def train_one(exp: Experiment, x: float, y: float) -> float:
    """Train the run at axis coordinates (x, y) in float64 and return its readout."""
    prob = exp.problem()
    lrs, offsets = exp.hparams(torch.tensor([x], dtype=torch.float64), torch.tensor([y], dtype=torch.float64))
    weights = [w.clone() for w in prob.weights]
    losses = []
    for t in range(exp.steps):
        if t == 0 or exp.offset_every_step:
            weights[0] = weights[0] + offsets[0]
        ws = [w.detach().requires_grad_(True) for w in weights]
        full = torch.mean((predict(exp, ws, prob.X) - prob.Y) ** 2)
        losses.append(full.detach())
        if prob.batches is None:
            step_loss = full
        else:
            idx = prob.batches[t]
            step_loss = torch.mean((predict(exp, ws, prob.X[idx]) - prob.Y[idx]) ** 2)
        grads = torch.autograd.grad(step_loss, ws)
        weights = [w.detach() - lrs[0, i] * g for i, (w, g) in enumerate(zip(ws, grads))]
    losses = torch.stack(losses)
    if exp.readout == "loss":
        return float(score_from_losses(losses))
    if not torch.isfinite(losses).all():
        return CAP
    value = predict(exp, weights, prob.probe[None, :])[0, 0]
    return float(torch.nan_to_num(value, nan=CAP, posinf=CAP, neginf=-CAP).clamp(-CAP, CAP))


def reference_grid(exp: Experiment, x, y) -> np.ndarray:
    """Readouts of the runs at (x[k], y[k]), one run at a time."""
    return np.array([train_one(exp, float(a), float(b)) for a, b in zip(np.ravel(x), np.ravel(y))])

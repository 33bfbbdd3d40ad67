"""The paper's net with its backward pass written out by hand, batched over runs.

Mean-field scaling: each layer is z = h @ W / sqrt(fan_in), hidden layers tanh(sqrt2 z),
sqrt2 relu(z) or z, and the output is z_last / sqrt(fan_in_last). The net is small and
fixed, so autograd's bookkeeping would cost more than the maths; the fused kernels fold
the same constants.

Batch invariance: every product of matrices is written as elementwise multiplies and
adds in a fixed order (`contract`, `mean_square`), never torch.matmul, whose BLAS kernel
(and so its rounding) follows the shape of the whole batch. Each run's arithmetic is then the same alone or inside a chunk of any size: single
IEEE multiplies and adds (no fused multiply-add that one code path would use and another
not), and tanh, which torch computes the same in its vector body and its scalar tail
(tests/test_engine.py holds both).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .experiment import Experiment


@dataclass
class Net:
    """The per-layer constants of the mean-field net, folded for the hot loop."""

    scale: list[float]  # 1/sqrt(fan_in) per layer; the output is scaled twice
    nonlinearity: str

    @classmethod
    def of(cls, exp: Experiment) -> "Net":
        return cls([1 / math.sqrt(a) for a, _ in exp.layer_shapes], exp.nonlinearity)

    def act(self, i: int, p: torch.Tensor) -> torch.Tensor:
        """Hidden layer i's output from its pre-activation p = h @ W (before scaling)."""
        c = self.scale[i]
        if self.nonlinearity == "tanh":
            return torch.tanh(p * (math.sqrt(2) * c))
        if self.nonlinearity == "relu":
            return torch.relu(p) * (math.sqrt(2) * c)
        return p * c

    def dact(self, i: int, h: torch.Tensor) -> torch.Tensor:
        """d act / d p for hidden layer i, written in terms of its output h."""
        c = self.scale[i]
        if self.nonlinearity == "tanh":
            return (1 - h * h) * (math.sqrt(2) * c)
        if self.nonlinearity == "relu":
            return (h > 0).to(h.dtype) * (math.sqrt(2) * c)
        return torch.full_like(h, c)

    def forward(self, weights, x):
        """Activations [x, h_1, ..., h_{d-1}] and the output, for every run at once."""
        hs = [x]
        for i, w in enumerate(weights[:-1]):
            hs.append(self.act(i, contract(hs[-1], w)))
        out = contract(hs[-1], weights[-1]) * self.scale[-1] ** 2
        return hs, out

    def loss_and_grads(self, weights, x, y):
        """Mean squared error per run and its gradient for every layer (backprop by hand)."""
        hs, out = self.forward(weights, x)
        r = out - y
        loss = mean_square(r)
        g = r * (2 * self.scale[-1] ** 2 / (r.shape[-2] * r.shape[-1]))
        grads = [None] * len(weights)
        for i in range(len(weights) - 1, -1, -1):
            grads[i] = contract(hs[i].transpose(-2, -1), g)
            if i:
                g = contract(g, weights[i].transpose(-2, -1)) * self.dact(i - 1, hs[i])
        return loss, grads

    def loss(self, weights, x, y):
        return mean_square(self.forward(weights, x)[1] - y)


def contract(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b over the last two dims (leading dims broadcast), batch-invariant: the products
    a[..., k] b[k, ...] added one k after another, each a separate IEEE multiply and add.
    The inner dimension is moved to the front first, so each step reads contiguous slices."""
    a = a.movedim(-1, 0).contiguous()[..., :, None]
    b = b.movedim(-2, 0).contiguous()[..., None, :]
    out = a[0] * b[0]
    for k in range(1, a.shape[0]):
        out += a[k] * b[k]
    return out


def mean_square(r: torch.Tensor) -> torch.Tensor:
    """Mean of r*r over the last two dims (points, outputs), batch-invariant: a pairwise
    sum whose order is fixed by the number of terms alone (log2(n) additions, not n)."""
    terms = (r * r).flatten(-2)
    while terms.shape[-1] > 1:
        half = terms.shape[-1] // 2
        pairs = terms[..., :half] + terms[..., half : 2 * half]
        if terms.shape[-1] % 2:  # the odd last term joins the first pair
            pairs[..., :1] += terms[..., 2 * half :]
        terms = pairs
    return terms[..., 0] / (r.shape[-2] * r.shape[-1])

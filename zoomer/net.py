"""The paper's net with its backward pass written out by hand, batched over runs.

Mean-field scaling: each layer is z = h @ W / sqrt(fan_in), hidden layers tanh(sqrt2 z),
sqrt2 relu(z) or z, and the output is z_last / sqrt(fan_in_last). The net is small and
fixed, so autograd's bookkeeping would cost more than the maths; the fused kernels fold
the same constants.
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
            hs.append(self.act(i, torch.matmul(hs[-1], w)))
        out = torch.matmul(hs[-1], weights[-1]) * self.scale[-1] ** 2
        return hs, out

    def loss_and_grads(self, weights, x, y):
        """Mean squared error per run and its gradient for every layer (backprop by hand)."""
        hs, out = self.forward(weights, x)
        r = out - y
        loss = (r * r).mean(dim=(-2, -1))
        g = r * (2 * self.scale[-1] ** 2 / (r.shape[-2] * r.shape[-1]))
        grads = [None] * len(weights)
        for i in range(len(weights) - 1, -1, -1):
            grads[i] = torch.matmul(hs[i].transpose(-2, -1), g)
            if i:
                g = torch.matmul(g, weights[i].transpose(-2, -1)) * self.dact(i - 1, hs[i])
        return loss, grads

    def loss(self, weights, x, y):
        out = self.forward(weights, x)[1]
        return ((out - y) ** 2).mean(dim=(-2, -1))

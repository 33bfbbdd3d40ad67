"""The paper's score of one training run, from its losses l_0 .. l_{T-1}.

v_t = min(l_t / l_0, CAP), with a non-finite loss counted as CAP before dividing; the run
converged when the mean of its last TAIL v's is below 1; score = -sum(v) if it converged,
else sum(1 / v). Sign = class (negative trains), magnitude = how fast. 1 / v is capped at
CAP too, so a loss that underflows to 0 (in float32) cannot make a score infinite.

A run whose loss has once been non-finite is diverged for good: every later loss counts
as non-finite too. (In floating point its weights are inf/NaN from then on, so this only
makes the rule explicit.) It lets the engine drop such runs from the batch and still
give the same score as training them to the end.
"""
from __future__ import annotations

import torch

CAP = 1e6
TAIL = 20


def score_from_losses(losses: torch.Tensor) -> torch.Tensor:
    """Score of runs from their full loss histories (..., T): the literal definition."""
    bad = ~torch.isfinite(losses)
    bad = torch.cumsum(bad.to(torch.int64), dim=-1) > 0  # non-finite once, non-finite for good
    ls = torch.where(bad, torch.full_like(losses, CAP), losses)
    v = torch.clamp(ls / ls[..., :1], max=CAP)
    converged = v[..., -TAIL:].mean(-1) < 1
    return torch.where(converged, -v.sum(-1), (1.0 / v.clamp(min=1 / CAP)).sum(-1))


class ScoreAccumulator:
    """The same score, accumulated step by step so no run keeps its loss history.

    Keeps sum(v), sum(1/v), the tail sum and the step at which each run died; a dead run's
    remaining steps are added in closed form at the end, so the result does not depend on
    whether dead runs were still trained or dropped from the batch.
    """

    def __init__(self, batch: int, steps: int, device, dtype):
        z = lambda: torch.zeros(batch, device=device, dtype=dtype)  # noqa: E731
        self.steps = steps
        self.l0 = z()
        self.sum_v, self.sum_inv, self.tail = z(), z(), z()
        self.dead_at = torch.full((batch,), steps, device=device, dtype=torch.int64)

    def add(self, t: int, loss: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Record step t's losses of the runs at `rows` (all runs if None); returns which died."""
        idx = slice(None) if rows is None else rows
        finite = torch.isfinite(loss)
        if t == 0:
            self.l0[idx] = torch.where(finite, loss, torch.full_like(loss, CAP))
        dead_at = self.dead_at[idx]
        alive = dead_at == self.steps
        died = alive & ~finite
        # Only live runs with a finite loss add their v here; a dead run's remaining steps
        # are added in closed form by scores() (v is a harmless 1 where it is masked out).
        keep = (alive & finite).to(loss.dtype)
        v = torch.clamp(torch.where(finite, loss, self.l0[idx]) / self.l0[idx], max=CAP)
        self.sum_v[idx] += v * keep
        self.sum_inv[idx] += keep / v.clamp(min=1 / CAP)
        if t >= self.steps - TAIL:
            self.tail[idx] += v * keep
        self.dead_at[idx] = torch.where(died, torch.full_like(dead_at, t), dead_at)
        return died

    def scores(self) -> torch.Tensor:
        return finish(self.steps, self.l0, self.sum_v, self.sum_inv, self.tail, self.dead_at)


def finish(steps, l0, sum_v, sum_inv, tail, dead_at) -> torch.Tensor:
    """Scores from running sums over the steps each run was alive (dead_at = steps if it
    never died): the dead steps, each worth min(CAP / l0, CAP), are added in closed form.
    Fused kernels return these sums and finish here, so every path ends the same way."""
    remaining = (steps - dead_at).to(l0.dtype)
    v_dead = torch.clamp(CAP / l0, max=CAP)
    sum_v = sum_v + remaining * v_dead
    sum_inv = sum_inv + remaining / v_dead
    tail = tail + torch.clamp(remaining, max=TAIL) * v_dead
    converged = tail / TAIL < 1
    return torch.where(converged, -sum_v, sum_inv)

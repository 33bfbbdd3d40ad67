"""Fused fast paths behind the engine, each with the same contract as engine.train_chunk.

A kernel module exposes
    supports(exp, device, dtype) -> bool    whether it can train this experiment there
    train(exp, prob, lrs, offsets) -> Tensor  readouts (B,), exactly as the torch path
and `find` picks one. The torch path (zoomer.training) is the fallback for everything else.

backend="auto" trusts a kernel only once it has proved itself in this process: the first
time it would train an experiment on a device in a dtype, it trains a small probe grid that
crosses the boundary and must give the torch path's scores. A kernel that raises or
disagrees is set aside with one warning naming it and why, and the torch path trains
instead. Naming a kernel (backend="cpu", "triton") skips the probe: its errors surface.
"""
from __future__ import annotations

import dataclasses
import importlib
import warnings

import numpy as np
import torch

from ..boundary import converged
from ..errors import Refusal
from ..training import train_torch
from ..window import Window

BACKENDS = ("auto", "torch", "triton", "cpu")
# Tried in this order by backend="auto"; each entry is a module name in this package.
_FAST = ("triton", "cpu")
# The probe: a PROBE_SIZE x PROBE_SIZE grid of PROBE_STEPS-step runs over PROBE_WINDOW
# (axis units), wide enough to hold runs that converge, runs that diverge at once and the
# boundary between them in every paper condition.
PROBE_SIZE = 6
PROBE_STEPS = 20
PROBE_WINDOW = ((-2.0, 6.0), (-2.0, 5.0))
# How close the kernel must come to the torch path: the share of runs of the same class,
# and the median relative score difference, per dtype. Near the boundary a different
# rounding may tip a run either way, so a few class changes are allowed.
PROBE_SAME_CLASS = 0.9
PROBE_TOLERANCE = {torch.float64: 1e-6, torch.float32: 1e-2}

# (kernel, device, dtype, probe experiment) -> None if trusted, else why not.
_verdicts: dict = {}


def find(backend: str, exp, device, dtype):
    """The kernel's train function for this backend, or None to use the torch path."""
    if backend not in BACKENDS:
        raise Refusal(f"engine.backend must be one of {list(BACKENDS)}, got {backend!r}")
    if backend == "torch":
        return None
    names = _FAST if backend == "auto" else (backend,)
    for name in names:
        module = importlib.import_module(f"{__name__}.{name}")
        if module.supports(exp, device, dtype):
            if backend == "auto" and not trusted(name, module.train, exp, device, dtype):
                continue
            return module.train
        if backend != "auto":
            raise Refusal(f"engine.backend={backend!r} cannot train this experiment on {device} in {dtype}")
    return None


def trusted(name: str, train, exp, device, dtype) -> bool:
    """Whether kernel `name` gives the torch path's scores on the probe grid (asked once per
    process, kernel, device, dtype and experiment); warns once when it does not."""
    probe_exp = dataclasses.replace(exp, steps=min(exp.steps, PROBE_STEPS))
    key = (name, str(torch.device(device)), dtype, probe_exp)
    if key not in _verdicts:
        _verdicts[key] = _probe(train, probe_exp, torch.device(device), dtype)
        if _verdicts[key] is not None:
            warnings.warn(
                f"zoomer's {name} kernel is not used on {device} in {str(dtype).removeprefix('torch.')}: "
                f"{_verdicts[key]}; the torch path trains instead (engine.backend={name} would use it anyway)"
            )
    return _verdicts[key] is None


def _probe(train, exp, device, dtype):
    """None if `train` matches the torch path on the probe grid, else the reason it does not."""
    x, y = Window.from_bounds(*PROBE_WINDOW).grid((PROBE_SIZE, PROBE_SIZE))
    lrs, offsets = exp.hparams(torch.from_numpy(np.ravel(x)), torch.from_numpy(np.ravel(y)))
    prob = exp.problem().to(device, dtype)
    lrs, offsets = lrs.to(device, dtype), offsets.to(device, dtype)
    expected = train_torch(exp, prob, lrs, offsets).to("cpu", torch.float64).numpy()
    try:
        got = train(exp, prob, lrs, offsets).to("cpu", torch.float64).numpy()
    except Exception as err:  # noqa: BLE001  any failure means: do not trust it
        return f"it failed on a probe grid ({type(err).__name__}: {str(err).strip()[:300]})"
    if got.shape != expected.shape:
        return f"it returned {got.shape} scores for a probe grid of {expected.size} runs"
    if not np.isfinite(got).all():
        return f"it returned non-finite scores on a probe grid of {expected.size} runs"
    same = float(np.mean(converged(got) == converged(expected)))
    rel = float(np.median(np.abs(got - expected) / np.maximum(np.abs(expected), 1e-300)))
    if same < PROBE_SAME_CLASS or rel > PROBE_TOLERANCE[dtype]:
        return (f"its scores disagree with the torch path's on a probe grid of {expected.size} runs "
                f"({same:.0%} of the same class, median relative difference {rel:.1e})")
    return None

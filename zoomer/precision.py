"""Which float type renders a frame: float32 where it draws float64's picture, else float64.

float32 runs about twice as fast, but near the boundary training is chaotic: rounding
flips the class of pixels in a band around the boundary, and the band is a larger share
of a smaller window. benchmarks/precision.py follows the boundary of every paper
condition down from its default window (6 or 8 wide) and counts the pixels whose class
agrees between the two (BENCHMARKS.md: 24x24 pixels, 100 steps). The deepest decade
where float32 still agreed on >= 99% of pixels:

    tanh 1 (99.3%; 96.5% at 2)     relu 6 (99.8%; 97.0% at 7)    identity 6 (100%; 98.96% at 7)
    single_datapoint 6 (99.7%; 96.7% at 7)    paraminit 0 (99.1%; 97.9% at 1)
    minibatch none (98.8% at 0, 93.1% at 1): its stochastic steps are the most chaotic

So "auto" uses float32 only for windows at least FLOAT32_MIN_WIDTH wide (every measured
window that wide agreed on >= 99%), never for minibatch training, and never for longer
training than was measured (more steps amplify rounding further); otherwise float64.
"""
from __future__ import annotations

import torch

from .config import Precision
from .config.parts import choice
from .errors import Refusal
from .experiment import Experiment
from .window import Window, check_size

# The narrowest window (axis units, i.e. decades of the hyperparameter) measured to agree
# on >= 99% of pixels in every condition but minibatch: one decade into the default 8.
FLOAT32_MIN_WIDTH = 0.8
FLOAT32_MAX_STEPS = 100  # the training length it was measured at


def resolve_precision(precision: str, exp: Experiment, window: Window, size) -> torch.dtype:
    """The dtype for rendering `window` at `size` = (H, W): precision is 'float32',
    'float64', or 'auto' for float32 where the measurements above show it suffices."""
    precision = choice(Precision, precision, "engine.precision")
    if precision != Precision.auto:
        return getattr(torch, precision.value)
    return torch.float32 if float32_suffices(exp, window, size) else torch.float64


def dtypes(precision: str) -> tuple[torch.dtype, ...]:
    """The float types a render with this engine.precision may train in."""
    precision = choice(Precision, precision, "engine.precision")
    return (torch.float32, torch.float64) if precision == Precision.auto else (getattr(torch, precision.value),)


def float32_suffices(exp: Experiment, window: Window, size) -> bool:
    """Whether float32 gives float64's classes on >= 99% of this window's pixels."""
    try:  # neighbouring pixels must be distinct float32 runs (binds only past ~2e6 px a side)
        window.check_resolution(check_size(size), torch.float32)
    except Refusal:
        return False
    return (
        exp.batch_size is None
        and exp.steps <= FLOAT32_MAX_STEPS
        and min(window.width, window.height) >= FLOAT32_MIN_WIDTH
    )

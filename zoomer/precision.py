"""Which float type renders a frame: float32 where it draws float64's picture, float64
where it resolves the pixels, perturbation (zoomer.perturbation) deeper.

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
training than was measured (more steps amplify rounding further); otherwise float64, and
past float64's reach (neighbouring pixels' hyperparameters a few ulps apart, about 13
decades) perturbation: float64 differences from a double-double reference run, so only
where float64 cannot draw the frame at all (compiled on the CPU, a pixel costs about 1.5x
a fused float64 run plus the reference's few ms per step, glitch repair on top;
BENCHMARKS.md).
"""
from __future__ import annotations

import torch

from .config import Precision
from .config.parts import choice
from .errors import Refusal
from .experiment import Experiment
from .window import PERTURBATION, Window, check_size

# The narrowest window (axis units, i.e. decades of the hyperparameter) measured to agree
# on >= 99% of pixels in every condition but minibatch: one decade into the default 8.
FLOAT32_MIN_WIDTH = 0.8
FLOAT32_MAX_STEPS = 100  # the training length it was measured at


def resolve_precision(precision: str, exp: Experiment, window: Window, size) -> torch.dtype | str:
    """How to train `window` at `size` = (H, W): a torch dtype, or "perturbation". precision
    is 'float32', 'float64', 'perturbation', or 'auto' for float32 where the measurements
    above show it suffices, float64 where it resolves the pixels, perturbation past that."""
    precision = choice(Precision, precision, "engine.precision")
    if precision == Precision.perturbation:
        return PERTURBATION
    if precision != Precision.auto:
        return getattr(torch, precision.value)
    if float32_suffices(exp, window, size):
        return torch.float32
    return deep_or_float64(window, size)


def deep_or_float64(window: Window, size) -> torch.dtype | str:
    """float64 where it tells this window's pixels apart, else perturbation."""
    try:
        window.check_resolution(check_size(size), torch.float64)
        return torch.float64
    except Refusal:
        return PERTURBATION


def dtypes(precision: str) -> tuple[torch.dtype | str, ...]:
    """The float types (and "perturbation") a render with this engine.precision may train in."""
    precision = choice(Precision, precision, "engine.precision")
    if precision == Precision.auto:
        return (torch.float32, torch.float64, PERTURBATION)
    return (resolve_precision(precision, None, None, None),)


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

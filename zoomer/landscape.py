"""One frame's score image: the frame-level decisions above the engine.

The engine trains lists of runs; a frame decides which runs it needs. It picks the float
type for its window (precision "auto", zoomer.precision; past float64's reach, runs as
differences from a high-precision reference, zoomer.perturbation), trains only near the boundary
(solid guessing, zoomer.guess) and takes runs another frame already trained (`known`).
"""
from __future__ import annotations

import logging
from typing import Optional

import numpy as np
import torch

from . import perturbation
from .engine import train_grid
from .experiment import Experiment
from .config.parts import check_guess
from .guess import solid_guess
from .precision import resolve_precision
from .window import PERTURBATION, Window, check_size

log = logging.getLogger(__name__)


def lattice_step(guess: int, supersample: int = 1) -> int:
    """Solid guessing's first lattice step in computed pixels: `guess` pixels of the picture,
    each supersample x supersample runs, so a solid block costs what it would without
    supersampling (its runs are interpolated) and a block that mixes classes trains all."""
    return check_guess(guess) * supersample


def landscape(
    exp: Experiment,
    window: Window,
    size: tuple[int, int] = (256, 256),
    device=None,
    dtype=torch.float64,
    progress=None,
    backend: str = "auto",
    guess: int = 1,
    known: Optional[np.ndarray] = None,
    supersample: int = 1,
) -> np.ndarray:
    """The score image (H, W) of a window: row 0 is the lowest y, column 0 the lowest x.

    dtype "auto" picks float32 or float64 for this window (zoomer.precision). guess > 1
    trains only the runs the boundary needs and interpolates the rest (zoomer.guess);
    supersample > 1 says that (H, W) is supersample x the picture's size, and guessing
    starts from one run per picture pixel (lattice_step).
    known, an (H, W) image of runs already trained at these very coordinates (NaN
    elsewhere), is used instead of training them again; the result is the same.
    """
    exp.validate()
    h, w = check_size(size)
    if dtype == "auto":
        dtype = resolve_precision(dtype, exp, window, (h, w))
    window.check_resolution((h, w), dtype)
    counts = {"trained": 0, "reused": 0}
    if dtype == PERTURBATION:
        dxs, dys = window.offsets((h, w))
        run = lambda i, j: _perturbed(exp, window, dxs[j], dys[i], device, progress, backend)  # noqa: E731
    else:
        xs, ys = window.axes((h, w))
        run = lambda i, j: train_grid(exp, xs[j], ys[i], device=device, dtype=dtype,  # noqa: E731
                                      progress=progress, backend=backend)

    def train(i, j):
        scores = known[i, j] if known is not None else np.full(i.size, np.nan)
        todo = np.isnan(scores)
        counts["trained"] += int(todo.sum())
        counts["reused"] += int(todo.size - todo.sum())
        if progress is not None:
            progress(int(todo.size - todo.sum()))
        if todo.any():
            scores[todo] = run(i[todo], j[todo])
        return scores

    step = lattice_step(guess, supersample)
    scores = solid_guess(train, (h, w), step, progress)
    if step > 1 or known is not None:
        log.info("%d x %d frame: trained %d runs (%.0f%%), %d reused from another frame",
                 w, h, counts["trained"], 100 * counts["trained"] / (h * w), counts["reused"])
    return scores


def _perturbed(exp: Experiment, window: Window, dxs, dys, device, progress, backend: str) -> np.ndarray:
    """Scores of the runs at these offsets from the window's exact centre, trained as
    differences from a reference run (zoomer.perturbation); says how many stayed glitched."""
    out = perturbation.render(exp, window.exact_center, dxs, dys, device=device or "cpu",
                              compiled=backend != "torch")
    if out.glitched.any():
        log.warning("%d of %d runs still differ too much from their nearest of %d reference runs "
                    "(zoomer.perturbation); their scores may be off", int(out.glitched.sum()), out.glitched.size,
                    len(out.references))
    if progress is not None:
        progress(dxs.size)
    return out.scores

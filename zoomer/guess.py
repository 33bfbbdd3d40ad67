"""Solid guessing: train a frame's runs only where the boundary is.

Most of a frame is solid: wide areas where every run converges, or every run diverges,
and the score changes smoothly. Fractal renderers (Fractint's "solid guessing", Kalles
Fraktaler's "guessing") skip such areas, and so does zoomer: it trains a coarse lattice
of runs (every `step`-th pixel each way), then halves the lattice again and again. A
cell of the lattice is refined (its new lattice points trained) when its corners, or the
corners of any of its eight neighbours, hold both classes; every other cell's new points
are interpolated (bilinear in the score) from its corners. On a frame with a coherent
boundary 10-20% of the runs are trained; on static, all of them.

The price: an island of the other class smaller than a cell, with no lattice point of
its own near the boundary, is painted over. That is fine for a video's look, not for a
measurement, so the dimension and still commands train every pixel (a supersampled still
every pixel of the picture, and its supersamples where classes mix: zoomer.landscape).
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from .boundary import dilate, edges


def solid_guess(
    train: Callable[[np.ndarray, np.ndarray], np.ndarray],
    size: tuple[int, int],
    step: int,
    progress: Optional[Callable[[int], None]] = None,
) -> np.ndarray:
    """The (H, W) score image, training only the pixels the boundary needs.

    train(i, j) returns the scores of pixels (i[k], j[k]) (row, column), each pixel at
    most once. progress, if given, also hears of the pixels filled by interpolation, so a
    bar over H * W pixels ends full. step 1 trains every pixel, and so does a frame one
    pixel high or wide: it has no cells to guess inside.

    Every decision depends only on the scores of pixels already in the image, so running
    it again on its own result (train = look the pixel up) asks for the same pixels:
    `trained_pixels` recovers which runs a stored frame holds without storing a mask.
    """
    h, w = size
    if min(h, w) < 2:
        step = 1
    scores = np.full((h, w), np.nan)
    rows, cols = _lattice(h, step), _lattice(w, step)
    _train_missing(train, scores, rows, cols)
    while step > 1:
        refine = dilate(edges(scores[np.ix_(rows, cols)]))
        step //= 2
        fine_rows, fine_cols = _lattice(h, step), _lattice(w, step)
        wanted = _in_cells(refine, rows, cols, fine_rows, fine_cols)
        _train_missing(train, scores, fine_rows, fine_cols, wanted)
        guessed = np.isnan(scores[np.ix_(fine_rows, fine_cols)])
        _interpolate(scores, rows, cols, fine_rows, fine_cols, guessed)
        if progress is not None:
            progress(int(guessed.sum()))
        rows, cols = fine_rows, fine_cols
    return scores


def trained_pixels(scores: np.ndarray, step: int) -> np.ndarray:
    """Boolean (H, W): the pixels `solid_guess` trained to make this image (not interpolated)."""
    asked = np.zeros(scores.shape, bool)

    def look_up(i, j):
        asked[i, j] = True
        return scores[i, j]

    solid_guess(look_up, scores.shape, step)
    return asked


def _lattice(n: int, step: int) -> np.ndarray:
    """Every step-th index from 0, and the last one, so the lattice spans the frame."""
    return np.unique(np.r_[np.arange(0, n, step), n - 1])


def _train_missing(train, scores, rows, cols, wanted=None) -> None:
    """Train the lattice points not yet known (and wanted)."""
    ii, jj = np.meshgrid(rows, cols, indexing="ij")
    todo = np.isnan(scores[ii, jj])
    if wanted is not None:
        todo &= wanted
    i, j = ii[todo], jj[todo]
    if i.size:
        scores[i, j] = train(i, j)


def _cells_of(points: np.ndarray, lattice: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each index, the first and last lattice cell that contains it (two on a lattice line)."""
    last = len(lattice) - 2
    lo = np.clip(np.searchsorted(lattice, points, side="left") - 1, 0, last)
    hi = np.clip(np.searchsorted(lattice, points, side="right") - 1, 0, last)
    return lo, hi


def _in_cells(cells, rows, cols, fine_rows, fine_cols) -> np.ndarray:
    """(len(fine_rows), len(fine_cols)): the fine lattice points inside any of `cells`."""
    r_lo, r_hi = _cells_of(fine_rows, rows)
    c_lo, c_hi = _cells_of(fine_cols, cols)
    return np.logical_or.reduce([cells[np.ix_(r, c)] for r in (r_lo, r_hi) for c in (c_lo, c_hi)])


def _interpolate(scores, rows, cols, fine_rows, fine_cols, guessed) -> None:
    """Fill the `guessed` fine lattice points bilinearly from the coarse lattice's corners."""
    a, _ = _cells_of(fine_rows, rows)
    b, _ = _cells_of(fine_cols, cols)
    ty = ((fine_rows - rows[a]) / (rows[a + 1] - rows[a]))[:, None]
    tx = ((fine_cols - cols[b]) / (cols[b + 1] - cols[b]))[None, :]
    corner = scores[np.ix_(rows, cols)]
    value = ((1 - ty) * (1 - tx) * corner[np.ix_(a, b)] + (1 - ty) * tx * corner[np.ix_(a, b + 1)]
             + ty * (1 - tx) * corner[np.ix_(a + 1, b)] + ty * tx * corner[np.ix_(a + 1, b + 1)])
    fine = scores[np.ix_(fine_rows, fine_cols)]
    fine[guessed] = value[guessed]
    scores[np.ix_(fine_rows, fine_cols)] = fine

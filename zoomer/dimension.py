"""How fractal is the boundary: box-counting dimension of the edge set of score images.

The edge set of a score image is every pixel whose 2x2 neighbourhood holds both classes
(the score changes sign inside it). Cover the plane with a grid of boxes s pixels wide and
count N(s), the boxes that hold an edge pixel; for a set of dimension D, N(s) ~ s^-D, so D
is minus the slope of log N against log s, fitted by least squares.

Which box sizes to fit. Only powers of two, so every box of size 2s is exactly four of size
s. The smallest boxes see the pixel grid rather than the set: an edge pixel marks a 2x2
block, so even a straight boundary is 1-2 pixels thick, diagonal ones alias, and N(1)
overcounts against N(2); boxes of 1 pixel are left out (MIN_BOX). The largest boxes see
the finite image: with few boxes across it, nearly every box holds some edge and N(s)
tends to the number of boxes, (L/s)^2, which pulls the slope towards 2 however thin the
set; boxes with fewer than MIN_BOXES_ACROSS of them across the shorter side are left out.
What is left, 2 .. L/8 pixels, is three box sizes at L = 64 and five at L = 256.

The spread of an estimate is the standard error of the fitted slope; the local slopes
between neighbouring box sizes say whether N(s) is a power law at all (scatter around
the fit is noise, a trend means the set is not self-similar over the fitted scales).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_BOX = 2  # pixels; smaller boxes see the pixel grid, not the set
MIN_BOXES_ACROSS = 8  # boxes per shorter side of the image at the largest fitted size
# The narrowest image that holds MIN_BOXES_ACROSS boxes of 2 * MIN_BOX: two fitted sizes.
MIN_SIDE = 2 * MIN_BOX * (MIN_BOXES_ACROSS - 1) + 1


def edges(scores: np.ndarray) -> np.ndarray:
    """Boolean (H-1, W-1) edge set: True where the 2x2 block at (i, j) holds both classes.

    A run's class is the sign of its score (negative = converged, as Reference splits them).
    """
    below = np.asarray(scores) < 0
    blocks = (below[:-1, :-1], below[:-1, 1:], below[1:, :-1], below[1:, 1:])
    return np.logical_or.reduce(blocks) & ~np.logical_and.reduce(blocks)


def box_counts(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(box sizes 1, 2, 4, ... up to the image's shorter side, boxes that hold a True pixel).

    Boxes are laid from pixel (0, 0); a partial box at the bottom or right edge counts as
    a box. Each size is computed from the previous one by OR-ing 2x2 blocks of boxes.
    """
    occupied = np.asarray(mask, dtype=bool)
    if occupied.ndim != 2 or min(occupied.shape) < 1:
        raise ValueError(f"box counting needs a 2-D image, got shape {occupied.shape}")
    sizes, counts, size = [], [], 1
    side = min(occupied.shape)
    while size <= side:
        sizes.append(size)
        counts.append(int(occupied.sum()))
        h, w = occupied.shape
        padded = np.zeros((h + h % 2, w + w % 2), dtype=bool)
        padded[:h, :w] = occupied
        occupied = padded[0::2, 0::2] | padded[0::2, 1::2] | padded[1::2, 0::2] | padded[1::2, 1::2]
        size *= 2
    return np.array(sizes), np.array(counts)


@dataclass(frozen=True)
class BoxDimension:
    """A box-counting estimate: all counts, the fitted sizes and the fit itself."""

    sizes: np.ndarray  # box sizes in pixels, powers of two
    counts: np.ndarray  # occupied boxes at each size
    fitted: np.ndarray  # bool per size: used in the fit
    dimension: float  # minus the least-squares slope of log2 count vs log2 size
    stderr: float  # standard error of that slope (nan with fewer than 3 fitted sizes)
    intercept: float  # log2 count at size 1 on the fitted line

    @property
    def local_slopes(self) -> np.ndarray:
        """-d log N / d log s between neighbouring fitted sizes."""
        s, n = np.log2(self.sizes[self.fitted]), np.log2(self.counts[self.fitted])
        return -np.diff(n) / np.diff(s)

    def to_dict(self) -> dict:
        return {
            "dimension": self.dimension,
            "stderr": None if math.isnan(self.stderr) else self.stderr,  # JSON has no NaN
            "local_slopes": self.local_slopes.tolist(),
            "box_sizes": self.sizes.tolist(),
            "box_counts": self.counts.tolist(),
            "fitted": self.fitted.tolist(),
        }


def fit_range(shape: tuple[int, int]) -> tuple[int, int]:
    """The smallest and largest box size fitted for an image of this shape (see module doc).

    The largest is the biggest power of two of which at least MIN_BOXES_ACROSS boxes
    (the last one partial) span the shorter side.
    """
    side = min(shape)
    if side < MIN_SIDE:
        raise ValueError(f"an image {side} px across is too small to fit box sizes from "
                         f"{MIN_BOX} px to 1/{MIN_BOXES_ACROSS} of its side; use at least {MIN_SIDE} px")
    largest = 2 * MIN_BOX
    while -(-side // (2 * largest)) >= MIN_BOXES_ACROSS:
        largest *= 2
    return MIN_BOX, largest


def box_dimension(mask: np.ndarray, box_range: tuple[int, int] | None = None) -> BoxDimension:
    """Box-counting dimension of the True pixels of `mask`, fitted over `box_range`.

    box_range is (smallest, largest) box size in pixels, both inclusive; by default
    fit_range(mask.shape). An empty set has no dimension: ValueError.
    """
    sizes, counts = box_counts(mask)
    lo, hi = box_range or fit_range(np.shape(mask))
    fitted = (sizes >= lo) & (sizes <= hi)
    if fitted.sum() < 2:
        raise ValueError(f"box sizes {lo}..{hi} px hold fewer than two powers of two")
    if counts[fitted].min() == 0:
        raise ValueError("the set is empty: no box holds any of it")
    x, y = np.log2(sizes[fitted]), np.log2(counts[fitted])
    slope, intercept = np.polyfit(x, y, 1)
    residuals = y - (slope * x + intercept)
    dof = x.size - 2
    stderr = math.sqrt(np.sum(residuals**2) / dof / np.sum((x - x.mean()) ** 2)) if dof else math.nan
    return BoxDimension(sizes, counts, fitted, float(-slope), stderr, float(intercept))


def boundary_dimension(scores: np.ndarray) -> BoxDimension:
    """Box-counting dimension of the boundary between converged and diverged runs."""
    return box_dimension(edges(scores))


def median_dimension(estimates: list[BoxDimension]) -> float:
    """One number for a zoom sequence: the median of its levels' estimates.

    The median, not the mean, so one level whose window caught a degenerate patch (a
    nearly straight stretch of boundary, or one filled with speckle) does not drag it.
    Where most levels are speckle, the median is theirs: zoomer-dimension records each
    level's coherence so that such a sequence can be told apart.
    """
    if not estimates:
        raise ValueError("a zoom sequence needs at least one level")
    return float(np.median([e.dimension for e in estimates]))

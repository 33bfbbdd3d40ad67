"""How fractal is the boundary: box-counting dimension of the edge set of score images.

Two methods. "boxcount" (below) fits one slope per image over powers of two. "paper"
follows the paper's notebook (Sohl-Dickstein 2024): see paper_boxcount and
paper_dimension at the end.

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

from .boundary import edges

MIN_BOX = 2  # pixels; smaller boxes see the pixel grid, not the set
MIN_BOXES_ACROSS = 8  # boxes per shorter side of the image at the largest fitted size
# The narrowest image that holds MIN_BOXES_ACROSS boxes of 2 * MIN_BOX: two fitted sizes.
MIN_SIDE = 2 * MIN_BOX * (MIN_BOXES_ACROSS - 1) + 1


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


# ---- the paper's procedure ----------------------------------------------------------
# Box sizes: PAPER_BINS sizes log-spaced from PAPER_SMALLEST_BOX px to the image's shorter
# side, truncated to whole pixels (sizes that coincide once truncated count once).
PAPER_BINS = 10
PAPER_SMALLEST_BOX = 10


def paper_box_sizes(side: int, bins: int = PAPER_BINS) -> np.ndarray:
    """The paper's box sizes for an image `side` px across (porespy's default bins)."""
    if side <= PAPER_SMALLEST_BOX:
        raise ValueError(f"an image {side} px across is too small for boxes from {PAPER_SMALLEST_BOX} px "
                         f"to its side; use more than {PAPER_SMALLEST_BOX + 1} px")
    return np.unique(np.logspace(math.log10(PAPER_SMALLEST_BOX), math.log10(side), bins).astype(int))


def straddling_boxes(mask: np.ndarray, size: int) -> int:
    """Boxes `size` px wide, laid from pixel (0, 0), that hold some True pixel but are not all
    True. A partial box at the bottom or right edge is judged on the pixels it holds."""
    mask = np.asarray(mask, dtype=bool)
    h, w = mask.shape
    rows, cols = -(-h // size), -(-w // size)

    def reduce(fill, op):
        padded = np.full((rows * size, cols * size), fill)
        padded[:h, :w] = mask
        return op(padded.reshape(rows, size, cols, size), axis=(1, 3))

    return int(np.count_nonzero(reduce(False, np.any) & ~reduce(True, np.all)))


@dataclass(frozen=True)
class PaperBoxCount:
    """One image's box counts by the paper's procedure, and its local slopes."""

    sizes: np.ndarray  # box sizes in pixels
    counts: np.ndarray  # boxes that hold boundary but are not all boundary
    slopes: np.ndarray  # -d log(count) / d log(size) at each size (nan where a count is 0)

    def to_dict(self) -> dict:
        return {"box_sizes": self.sizes.tolist(), "box_counts": self.counts.tolist(),
                "local_slopes": [None if not math.isfinite(s) else s for s in self.slopes.tolist()]}


def paper_boxcount(mask: np.ndarray) -> PaperBoxCount:
    """Counts of boxes that straddle the set's border, at the paper's sizes, and the local
    slopes between them: numpy.gradient of log count against log size (central
    differences inside, one-sided at both ends), as porespy.metrics.boxcount gives them.

    Because a box that is all True does not count, a filled region counts only along its
    border: the method sees the border of whatever it is given (a filled disk measures 1,
    not 2). On the boundary pixels of a score image that matters only where the boundary
    fills whole boxes, i.e. static finer than the pixels.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"box counting needs a 2-D image, got shape {mask.shape}")
    sizes = paper_box_sizes(min(mask.shape))
    counts = np.array([straddling_boxes(mask, int(s)) for s in sizes])
    with np.errstate(divide="ignore", invalid="ignore"):
        slopes = -np.gradient(np.log(counts), np.log(sizes)) if sizes.size > 1 else np.array([np.nan])
    return PaperBoxCount(sizes, counts, np.where(np.isfinite(slopes), slopes, np.nan))


def paper_dimension(images: list[PaperBoxCount]) -> float:
    """The paper's number: the median of every image's local slopes at every size (those a
    zero count leaves undefined are left out)."""
    slopes = np.concatenate([image.slopes for image in images]) if images else np.array([])
    slopes = slopes[np.isfinite(slopes)]
    if not slopes.size:
        raise ValueError("no image holds boundary at two box sizes: nothing to measure")
    return float(np.median(slopes))

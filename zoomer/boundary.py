"""Boundary geometry of a score image: where the classes meet, and what shape the border has.

A run's class is the sign of its score (negative = converged, as Reference splits them).
Everything that looks at the border between the classes lives here, so that solid
guessing (which cells to refine), the target search (where to zoom), the candidate
ranking (which target is worth a video or a measurement) and the dimension (what to box
count) all see the same border:

- edges / mixed: 2x2 blocks that hold both classes, the border at pixel resolution;
- speckle and coherence: whether the border is a picture or static (runs landing in
  either class at random, finer than the pixels);
- orientation spread and structure: whether a coherent border has curves, islands and
  swirls, as in the paper's panels, or is a family of parallel bands.
"""
from __future__ import annotations

import numpy as np

# Gaussian smoothing (px) of the class image before its gradient is taken: enough that a
# straight border at any angle has one orientation, not its pixel staircase's.
ORIENTATION_SIGMA = 1.0


def converged(scores: np.ndarray) -> np.ndarray:
    """Boolean class image: True where the run converged (negative score)."""
    return np.asarray(scores) < 0


def mixed(classes: np.ndarray) -> np.ndarray:
    """Boolean (H-1, W-1): True where the 2x2 block at (i, j) of a boolean image holds both values."""
    blocks = (classes[:-1, :-1], classes[:-1, 1:], classes[1:, :-1], classes[1:, 1:])
    return np.logical_or.reduce(blocks) & ~np.logical_and.reduce(blocks)


def edges(scores: np.ndarray) -> np.ndarray:
    """Boolean (H-1, W-1) edge set: the 2x2 blocks of pixels whose scores change sign."""
    return mixed(converged(scores))


def dilate(cells: np.ndarray) -> np.ndarray:
    """Cells that are True or touch a True cell (8-neighbourhood)."""
    padded = np.pad(cells, 1)
    h, w = cells.shape
    return np.logical_or.reduce([padded[di : di + h, dj : dj + w] for di in range(3) for dj in range(3)])


def box_sum(values: np.ndarray, ry: int, rx: int) -> np.ndarray:
    """Sum of values over a (2ry+1) x (2rx+1) box around each cell (clipped at the edges)."""
    c = np.pad(np.asarray(values, dtype=np.float64), ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    h, w = np.shape(values)
    i0 = np.clip(np.arange(h) - ry, 0, h)
    i1 = np.clip(np.arange(h) + ry + 1, 0, h)
    j0 = np.clip(np.arange(w) - rx, 0, w)
    j1 = np.clip(np.arange(w) + rx + 1, 0, w)
    return c[i1][:, j1] - c[i0][:, j1] - c[i1][:, j0] + c[i0][:, j0]


def speckle(scores: np.ndarray) -> np.ndarray:
    """Boolean (H, W): pixels whose class differs from at least 5 of their 8 neighbours."""
    below = converged(scores)
    h, w = below.shape
    padded = np.pad(below, 1, mode="edge")
    differ = sum(
        (padded[1 + di : 1 + di + h, 1 + dj : 1 + dj + w] != below).astype(np.int8)
        for di in (-1, 0, 1) for dj in (-1, 0, 1) if di or dj
    )
    return differ >= 5


def coherence(scores: np.ndarray) -> float:
    """How much more often neighbouring pixels share a class than chance would have it.

    1 for a clean edge, about 0 for static whatever its mix of classes: the share of
    same-class horizontal and vertical neighbours, less the share p^2 + (1-p)^2 that
    independent pixels with a share p of converged runs would give, over 1 less that.
    """
    below = converged(scores)
    (same_h, pairs_h), (same_v, pairs_v) = _neighbour_agreement(below)
    return float(_coherence(same_h.sum() + same_v.sum(), pairs_h.sum() + pairs_v.sum(), below.sum(), below.size))


def least_coherence(scores: np.ndarray) -> float:
    """coherence() of the horizontal and of the vertical neighbours, the smaller one.

    Static smeared along one axis (streaks of static: runs that agree with their
    neighbours in one hyperparameter and land at random in the other) has a coherence of
    0.3-0.5 taken both ways together, and about 0 across the streaks.
    """
    below = converged(scores)
    return float(min(_coherence(same.sum(), pairs.sum(), below.sum(), below.size)
                     for same, pairs in _neighbour_agreement(below)))


def orientation_spread(scores: np.ndarray) -> float:
    """How spread the border's orientations are: 0 for parallel straight bands, 1 for
    isotropic curves (circles, islands, swirls).

    The circular variance of the doubled angle of the smoothed class image's gradient,
    weighted by the gradient's length (which is zero away from the border). The angle is
    doubled because a border has an orientation, not a direction: the two sides of a band
    point opposite ways and must count as one orientation. 0 where there is no border.
    """
    vector, weight = _doubled_angles(converged(scores))
    total = weight.sum()
    return float(1 - np.hypot(vector[0].sum(), vector[1].sum()) / total) if total > 0 else 0.0


def structure(scores: np.ndarray) -> float:
    """How much the border has curves, islands and swirls: orientation spread x least coherence.

    In [0, 1]: near 0 for parallel bands (no spread), for static and streaks of static
    (no coherence across them: their orientations are spread, but at random) and for a
    window with one class; near 1 for
    a coherent border that turns every way, as in the paper's panels. The one measure by
    which every target search and ranking (zoomer, zoomer-targets, zoomer-dimension)
    judges a view.
    """
    return orientation_spread(scores) * max(0.0, least_coherence(scores))


def structure_map(scores: np.ndarray, ry: int, rx: int) -> np.ndarray:
    """(H, W): structure() of the (2ry+1) x (2rx+1) box of pixels around each pixel.

    The same two factors as structure(), summed over each box instead of the image: what
    the target search would see in the next, smaller window around each candidate.
    """
    below = converged(scores)
    ones, n_below = box_sum(np.ones(below.shape), ry, rx), box_sum(below, ry, rx)
    coh = np.minimum.reduce([_coherence(box_sum(same, ry, rx), box_sum(pairs, ry, rx), n_below, ones)
                             for same, pairs in _neighbour_agreement(below)])
    (vx, vy), weight = _doubled_angles(below)
    total = box_sum(weight, ry, rx)
    length = np.hypot(box_sum(vx, ry, rx), box_sum(vy, ry, rx))
    spread = np.where(total > 1e-12, 1 - length / np.maximum(total, 1e-12), 0.0)
    return np.clip(spread, 0, 1) * np.clip(coh, 0, None)


def _neighbour_agreement(below: np.ndarray):
    """((same, pairs) horizontally, (same, pairs) vertically), per pixel: whether its
    neighbour to the right (below) shares its class, and whether it has one; sums of
    these over a region give the region's coherence."""
    h, w = below.shape
    same_h, pairs_h, same_v, pairs_v = (np.zeros((h, w)) for _ in range(4))
    same_h[:, :-1] = below[:, 1:] == below[:, :-1]
    pairs_h[:, :-1] = 1
    same_v[:-1, :] = below[1:, :] == below[:-1, :]
    pairs_v[:-1, :] = 1
    return (same_h, pairs_h), (same_v, pairs_v)


def _coherence(same, pairs, n_below, n_pixels):
    """Coherence from region sums (scalars or arrays of them); see coherence()."""
    with np.errstate(divide="ignore", invalid="ignore"):
        agree = np.where(pairs > 0, same / np.maximum(pairs, 1), 1.0)
        p = n_below / np.maximum(n_pixels, 1)
        chance = p * p + (1 - p) * (1 - p)
        return np.where(chance < 1, (agree - chance) / np.maximum(1 - chance, 1e-12), 1.0)


def _doubled_angles(below: np.ndarray):
    """((vx, vy), w) per pixel: w (cos 2a, sin 2a) and w, for the smoothed class image's
    gradient of angle a and length w."""
    smooth = _gaussian(np.where(below, 1.0, -1.0), ORIENTATION_SIGMA)
    gy, gx = np.gradient(smooth) if min(below.shape) > 1 else (np.zeros(below.shape),) * 2
    weight = np.hypot(gx, gy)
    with np.errstate(divide="ignore", invalid="ignore"):
        vx = np.where(weight > 0, (gx * gx - gy * gy) / weight, 0.0)
        vy = np.where(weight > 0, 2 * gx * gy / weight, 0.0)
    return (vx, vy), weight


def _gaussian(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur, edges extended."""
    r = max(1, int(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(image, r, mode="edge")
    rows = sum(k * padded[:, i : i + image.shape[1]] for i, k in enumerate(kernel))
    return sum(k * rows[i : i + image.shape[0], :] for i, k in enumerate(kernel))

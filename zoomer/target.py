"""Finding a zoom target that stays on the boundary at every depth.

A point on the boundary at one scale can sit in a solid region one decade deeper, so the
search refines level by level: compute a small landscape around the current point, pick
a boundary pixel near its centre where the next, smaller window holds much boundary,
zoom in around it, repeat. Because each move is small against its window, the final
point stays near the boundary seen at every earlier scale; `verify` then checks every
level's central fifth for both classes with windows centred on the final point.

"Much boundary" must not mean noise: next to its crisp edges the landscape has chaotic
patches where neighbouring runs land in either class at random, at every depth. Such a
patch holds the most boundary pixels of all, but zooms into static, and no amount of
zoom resolves it. A video's search therefore ranks only candidates whose next window is
coherent (few speckle pixels), and verification requires coherence at every level. A
measurement of the boundary's dimension (find_roughest_target) searches without that
bound: chaotic patches are part of the boundary it measures.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .dimension import edges
from .landscape import landscape
from .experiment import Experiment
from .window import Window

log = logging.getLogger(__name__)

# Candidates after the first level lie within this share of the window's width of its
# centre: the moves then add up to well under a tenth of any level's width.
CENTRAL_RADIUS = 0.06
CENTRAL_SHARE = 0.2  # the "central fifth" that must hold both classes
TOP_SHARE = 0.1  # the seed picks among this share of the best candidates
# Speckle: pixels whose class differs from at least 5 of their 8 neighbours. A crisp or
# fractal edge has few (1% of the pixels in the tanh start window); a chaotic patch has
# about a quarter. MAX_SPECKLE bounds their share of a candidate's boundary pixels.
MAX_SPECKLE = 0.1
# Verification: every level's coherence (below) at least this. Static scores about 0.05;
# boundaries score 0.2 (15 px float32 landscapes two decades deep) to 0.95 (crisp edges).
MIN_COHERENCE = 0.15


class NoTargetError(RuntimeError):
    """The search lost the boundary below the start window: another seed may not."""


@dataclass(frozen=True)
class Target:
    """A zoom target: the point, and one window per decade centred on it (start first)."""

    point: tuple[float, float]
    levels: tuple[Window, ...]
    depth: float

    def to_dict(self) -> dict:
        return {"point": list(self.point), "depth": self.depth, "levels": [w.to_dict() for w in self.levels]}


def holds_both_classes(scores: np.ndarray, share: float = CENTRAL_SHARE) -> bool:
    """Whether the central `share` of the image (each way) holds both classes."""
    h, w = scores.shape
    dh, dw = max(1, round(h * share / 2)), max(1, round(w * share / 2))
    centre = scores[h // 2 - dh : (h + 1) // 2 + dh, w // 2 - dw : (w + 1) // 2 + dw]
    return bool((centre < 0).any() and (centre > 0).any())


def speckle(scores: np.ndarray) -> np.ndarray:
    """Boolean (H, W): pixels whose class differs from at least 5 of their 8 neighbours."""
    below = np.asarray(scores) < 0
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
    independent pixels with a share p of diverged runs would give, over 1 less that.
    """
    below = np.asarray(scores) < 0
    same = np.count_nonzero(below[1:] == below[:-1]) + np.count_nonzero(below[:, 1:] == below[:, :-1])
    agree = same / (below[1:].size + below[:, 1:].size)
    p = below.mean()
    chance = p * p + (1 - p) * (1 - p)
    return float((agree - chance) / (1 - chance)) if chance < 1 else 1.0


def find_target(
    exp: Experiment,
    start: Window,
    depth: float,
    seed: int | Sequence[int] = 0,
    resolution: int = 48,
    zoom_per_level: float = 4.0,
    device=None,
    dtype=torch.float64,
    progress=None,
    verify: bool = True,
    attempts: int = 4,
    avoid_static: bool = True,
) -> Target:
    """A point whose neighbourhood holds both classes from `start` down to `depth` decades.

    resolution is the side of each level's search landscape in pixels; zoom_per_level the
    magnification between levels. Different seeds pick different targets; a seed may be a
    sequence of ints, as numpy's default_rng takes it (s and [s, 0] give the same target).
    avoid_static (for videos) steers clear of chaotic patches. Raises RuntimeError if the
    start window holds no boundary, NoTargetError if no attempt passes verification.
    """
    if not depth > 0:
        raise ValueError(f"zoom.depth must be > 0 decades, got {depth!r}")
    if not zoom_per_level > 1:
        raise ValueError(f"zoom.zoom_per_level must be > 1, got {zoom_per_level!r}")
    if not (isinstance(resolution, int) and resolution >= 8):
        raise ValueError(f"zoom.search_resolution must be an integer >= 8, got {resolution!r}")
    rng = np.random.default_rng(seed)
    for attempt in range(attempts):
        point = _refine(exp, start, depth, rng, resolution, zoom_per_level, device, dtype, progress, avoid_static)
        target = Target(point, _levels(start, point, depth), depth)
        if not verify or _verified(exp, target, resolution, device, dtype, progress, avoid_static):
            log.info("zoom target %s (seed %s, attempt %d)", point, seed, attempt + 1)
            return target
        log.info("target %s lost the boundary at some depth; searching again", point)
    raise NoTargetError(
        f"no target keeps the boundary in view down to zoom.depth={depth} decades after "
        f"{attempts} attempts; try another zoom.seed, a smaller depth or more experiment.steps"
    )


def find_roughest_target(
    exp: Experiment,
    start: Window,
    depth: float,
    seed: int = 0,
    candidates: int = 8,
    resolution: int = 48,
    device=None,
    dtype=torch.float64,
    progress=None,
) -> tuple[Target, list[dict]]:
    """Of `candidates` targets (seeds [seed, i]), the one whose boundary is most complex.

    For measuring the boundary's dimension. The boundary is smooth in long stretches and
    fractal in others, and a set's box-counting dimension is the largest of its parts',
    so a measurement has to look where the boundary is fractal; a single search lands on a
    smooth stretch as often as not (single_datapoint: 7 of 10 seeds). Complexity is
    counted on landscapes of their own, one per decade below `start` (and one at the final
    depth) of about `resolution` px: a smooth edge crosses a landscape of side r in about r
    boundary corners, a fractal one in many more. Returns the target and, for every
    candidate, its seed and either its point and count or why the search failed.
    """
    if not (isinstance(candidates, int) and candidates >= 1):
        raise ValueError(f"candidates={candidates!r} must be an integer >= 1")
    found, record, failure = [], [], None
    for i in range(candidates):
        try:
            target = find_target(exp, start, depth, seed=[seed, i], resolution=resolution, device=device,
                                 dtype=dtype, progress=progress, avoid_static=False)
        except NoTargetError as error:  # this candidate lost the boundary; the others may not
            log.info("candidate %d: %s", i, error)
            record.append({"seed": [seed, i], "found": False, "reason": str(error)})
            failure = error
            continue
        corners = _boundary_corners(exp, target, resolution, device, dtype, progress)
        log.info("candidate %d: %s, %d boundary corners", i, target.point, corners)
        record.append({"seed": [seed, i], "found": True, "point": list(target.point), "boundary_corners": corners})
        found.append((corners, target))
    if not found:
        raise NoTargetError(f"none of {candidates} candidate targets keeps the boundary in view down to "
                            f"{depth} decades; try another seed, a smaller depth or more steps") from failure
    return max(found, key=lambda t: t[0])[1], record


def _boundary_corners(exp, target: Target, resolution, device, dtype, progress) -> int:
    """Boundary corners summed over landscapes of each decade below the start window."""
    size = _odd_size(target.levels[0], resolution, least=8)
    return sum(
        int(edges(landscape(exp, window, size, device=device, dtype=dtype, progress=progress)).sum())
        for window in target.levels[1:]
    )


def _odd_size(start: Window, side: int, least: int) -> tuple[int, int]:
    """(rows, columns) of a landscape shaped like `start`, about `side` rows and at least
    `least` columns, both odd so that the target sits on the centre pixel."""
    side |= 1
    return side, max(least, round(side * start.half_w / start.half_h)) | 1


def _levels(start: Window, point, depth: float) -> tuple[Window, ...]:
    """Windows centred on the point, one per decade from the start width to the final one."""
    aspect = start.half_w / start.half_h
    decades = list(range(int(math.floor(depth)) + 1)) + ([depth] if depth % 1 else [])
    return tuple(Window.around(point, start.width / 10**d, aspect) for d in decades)


def _refine(exp, start, depth, rng, resolution, zoom, device, dtype, progress, avoid_static):
    size = (resolution, max(8, round(resolution * start.half_w / start.half_h)))
    window, final_width = start, start.width / 10**depth
    while True:
        scores = landscape(exp, window, size, device=device, dtype=dtype, progress=progress)
        point = _pick(scores, window, rng, first=window is start, zoom=zoom, avoid_static=avoid_static)
        if window.width <= final_width:
            return point
        window = Window.around(point, window.width / zoom, window.half_w / window.half_h)


def _pick(scores, window: Window, rng, first: bool, zoom: float, avoid_static: bool):
    """A boundary corner near the centre with much boundary, not static, in the next window."""
    edge = edges(scores)
    if not edge.any():
        error = RuntimeError if first else NoTargetError
        raise error(
            f"the window {window.to_dict()} holds no boundary (only one class); pick another "
            "start window or target"
        )
    h, w = edge.shape
    # Corner (i, j) sits between pixel rows i, i+1 and columns j, j+1: at unit coords u.
    uy = (np.arange(h) + 0.5) / (h) * 2 - 1
    ux = (np.arange(w) + 0.5) / (w) * 2 - 1
    gy, gx = np.meshgrid(uy, ux, indexing="ij")
    radius = 0.8 if first else CENTRAL_RADIUS * 2
    # How much boundary the next window (1/zoom as wide) would hold around each corner.
    ry, rx = max(1, round(h / zoom / 2)), max(1, round(w / zoom / 2))
    density = _box_sum(edge, ry, rx)
    noise = _box_sum(speckle(scores)[:-1, :-1], ry, rx)
    coherent = noise <= MAX_SPECKLE * density
    for grow in (1.0, 1.5, 2.0, 3.0, 5.0):
        allowed = edge & (np.abs(gx) <= radius * grow) & (np.abs(gy) <= radius * grow)
        if allowed.any():
            break
    else:
        allowed = edge
    if avoid_static and (allowed & coherent).any():
        allowed &= coherent
    cand = np.flatnonzero(allowed)
    weight = density.ravel()[cand]
    best = cand[weight >= np.quantile(weight, 1 - TOP_SHARE)]
    k = rng.choice(best)
    i, j = divmod(int(k), w)
    return (float(window.cx + gx[i, j] * window.half_w), float(window.cy + gy[i, j] * window.half_h))


def _box_sum(mask: np.ndarray, ry: int, rx: int) -> np.ndarray:
    """Sum of mask over a (2ry+1) x (2rx+1) box around each cell (clipped at the edges)."""
    c = np.pad(mask.astype(np.int64), ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    h, w = mask.shape
    i0 = np.clip(np.arange(h) - ry, 0, h)
    i1 = np.clip(np.arange(h) + ry + 1, 0, h)
    j0 = np.clip(np.arange(w) - rx, 0, w)
    j1 = np.clip(np.arange(w) + rx + 1, 0, w)
    return c[i1][:, j1] - c[i0][:, j1] - c[i1][:, j0] + c[i0][:, j0]


def _verified(exp, target: Target, resolution, device, dtype, progress, avoid_static) -> bool:
    """Each half decade, centred on the final point, holds both classes in its central fifth
    and is a coherent picture, not static."""
    start = target.levels[0]
    size = _odd_size(start, max(15, resolution // 2), least=15)
    for d in np.arange(0.0, target.depth + 1e-9, 0.5):
        window = start.zoom(10**d, center=target.point)
        scores = landscape(exp, window, size, device=device, dtype=dtype, progress=progress)
        if not holds_both_classes(scores) or (avoid_static and coherence(scores) < MIN_COHERENCE):
            return False
    return True

"""Finding a zoom target that stays on the boundary at every depth.

A point on the boundary at one scale can sit in a solid region one decade deeper, so the
search refines level by level: compute a small landscape around the current point, pick
a boundary pixel near its centre where the next, smaller window holds much boundary,
zoom in around it, repeat. Because each move is small against its window, the final
point stays near the boundary seen at every earlier scale; `verify` then checks every
level's central fifth for both classes with windows centred on the final point.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

from .engine import landscape
from .experiment import Experiment
from .window import Window

log = logging.getLogger(__name__)

# Candidates after the first level lie within this share of the window's width of its
# centre: the moves then add up to well under a tenth of any level's width.
CENTRAL_RADIUS = 0.06
CENTRAL_SHARE = 0.2  # the "central fifth" that must hold both classes
TOP_SHARE = 0.1  # the seed picks among this share of the best candidates


@dataclass(frozen=True)
class Target:
    """A zoom target: the point, and one window per decade centred on it (start first)."""

    point: tuple[float, float]
    levels: tuple[Window, ...]
    depth: float

    def to_dict(self) -> dict:
        return {"point": list(self.point), "depth": self.depth, "levels": [w.to_dict() for w in self.levels]}


def edge_mask(scores: np.ndarray) -> np.ndarray:
    """Pixel corners whose 2x2 neighbourhood holds both classes: (H-1, W-1) booleans."""
    c = scores < 0
    quad = c[:-1, :-1].astype(int) + c[1:, :-1] + c[:-1, 1:] + c[1:, 1:]
    return (quad > 0) & (quad < 4)


def holds_both_classes(scores: np.ndarray, share: float = CENTRAL_SHARE) -> bool:
    """Whether the central `share` of the image (each way) holds both classes."""
    h, w = scores.shape
    dh, dw = max(1, round(h * share / 2)), max(1, round(w * share / 2))
    centre = scores[h // 2 - dh : (h + 1) // 2 + dh, w // 2 - dw : (w + 1) // 2 + dw]
    return bool((centre < 0).any() and (centre > 0).any())


def find_target(
    exp: Experiment,
    start: Window,
    depth: float,
    seed: int = 0,
    resolution: int = 48,
    zoom_per_level: float = 4.0,
    device=None,
    dtype=torch.float64,
    progress=None,
    verify: bool = True,
    attempts: int = 4,
) -> Target:
    """A point whose neighbourhood holds both classes from `start` down to `depth` decades.

    resolution is the side of each level's search landscape in pixels; zoom_per_level the
    magnification between levels. Different seeds pick different targets. Raises
    RuntimeError if no attempt finds a target that passes verification.
    """
    if not depth > 0:
        raise ValueError(f"zoom.depth must be > 0 decades, got {depth!r}")
    if not zoom_per_level > 1:
        raise ValueError(f"zoom.zoom_per_level must be > 1, got {zoom_per_level!r}")
    if not (isinstance(resolution, int) and resolution >= 8):
        raise ValueError(f"zoom.search_resolution must be an integer >= 8, got {resolution!r}")
    rng = np.random.default_rng(seed)
    for attempt in range(attempts):
        point = _refine(exp, start, depth, rng, resolution, zoom_per_level, device, dtype, progress)
        target = Target(point, _levels(start, point, depth), depth)
        if not verify or _verified(exp, target, resolution, device, dtype, progress):
            log.info("zoom target %s (seed %d, attempt %d)", point, seed, attempt + 1)
            return target
        log.info("target %s lost the boundary at some depth; searching again", point)
    raise RuntimeError(
        f"no target keeps the boundary in view down to zoom.depth={depth} decades after "
        f"{attempts} attempts; try another zoom.seed, a smaller depth or more experiment.steps"
    )


def _levels(start: Window, point, depth: float) -> tuple[Window, ...]:
    """Windows centred on the point, one per decade from the start width to the final one."""
    aspect = start.half_w / start.half_h
    decades = list(range(int(math.floor(depth)) + 1)) + ([depth] if depth % 1 else [])
    return tuple(Window.around(point, start.width / 10**d, aspect) for d in decades)


def _refine(exp, start, depth, rng, resolution, zoom, device, dtype, progress):
    size = (resolution, max(8, round(resolution * start.half_w / start.half_h)))
    window, final_width = start, start.width / 10**depth
    while True:
        scores = landscape(exp, window, size, device=device, dtype=dtype, progress=progress)
        point = _pick(scores, window, rng, first=window is start, zoom=zoom)
        if window.width <= final_width:
            return point
        window = Window.around(point, window.width / zoom, window.half_w / window.half_h)


def _pick(scores, window: Window, rng, first: bool, zoom: float):
    """A boundary corner near the centre with much boundary in the next window."""
    edges = edge_mask(scores)
    if not edges.any():
        raise RuntimeError(
            f"the window {window.to_dict()} holds no boundary (only one class); pick another "
            "start window or target"
        )
    h, w = edges.shape
    # Corner (i, j) sits between pixel rows i, i+1 and columns j, j+1: at unit coords u.
    uy = (np.arange(h) + 0.5) / (h) * 2 - 1
    ux = (np.arange(w) + 0.5) / (w) * 2 - 1
    gy, gx = np.meshgrid(uy, ux, indexing="ij")
    radius = 0.8 if first else CENTRAL_RADIUS * 2
    # How much boundary the next window (1/zoom as wide) would hold around each corner.
    density = _box_sum(edges, max(1, round(h / zoom / 2)), max(1, round(w / zoom / 2)))
    for grow in (1.0, 1.5, 2.0, 3.0, 5.0):
        allowed = edges & (np.abs(gx) <= radius * grow) & (np.abs(gy) <= radius * grow)
        if allowed.any():
            break
    else:
        allowed = edges
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


def _verified(exp, target: Target, resolution, device, dtype, progress) -> bool:
    """Each half decade, centred on the final point, holds both classes in its central fifth."""
    start = target.levels[0]
    side = max(15, resolution // 2) | 1  # odd, so the target sits on the centre pixel
    size = (side, max(15, round(side * start.half_w / start.half_h)) | 1)
    for d in np.arange(0.0, target.depth + 1e-9, 0.5):
        window = start.zoom(10**d, center=target.point)
        scores = landscape(exp, window, size, device=device, dtype=dtype, progress=progress)
        if not holds_both_classes(scores):
            return False
    return True

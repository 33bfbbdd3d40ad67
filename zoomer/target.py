"""Finding a zoom target that stays on the boundary at every depth.

A point on the boundary at one scale can sit in a solid region one decade deeper, so the
search refines level by level: compute a small landscape around the current point, pick
a boundary pixel near its centre whose next, smaller window shows the most structure
(in the start window: any, as the seed says), zoom in around it, repeat. Because each move is small against its window, the final
point stays near the boundary seen at every earlier scale; verification then checks every
level's central fifth for both classes with windows centred on the final point.

Where to go is decided by one measure, zoomer.boundary.structure: how much the border
has curves, islands and swirls (as in the paper's panels) rather than parallel bands or
static. Static matters most: next to its crisp edges the landscape has chaotic patches
where neighbouring runs land in either class at random, at every depth. Such a patch
holds the most boundary pixels of all, but zooms into static, and no amount of zoom
resolves it. So each level picks among candidates whose next window is coherent (few
speckle pixels) the ones whose next window has the most structure; verification requires
coherence at every level and records each level's structure, and their mean ranks
targets against each other: in zoomer-targets' contact sheet and zoomer-dimension's
choice among candidates (search_target, which every app calls).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .boundary import box_sum, coherence, edges, speckle, structure, structure_map
from .landscape import landscape
from .config import SearchConfig
from .errors import Refusal
from .experiment import Experiment
from .precision import resolve_precision
from .window import PERTURBATION, Window, point_json

log = logging.getLogger(__name__)

# Candidates after the first level lie within this share of the window's width of its
# centre: the moves then add up to well under a tenth of any level's width.
CENTRAL_RADIUS = 0.06
CENTRAL_SHARE = 0.2  # the "central fifth" that must hold both classes
TOP_SHARE = 0.1  # the seed picks among this share of the best candidates,
TOP_LEAST = 4  # and among at least this many, so that different seeds find different targets
# Speckle: pixels whose class differs from at least 5 of their 8 neighbours. A crisp or
# fractal edge has few (1% of the pixels in the tanh start window); a chaotic patch has
# about a quarter. MAX_SPECKLE bounds their share of a candidate's boundary pixels.
MAX_SPECKLE = 0.1
# Verification: every level's boundary.coherence at least this. Static scores about 0.05;
# boundaries score 0.2 (15 px float32 landscapes two decades deep) to 0.95 (crisp edges).
MIN_COHERENCE = 0.15


class NoTargetError(Refusal):
    """The search lost the boundary below the start window: another seed may not."""


@dataclass(frozen=True)
class Target:
    """A zoom target: the point, and one window per decade centred on it (start first)."""

    point: tuple[float, float]
    levels: tuple[Window, ...]
    decades: float
    # boundary.structure of the views centred on the point, one per half decade from the
    # start window (as verified); their mean ranks targets. Empty for a given point.
    structure: tuple[float, ...] = ()

    @property
    def rank_score(self) -> float:
        """The mean structure of its views: how worth zooming into the target is."""
        return float(np.mean(self.structure)) if self.structure else 0.0

    def to_dict(self) -> dict:
        found = {"structure": list(self.structure), "rank_score": self.rank_score} if self.structure else {}
        return {"point": point_json(self.point), "decades": self.decades, "levels": [w.to_dict() for w in self.levels], **found}


def holds_both_classes(scores: np.ndarray, share: float = CENTRAL_SHARE) -> bool:
    """Whether the central `share` of the image (each way) holds both classes."""
    h, w = scores.shape
    dh, dw = max(1, round(h * share / 2)), max(1, round(w * share / 2))
    centre = scores[h // 2 - dh : (h + 1) // 2 + dh, w // 2 - dw : (w + 1) // 2 + dw]
    return bool((centre < 0).any() and (centre > 0).any())


def find_target(
    exp: Experiment,
    start: Window,
    decades: float,
    seed: int | Sequence[int] = 0,
    resolution: int = 48,
    zoom_per_level: float = 4.0,
    device=None,
    dtype=torch.float64,
    progress=None,
    attempts: int = 4,
) -> Target:
    """A point whose neighbourhood holds both classes from `start` down `decades` decades.

    resolution is the side of each level's search landscape in pixels; zoom_per_level the
    magnification between levels (their ranges: zoomer.config.SearchConfig). Different
    seeds pick different targets; a seed may be a sequence of ints, as numpy's default_rng
    takes it (s and [s, 0] give the same target). Raises a Refusal if the start window
    holds no boundary, NoTargetError if no attempt passes verification.
    """
    rng = np.random.default_rng(seed)
    for attempt in range(attempts):
        point = _refine(exp, start, decades, rng, resolution, zoom_per_level, device, dtype, progress)
        views = _verified_structure(exp, start, point, decades, resolution, device, dtype, progress)
        if views is not None:
            log.info("zoom target %s (seed %s, attempt %d), structure %.3f", point, seed, attempt + 1, np.mean(views))
            return Target(point, _levels(start, point, decades), decades, views)
        log.info("target %s lost the boundary at some depth; searching again", point)
    raise NoTargetError(
        f"no target keeps the boundary in view down to {decades:g} decades after {attempts} attempts "
        f"(seed {seed}); try another search.seed, fewer decades or more experiment.steps"
    )


def search_target(
    exp: Experiment,
    start: Window,
    decades: float,
    search: SearchConfig,
    device=None,
    dtype=torch.float64,
    progress=None,
) -> tuple[Target, list[dict]]:
    """The automatic target of every app: of `search.candidates` targets (seeds
    [search.seed, i]), the one with the most structure (rank_score).

    A single search may land on a smooth stretch or on parallel bands, whose dimension is 1
    at every depth; the paper's panels are where the border curves, forms islands and
    swirls. With one candidate this is find_target of search.seed. Returns the target and,
    for every candidate, its seed and either its point and structure or why it failed.
    """
    found, record, failure = [], [], None
    for i in range(search.candidates):
        try:
            target = find_target(exp, start, decades, seed=[search.seed, i], resolution=search.resolution,
                                 zoom_per_level=search.zoom_per_level, device=device, dtype=dtype,
                                 progress=progress)
        except NoTargetError as error:  # this candidate lost the boundary; the others may not
            log.info("candidate %d: %s", i, error)
            record.append({"seed": [search.seed, i], "found": False, "reason": str(error)})
            failure = error
            continue
        log.info("candidate %d: %s, structure %.3f", i, target.point, target.rank_score)
        record.append({"seed": [search.seed, i], "found": True, "point": list(target.point),
                       "rank_score": target.rank_score, "structure": list(target.structure)})
        found.append(target)
    if not found:
        if search.candidates == 1:
            raise failure
        raise NoTargetError(f"none of {search.candidates} candidate targets keeps the boundary in view down to "
                            f"{decades:g} decades; try another search.seed, fewer decades or more steps") from failure
    return max(found, key=lambda t: t.rank_score), record


def _odd_size(start: Window, side: int, least: int) -> tuple[int, int]:
    """(rows, columns) of a landscape shaped like `start`, about `side` rows and at least
    `least` columns, both odd so that the target sits on the centre pixel."""
    side |= 1
    return side, max(least, round(side * start.half_w / start.half_h)) | 1


def _levels(start: Window, point, decades: float) -> tuple[Window, ...]:
    """Windows centred on the point, one per decade from the start width to the final one."""
    aspect = start.half_w / start.half_h
    exponents = list(range(int(math.floor(decades)) + 1)) + ([decades] if decades % 1 else [])
    return tuple(Window.around(point, start.width / 10**d, aspect) for d in exponents)


def _refine(exp, start, decades, rng, resolution, zoom, device, dtype, progress):
    size = (resolution, max(8, round(resolution * start.half_w / start.half_h)))
    window, final_width = start, start.width / 10**decades
    while True:
        scores = landscape(exp, window, size, device=device, dtype=dtype, progress=progress)
        point = _pick(scores, window, rng, first=window is start, zoom=zoom)
        if window.width <= final_width:
            return point
        window = Window.around(point, window.width / zoom, window.half_w / window.half_h)
        deep = dtype in ("auto", PERTURBATION) and resolve_precision(dtype, exp, window, size) == PERTURBATION
        if deep and window.exact is None:  # from here on points keep every digit
            window = Window.around(window.exact_center, window.width, window.half_w / window.half_h)


def _pick(scores, window: Window, rng, first: bool, zoom: float):
    """A boundary corner near the centre whose next window is coherent and has the most structure.

    In the start window any coherent boundary corner: there the next window is decades
    wide, and its structure says little about the views below it (tanh at 100 steps: the
    one place where the start window's boundary turns is streaky static two decades down,
    and a greedy first step sent every seed there). Seeds then spread along the boundary,
    and Target.rank_score, measured at every depth, tells the candidates apart.
    """
    edge = edges(scores)
    if not edge.any():
        error = Refusal if first else NoTargetError
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
    # What the next window (1/zoom as wide) would show around each corner.
    ry, rx = max(1, round(h / zoom / 2)), max(1, round(w / zoom / 2))
    density = box_sum(edge, ry, rx)
    noise = box_sum(speckle(scores)[:-1, :-1], ry, rx)
    coherent = noise <= MAX_SPECKLE * density
    for grow in (1.0, 1.5, 2.0, 3.0, 5.0):
        allowed = edge & (np.abs(gx) <= radius * grow) & (np.abs(gy) <= radius * grow)
        if allowed.any():
            break
    else:
        allowed = edge
    if (allowed & coherent).any():
        allowed &= coherent
    cand = np.flatnonzero(allowed)
    if first:  # the start window's structure says little about the deep views: the seed picks
        best = cand
    else:
        weight = structure_map(scores, ry, rx)[:-1, :-1].ravel()[cand]
        best = cand[np.argsort(-weight, kind="stable")[: max(TOP_LEAST, math.ceil(TOP_SHARE * cand.size))]]
    k = rng.choice(best)
    i, j = divmod(int(k), w)
    return window.point(gx[i, j], gy[i, j])


def _verified_structure(exp, start: Window, point, decades, resolution, device, dtype, progress):
    """The structure of each half decade's view centred on the point, or None where one of
    them loses the boundary from its central fifth or is static (incoherent)."""
    size = _odd_size(start, max(15, resolution // 2), least=15)
    views = []
    for d in np.arange(0.0, decades + 1e-9, 0.5):
        scores = landscape(exp, start.zoom(10**d, center=point), size, device=device, dtype=dtype, progress=progress)
        if not holds_both_classes(scores) or coherence(scores) < MIN_COHERENCE:
            return None
        views.append(structure(scores))
    return tuple(views)

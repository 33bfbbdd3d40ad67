"""A view of zoomer-explore, refined in passes: coarse within a second, then sharper in place.

A view is a centre and a width in axis units (log10); its height follows the video's
aspect. It is trained in passes of (h, w), (2h-1, 2w-1), ... pixels: with odd sides every
pixel of a pass is, bit for bit, every other pixel of the next (zoomer.window), so the
next pass takes the runs this one trained and trains only what it adds near the boundary
(solid guessing, zoomer.guess). Scores are kept per view, quality and pass, so a colormap
or a quality switched back to is drawn without training; colour is applied to stored
scores, as a render re-colours its frame store.
"""
from __future__ import annotations

import base64
import io
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image

from .boundary import structure
from .color import Reference, color_frame
from .config import ColorConfig, ExploreConfig, Quality
from .errors import Refusal
from .experiment import Experiment
from .guess import trained_pixels
from .landscape import landscape
from .plan import start_window
from .precision import resolve_precision
from .quality import experiment_of, resolve
from .run_setup import RunSetup
from .window import Window

# The qualities the page switches between (auto is resolved once, for the first view).
QUALITIES = (Quality.preview, Quality.paper)


class Cancelled(Exception):
    """The view was replaced (or its page closed) while it trained."""


@dataclass(frozen=True)
class View:
    """Where the page looks: a centre and a width in axis units (log10)."""

    x: float
    y: float
    width: float

    def __post_init__(self):
        if not (math.isfinite(self.x) and math.isfinite(self.y) and math.isfinite(self.width) and self.width > 0):
            raise Refusal(f"a view needs a finite centre x, y and a width > 0, got x={self.x}, y={self.y}, "
                             f"w={self.width}")

    def window(self, size: tuple[int, int]) -> Window:
        """The window whose pixels are square at this (H, W) (and so at every pass)."""
        h, w = size
        return Window(self.x, self.y, self.width / 2, self.width / 2 * (h - 1) / (w - 1))


@dataclass(frozen=True)
class Pass:
    """One pass of a view: its scores and what it cost."""

    index: int
    scores: np.ndarray
    trained: int  # runs trained in this pass
    reused: int  # runs taken from the pass before
    seconds: float


def pass_sizes(coarse: int, finest: int, aspect: float) -> list[tuple[int, int]]:
    """(H, W) of every pass, coarse to finest pixels across (plus one: odd sides nest)."""
    sizes = [(max(2, round(coarse / aspect)) + 1, coarse + 1)]
    while sizes[-1][1] - 1 < finest:
        h, w = sizes[-1]
        sizes.append((2 * h - 1, 2 * w - 1))
    return sizes


def known_runs(scores: np.ndarray, trained: np.ndarray) -> np.ndarray:
    """The next pass's image of the runs this pass trained (`trained`, a mask), at its even
    pixels; NaN elsewhere."""
    h, w = scores.shape
    known = np.full((2 * h - 1, 2 * w - 1), np.nan)
    known[::2, ::2] = np.where(trained, scores, np.nan)
    return known


def picture(scores: np.ndarray, cmap: str, readout: str) -> str:
    """The scores as a PNG data URL, top row the highest y, ranked against themselves."""
    colors = ColorConfig(cmap=cmap, probe_cmap=cmap)
    rgb = color_frame(scores, Reference.from_scores(scores, colors.n_quantiles), colors, readout)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


class Explorer:
    """The engine behind the page: experiments per quality, the start view, the score cache."""

    def __init__(self, cfg: ExploreConfig):
        setups = {q: RunSetup.resolve(cfg.experiment, q, cfg.engine, None) for q in QUALITIES}  # views: no zoom
        self.experiments = {q: setup.experiment for q, setup in setups.items()}
        self.device = setups[QUALITIES[0]].device
        self.quality = resolve(cfg.quality, self.device)  # the first view's
        self.cfg = cfg
        self.aspect = cfg.video.width / cfg.video.height
        self.sizes = pass_sizes(cfg.coarse, cfg.size, self.aspect)
        self.condition = cfg.experiment.window.to_window()
        self.video_start = start_window(self.condition, cfg.video)  # a render's first frame
        self.start = self._start_view(cfg)
        self._cache: OrderedDict = OrderedDict()
        self._experiments: dict = {}  # (quality, decades) -> Experiment
        self._lock = threading.Lock()

    def _start_view(self, cfg: ExploreConfig) -> View:
        """The panel, when one is named (the narrowest view of the video's shape that holds
        it), else a render's first frame."""
        if cfg.panel is None:
            return View(self.video_start.cx, self.video_start.cy, self.video_start.width)
        panel = cfg.panel.window()
        return View(panel.cx, panel.cy, max(panel.width, panel.height * self.aspect))

    def warm_up(self) -> None:
        """Train four runs, so that the first view does not wait for the kernel to be built
        and checked (zoomer.kernels)."""
        exp, window = self.experiments[self.quality], self.start.window(self.sizes[0])
        dtype = resolve_precision(self.cfg.engine.precision.value, exp, window, (2, 2))
        landscape(exp, window, (2, 2), device=self.device, dtype=dtype, backend=self.cfg.engine.backend)

    def check(self, view: View) -> Window:
        """The view's window at the finest pass; a Refusal (a ValueError) when engine.precision
        cannot resolve it (auto: not even perturbation)."""
        window = view.window(self.sizes[-1])
        window.check_resolution(self.sizes[-1], self.cfg.engine.precision.value)
        return window

    def decades(self, view: View) -> float:
        """Decades of zoom from a render's first frame to this view."""
        return math.log10(self.video_start.width / view.width)

    def experiment(self, view: View, quality: Quality) -> Experiment:
        """What a render zooming into this view trains: at the preview's quality its steps
        follow the view's depth, as zoomer's do (zoomer.quality), so the page shows the
        render's last frame."""
        decades = round(max(0.0, self.decades(view)), 9)
        with self._lock:
            if (quality, decades) not in self._experiments:
                self._experiments[(quality, decades)] = experiment_of(self.cfg.experiment, quality, self.device, decades)
            return self._experiments[(quality, decades)]

    def refine(self, view: View, quality: Quality, cancel: threading.Event, emit: Callable[[Pass], None]) -> None:
        """Train the view pass by pass, emitting each; Cancelled as soon as `cancel` is set.

        Passes already cached are not trained again, and those below the finest cached one
        are not drawn again either.
        """
        exp = self.experiment(view, quality)
        window = self.check(view)
        dtype = resolve_precision(self.cfg.engine.precision.value, exp, window, self.sizes[-1])
        cached = [self._cached((view, quality, i)) for i in range(len(self.sizes))]
        first = max((i for i, s in enumerate(cached) if s is not None), default=0)
        known = None

        def check_cancel(_runs):
            if cancel.is_set():
                raise Cancelled()

        for i in range(first, len(self.sizes)):
            started = time.perf_counter()
            scores = cached[i]
            if scores is None:
                scores = landscape(exp, window, self.sizes[i], device=self.device, dtype=dtype,
                                   progress=check_cancel, backend=self.cfg.engine.backend, guess=self.cfg.guess,
                                   known=known)
                self._keep((view, quality, i), scores)
            asked = trained_pixels(scores, self.cfg.guess)
            reused = int((asked & ~np.isnan(known)).sum()) if known is not None else 0
            emit(Pass(i, scores, int(asked.sum()) - reused if cached[i] is None else 0, reused,
                      time.perf_counter() - started))
            known = known_runs(scores, asked)

    def describe(self, quality: Quality, part: Pass, cmap: str) -> dict:
        """What the page shows of a pass: the picture and the view's numbers."""
        readout = self.experiments[quality].readout
        return {
            "pass": part.index, "passes": len(self.sizes), "size": list(part.scores.shape),
            "image": picture(part.scores, cmap, readout),
            "structure": structure(part.scores),
            "converged": float(np.mean(part.scores < 0)),
            "trained": part.trained, "reused": part.reused, "seconds": part.seconds,
        }

    def _cached(self, key):
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
            return self._cache.get(key)

    def _keep(self, key, scores: np.ndarray) -> None:
        with self._lock:
            self._cache[key] = scores
            while len(self._cache) > self.cfg.cache:
                self._cache.popitem(last=False)


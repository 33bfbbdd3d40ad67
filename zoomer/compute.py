"""The frame loop: compute a plan's missing frames into the store, one frame at a time.

Every frame is stored the moment it exists, so an interrupted render loses at most the
frame in progress. Keyframes go deepest first: keyframe k+1 covers the middle quarter of
keyframe k at twice its resolution, so the runs it trained there are not trained again.
"""
from __future__ import annotations

import logging
import time
from typing import Optional

import numpy as np
from tqdm import tqdm

from .config import RenderConfig
from .guess import trained_pixels
from .landscape import landscape, lattice_step
from .plan import Plan
from .store import FrameStore
from .window import Window

log = logging.getLogger(__name__)


def progress_bar(desc: str, total: Optional[int] = None, unit: str = "run"):
    """A progress bar with ETA on a terminal; silent when output goes to a file or a pipe."""
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, mininterval=1.0, dynamic_ncols=True,
                disable=None)


def frame_key(store: FrameStore, window: Window, size) -> str:
    """A keyframe's name in the store: its window (a deep one's exact centre too) and size."""
    deep = {} if window.exact is None else {"center": [str(c) for c in window.exact]}
    return store.key({"window": [window.cx, window.cy, window.half_w, window.half_h], "size": list(size), **deep})


def missing_frames(plan: Plan, store: FrameStore) -> list[int]:
    return [i for i, w in enumerate(plan.windows) if not store.has(frame_key(store, w, plan.size))]


def compute_frames(exp, plan: Plan, store: FrameStore, rnd: RenderConfig, device, backend) -> dict:
    """Compute this shard's missing frames into the store; returns counts for the log."""
    mine = [i for i in range(len(plan.windows)) if i % rnd.num_shards == rnd.shard]
    todo = [i for i in mine if not store.has(frame_key(store, plan.windows[i], plan.size))]
    if plan.strategy == "keyframes":
        todo.reverse()
    runs = len(todo) * plan.size[0] * plan.size[1]
    log.info(
        "%s: %d of this shard's %d frames to compute (%d already stored), %d x %d px, %d runs",
        plan.strategy, len(todo), len(mine), len(mine) - len(todo), plan.size[1], plan.size[0], runs,
    )
    started = time.perf_counter()
    took: dict = {}  # float type -> seconds of each frame computed in it
    with progress_bar("frames", runs) as bar:
        for n, i in enumerate(todo, 1):
            window = plan.windows[i]
            known = _runs_from_next_keyframe(plan, store, i, rnd.guess)
            tick = time.perf_counter()
            scores = landscape(exp, window, plan.size, device=device, dtype=plan.dtypes[i], progress=bar.update,
                               backend=backend, guess=rnd.guess, known=known, supersample=plan.supersample)
            store.save(frame_key(store, window, plan.size), scores)
            took.setdefault(plan.dtypes[i], []).append(time.perf_counter() - tick)
            log.info("frame %d stored (%d/%d), %.0f s elapsed, ETA %.0f s", i, n, len(todo),
                     time.perf_counter() - started, eta(took, [plan.dtypes[j] for j in todo[n:]]))
    return {"computed": len(todo), "reused": len(mine) - len(todo)}


def eta(took: dict, to_come: list) -> float:
    """Seconds the frames `to_come` (their float types) will take, each at the mean of the
    frames of its type so far, else of all: a deep zoom's few perturbation frames come first
    and cost many times a float64 one, so one mean over both foretold hours for minutes."""
    every = [s for times in took.values() for s in times]
    mean = {dtype: sum(times) / len(times) for dtype, times in took.items()}
    return sum(mean.get(dtype, sum(every) / len(every)) for dtype in to_come)


def _runs_from_next_keyframe(plan: Plan, store: FrameStore, k: int, guess: int):
    """Keyframe k's pixels that keyframe k+1, if stored, already trained (NaN elsewhere)."""
    if plan.strategy != "keyframes" or k + 1 >= len(plan.windows):
        return None
    inner = frame_key(store, plan.windows[k + 1], plan.size)
    same_dtype = plan.dtypes[k] == plan.dtypes[k + 1]
    if not (store.has(inner) and same_dtype):
        return None
    scores = store.load(inner)
    trained = trained_pixels(scores, lattice_step(guess, plan.supersample))
    (h, w), known = plan.size, np.full(plan.size, np.nan)
    # Pixel (i, j) of keyframe k is pixel (2i - (h-1)/2, 2j - (w-1)/2) of keyframe k+1.
    i = np.arange(-(-(h - 1) // 4), 3 * (h - 1) // 4 + 1)
    j = np.arange(-(-(w - 1) // 4), 3 * (w - 1) // 4 + 1)
    ii, jj = np.ix_(2 * i - (h - 1) // 2, 2 * j - (w - 1) // 2)
    known[np.ix_(i, j)] = np.where(trained[ii, jj], scores[ii, jj], np.nan)
    return known

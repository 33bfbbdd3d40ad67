"""A stand-in for zoomer.target.find_target (not on main yet), for the tests only.

Same signature and result. Each decade it renders the current window at `resolution`
pixels and moves to the edge pixel with the most edge pixels around it, so the zoom
follows the busiest stretch of boundary rather than a smooth one. Delete this file once
zoomer/target.py lands.
"""
import math
import sys
import types
from dataclasses import dataclass

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from zoomer import landscape
from zoomer.dimension import edges
from zoomer.window import Window


@dataclass(frozen=True)
class Target:
    point: tuple[float, float]
    levels: list[Window]


def find_target(exp, start: Window, depth: float, seed: int = 0, resolution: int = 16, device=None,
                dtype=torch.float64, progress=None) -> Target:
    window, levels = start, [start]
    for _ in range(math.ceil(depth)):
        found = edges(landscape(exp, window, (resolution, resolution), device=device, dtype=dtype))
        if not found.any():
            break
        r = max(1, resolution // 4)
        busy = sliding_window_view(np.pad(found, r), (2 * r + 1, 2 * r + 1)).sum(axis=(-2, -1))
        i, j = np.unravel_index(np.argmax(np.where(found, busy, -1)), found.shape)
        xs, ys = window.axes((resolution, resolution))
        point = ((xs[j] + xs[j + 1]) / 2, (ys[i] + ys[i + 1]) / 2)
        window = window.zoom(10.0, point)
        levels.append(window)
    return Target(window.center, levels)


def install() -> None:
    """Make `from zoomer.target import find_target` find the stand-in, unless the real one exists."""
    try:
        import zoomer.target  # noqa: F401
    except ImportError:
        sys.modules["zoomer.target"] = types.SimpleNamespace(find_target=find_target, Target=Target)

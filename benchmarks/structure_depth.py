"""How deep the boundary keeps its structure, as a function of the training steps T.

A run of T steps tells two learning rates apart only where training's chaos amplifies
their difference to order one within T steps, so the depth to which a zoom shows curves,
islands and swirls grows with T, as a Mandelbrot zoom needs more iterations the deeper
it goes. This measures it: along one zoom path (by default the one into the paper's tanh
panel), for each T it renders the view centred on the path's point every half decade
below the start window (every pixel trained, float64; past float64's reach, about 13
decades, by perturbation from a double-double reference, zoomer.perturbation) and prints
zoomer.boundary.structure of each; a view "has structure" at 0.15 or more (the bar of the
first-video issue). The structure depth of T is the deepest view before the structure
collapses below 0.05 (one class left, parallel bands or static) for good.

    python -m benchmarks.structure_depth [--steps 100 200 300 500] [--decades 6] [--size 48]
    python -m benchmarks.structure_depth --point 1.1 2.3000000000000000000001 --decades 22 --every 1

prints the table, which docs/steps.md records; zoomer.quality takes the preview's
steps-for-depth rule from it.
"""
from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from datetime import datetime, timezone
from decimal import Decimal

import numpy as np
import torch

import zoomer
from zoomer.boundary import structure
from zoomer.plan import start_window
from zoomer.config import VideoConfig
from zoomer.precision import deep_or_float64
from zoomer.window import point_json

# The paper's tanh panel (conf/paper/tanh.yaml), in hyperparameter values.
PANEL = ((13.29976231, 13.29978604), (200.3582269, 200.3585844))
HAS_STRUCTURE = 0.15
COLLAPSED = 0.05


def views(exp: zoomer.Experiment, start: zoomer.Window, point, first: float, decades: float,
          size, every: float = 0.5) -> list[tuple[float, float, float]]:
    """(depth, structure, seconds) of the view centred on `point` every `every` decades."""
    out = []
    for depth in np.arange(first, decades + 1e-9, every):
        t = time.perf_counter()
        window = start.zoom(10**depth, center=point)
        scores = zoomer.landscape(exp, window, size, dtype=deep_or_float64(window, size))
        out.append((float(depth), structure(scores), time.perf_counter() - t))
        print(f"T={exp.steps} depth {depth:.1f}: structure {out[-1][1]:.3f} ({out[-1][2]:.1f} s)", flush=True)
    return out


def structure_depth(rows: list[tuple[float, float, float]]) -> float:
    """The deepest view past the first decade before the structure collapses for good."""
    deepest = 1.0
    for depth, s, _ in rows:
        if depth > 1.0 and s < COLLAPSED:
            break
        deepest = max(deepest, depth)
    return deepest


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 200, 300, 500])
    parser.add_argument("--decades", type=float, default=6.0)
    parser.add_argument("--first", type=float, default=0.0, help="the shallowest view, in decades")
    parser.add_argument("--size", type=int, default=48, help="view width in pixels (16:9)")
    parser.add_argument("--every", type=float, default=0.5, help="decades between views")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="minibatches of this many rows (16: the paper's minibatch condition); default full batch")
    parser.add_argument("--point", nargs=2, default=None,
                        help="zoom target in log10 units, decimals to any depth (default: the paper's tanh panel centre)")
    args = parser.parse_args(argv)
    point = tuple(map(Decimal, args.point)) if args.point else tuple(math.log10(sum(b) / 2) for b in PANEL)
    condition = zoomer.Window.from_bounds((-2.0, 6.0), (-3.0, 5.0))  # conf/experiment/tanh.yaml
    start = start_window(condition, VideoConfig(width=224, height=126))
    size = (round(args.size * 9 / 16) | 1, args.size | 1)
    table = {}
    began = time.perf_counter()
    for steps in args.steps:
        exp = zoomer.Experiment(nonlinearity="tanh", steps=steps, batch_size=args.batch_size)
        table[steps] = views(exp, start, point, args.first, args.decades, size, args.every)
    write(args, point, size, table, time.perf_counter() - began)


def write(args, point, size, table, seconds) -> None:
    depths = [d for d, _, _ in next(iter(table.values()))]
    header = "| depth (decades) | " + " | ".join(f"T={t}" for t in table) + " |"
    lines = [header, "|---:|" + "---:|" * len(table)]
    for k, depth in enumerate(depths):
        cells = [f"**{rows[k][1]:.2f}**" if rows[k][1] >= HAS_STRUCTURE else f"{rows[k][1]:.2f}"
                 for rows in table.values()]
        lines.append(f"| {depth:.1f} | " + " | ".join(cells) + " |")
    lines.append("| **structure depth** | " + " | ".join(f"**{structure_depth(r):.1f}**" for r in table.values()) + " |")
    lines.append("| seconds (all views) | " + " | ".join(f"{sum(s for _, _, s in r):.0f}" for r in table.values()) + " |")
    print(f"{datetime.now(timezone.utc):%Y-%m-%d}, {platform.machine()}, {torch.get_num_threads()} thread(s), "
          f"torch {torch.__version__}; point {point_json(point)}, {size[1]}x{size[0]} px, every pixel trained, "
          "float64 (perturbation past its reach)")
    print("\n".join(lines))
    print(f"{seconds:.0f} s in all; python -m benchmarks.structure_depth {' '.join(sys.argv[1:])}")


if __name__ == "__main__":
    main()

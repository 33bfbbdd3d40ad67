"""Follow the target search's refinement down a zoom, logging every level: how deep the
boundary stays in view, and what each level costs in float64 and past it.

    python -m benchmarks.deep_path --steps 600 --decades 22 --resolution 12 --zoom 6 --seed 0
    python -m benchmarks.deep_path --steps 1000 --resolution 32 --zoom 4 \
        --center 1.1238442669 2.3018075671 --start-decades 6 --decades 22 --save path.npz

This is zoomer.target's own refinement (engine.precision=auto: float64 while it resolves
the level's pixels, perturbation below), each level's window printed with its share of
converged runs, its coherence and structure (zoomer.boundary), its boundary's box count
(zoomer.dimension: at 32 rows only the 2 and 4 px boxes are fitted, so a rough number), the
point picked and the seconds so far; --save keeps every level's scores and window, and
--sheet draws them and prints the table. --center and
--start-decades start the descent that far down around a point (the paper's tanh panel
is 7 decades below the start window) instead of at the start window; zoomer-targets runs the same
refinement and then verifies every half decade (many times the cost past float64).
docs/steps.md records a run of it.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from decimal import Decimal

import numpy as np

import zoomer.target as target
from PIL import Image, ImageDraw

from zoomer.boundary import coherence, structure
from zoomer.color import Reference, colorize, normalize
from zoomer.dimension import boundary_dimension
from zoomer.config import VideoConfig
from zoomer.experiment import Experiment
from zoomer.plan import start_window
from zoomer.window import Window, point_json


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--decades", type=float, default=22.0)
    parser.add_argument("--resolution", type=int, default=12, help="rows of each level (16:9)")
    parser.add_argument("--zoom", type=float, default=6.0, help="magnification between levels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="minibatches of this many rows (16: the paper's minibatch condition); default full batch")
    parser.add_argument("--center", nargs=2, default=None, help="decimal x y to start around")
    parser.add_argument("--start-decades", type=float, default=0.0, help="depth of the first level")
    parser.add_argument("--save", default=None, help="an .npz for every level's scores and window")
    parser.add_argument("--sheet", nargs="+", default=None, metavar="NPZ",
                        help="only draw these saved levels into one PNG (the last argument), and stop")
    args = parser.parse_args(argv)
    if args.sheet:
        return contact_sheet(args.sheet[:-1], args.sheet[-1])
    exp = Experiment(steps=args.steps, batch_size=args.batch_size)
    top = start = tanh_start()
    if args.center is not None:
        start = Window.around(tuple(Decimal(c) for c in args.center), top.width / 10**args.start_decades, top.half_w / top.half_h)
    pick, began, levels = target._pick, time.perf_counter(), []

    def logged(scores, window, rng, first, zoom):
        point = pick(scores, window, rng, first, zoom)
        print(f"{time.perf_counter() - began:8.1f} s  depth {np.log10(top.width / window.width):5.2f}  "
              f"converged {np.mean(scores < 0):.2f}  coherence {coherence(scores):5.2f}  "
              f"structure {structure(scores):4.2f}  box count {box_count(scores):4.2f}  point {point_json(point)}",
              flush=True)
        levels.append((scores, window))
        if args.save:
            np.savez(args.save, scores=np.stack([s for s, _ in levels]),
                     windows=np.array([json.dumps(w.to_dict()) for _, w in levels]))
        return point

    target._pick = logged  # the refinement as it is, each level printed
    point = target._refine(exp, start, args.decades - args.start_decades, np.random.default_rng(args.seed),
                           args.resolution, args.zoom, None, "auto", None)
    print("target", point_json(point))


def tanh_start() -> Window:
    """The tanh condition's window cut to the preview's 16:9, where zoomer searches: depths
    are counted from it."""
    return start_window(Window.from_bounds((-2.0, 6.0), (-3.0, 5.0)), VideoConfig(width=224, height=126))


def box_count(scores: np.ndarray) -> float:
    """The boundary's box-counting dimension, or NaN where the level holds one class."""
    try:
        return boundary_dimension(scores).dimension
    except ValueError:
        return math.nan


def contact_sheet(saved: list[str], out: str, columns: int = 4, scale: int = 4) -> None:
    """Every saved level, coloured as zoomer colours a frame (each ranked on its own),
    shallowest first, `columns` to a row, with its depth written on it; and a table of
    each level's structure and box count. A resumed descent's first level takes the place
    of the level it repeats; a level shallower than the one before is left out."""
    levels, top = [], tanh_start().width
    for path in saved:
        data = np.load(path)
        for scores, saved_window in zip(data["scores"], data["windows"]):
            window = json.loads(str(saved_window))
            depth = np.log10(top / (window.get("width") or np.ptp(window["x"])))
            if levels and depth < levels[-1][0] - 0.05:
                continue
            if levels and depth < levels[-1][0] + 0.05:
                levels.pop()
            levels.append((depth, scores))
    print("| depth (decades) | structure | box count |\n|---:|---:|---:|")
    tiles = []
    for depth, scores in levels:
        print(f"| {depth:.1f} | {structure(scores):.2f} | {box_count(scores):.2f} |")
        rgb = colorize(normalize(scores, Reference.from_scores(scores)))
        tile = Image.fromarray(rgb).resize((scores.shape[1] * scale, scores.shape[0] * scale), Image.NEAREST)
        ImageDraw.Draw(tile).text((3, 2), f"{depth:.1f}", fill="white")
        tiles.append(tile)
    w, h = tiles[0].size
    sheet = Image.new("RGB", (columns * w, -(-len(tiles) // columns) * h), "white")
    for k, tile in enumerate(tiles):
        sheet.paste(tile, ((k % columns) * w, (k // columns) * h))
    sheet.save(out)
    print(f"{len(tiles)} levels -> {out}")


if __name__ == "__main__":
    main()

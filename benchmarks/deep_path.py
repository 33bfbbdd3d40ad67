"""Follow the target search's refinement down a zoom, logging every level: how deep the
boundary stays in view, and what each level costs in float64 and past it.

    python -m benchmarks.deep_path --steps 600 --decades 22 --resolution 12 --zoom 6 --seed 0

This is zoomer.target's own refinement (engine.precision=auto: float64 while it resolves
the level's pixels, perturbation below), each level's window printed with its share of
converged runs, the point picked and the seconds so far; zoomer-targets runs the same
refinement and then verifies every half decade (many times the cost past float64).
docs/steps.md records a run of it.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import zoomer.target as target
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
    args = parser.parse_args(argv)
    exp = Experiment(steps=args.steps)
    # the tanh condition's window cut to the preview's 16:9, where zoomer searches
    start = start_window(Window.from_bounds((-2.0, 6.0), (-3.0, 5.0)), VideoConfig(width=224, height=126))
    pick, began = target._pick, time.perf_counter()

    def logged(scores, window, rng, first, zoom):
        point = pick(scores, window, rng, first, zoom)
        print(f"{time.perf_counter() - began:8.1f} s  depth {np.log10(start.width / window.width):5.2f}  "
              f"converged {np.mean(scores < 0):.2f}  point {point_json(point)}", flush=True)
        return point

    target._pick = logged  # the refinement as it is, each level printed
    point = target._refine(exp, start, args.decades, np.random.default_rng(args.seed), args.resolution, args.zoom,
                           None, "auto", None)
    print("target", point_json(point))


if __name__ == "__main__":
    main()

"""float32 against float64 along a zoom into the boundary, for each of the paper's conditions.

float32 is about twice as fast, but training near the boundary is chaotic, so rounding
can flip a pixel's class; and deep enough, neighbouring pixels' hyperparameters round to
the same float32 number. For each condition in conf/experiment this follows the
boundary down from the condition's default window a decade at a time: at each depth it
renders the window in both precisions and counts the pixels whose class (trains or
diverges) is the same. The next window is centred on a boundary corner of the float64
image with both classes evenly around it, so every window straddles the boundary: the
hard case.

    python -m benchmarks.precision [--size 24] [--steps 100] [--depths 8]

prints the table and appends it, with the command, to BENCHMARKS.md. zoomer.precision
takes its float32/float64 rule from these numbers.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import platform
import sys
import time
from datetime import datetime, timezone
from importlib.resources import files
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

import zoomer
from zoomer import kernels
from zoomer.dimension import edges as edge_mask

CONDITIONS = ("tanh", "relu", "identity", "minibatch", "single_datapoint", "paraminit")
CONF = Path(str(files("zoomer.conf"))) / "experiment"
# Below this agreement a condition is deep in float64 territory: stop following it.
STOP_BELOW = 0.9
# The boundary passes within sqrt(2)/2 pixel steps of a boundary corner, which must be
# less than the next window's half width, a 20th of this one's: size - 1 > 10 sqrt(2).
MIN_SIZE = 16


def condition(name: str, steps: int) -> tuple[zoomer.Experiment, zoomer.Window]:
    """The condition's experiment (with `steps`) and its default window."""
    node = OmegaConf.load(CONF / f"{name}.yaml")
    exp = dataclasses.replace(zoomer.Experiment.from_config(node), steps=steps)
    return exp, zoomer.Window.from_bounds(tuple(node.window.x), tuple(node.window.y))


def render(exp, window, size, dtype):
    start = time.perf_counter()
    scores = zoomer.landscape(exp, window, size, dtype=dtype)
    return scores, time.perf_counter() - start


def next_centre(scores, window: zoomer.Window, size) -> tuple[float, float] | None:
    """The boundary corner whose surroundings are the most even mix of both classes.

    The next window spans the central ~2.4 x 2.4 pixels of the 4 x 4 block around the
    corner; an even block keeps the boundary running through it rather than grazing it.
    Ties go to the corner nearest the centre. None if the image holds one class only.
    """
    edges = edge_mask(scores)
    if not edges.any():
        return None
    block = np.lib.stride_tricks.sliding_window_view(np.pad(scores < 0, 1, mode="edge"), (4, 4))
    share = block.mean(axis=(-2, -1))  # converged share of the block around each corner
    xs, ys = window.axes(size)
    cx, cy = (xs[:-1] + xs[1:]) / 2, (ys[:-1] + ys[1:]) / 2
    i, j = edges.nonzero()
    distance = np.hypot((cx[j] - window.cx) / window.width, (cy[i] - window.cy) / window.height)
    k = np.lexsort((distance, -np.minimum(share[i, j], 1 - share[i, j])))[0]
    return float(cx[j[k]]), float(cy[i[k]])


def follow(name: str, size, steps: int, depths: int):
    """Rows (dicts) for one condition, from its default window down to `depths` decades."""
    exp, window = condition(name, steps)
    for depth in range(depths + 1):
        s64, t64 = render(exp, window, size, "float64")
        s32, t32 = render(exp, window, size, "float32")
        same = float(((s32 < 0) == (s64 < 0)).mean())
        step = min(window.width / (size[1] - 1), window.height / (size[0] - 1))
        yield {
            "condition": name,
            "depth": depth,
            "width": window.width,
            "centre": f"({window.cx:.10g}, {window.cy:.10g})",
            "rel_step": math.log(10) * step,  # neighbouring hyperparameters' ratio - 1
            "converged": float((s64 < 0).mean()),
            "same_class": same,
            "t64": t64,
            "t32": t32,
        }
        centre = next_centre(s64, window, size)
        if centre is None or same < STOP_BELOW:
            return
        window = zoomer.Window(*centre, window.half_w / 10, window.half_h / 10)


def table(rows) -> str:
    head = (
        "| condition | depth (decades) | window width | centre | pixel step (relative) "
        "| converged (f64) | same class f32/f64 | f64 s | f32 s |\n"
        "|---|---:|---:|---|---:|---:|---:|---:|---:|\n"
    )
    return head + "".join(
        f"| {r['condition']} | {r['depth']} | {r['width']:.1e} | {r['centre']} | {r['rel_step']:.1e} "
        f"| {r['converged']:.2f} | {r['same_class']:.3f} | {r['t64']:.1f} | {r['t32']:.1f} |\n"
        for r in rows
    )


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=24, help="pixels per side")
    p.add_argument("--steps", type=int, default=100, help="training steps per run")
    p.add_argument("--depths", type=int, default=8, help="deepest zoom, in decades")
    # torch's intra-op threads gain little on these small matmuls and slow down ~10x when
    # another process holds a core; the measurement is of agreement, not speed.
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--conditions", nargs="*", default=list(CONDITIONS), choices=CONDITIONS)
    p.add_argument("--out", default="BENCHMARKS.md", help="file the table is appended to")
    args = p.parse_args(argv)
    if args.size < MIN_SIZE:
        p.error(f"--size must be >= {MIN_SIZE} to keep the boundary in the next, 10x smaller window")
    torch.set_num_threads(args.threads)
    size = (args.size, args.size)
    rows = []
    for name in args.conditions:
        for row in follow(name, size, args.steps, args.depths):
            rows.append(row)
            print(table([row]).splitlines()[-1], flush=True)
    exp = zoomer.Experiment()
    backend = kernels.find("auto", exp, torch.device("cpu"), torch.float64)
    report = (
        f"\n## float32 against float64 along a zoom into the boundary\n\n"
        f"`{' '.join(['python -m benchmarks.precision', *(sys.argv[1:] if argv is None else argv)])}`"
        f" ({datetime.now(timezone.utc):%Y-%m-%d}, {platform.machine()} CPU x{torch.get_num_threads()} thread(s),"
        f" torch {torch.__version__}, backend {backend.__module__ if backend else 'torch'}):"
        f" {args.size}x{args.size} pixels, {args.steps} steps; each depth is centred on an"
        f" even boundary corner of the previous float64 image; a condition stops below"
        f" {STOP_BELOW:.0%} agreement. Pixel step = ln(10) x pixel spacing, the relative"
        f" difference between neighbouring pixels' hyperparameters.\n\n" + table(rows)
    )
    print(report)
    out = Path(args.out)
    with out.open("a") as f:
        f.write(report if out.stat().st_size else "# Benchmarks\n" + report)


if __name__ == "__main__":
    main()

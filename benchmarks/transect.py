"""Whether the stripes below the paper's tanh panel are a fractal: the classes along one
line across them, at every depth.

From about 8 decades down, the descent's views (docs/deep_path.png) show parallel stripes
of both classes, and zoomer.boundary's structure (made to see curves, islands and swirls)
scores them low. Finitely many stripes would leave a single line in view a few levels
further down, as the paper's minibatch panel's path does below 13.4 decades. Stripes at
every depth, as many and as uneven at each, are a Cantor set of curves: a fractal whose
cross-section has a dimension between 0 and 1 at every depth.

This trains N runs on a horizontal line through a point at each depth (float64 where it
resolves them, perturbation below), marks where the class changes along it, and fits the
1-D box-counting dimension of those marks over box sizes from MIN_BOX to N / 16 runs
(0: a few isolated changes; 1: changes everywhere). --png stacks the lines, one band per
depth, shallowest on top, as a barcode.

    python -m benchmarks.transect --steps 1000 --runs 2048 --depths 8 10 12 14 16 18 20 22 \
        --point 1.1238412378968605781790021403 2.3018077463967331346857055887 --png barcode.png
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
from PIL import Image, ImageDraw

import zoomer
from benchmarks.deep_path import tanh_start
from zoomer.boundary import converged
from zoomer.color import Reference, colorize, normalize
from zoomer.precision import deep_or_float64

MIN_BOX = 2  # runs; a single run's box sees the sampling, not the set
BOXES_ACROSS = 16  # the largest fitted box still fits this many times along the line


def line_dimension(changes: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(dimension, box sizes, boxes holding a change) of the marked points on a line,
    fitted over MIN_BOX .. len / BOXES_ACROSS; NaN with fewer than two changes."""
    sizes, counts = [], []
    size = 1
    while size <= changes.size // BOXES_ACROSS:
        boxes = -(-changes.size // size)
        padded = np.zeros(boxes * size, dtype=bool)
        padded[:changes.size] = changes
        sizes.append(size)
        counts.append(int(padded.reshape(boxes, size).any(1).sum()))
        size *= 2
    sizes, counts = np.array(sizes), np.array(counts)
    fitted = sizes >= MIN_BOX
    if changes.sum() < 2 or fitted.sum() < 2:
        return math.nan, sizes, counts
    slope = np.polyfit(np.log2(sizes[fitted]), np.log2(counts[fitted]), 1)[0]
    return float(-slope), sizes, counts


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=2048, help="runs along each line")
    parser.add_argument("--depths", type=float, nargs="+", default=[8, 10, 12, 14, 16, 18, 20, 22])
    parser.add_argument("--point", nargs=2, required=True, help="decimal x y (log10 units) the lines go through")
    parser.add_argument("--batch-size", type=int, default=None, help="minibatches of this many rows")
    parser.add_argument("--png", default=None, help="write the lines as a barcode, one band per depth")
    args = parser.parse_args(argv)
    point = tuple(Decimal(c) for c in args.point)
    start = tanh_start()
    exp = zoomer.Experiment(steps=args.steps, batch_size=args.batch_size)
    rows, lines, began = [], [], time.perf_counter()
    for depth in args.depths:
        t = time.perf_counter()
        window = start.zoom(10**depth, center=point)
        size = (1, args.runs)
        scores = zoomer.landscape(exp, window, size, dtype=deep_or_float64(window, size))[0]
        classes = converged(scores)
        changes = classes[1:] != classes[:-1]
        dimension, sizes, counts = line_dimension(changes)
        rows.append((depth, int(changes.sum()), float(classes.mean()), dimension, time.perf_counter() - t))
        lines.append(scores)
        print(f"depth {depth:5.1f}: {rows[-1][1]:5d} class changes, converged {rows[-1][2]:.2f}, "
              f"dimension {dimension:.2f} (boxes {counts.tolist()}), {rows[-1][4]:.0f} s", flush=True)
    print(f"\n{datetime.now(timezone.utc):%Y-%m-%d}, {platform.machine()}, {torch.get_num_threads()} thread(s); "
          f"{args.runs} runs a line, {args.steps} steps; fitted boxes {MIN_BOX}..{args.runs // BOXES_ACROSS} runs")
    print("| depth (decades) | class changes | converged | line dimension |\n|---:|---:|---:|---:|")
    for depth, n, share, dimension, _ in rows:
        print(f"| {depth:.1f} | {n} | {share:.2f} | {dimension:.2f} |")
    print(f"{time.perf_counter() - began:.0f} s in all; python -m benchmarks.transect {' '.join(sys.argv[1:])}")
    if args.png:
        band = max(8, args.runs // 64)
        bands = [np.repeat(colorize(normalize(s[None], Reference.from_scores(s[None]))), band, axis=0) for s in lines]
        labelled(Image.fromarray(np.concatenate(bands)), args.depths).save(args.png)
        print(f"{len(bands)} lines -> {args.png}")


def labelled(barcode: Image.Image, depths: list[float]) -> Image.Image:
    """The barcode with each band's depth in decades written at its left end."""
    band = barcode.height // len(depths)
    draw = ImageDraw.Draw(barcode)
    for k, depth in enumerate(depths):
        draw.rectangle((0, k * band, 26, k * band + 11), fill="black")
        draw.text((2, k * band), f"{depth:g}", fill="white")
    return barcode


if __name__ == "__main__":
    main()

"""Where a frame's training time goes: its runs by class and the steps each takes.

A converged run takes every step (none of the paper's tanh runs reaches an exact fixed
point); a diverged one ends when its loss turns non-finite, and before that its tanh units
all saturate, from when on the kernel trains its output layer alone (cpu_kernel.c,
Frozen). This trains a grid around a point with the fused CPU kernel, with that shortcut
and without it (the same bits, checked), and prints, per class, how many runs there are
and the steps they take, the share of run-steps after saturation, the two times, and how
many lane-steps a kernel that keeps a group of SIMD lanes together until its longest run
ends would have spent (the kernel before lanes took the next run as soon as theirs ended).

    python -m benchmarks.run_steps [--steps 1000] [--size 64 36] [--width 1e-3]

Default: 64x36 runs at 1000 steps in a window 1e-3 (log10) wide around the paper's tanh
panel, three decades above it: the boundary's neighbourhood, where keyframes train.
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

import zoomer
from zoomer.kernels import cpu

PANEL_CENTRE = (math.log10(13.2997742), math.log10(200.35840565))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--size", type=int, nargs=2, default=[64, 36], metavar=("W", "H"))
    parser.add_argument("--width", type=float, default=1e-3, help="window width in log10 units")
    args = parser.parse_args(argv)
    exp = zoomer.Experiment(steps=args.steps)
    w, h = args.size
    xs, ys = zoomer.Window.around(PANEL_CENTRE, args.width, w / h).grid((h, w))
    lrs, offsets = exp.hparams(torch.from_numpy(np.ravel(xs)), torch.from_numpy(np.ravel(ys)))
    prob = exp.problem()
    cpu.running_sums(exp, prob, lrs[:4], offsets[:4])  # builds the kernel, if not cached, untimed
    started = time.perf_counter()
    every_layer = cpu.running_sums(exp, prob, lrs, offsets, freeze=False)
    slow = time.perf_counter() - started
    frozen_at = torch.empty(lrs.shape[0], dtype=torch.int64)
    started = time.perf_counter()
    sums = cpu.running_sums(exp, prob, lrs, offsets, frozen_at=frozen_at)
    seconds = time.perf_counter() - started
    same = all(torch.equal(sums[k].view(torch.int8), every_layer[k].view(torch.int8)) for k in sums)
    dead_at = sums["dead_at"].numpy()
    converged = zoomer.score.finish(exp.steps, **sums).numpy() < 0
    lanes = cpu.lanes()
    padded = np.pad(dead_at, (0, -dead_at.size % lanes), constant_values=0)
    grouped = int(padded.reshape(-1, lanes).max(1).sum() * lanes)
    frozen = frozen_at.numpy()
    saturated = frozen < exp.steps
    after = np.where(saturated, dead_at - frozen, 0).sum()
    print(f"{dead_at.size} runs of {exp.steps} steps around {PANEL_CENTRE}, window {args.width:g} wide, "
          f"{torch.get_num_threads()} threads: {seconds:.1f} s, {dead_at.sum() / seconds:.3g} run-steps/s; "
          f"every layer to the end {slow:.1f} s ({slow / seconds:.2f}x the time), "
          f"{'the same bits' if same else 'DIFFERENT BITS'}")
    median = np.median(frozen[saturated]) if saturated.any() else float("nan")
    print(f"  {saturated.mean():.0%} of the runs saturated (median step {median:.0f}); "
          f"{after / dead_at.sum():.0%} of the run-steps came after, output layer alone")
    for name, mask in (("converged", converged), ("diverged", ~converged)):
        steps = dead_at[mask]
        if steps.size:
            print(f"  {name}: {mask.mean():.0%} of the runs, steps taken: median {np.median(steps):.0f}, "
                  f"10-90% {np.percentile(steps, 10):.0f}-{np.percentile(steps, 90):.0f}, "
                  f"{steps.sum() / dead_at.sum():.0%} of the run-steps")
    print(f"  run-steps {dead_at.sum():.4g}; lanes held together until the group's longest run ends "
          f"({lanes} lanes) would take {grouped:.4g} lane-steps, {1 - dead_at.sum() / grouped:.0%} of them idle")


if __name__ == "__main__":
    main()

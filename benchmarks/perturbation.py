"""Cost of a perturbation pixel against a float64 pixel, on the paper's tanh net.

    python -m benchmarks.perturbation                       # 16x16 pixels, 100 steps
    python -m benchmarks.perturbation --size 8 --steps 50   # quick look

Both engines train the same grid (on the CPU unless --device says otherwise): float64, with
the fastest backend (auto: a fused kernel where one fits) and with the torch path, at the
paper's tanh panel centre; perturbation 20 decades below it, where float64 can no longer
tell the pixels apart, compiled (the CPU's reference pass and pixel step) and by torch
alone. The reference run (once per frame and kept for the frames about the same centre,
whatever their size) is timed apart from the pixels. Prints seconds and run-steps per
second for each, and the pixels' cost against float64's; the machine's load average.
--batch-size 16 measures the paper's minibatch condition instead.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from zoomer.engine import train_grid
from zoomer.experiment import Experiment
from zoomer.kernels import cpu_perturbation
from zoomer import perturbation
from zoomer.perturbation import CHUNK, render

# The paper's tanh panel centre (DESIGN.md), in log10 units, with digits past float64's.
CENTRE = ("1.12384426690000000000001234", "2.30180756710000000000005678")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--chunk", type=int, default=CHUNK)
    parser.add_argument("--batch-size", type=int, default=None, help="minibatches of this many rows")
    args = parser.parse_args()
    exp = Experiment(steps=args.steps, batch_size=args.batch_size)
    g = np.linspace(-0.5, 0.5, args.size)
    dx, dy = (a.ravel() for a in np.meshgrid(g, g))
    run_steps = dx.size * args.steps

    train_grid(exp, [0.0], [0.0], device=args.device)  # build the fused kernel before timing
    plain = {}
    for backend in ("auto", "torch"):
        start = time.perf_counter()
        train_grid(exp, float(CENTRE[0]) + dx, float(CENTRE[1]) + dy, device=args.device, backend=backend)
        plain[backend] = time.perf_counter() - start

    compiled = cpu_perturbation.supports
    render(Experiment(steps=20), CENTRE, [0.0, 1e-20], [0.0, 0.0], device=args.device)  # builds, first-use checks
    perturbed = {}
    for path in ("compiled", "torch"):
        if path == "torch":
            cpu_perturbation.supports = lambda *args: False
        perturbation._RUNS.clear()
        start = time.perf_counter()
        render(exp, CENTRE, [0.0], [0.0], device=args.device)
        reference = time.perf_counter() - start  # the reference run, and one pixel with it
        start = time.perf_counter()  # the pixels, against the reference kept from that run
        deep = render(exp, CENTRE, dx * 1e-20, dy * 1e-20, device=args.device, chunk=args.chunk)
        perturbed[path] = (time.perf_counter() - start, reference, deep)
    cpu_perturbation.supports = compiled

    print(f"{dx.size} pixels x {args.steps} steps on {args.device}, load {os.getloadavg()[0]:.1f}")
    for backend, seconds in plain.items():
        print(f"float64 ({backend:5s}):              {seconds:8.2f} s  {run_steps / seconds:10.0f} run-steps/s")
    for path, (pixels, reference, deep) in perturbed.items():
        seconds = reference + pixels  # a frame of its own: its reference run, then its pixels
        print(f"perturbation, 20 dec. ({path:8s}): {seconds:8.2f} s  {run_steps / seconds:10.0f} run-steps/s"
              f"  ({len(deep.references)} reference(s), {int(deep.glitched.sum())} left glitched)")
        print(f"  the reference run alone:     {reference:8.2f} s  ({reference / args.steps * 1e3:.1f} ms per step, once per frame)")
        print(f"  its pixels alone:            {pixels:8.2f} s  {run_steps / pixels:10.0f} run-steps/s, "
              + ", ".join(f"{pixels / t:.2f}x float64 {b}'s" for b, t in plain.items()))


if __name__ == "__main__":
    main()

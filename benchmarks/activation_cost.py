"""How much of the fused CPU kernel's training step is the tanh.

Trains the same runs of the paper's net (272 data rows, width 16, the same matrix
products) with tanh and with relu, whose activation is a compare and a multiply, at small
learning rates so every run takes every step; the difference in time is the tanh's. Then
the kernel's tanh alone, per vector, against which its operation count can be weighed.

    python -m benchmarks.activation_cost [--runs 2048] [--steps 300] [--rows 4 8 12 16 24]

--rows also times the tanh kernel built for each number of data rows per block of its
pass (cpu.ROWS), which changes the blocking but no bit: each line shows the scores' hash.
"""
from __future__ import annotations

import argparse
import hashlib
import time

import torch

import zoomer
from zoomer.kernels import cpu


def rate(nonlinearity: str, runs: int, steps: int) -> tuple[float, str]:
    """Run-steps per second of the fused CPU kernel, float64, best of two, and a hash of
    the scores."""
    exp = zoomer.Experiment(steps=steps, nonlinearity=nonlinearity)
    prob = exp.problem()
    x = -2.0 + torch.linspace(0, 1e-3, runs, dtype=torch.float64)  # rates near 0.01: all converge
    lrs, offsets = exp.hparams(x, x.clone())
    cpu.running_sums(exp, prob, lrs[:16], offsets[:16])  # build and warm up
    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        sums = cpu.running_sums(exp, prob, lrs, offsets)
        best = min(best, time.perf_counter() - started)
    assert bool((sums["dead_at"] == steps).all()), "every run should take every step"
    scores = zoomer.score.finish(steps, **sums).numpy()
    return runs * steps / best, hashlib.sha256(scores.tobytes()).hexdigest()[:12]


def tanh_alone(values: int = 32768, calls: int = 2000) -> float:
    """Nanoseconds per LANES-wide vector of the kernel's tanh on one thread, its values
    in cache (cpu.tanh: the same vtanh the training step inlines), best of three."""
    x = torch.linspace(-4.0, 4.0, values, dtype=torch.float64)
    cpu.tanh(x)  # build and warm up
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(calls):
            cpu.tanh(x)
        best = min(best, time.perf_counter() - started)
    return best / calls / (values / cpu.lanes()) * 1e9


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rows", type=int, nargs="*", default=[], help="also time tanh at these cpu.ROWS")
    args = parser.parse_args(argv)
    rates = {nl: rate(nl, args.runs, args.steps)[0] for nl in ("tanh", "relu")}
    for nl, r in rates.items():
        print(f"{nl}: {r:.3g} run-steps/s ({args.runs} runs x {args.steps} steps, float64, "
              f"{torch.get_num_threads()} threads, {cpu.lanes()} lanes)")
    print(f"the tanh takes {1 - rates['tanh'] / rates['relu']:.0%} of a tanh step; "
          f"with a free tanh the kernel would be {rates['relu'] / rates['tanh']:.2f}x as fast")
    print(f"the tanh alone: {tanh_alone():.1f} ns per {cpu.lanes()}-lane vector (one thread, in cache)")
    for rows in args.rows:
        cpu.ROWS = rows  # the padding and the kernel's build both follow it
        r, digest = rate("tanh", args.runs, args.steps)
        print(f"tanh, {rows} rows a block: {r:.3g} run-steps/s, scores {digest}")


if __name__ == "__main__":
    main()

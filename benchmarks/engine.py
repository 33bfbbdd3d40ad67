"""Engine throughput: run-steps per second for every backend, width and precision, measured
side by side with the paper's approach (the JAX peer) in one run.

    python -m benchmarks.engine                      # 64x64 grid, 100 steps (a few minutes)
    python -m benchmarks.engine --size 24 --steps 50 # quick look, under 2 minutes
    python -m benchmarks.engine --backends cpu       # leave the (slow) torch path out

Prints a Markdown section and appends it to BENCHMARKS.md. Every pixel of the grid is one
training run of the paper's tanh net; a run-step is one gradient step of one run, counted
for every requested step (runs that diverge early may stop sooner on a fast path, as they
would in a real frame). The grid straddles the trainability boundary, so both kinds of run
are in it. The peer (../shared/peers/jax_peer.py, jax.vmap + XLA, float64) runs the same
exported problem in a subprocess; its own warm timing is used, and zoomer's runs are timed
warm too (kernels built and compiled beforehand). The peer does more per second on small
grids, where its batched activations stay in cache; compare at the default size or larger.
The machine's load average is recorded: other processes slow every row.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

import zoomer
from zoomer import kernels

REPO = Path(__file__).resolve().parents[1]
PEER = REPO.parent / "shared" / "peers" / "jax_peer.py"
DTYPES = (torch.float32, torch.float64)


@dataclass
class Row:
    device: str
    backend: str
    width: int
    dtype: str
    run_steps_per_s: Optional[float] = None
    flops_per_run_step: float = 0.0
    converged: Optional[float] = None
    same_class_as_peer: Optional[float] = None
    note: str = ""


def flops_per_run_step(exp: zoomer.Experiment) -> float:
    """Matrix-product flops of one gradient step of one run (2 per multiply-add): the
    forward pass, the weight gradients and the gradients passed down to hidden layers.
    Elementwise work (tanh, the loss) is left out, so this is a floor."""
    forward = sum(a * b for a, b in exp.layer_shapes)
    backward = forward + sum(a * b for a, b in exp.layer_shapes[1:])
    return 2.0 * exp.dataset_size * (forward + backward)


def backends_on(device: torch.device, exp: zoomer.Experiment, dtype, wanted) -> list[str]:
    """The wanted backends that can train this experiment there (kernels.find accepts them)."""
    usable = []
    for name in kernels.BACKENDS:
        if name == "auto" or (wanted and name not in wanted):
            continue
        try:
            kernels.find(name, exp, device, dtype)
        except (ValueError, ImportError):
            continue
        usable.append(name)
    return usable


def time_zoomer(exp, window, size, device, dtype, backend, repeats) -> tuple[float, np.ndarray]:
    """Seconds for one warm frame (the best of `repeats`), and its scores."""
    warm = zoomer.Experiment(**{**exp.to_dict(), "steps": 20})
    zoomer.landscape(warm, window, (2, 2), device=device, dtype=dtype, backend=backend)
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        scores = zoomer.landscape(exp, window, size, device=device, dtype=dtype, backend=backend)
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best, scores


def run_peer(peer: Path, exp, bounds, size, repeats) -> tuple[float, np.ndarray]:
    """The peer's warm run-steps per second (the best of `repeats` runs) and its scores, on
    zoomer's exported problem."""
    prob = exp.problem()
    with tempfile.TemporaryDirectory() as tmp:
        problem, out = Path(tmp) / "problem.npz", Path(tmp) / "scores.npy"
        weights = {f"W{i}": w.numpy() for i, w in enumerate(prob.weights)}
        np.savez(problem, X=prob.X.numpy(), Y=prob.Y.numpy(), **weights)
        command = [sys.executable, str(peer), "--problem", str(problem), "--out", str(out)]
        command += ["--bounds", *map(repr, (*bounds[0], *bounds[1]))]
        command += ["--size", *map(str, size), "--steps", str(exp.steps), "--nonlinearity", exp.nonlinearity]
        rates = []
        for _ in range(repeats):
            result = subprocess.run(command, capture_output=True, text=True, check=True)
            rates.append(json.loads(result.stdout.strip().splitlines()[-1])["run_steps_per_s"])
        return max(rates), np.load(out)


def measure(args) -> tuple[list[Row], str]:
    """Every row of the table, and why the peer was left out ('' when it ran)."""
    bounds = (tuple(args.x), tuple(args.y))
    window = zoomer.Window.from_bounds(*bounds)
    size = (args.size, args.size)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    peer_note = _peer_problem(args)
    rows = []
    for width in args.widths:
        exp = zoomer.Experiment(width=width, steps=args.steps)
        flops = flops_per_run_step(exp)
        peer_scores = None
        if not peer_note:
            rate, peer_scores = run_peer(args.peer, exp, bounds, size, args.repeats)
            rows.append(Row("cpu", "jax peer", width, "float64", rate, flops, float(np.mean(peer_scores < 0))))
        for device in devices:
            for dtype in DTYPES:
                for name in backends_on(device, exp, dtype, args.backends):
                    seconds, scores = time_zoomer(exp, window, size, device, dtype, name, args.repeats)
                    row = Row(device.type, name, width, str(dtype).removeprefix("torch."))
                    row.run_steps_per_s = scores.size * args.steps / seconds
                    row.flops_per_run_step = flops
                    row.converged = float(np.mean(scores < 0))
                    if peer_scores is not None and dtype == torch.float64:
                        row.same_class_as_peer = float(np.mean(np.sign(scores) == np.sign(peer_scores)))
                    rows.append(row)
    if not torch.cuda.is_available():
        rows.append(Row("cuda", "all", 0, "", note="unmeasured (no GPU in this run)"))
    return rows, peer_note


def _peer_problem(args) -> str:
    """Why the peer cannot run here, or '' when it can."""
    if args.no_peer:
        return "peer skipped (--no-peer)"
    if importlib.util.find_spec("jax") is None:
        return "peer skipped: jax is not installed (pip install jax)"
    if not args.peer.exists():
        return f"peer skipped: {args.peer} not found"
    return ""


def report(args, rows: list[Row], peer_note: str, load_at_start: float) -> str:
    peer_rate = {r.width: r.run_steps_per_s for r in rows if r.backend == "jax peer"}
    load = f"load average {load_at_start:.1f} at start, {os.getloadavg()[0]:.1f} at the end"
    lines = [
        f"## {datetime.datetime.now().isoformat(timespec='minutes')}, commit {_commit()}",
        "",
        f"- machine: {_cpu_model()}, {os.cpu_count()} cores, {load}; {_gpu()}",
        f"- torch {torch.__version__} ({torch.get_num_threads()} threads){_jax_version()}",
        f"- command: `{' '.join(['python -m benchmarks.engine', *map(shlex.quote, sys.argv[1:])])}`",
        f"- grid: {args.size}x{args.size} runs over log10 learning rates x in [{args.x[0]}, {args.x[1]}],"
        f" y in [{args.y[0]}, {args.y[1]}]; tanh, full batch, {args.steps} steps; best of {args.repeats}"
        " timed run(s) per row. GFLOP/s counts matrix products only (2 per multiply-add). x peer:"
        " run-steps/s over the peer's (float64) at that width, measured in this run.",
    ]
    if peer_note:
        lines.append(f"- {peer_note}")
    lines += [
        "",
        "| device | backend | width | dtype | run-steps/s | GFLOP/s | x peer | converged | same class as peer |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.run_steps_per_s is None:
            lines.append(f"| {r.device} | {r.backend} | | | {r.note} | | | | |")
            continue
        ratio = r.run_steps_per_s / peer_rate[r.width] if r.width in peer_rate else None
        lines.append(
            f"| {r.device} | {r.backend} | {r.width} | {r.dtype} | {r.run_steps_per_s:.3g} | "
            f"{r.run_steps_per_s * r.flops_per_run_step / 1e9:.3g} | {_fmt(ratio, '{:.2f}x')} | "
            f"{_fmt(r.converged, '{:.0%}')} | {_fmt(r.same_class_as_peer, '{:.2%}')} |"
        )
    return "\n".join(lines) + "\n"


def _fmt(value, pattern) -> str:
    return "" if value is None else pattern.format(value)


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _commit() -> str:
    def git(*a):
        return subprocess.run(["git", "-C", str(REPO), *a], capture_output=True, text=True).stdout.strip()

    dirty = git("status", "--porcelain", "--", ".", ":!BENCHMARKS.md")
    return (git("rev-parse", "--short", "HEAD") or "unknown") + (" (with uncommitted changes)" if dirty else "")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpu() -> str:
    if not torch.cuda.is_available():
        return "no CUDA device"
    return ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))


def _jax_version() -> str:
    try:
        return f", jax {importlib.metadata.version('jax')}"
    except importlib.metadata.PackageNotFoundError:
        return ""


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=64, help="grid side: size x size runs (default 64)")
    p.add_argument("--steps", type=int, default=100, help="training steps per run (default 100)")
    p.add_argument("--repeats", type=int, default=1, help="time each row this often, keep the best")
    p.add_argument("--widths", type=int, nargs="+", default=[8, 16])
    p.add_argument("--backends", nargs="+", help="only these backends (default: all that run here)")
    p.add_argument("--x", type=float, nargs=2, default=[-1.0, 5.0], metavar=("X0", "X1"))
    p.add_argument("--y", type=float, nargs=2, default=[-1.0, 2.5], metavar=("Y0", "Y1"))
    p.add_argument("--peer", type=Path, default=PEER, help="path to jax_peer.py")
    p.add_argument("--no-peer", action="store_true", help="leave the JAX peer out")
    p.add_argument("--output", type=Path, default=REPO / "BENCHMARKS.md")
    args = p.parse_args(argv)
    load_at_start = os.getloadavg()[0]
    rows, peer_note = measure(args)
    text = report(args, rows, peer_note, load_at_start)
    print(text)
    if not args.output.exists():
        args.output.write_text("# Benchmarks\n\nAppended by `python -m benchmarks.engine`, newest last.\n\n")
    with open(args.output, "a") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()

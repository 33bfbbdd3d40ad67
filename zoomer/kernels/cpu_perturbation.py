"""Compiled CPU parts of perturbation (perturbation_kernel.c): the pixels' step, one SIMD
lane per pixel, and the reference run's pass in double-double.

zoomer.perturbation trains the reference run in double-double and each pixel as float64
differences from it. Its torch path forms those differences in chunks of large tensors,
dozens of passes over memory per step, and the reference's pass as a few thousand torch
ops on small tensors, mostly dispatch. Here the pixels take one step in one pass over the
data rows, their blocks in cache, as cpu_kernel.c trains runs, and the reference's pass is
plain C. Both cover the nets of two layers on the CPU (every paper condition);
perturbation.py takes the torch path for the rest, and checks the compiled step and pass
against it the first time it uses them in a process.
"""
from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from ..experiment import NONLINEARITIES, Experiment
from . import cpu
from .cpu import _pad_rows, _pointer, compiled

SOURCE = Path(__file__).with_name("perturbation_kernel.c")


@dataclass
class ReferenceStep:
    """The reference's values one step of its pixels is built from (float64 parts of its
    double-doubles): per data row (n, WIDTH) its hidden layer's argument a (a_hi + a_lo:
    gain * pre-activation for tanh, the pre-activation for relu), activation h, tanh's
    1 - h^2 (s2), slope d h / d p and dL/dh (pre); per row (n, TARGET_DIM) its residual r and
    output gradient g; its weights and gradients; the layers' rates; and the net's
    constants. Those rows are the ones the step trains on; for a minibatch step, scored
    holds the full batch's (X, a_hi, a_lo, h, s2, r), which its loss is scored on."""

    X: torch.Tensor
    a_hi: torch.Tensor
    a_lo: torch.Tensor
    h: torch.Tensor
    s2: torch.Tensor
    slope: torch.Tensor
    pre: torch.Tensor
    r: torch.Tensor
    g: torch.Tensor
    weights: list
    grads: list
    lrs: list
    gain: float
    out_scale: float
    loss_hi: float
    loss_lo: float
    scored: tuple = None


def supports(exp: Experiment, device) -> bool:
    """The pixels' step and the reference's pass: two layers, the CPU, and a kernel that builds."""
    if torch.device(device).type != "cpu" or exp.depth != 2:
        return False
    return _library(exp.width, exp.target_dim, cpu.ROWS) is not None


# The reference pass's outputs, in the kernel's order: per data row (n, width) or
# (n, target_dim), then per weight, each as hi and lo.
PASS_ROWS = ("p", "h", "s2", "slope", "r", "g", "pre", "g0")
PASS_WEIGHTS = ("grad0", "grad1")


def reference_pass(exp: Experiment, X: torch.Tensor, Y: torch.Tensor, weights: list, consts: list) -> dict:
    """The reference's forward and backward pass over the rows X, Y: {name: (hi, lo)} for
    PASS_ROWS, PASS_WEIGHTS and "loss". weights: [(hi, lo)] per layer; consts: (hi, lo)
    pairs of the gain, the output scale, ln 2 and 1/k! for k = 1 .. 10."""
    lib = _library(exp.width, exp.target_dim, cpu.ROWS)
    X, Y = X.contiguous(), Y.contiguous()  # held here while the kernel reads them
    n, w, o = X.shape[0], exp.width, exp.target_dim
    shapes = {"r": (n, o), "g": (n, o), "grad0": (w, w), "grad1": (w, o), "loss": ()}
    out = {name: torch.zeros(2, *shapes.get(name, (n, w)), dtype=torch.float64)
           for name in (*PASS_ROWS, *PASS_WEIGHTS, "loss")}
    halves = [half.contiguous() for pair in weights for half in pair]
    flat = torch.tensor([float(c) for pair in consts for c in pair], dtype=torch.float64)
    outputs = [_pointer(out[name][i]) for name in (*PASS_ROWS, *PASS_WEIGHTS) for i in (0, 1)]
    lib.zoomer_reference_pass(NONLINEARITIES.index(exp.nonlinearity), n, _pointer(X), _pointer(Y),
                              *map(_pointer, halves), _pointer(flat),
                              *outputs, _pointer(out["loss"]), torch.get_num_threads())
    return {name: (t[0], t[1]) for name, t in out.items()}


def step(exp: Experiment, ref: ReferenceStep, dlrs: torch.Tensor, dW: list, glitch_ratio: float):
    """One step of every pixel: their losses (B,) and glitch flags (B,, bool, judged
    before the step), and their weight differences dW (per layer (B, fan_in, fan_out),
    float64, contiguous) stepped in place. dlrs (B, 2): rates minus the reference's."""
    block = cpu.ROWS  # read once: the padding and the library built for it must agree
    lib = _library(exp.width, exp.target_dim, block)
    B = dlrs.shape[0]
    n, o = ref.r.shape
    rows = [_pad_rows(t, block) for t in (ref.X, ref.a_hi, ref.a_lo, ref.h, ref.s2, ref.slope, ref.pre, ref.r, ref.g)]
    if ref.scored is None:  # the full batch: the loss is scored on the rows the step trains on
        scored, n_scored, scored_rows = rows[:5] + rows[7:8], n, 0
    else:
        scored = [_pad_rows(t, block) for t in ref.scored]
        n_scored, scored_rows = ref.scored[0].shape[0], scored[0].shape[0]
    fixed = [t.contiguous() for t in (*ref.weights, *ref.grads)]
    dlrs = dlrs.contiguous()
    loss, glitched = torch.empty(2, B, dtype=torch.float64)
    failed = lib.zoomer_perturbed_step(
        NONLINEARITIES.index(exp.nonlinearity), rows[0].shape[0], *map(_pointer, rows),
        scored_rows, *map(_pointer, scored + fixed),
        *ref.lrs, ref.gain, ref.out_scale, ref.out_scale * (2.0 / (n * o)), 1.0 / (n_scored * o),
        ref.loss_hi, ref.loss_lo, glitch_ratio, B, _pointer(dlrs), _pointer(dW[0]), _pointer(dW[1]),
        _pointer(loss), _pointer(glitched), torch.get_num_threads(),
    )
    if failed:
        raise MemoryError("the perturbation kernel could not allocate its per-thread workspace")
    return loss, glitched > 0


@functools.lru_cache(maxsize=None)
def _library(width: int, target_dim: int, rows: int):
    lib = compiled(SOURCE, REAL_BITS=64, WIDTH=width, TARGET_DIM=target_dim, ROWS=rows)
    if lib is None:
        return None
    int_, long_, ptr, real = ctypes.c_int, ctypes.c_long, ctypes.c_void_p, ctypes.c_double
    lib.zoomer_reference_pass.restype = None
    lib.zoomer_reference_pass.argtypes = [int_, long_, ptr, ptr, *[ptr] * 4, ptr, *[ptr] * 21, int_]
    lib.zoomer_perturbed_step.restype = int_
    lib.zoomer_perturbed_step.argtypes = [
        int_, long_,  # nonlinearity, n_rows
        *[ptr] * 9,  # X, a_hi, a_lo, h, s2, slope, pre, r, g
        long_, *[ptr] * 6,  # the scored rows: n_scored, X, a_hi, a_lo, h, s2, r
        *[ptr] * 4,  # w0, w1, grad0, grad1
        real, real,  # lr0, lr1
        *[real] * 7,  # gain, out_scale, grad_scale, loss_scale, loss_hi, loss_lo, glitch_ratio
        long_, ptr, ptr, ptr,  # B, dlrs, dw0, dw1
        ptr, ptr, int_,  # loss, glitched, threads
    ]
    return lib

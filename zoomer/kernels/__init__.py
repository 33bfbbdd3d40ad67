"""Fused fast paths behind the engine, each with the same contract as engine.train_chunk.

A kernel module exposes
    supports(exp, device, dtype) -> bool    whether it can train this experiment there
    train(exp, prob, lrs, offsets) -> Tensor  readouts (B,), exactly as the torch path
and `find` picks one. The torch path in engine.py is the fallback for everything else.
"""
from __future__ import annotations

import importlib

BACKENDS = ("auto", "torch", "triton", "cpu")
# Tried in this order by backend="auto"; each entry is a module name in this package.
_FAST = ("triton", "cpu")


def find(backend: str, exp, device, dtype):
    """The kernel's train function for this backend, or None to use the torch path."""
    if backend not in BACKENDS:
        raise ValueError(f"engine.backend must be one of {list(BACKENDS)}, got {backend!r}")
    if backend == "torch":
        return None
    names = _FAST if backend == "auto" else (backend,)
    for name in names:
        module = importlib.import_module(f"{__name__}.{name}")
        if module.supports(exp, device, dtype):
            return module.train
        if backend != "auto":
            raise ValueError(f"engine.backend={backend!r} cannot train this experiment on {device} in {dtype}")
    return None

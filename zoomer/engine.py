"""Where and in what pieces runs train: devices, dtypes, chunks that fit memory, and the
choice per chunk between a fused kernel (kernels/) and the torch path (zoomer.training).
"""
from __future__ import annotations

import logging
import os

import numpy as np
import torch

from . import kernels
from .kernels import cpu_perturbation
from .errors import Refusal
from .experiment import Experiment, Problem
from .training import train_torch
from .window import PERTURBATION

log = logging.getLogger(__name__)

DTYPES = {"float64": torch.float64, "float32": torch.float32}
# Share of the free device memory one chunk may use; the rest is headroom for the
# allocator, the caller and other processes.
MEMORY_SHARE = 0.25
# The torch path on the CPU: a chunk big enough to spread the cost of its many small
# elementwise ops (zoomer.net), small enough to stay near the cache; 64 MiB ran twice as
# fast as 16 MiB (a speed setting, not a memory guess: free memory still caps it).
CPU_WORKING_SET = 64 * 2**20
# A fused CPU kernel call cannot be interrupted: Ctrl-C waits for it. Capping its work at
# about a second of this CPU (1e5 run-steps/s measured on 2 cores) keeps Ctrl-C prompt.
FUSED_CPU_RUN_STEPS_PER_CALL = 2**17
FUSED_CPU_MIN_RUNS = 64  # enough groups of SIMD lanes to keep every core busy


def resolve_device(device=None) -> torch.device:
    """None or "auto" -> CUDA when present, else the CPU; a named device must exist here."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise Refusal(f"engine.device={device!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise Refusal(f"engine.device={device!r}: this machine has no CUDA GPU that torch can use; "
                             "use engine.device=cpu (or auto)")
        if resolved.index is not None and resolved.index >= count:
            raise Refusal(f"engine.device={device!r}: this machine has {count} CUDA GPU(s), "
                             f"cuda:0..cuda:{count - 1}")
    elif resolved.type != "cpu":
        raise Refusal(f"engine.device={device!r} is not supported; use auto, cpu, cuda or cuda:N")
    return resolved


def resolve_dtype(dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        if dtype in DTYPES.values():
            return dtype
    elif dtype in DTYPES:
        return DTYPES[dtype]
    raise Refusal(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")


def free_memory(device: torch.device) -> int:
    """Bytes free right now on the device (CUDA memory, or available RAM)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def bytes_per_run(exp: Experiment, dtype: torch.dtype) -> int:
    """Peak memory of one run inside a chunk: weights, gradients and activations."""
    item = torch.empty((), dtype=dtype).element_size()
    n, w = exp.dataset_size, exp.width
    m = exp.batch_size or 0
    activations = (n + m) * w * (3 * exp.depth + 2) + (n + m) * exp.target_dim * 4
    return item * (4 * exp.n_params + 2 * activations)


def chunk_size(
    exp: Experiment, n_runs: int, device: torch.device, dtype: torch.dtype, fused: bool = False
) -> int:
    """Runs per chunk, from the memory free on the device; a power of two for stable shapes.

    A fused kernel keeps its working set per group of runs, not per chunk, so the CPU cache
    target does not apply to it; on the CPU its calls are kept about a second long so that
    Ctrl-C is answered promptly.
    """
    per_run = bytes_per_run(exp, dtype)
    budget = MEMORY_SHARE * free_memory(device)
    if device.type == "cpu" and not fused:
        budget = min(budget, CPU_WORKING_SET)
    fits = int(budget // per_run)
    if device.type == "cpu" and fused:
        fits = min(fits, max(FUSED_CPU_MIN_RUNS, FUSED_CPU_RUN_STEPS_PER_CALL // exp.steps))
    if fits < 1:
        raise Refusal(
            f"one training run needs {per_run / 2**20:.1f} MiB but only "
            f"{budget / 2**20:.1f} MiB may be used on {device}; reduce experiment.width or n_data"
        )
    return min(1 << (fits.bit_length() - 1), 1 << max(0, (n_runs - 1).bit_length()))


def computed_by(backend: str, exp: Experiment, device: torch.device, dtypes) -> dict:
    """What trains the runs here, as metadata.json and the frame store record it: the device
    class and, per float type, the backend that actually runs (a kernel's name, or "torch",
    also where a kernel failed its probe). Backends agree closely but not bit for bit."""
    names = {}
    for dtype in dtypes:
        if dtype == PERTURBATION:  # float64 differences from a double-double reference (zoomer.perturbation)
            compiled = backend != "torch" and cpu_perturbation.supports(exp, device)
            names[dtype] = PERTURBATION if compiled else f"{PERTURBATION}-torch"
            continue
        fast = kernels.find(backend, exp, device, dtype)
        names[str(dtype).removeprefix("torch.")] = "torch" if fast is None else fast.__module__.rsplit(".", 1)[-1]
    return {"device": device.type, "backend": names}


def train_chunk(
    exp: Experiment,
    prob: Problem,
    lrs: torch.Tensor,
    offsets: torch.Tensor,
    compact: bool = True,
    backend: str = "auto",
) -> torch.Tensor:
    """Train one chunk of runs (B,) and return their readouts, on prob's device and dtype.

    lrs is (B, depth), offsets (B,) are added to the input-layer initial weights. With
    `compact`, runs whose loss went non-finite are dropped from the batch every
    COMPACT_EVERY steps; their scores are already decided, so results are unchanged.
    A fused kernel (kernels/) trains the chunk instead where one supports it.
    """
    fast = kernels.find(backend, exp, prob.X.device, prob.X.dtype)
    if fast is not None:
        return fast(exp, prob, lrs, offsets)
    return train_torch(exp, prob, lrs, offsets, compact)


def train_grid(
    exp: Experiment,
    x: np.ndarray,
    y: np.ndarray,
    device=None,
    dtype=torch.float64,
    progress=None,
    compact: bool = True,
    backend: str = "auto",
) -> np.ndarray:
    """Readouts of the runs at axis coordinates (x[k], y[k]), chunked to fit the device.

    progress, if given, is called with the number of runs finished after each chunk.
    """
    device, dtype = resolve_device(device), resolve_dtype(dtype)
    fused = kernels.find(backend, exp, device, dtype) is not None  # refuses an unfit backend up front
    x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    lrs, offsets = exp.hparams(torch.from_numpy(x), torch.from_numpy(y))
    prob = exp.problem().to(device, dtype)
    n = x.size
    size = chunk_size(exp, n, device, dtype, fused)
    out = np.empty(n, dtype=np.float64)
    start = 0
    while start < n:
        sl = slice(start, min(start + size, n))
        try:
            scores = train_chunk(
                exp, prob, lrs[sl].to(device, dtype), offsets[sl].to(device, dtype), compact, backend
            )
        except torch.cuda.OutOfMemoryError:
            if size == 1:
                raise
            size //= 2
            _warn_once(f"out of GPU memory: chunks halved to {size} runs and retried")
            torch.cuda.empty_cache()
            continue
        out[sl] = scores.to("cpu", torch.float64).numpy()
        if progress is not None:
            progress(sl.stop - sl.start)
        start = sl.stop
    return out


_warned: set = set()


def _warn_once(message: str) -> None:
    if message.split(":")[0] not in _warned:
        _warned.add(message.split(":")[0])
        log.warning(message)

"""Compiled CPU kernel: cpu_kernel.c, one SIMD lane per training run (see its header).

The C source is built with the system compiler at first use, once per (precision, width,
target_dim, depth), into a per-user cache directory (cache_dir()) and loaded with ctypes:
no torch headers, so a build takes about a second. Beside each library a record says what
it was built from (the source's hash, the compiler command and version, the CPU) and the
library's own hash; a library whose record does not match, or whose bytes changed since,
is built again before it is loaded. Without a working compiler or without the source
supports() says no (with one warning) and the torch path trains instead.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import os
import platform
import subprocess
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from ..atomic import AtomicFile, write_atomic
from ..experiment import NONLINEARITIES, Experiment, Problem
from ..score import finish

SOURCE = Path(__file__).with_name("cpu_kernel.c")
HEADER = Path(__file__).with_name("lanes.h")  # included by every kernel's source
FLAGS = ("-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=gnu11")
BITS = {torch.float64: 64, torch.float32: 32}
# Data rows per block of the kernel's pass: two of its 6-row tiles of matrix products
# (and a multiple of its TANH_WAYS). The data is zero-padded to a multiple of it; a zero
# row adds exactly nothing.
ROWS = 12

_warned = False


def supports(exp: Experiment, device, dtype) -> bool:
    """The loss readout of any net on the CPU in float32/64, once the kernel has built."""
    if torch.device(device).type != "cpu" or dtype not in BITS or exp.readout != "loss":
        return False
    return _library(BITS[dtype], *_shape(exp), ROWS) is not None


def train(exp: Experiment, prob: Problem, lrs: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Readouts (B,) of the runs with these hyperparameters, as engine.train_chunk."""
    return finish(exp.steps, **running_sums(exp, prob, lrs, offsets))


def running_sums(exp: Experiment, prob: Problem, lrs: torch.Tensor, offsets: torch.Tensor,
                 freeze: bool = True, frozen_at: torch.Tensor | None = None) -> dict:
    """The kernel's running sums of each run (zoomer.score.finish's l0, sum_v, sum_inv,
    tail and dead_at, the step its loss turned non-finite or exp.steps): what a score is
    made of, and how many steps each run took.

    A tanh run whose hidden units have all saturated trains only its output layer from then
    on, the same bits at a fraction of the cost (cpu_kernel.c, Frozen); `frozen_at` (B,
    int64), if given, is filled with the step each run did so (exp.steps: never), and
    `freeze=False` trains every layer to the end (for the tests and benchmarks)."""
    dtype = prob.X.dtype
    rows = ROWS  # read once: the padding and the library built for it must agree
    lib = _library(BITS[dtype], *_shape(exp), rows)
    B = lrs.shape[0]
    X, Y = _pad_rows(prob.X, rows), _pad_rows(prob.Y, rows)
    batch_X = batch_Y = None
    if prob.batches is not None:
        batch_X, batch_Y = _pad_rows(prob.X[prob.batches], rows), _pad_rows(prob.Y[prob.batches], rows)
    init = [w.contiguous() for w in prob.weights]
    lrs = lrs.to(dtype).contiguous()
    offsets = offsets.to(dtype).contiguous()
    l0, sum_v, sum_inv, tail = torch.empty(4, B, dtype=dtype)
    dead_at = torch.empty(B, dtype=torch.int64)
    if frozen_at is None:
        frozen_at = torch.empty(B, dtype=torch.int64)
    failed = lib.zoomer_train(
        NONLINEARITIES.index(exp.nonlinearity),
        exp.steps,
        exp.dataset_size,
        X.shape[0],
        exp.batch_size or 0,
        0 if batch_X is None else batch_X.shape[1],
        *map(_pointer, (X, Y, batch_X, batch_Y)),
        (ctypes.c_void_p * len(init))(*map(_pointer, init)),
        *map(_pointer, (lrs, offsets)),
        int(exp.offset_every_step),
        int(freeze),
        B,
        *map(_pointer, (l0, sum_v, sum_inv, tail, dead_at, frozen_at)),
        torch.get_num_threads(),
    )
    if failed:
        raise MemoryError("the CPU kernel could not allocate its per-thread workspace")
    return {"l0": l0, "sum_v": sum_v, "sum_inv": sum_inv, "tail": tail, "dead_at": dead_at}


def lanes(dtype: torch.dtype = torch.float64) -> int:
    """Runs the kernel trains side by side in one SIMD vector on this CPU."""
    return _library(BITS[dtype], *_shape(Experiment()), ROWS).zoomer_lanes()


def tanh(x: torch.Tensor) -> torch.Tensor:
    """The kernel's vectorised tanh, applied to a 1-D tensor (for the accuracy tests)."""
    lib = _library(BITS[x.dtype], *_shape(Experiment()), ROWS)
    x = x.contiguous()
    out = torch.empty_like(x)
    lib.zoomer_tanh(_pointer(x), _pointer(out), x.numel())
    return out


def _shape(exp: Experiment) -> tuple[int, int, int]:
    return exp.width, exp.target_dim, exp.depth


def _pad_rows(t: torch.Tensor, rows: int) -> torch.Tensor:
    """Zero rows appended along dim -2 up to a multiple of `rows`, contiguous."""
    return F.pad(t, (0, 0, 0, -t.shape[-2] % rows)).contiguous()


def _pointer(t):
    """The tensor's data address, or NULL for None."""
    return None if t is None else ctypes.c_void_p(t.data_ptr())


@functools.lru_cache(maxsize=None)
def _library(bits: int, width: int, target_dim: int, depth: int, rows: int):
    """The loaded kernel for this precision, shape and block of data rows, built if not
    cached; None if it cannot be."""
    lib = compiled(SOURCE, REAL_BITS=bits, WIDTH=width, TARGET_DIM=target_dim, DEPTH=depth, ROWS=rows)
    if lib is None:
        return None
    int_, long_, ptr = ctypes.c_int, ctypes.c_long, ctypes.c_void_p
    lib.zoomer_train.restype = int_
    lib.zoomer_train.argtypes = [
        int_, int_,  # nonlinearity, steps
        long_, long_, long_, long_,  # n_data, n_rows, batch_size, batch_rows
        ptr, ptr, ptr, ptr,  # X, Y, batch_X, batch_Y
        ctypes.POINTER(ptr),  # init: one pointer per layer
        ptr, ptr, int_, int_, long_,  # lrs, offsets, offset_every_step, may_freeze, B
        ptr, ptr, ptr, ptr, ptr, ptr,  # l0, sum_v, sum_inv, tail, dead_at, frozen_at
        int_,  # threads
    ]
    lib.zoomer_lanes.restype = int_
    lib.zoomer_lanes.argtypes = []
    lib.zoomer_tanh.restype = None
    lib.zoomer_tanh.argtypes = [ptr, ptr, long_]
    return lib


def compiled(source: Path, **shape) -> ctypes.CDLL | None:
    """A C source of this folder built for `shape` (its -D definitions) into the cache and
    loaded; None, with one warning, if it cannot be built or loaded."""
    command = [os.environ.get("CC", "gcc"), *FLAGS, *(f"-D{k}={v}" for k, v in shape.items())]
    try:
        build = _build_record(source, command)
        path = cache_dir() / f"{source.stem}_{_sha256(json.dumps(build, sort_keys=True).encode())[:16]}.so"
        if not _matches_record(path, build):
            _build(source, command, path, build)
        return ctypes.CDLL(str(path))
    except (OSError, subprocess.CalledProcessError) as err:
        _warn_once(err)
        return None


def _build_record(source: Path, command: list[str]) -> dict:
    """What a built library must have been built from: the hash of its source and of the
    header the sources share, the compiler command, the compiler's version and the CPU
    (-march=native). Raises OSError without the sources or the compiler."""
    version = subprocess.run([command[0], "--version"], check=True, capture_output=True, text=True).stdout
    sources = source.read_bytes() + HEADER.read_bytes()
    return {"source_sha256": _sha256(sources), "command": command,
            "compiler": version.strip().splitlines()[0] if version.strip() else "", "cpu": _cpu_identity()}


def _matches_record(path: Path, build: dict) -> bool:
    """Whether the cached library was built from `build` and is byte for byte what was built
    (a stale, half-written or tampered file is not)."""
    try:
        record = json.loads(_record_path(path).read_text())
        return record.get("build") == build and record.get("library_sha256") == _sha256(path.read_bytes())
    except (OSError, ValueError):
        return False


def _build(source: Path, command: list[str], path: Path, build: dict) -> None:
    """Compile into the cache and record what from; each file is renamed into place whole
    (zoomer.atomic), so concurrent builds never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with AtomicFile(path, extension=True) as out:
        subprocess.run([*command, "-o", str(out.temp), str(source)], check=True, capture_output=True, text=True)
        library = _sha256(out.temp.read_bytes())
    record = json.dumps({"build": build, "library_sha256": library}, indent=1)
    write_atomic(_record_path(path), lambda f: f.write(record.encode()))


def _record_path(path: Path) -> Path:
    return path.with_suffix(".json")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cache_dir() -> Path:
    """Where built kernels are kept: $ZOOMER_CACHE_DIR, else $XDG_CACHE_HOME/zoomer, else
    ~/.cache/zoomer (per user)."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(os.environ.get("ZOOMER_CACHE_DIR", Path(root) / "zoomer"))


def _cpu_identity() -> str:
    """What -march=native compiles for: the CPU model and its feature flags."""
    try:
        with open("/proc/cpuinfo") as f:
            lines = [line for line in f if line.startswith(("model name", "flags"))]
        return "".join(sorted(set(lines)))
    except OSError:
        return platform.processor() or platform.machine()


def _warn_once(err: Exception) -> None:
    global _warned
    if not _warned:
        detail = getattr(err, "stderr", None) or str(err)
        warnings.warn(
            f"zoomer's CPU kernel could not be built or loaded, using the torch path: {detail.strip()[:500]}"
        )
        _warned = True

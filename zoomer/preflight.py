"""Every check a render can make before its long work: a mistake costs seconds, not hours.

Ranges and choices are the schemas' own (zoomer.config, checked as the config becomes
objects); here are the checks that need more: the backend, the target inside the
condition's window, the depth, then the machine (ffmpeg, writable directories, disk
space), then the one check that trains a few runs: a manual target must have both classes
near it.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import torch

from . import kernels
from .config import ZoomConfig
from .boundary import converged
from .dimension import edges
from .engine import train_grid
from .errors import Refusal
from .landscape import landscape
from .plan import Layout, check_decades
from .precision import deep_or_float64, dtypes
from .window import PERTURBATION, Window, coordinate, point_json

# A manual target's last frame, sampled at NEAR_SIDE pixels a side, must hold both classes.
NEAR_SIDE = 9
# Where it does not, the nearest boundary point is looked for at this resolution.
SUGGEST_SIDE = 48


def check_backend(backend: str, exp, device: torch.device, precision: str) -> None:
    """Refuse a backend that cannot train this experiment here, in any dtype the render uses."""
    if backend not in kernels.BACKENDS:
        raise Refusal(f"engine.backend must be one of {list(kernels.BACKENDS)}, got {backend!r}")
    if backend in ("auto", "torch"):
        return
    if precision == PERTURBATION:
        raise Refusal(f"engine.backend={backend} trains float32 and float64 runs; engine.precision={PERTURBATION} "
                      "trains its differences with its own compiled CPU kernel (engine.backend=auto) or through "
                      "torch (engine.backend=torch)")
    for dtype in dtypes(precision):
        if dtype != PERTURBATION:  # auto's deep frames train by perturbation, which picks its own path
            kernels.find(backend, exp, device, dtype)


def check_target_point(zoom: ZoomConfig, condition: Window) -> tuple[float, float] | None:
    """The point a zoom is aimed at (None: search one), which must lie in the condition's window."""
    if zoom.target == "auto":
        return None
    if zoom.target == "center":
        return condition.center
    return check_inside(zoom.target, condition, "zoom.target")


def check_inside(target, condition: Window, key: str) -> tuple:
    """A point given as [x, y] (numbers or decimal strings), which must lie in the condition's window."""
    x, y = (coordinate(v) for v in target)
    (x0, x1), (y0, y1) = condition.x_bounds, condition.y_bounds
    if not (x0 <= x <= x1 and y0 <= y <= y1):
        raise Refusal(f"{key}=[{x:.6g}, {y:.6g}] is outside the experiment's window x {list(condition.x_bounds)}, "
                      f"y {list(condition.y_bounds)}; choose a point inside it (or set experiment.window)")
    return x, y


def check_decades_reachable(lay: Layout, condition: Window, point, precision: str) -> None:
    """The depth checks, before the search: the zoom goes in (a final width below the
    start window's), and not too deep for engine.precision at the manual target, or else at the
    condition window's corner farthest from zero (the coarsest spacing a target can meet);
    and every frame's hyperparameters within what engine.precision trains (the start window
    holds the highest)."""
    lay.start.check_range(precision)
    if not lay.decades > 0:
        raise Refusal(f"zoom.final_width={10**-lay.decades * lay.start.width:.6g} is not narrower than the start "
                      f"window ({lay.start.width:.6g} wide, log10 units): the video would zoom out; set "
                      "zoom.final_width below that, or zoom.decades instead")
    if point is None:
        point = condition.farthest_corner
    check_decades(lay, point, precision)


def ffmpeg_exe() -> str:
    """The bundled ffmpeg's path, or a clear error if it cannot be found."""
    import imageio_ffmpeg

    try:
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as e:
        exe, why = None, str(e)
    else:
        why = f"{exe} is not an executable file"
    if exe is None or not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        raise Refusal(f"ffmpeg is not available ({why}); reinstall imageio-ffmpeg or fix IMAGEIO_FFMPEG_EXE")
    return exe


def check_writable(directory: Path) -> None:
    """Fail before compute if an output directory cannot be created or written."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".zoomer-write-test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as e:
        raise Refusal(f"cannot write to the output directory {directory}: {e.strerror}") from None


def check_store_exists(store_dir: Path) -> None:
    """Assembling reads a store that shards filled: a mistyped path must not become a new one."""
    if not (store_dir / "manifest.json").is_file():
        raise Refusal(f"render.store_dir={str(store_dir)!r} holds no frame store (no manifest.json); "
                         "point it at the directory the shards computed into")


def check_disk_space(directory: Path, n_frames: int, size) -> None:
    """Fail before compute if the frames still to compute cannot fit on the store's disk
    (a store that holds them all, to re-encode, needs nothing more)."""
    stored = sum(1 for _ in directory.glob("*.npy"))
    need = max(0, n_frames - stored) * size[0] * size[1] * 8 * 1.05 + 2**20
    free = shutil.disk_usage(directory).free
    if need > free:
        raise Refusal(
            f"the frame store {directory} needs about {_bytes(need)} but its disk has {_bytes(free)} free; "
            "free space or set render.store_dir elsewhere"
        )


def _bytes(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} bytes"


def last_frame_classes(exp, lay: Layout, point, device, precision: str) -> np.ndarray:
    """Which runs converge in a coarse sample (NEAR_SIDE a side) of the zoom's last frame."""
    last = lay.start.zoom(10**lay.decades, point)
    dtype = deep_or_float64(last, (NEAR_SIDE, NEAR_SIDE)) if precision == "auto" else precision
    return converged(landscape(exp, last, (NEAR_SIDE, NEAR_SIDE), device=device, dtype=dtype))


def check_near_boundary(exp, lay: Layout, condition: Window, point, device, precision: str,
                        panel: str | None = None, paper_steps: int | None = None) -> None:
    """A manual target's last frame must hold both classes (else the video ends in one flat
    colour); if it does not, suggest the nearest boundary point, refined to the zoom's last
    frame and checked, so that following the suggestion works. With paper=`panel` the point
    is the panel's, not the user's: there the training's length (paper_steps in the paper) is
    what to change."""
    dtype = "float64" if precision == "auto" else precision
    classes = last_frame_classes(exp, lay, point, device, precision)
    if classes.any() and not classes.all():
        return
    what = "converge" if classes.all() else "diverge"
    if panel is not None:
        raise Refusal(f"paper={panel}: every run of its last frame {what}s at experiment.steps={exp.steps}; the "
                      f"paper drew this panel at {paper_steps} steps: use quality=paper (or more steps)")
    overview = landscape(exp, condition, (SUGGEST_SIDE, SUGGEST_SIDE), device=device, dtype=dtype, guess=4)
    found = np.argwhere(edges(overview))
    if not found.size:
        raise Refusal(f"zoom.target={point_json(point)}: every run near it and in the whole window {what}s; "
                         "this experiment shows no boundary there")
    xs, ys = condition.axes((SUGGEST_SIDE, SUGGEST_SIDE))
    middles = np.stack([(xs[found[:, 1]] + xs[found[:, 1] + 1]) / 2, (ys[found[:, 0]] + ys[found[:, 0] + 1]) / 2], 1)
    i, j = found[np.argmin(np.hypot(middles[:, 0] - float(point[0]), middles[:, 1] - float(point[1])))]
    corners = [((xs[j + b], ys[i + a]), bool(converged(overview[i + a, j + b]))) for a in (0, 1) for b in (0, 1)]
    inside = next(c for c, ok in corners if ok)
    outside = next(c for c, ok in corners if not ok)
    last_width = lay.start.width / 10**lay.decades
    near = _class_change(exp, inside, outside, last_width / 4, device)
    digits = max(4, int(np.ceil(-np.log10(last_width))) + 2)
    shown = f"zoom.target=[{near[0]:.{digits}f},{near[1]:.{digits}f}]"
    near_classes = last_frame_classes(exp, lay, near, device, precision)
    if near_classes.any() and not near_classes.all():
        suggestion = f"nearby, {shown} is on it (its last frame holds both classes)"
    else:
        suggestion = f"the nearest boundary point is about {shown} (its own last frame still holds one class)"
    raise Refusal(f"zoom.target={point_json(point)} is not on the boundary: every run of the last frame {what}s; "
                  f"{suggestion}, or use zoom=auto to search one")


def _class_change(exp, inside, outside, within: float, device) -> tuple[float, float]:
    """A point within `within` of where training turns from converging (at `inside`) to
    diverging (at `outside`) on the segment between them, by bisection: one run a halving."""
    a, b = np.asarray(inside, float), np.asarray(outside, float)
    while np.hypot(*(b - a)) > within:
        mid = (a + b) / 2
        if np.array_equal(mid, a) or np.array_equal(mid, b):  # float64 cannot halve it further
            break
        if converged(train_grid(exp, mid[:1], mid[1:], device=device)[0]):
            a = mid
        else:
            b = mid
    return tuple(float(v) for v in (a + b) / 2)

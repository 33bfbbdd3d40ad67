"""The pipeline: config -> target -> frame plan -> engine -> store -> colour -> video.

Raw scores are the artefact: every computed frame goes to the FrameStore first, and
colouring and encoding read it back, so a render resumes after a crash, spreads over
shards, and re-colours without recomputing.

Two frame strategies: `exact` computes every frame's grid; `keyframes` computes one frame
per zoom doubling and draws the frames between by resampling the two keyframes around
them, cross-fading across each doubling (how the paper's videos were made; far cheaper).
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch
from tqdm import tqdm

from . import engine
from .color import ColorConfig, Reference, color_frame, smooth_references, supersample_colors
from .experiment import Experiment
from .guess import check_step, trained_pixels
from .precision import PRECISIONS, resolve_precision
from .provenance import provenance
from .store import FrameStore, write_atomic
from .target import Target, find_target
from .video import VideoConfig, VideoWriter, draw_overlay, overlay_lines, save_png
from .window import Window, max_depth, zoom_path

log = logging.getLogger(__name__)

FRAME_STRATEGIES = ("auto", "exact", "keyframes")


@dataclass
class ZoomConfig:
    """Where and how deep to zoom (Hydra group `zoom`)."""

    target: Optional[List[float]] = None  # [x, y] in axis units; null = search automatically
    depth: float = 4.0  # decades of magnification from the start window
    final_width: Optional[float] = None  # the last frame's width in axis units (sets depth)
    seed: int = 0  # which automatic target
    ease: float = 0.1  # share of the video spent speeding up (and slowing down) the zoom
    search_resolution: int = 32  # pixels per side of each search level
    zoom_per_level: float = 4.0  # magnification between search levels


@dataclass
class EngineConfig:
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "float64"  # float64 | float32 | auto (float32 where measured to agree)
    backend: str = "auto"


@dataclass
class RenderConfig:
    frames: str = "auto"  # exact | keyframes | auto (exact on CUDA, keyframes on the CPU)
    keyframe_scale: float = 1.0  # keyframe pixels per video pixel (per side)
    guess: int = 8  # solid guessing: train every guess-th pixel, then only near the boundary; 1 = all
    mode: str = "all"  # all | compute (frames only) | assemble (encode from the store)
    num_shards: int = 1
    shard: int = 0  # this process computes frames i with i % num_shards == shard
    store_dir: Optional[str] = None  # default: <run dir>/frames


@dataclass
class Plan:
    """What a render computes: the target, the frames' windows and their pixel size."""

    target: Target
    strategy: str
    windows: list  # computed frames (keyframes or every frame)
    size: tuple  # (H, W) of each computed frame
    frame_windows: list  # every video frame's window


def validate(zoom: ZoomConfig, eng: EngineConfig, rnd: RenderConfig, video: VideoConfig, color: ColorConfig):
    """Check every setting before any compute; errors name the setting and what is allowed."""
    video.validate()
    color.validate()
    if eng.precision not in PRECISIONS:
        raise ValueError(f"engine.precision must be one of {list(PRECISIONS)}, got {eng.precision!r}")
    engine.resolve_device(eng.device)
    if rnd.frames not in FRAME_STRATEGIES:
        raise ValueError(f"render.frames must be one of {list(FRAME_STRATEGIES)}, got {rnd.frames!r}")
    if rnd.mode not in ("all", "compute", "assemble"):
        raise ValueError(f"render.mode must be one of ['all', 'compute', 'assemble'], got {rnd.mode!r}")
    check_step(rnd.guess)
    if not rnd.keyframe_scale > 0:
        raise ValueError(f"render.keyframe_scale must be > 0, got {rnd.keyframe_scale!r}")
    if not (rnd.num_shards >= 1 and 0 <= rnd.shard < rnd.num_shards):
        raise ValueError(
            f"render.shard must be in 0..num_shards-1 and render.num_shards >= 1, "
            f"got shard={rnd.shard}, num_shards={rnd.num_shards}"
        )
    if not 0 <= zoom.ease <= 0.5:
        raise ValueError(f"zoom.ease must be in [0, 0.5] (share of the video spent speeding up), got {zoom.ease!r}")
    if not (isinstance(zoom.search_resolution, int) and zoom.search_resolution >= 8):
        raise ValueError(f"zoom.search_resolution must be an integer >= 8, got {zoom.search_resolution!r}")
    if not zoom.zoom_per_level > 1:
        raise ValueError(f"zoom.zoom_per_level must be > 1, got {zoom.zoom_per_level!r}")
    if zoom.target is not None and len(zoom.target) != 2:
        raise ValueError(f"zoom.target must be [x, y] in axis units or null, got {list(zoom.target)!r}")
    if zoom.final_width is None and not zoom.depth > 0:
        raise ValueError(f"zoom.depth must be > 0 decades, got {zoom.depth!r}")
    if zoom.final_width is not None and not zoom.final_width > 0:
        raise ValueError(f"zoom.final_width must be > 0, got {zoom.final_width!r}")


def start_window(window_cfg, video: VideoConfig) -> Window:
    """The experiment's start window, reshaped to the video's aspect ratio (no stretching)."""
    start = Window.from_bounds(tuple(window_cfg.x), tuple(window_cfg.y))
    return start.with_aspect(video.width / video.height)


def zoom_depth(zoom: ZoomConfig, start: Window) -> float:
    return math.log10(start.width / zoom.final_width) if zoom.final_width is not None else float(zoom.depth)


def frame_strategy(rnd: RenderConfig, device: torch.device) -> str:
    if rnd.frames != "auto":
        return rnd.frames
    return "exact" if device.type == "cuda" else "keyframes"


def compute_size(video: VideoConfig, color: ColorConfig, scale: float = 1.0) -> tuple[int, int]:
    k = color.supersample
    return (max(2, round(video.height * scale)) * k, max(2, round(video.width * scale)) * k)


def check_depth(start: Window, point, depth: float, size) -> None:
    """Refuse, before any compute, a depth at which neighbouring pixels merge in float64."""
    try:
        start.zoom(10**depth, center=point).check_resolution(size)
    except ValueError as e:
        deepest = max_depth(start, size, point)
        raise ValueError(
            f"zoom.depth={depth:.3g} decades is too deep for float64 at {size[1]}x{size[0]} "
            f"pixels around {tuple(point)}: at most about {deepest:.1f} decades ({e})"
        ) from None


def make_plan(exp, start, zoom, rnd, video, color, device, dtype, store: Optional[FrameStore]) -> Plan:
    """Find (or read back) the target and lay out the frames to compute."""
    depth = zoom_depth(zoom, start)
    strategy = frame_strategy(rnd, device)
    if strategy == "exact":
        size = compute_size(video, color)
    else:  # odd sides: every other pixel of keyframe k+1 is then a pixel of keyframe k
        size = tuple(side | 1 for side in compute_size(video, color, rnd.keyframe_scale))
    if zoom.target is not None:
        check_depth(start, zoom.target, depth, size)
    target = _target(exp, start, zoom, depth, device, dtype, store)
    check_depth(start, target.point, depth, size)
    frame_windows = zoom_path(start, target.point, depth, video.n_frames, zoom.ease)
    if strategy == "exact":
        windows = frame_windows
    else:
        # One keyframe per doubling that the zoom completes; the frames past the last one
        # (less than a doubling) magnify it a little rather than pay for a deeper keyframe.
        doublings = math.floor(depth * math.log2(10) + 1e-9)
        windows = [start.zoom(2.0**k, center=target.point) for k in range(doublings + 1)]
    return Plan(target, strategy, windows, size, frame_windows)


def _target(exp, start, zoom: ZoomConfig, depth, device, dtype, store) -> Target:
    """The manual target, the one a shard before us found, or a new search."""
    if zoom.target is not None:
        point = tuple(float(v) for v in zoom.target)
        return Target(point, (start.zoom(1.0, point), start.zoom(10**depth, point)), depth)
    saved = store.read_json("target.json") if store is not None else None
    if saved is not None:
        levels = tuple(Window.from_bounds(tuple(w["x"]), tuple(w["y"])) for w in saved["levels"])
        return Target(tuple(saved["point"]), levels, saved["depth"])
    log.info("searching a zoom target %.1f decades deep (seed %d)", depth, zoom.seed)
    with _bar("target search") as bar:
        target = find_target(
            exp, start, depth, seed=zoom.seed, resolution=zoom.search_resolution,
            zoom_per_level=zoom.zoom_per_level, device=device, dtype=dtype, progress=bar.update,
        )
    if store is not None:
        store.write_json("target.json", target.to_dict())
    return target


def _bar(desc: str, total: Optional[int] = None, unit: str = "run"):
    """A progress bar with ETA on a terminal; silent when output goes to a file or a pipe."""
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, mininterval=1.0, dynamic_ncols=True,
                disable=None)


def frame_key(store: FrameStore, window: Window, size) -> str:
    return store.key({"window": [window.cx, window.cy, window.half_w, window.half_h], "size": list(size)})


def compute_frames(exp, plan: Plan, store: FrameStore, rnd: RenderConfig, device, dtype, backend) -> dict:
    """Compute this shard's missing frames into the store; returns counts for the log.

    Keyframes go deepest first: keyframe k+1 covers the middle quarter of keyframe k at
    twice its resolution, so the runs it trained there are not trained again.
    """
    mine = [i for i in range(len(plan.windows)) if i % rnd.num_shards == rnd.shard]
    todo = [i for i in mine if not store.has(frame_key(store, plan.windows[i], plan.size))]
    if plan.strategy == "keyframes":
        todo.reverse()
    runs = len(todo) * plan.size[0] * plan.size[1]
    log.info(
        "%s: %d of this shard's %d frames to compute (%d already stored), %d x %d px, %d runs",
        plan.strategy, len(todo), len(mine), len(mine) - len(todo), plan.size[1], plan.size[0], runs,
    )
    started = time.perf_counter()
    with _bar("frames", runs) as bar:
        for n, i in enumerate(todo, 1):
            window = plan.windows[i]
            known = _runs_from_next_keyframe(exp, plan, store, i, dtype, rnd.guess)
            scores = engine.landscape(exp, window, plan.size, device=device, dtype=dtype,
                                      progress=bar.update, backend=backend, guess=rnd.guess, known=known)
            store.save(frame_key(store, window, plan.size), scores)
            elapsed = time.perf_counter() - started
            log.info("frame %d stored (%d/%d), %.0f s elapsed, ETA %.0f s",
                     i, n, len(todo), elapsed, elapsed / n * (len(todo) - n))
    return {"computed": len(todo), "reused": len(mine) - len(todo)}


def _runs_from_next_keyframe(exp, plan: Plan, store: FrameStore, k: int, dtype, guess: int):
    """Keyframe k's pixels that keyframe k+1, if stored, already trained (NaN elsewhere)."""
    if plan.strategy != "keyframes" or k + 1 >= len(plan.windows):
        return None
    inner = frame_key(store, plan.windows[k + 1], plan.size)
    same_dtype = len({resolve_precision(dtype, exp, plan.windows[j], plan.size) for j in (k, k + 1)}) == 1
    if not (store.has(inner) and same_dtype):
        return None
    scores = store.load(inner)
    trained = trained_pixels(scores, guess)
    (h, w), known = plan.size, np.full(plan.size, np.nan)
    # Pixel (i, j) of keyframe k is pixel (2i - (h-1)/2, 2j - (w-1)/2) of keyframe k+1.
    i = np.arange(-(-(h - 1) // 4), 3 * (h - 1) // 4 + 1)
    j = np.arange(-(-(w - 1) // 4), 3 * (w - 1) // 4 + 1)
    ii, jj = np.ix_(2 * i - (h - 1) // 2, 2 * j - (w - 1) // 2)
    known[np.ix_(i, j)] = np.where(trained[ii, jj], scores[ii, jj], np.nan)
    return known


def missing_frames(plan: Plan, store: FrameStore) -> list[int]:
    return [i for i, w in enumerate(plan.windows) if not store.has(frame_key(store, w, plan.size))]


def encode(exp, plan: Plan, store: FrameStore, video: VideoConfig, color: ColorConfig, path: Path, poster: Path):
    """Colour the stored frames and stream them to the video file; writes a poster PNG."""
    # Frames are read twice (references first, then colours) so no render holds them all.
    load = lambda i: store.load(frame_key(store, plan.windows[i], plan.size))  # noqa: E731
    refs = [Reference.from_scores(load(i), color.n_quantiles) for i in range(len(plan.windows))]
    if plan.strategy == "exact":
        refs = smooth_references(refs, color.smoothing_frames)
        frames = (color_frame(load(i), refs[i], color, exp.readout) for i in range(len(plan.windows)))
    else:
        per_doubling = video.n_frames / max(1, len(plan.windows) - 1)
        refs = smooth_references(refs, color.smoothing_frames / per_doubling)
        frames = _keyframe_frames(exp, plan, load, refs, video, color)
    start = plan.frame_windows[0]
    poster_at = (2 * video.n_frames) // 3
    with VideoWriter(path, video) as writer, _bar("encode", video.n_frames, "frame") as bar:
        for i, frame in enumerate(frames):
            if video.overlay:
                window = plan.frame_windows[i]
                frame = draw_overlay(frame, overlay_lines(start.width / window.width, window.center, video.caption))
            writer.write(frame)
            if i == poster_at:
                save_png(poster, frame)
            bar.update()


def _keyframe_frames(exp, plan: Plan, load, refs, video: VideoConfig, color: ColorConfig):
    """Every video frame, resampled from the two keyframes that bracket its magnification.

    Keyframe k shows the target at magnification 2**k, all windows share the target as
    centre, so a frame is keyframe k scaled up (it covers the whole frame) with keyframe
    k+1 scaled down over the middle, faded in as the zoom crosses the doubling. Both are
    coloured against one reference, the frame's own (blended between the two keyframes'
    by the same fade), so the inset shows no edge and the palette moves smoothly.
    """
    start = plan.frame_windows[0]
    k_ss = color.supersample
    out_size = (video.height * k_ss, video.width * k_ss)
    colour_only = ColorConfig(**{**color.__dict__, "supersample": 1})
    cache: dict[int, np.ndarray] = {}

    def keyframe(k: int, reference) -> torch.Tensor:
        if k not in cache:
            if len(cache) > 2:  # frames only move forward: older keyframes are done with
                cache.clear()
            cache[k] = load(k)
        rgb = color_frame(cache[k], reference, colour_only, exp.readout)
        return torch.from_numpy(rgb.astype(np.float32)).permute(2, 0, 1)[None]

    last = len(plan.windows) - 1
    for window in plan.frame_windows:
        level = max(0.0, math.log2(start.width / window.width))
        if level >= last:  # the deepest keyframe alone, magnified by less than 2x
            frame = _resample(keyframe(last, refs[last]), window.width / plan.windows[last].width, out_size)
        else:
            k = int(math.floor(level))
            fade = level - k
            reference = refs[k].blend(refs[k + 1], fade)
            lower = _resample(keyframe(k, reference), window.width / plan.windows[k].width, out_size)
            upper, covered = _resample(keyframe(k + 1, reference), window.width / plan.windows[k + 1].width,
                                       out_size, True)
            weight = fade * covered
            frame = lower * (1 - weight) + upper * weight
        rgb = frame[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
        yield supersample_colors(rgb, k_ss)


def _resample(image: torch.Tensor, scale: float, size, coverage: bool = False):
    """Sample a centred keyframe at `scale` x its extent onto a (H, W) grid (bilinear).

    With coverage, also returns where the frame lies inside the keyframe, feathered over
    the outer tenth so the keyframe's edge does not show as a seam.
    """
    h, w = size
    uy = torch.linspace(-1, 1, h, dtype=torch.float32) * scale
    ux = torch.linspace(-1, 1, w, dtype=torch.float32) * scale
    gy, gx = torch.meshgrid(uy, ux, indexing="ij")
    grid = torch.stack([gx, gy], dim=-1)[None]
    out = torch.nn.functional.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)
    if not coverage:
        return out
    inside = (1 - torch.maximum(gx.abs(), gy.abs())).clamp(0, 1)
    feather = (inside / 0.1).clamp(0, 1)
    return out, feather[None, None]


def render(cfg, run_dir: Path) -> dict:
    """Run the whole pipeline for a composed config; returns the metadata it wrote."""
    t0 = time.perf_counter()
    exp = Experiment.from_config(cfg.experiment)
    zoom, eng, rnd = (_as(cls, cfg[name]) for cls, name in
                      ((ZoomConfig, "zoom"), (EngineConfig, "engine"), (RenderConfig, "render")))
    video, color = _as(VideoConfig, cfg.video), _as(ColorConfig, cfg.color)
    validate(zoom, eng, rnd, video, color)
    # A precision name: "auto" resolves per frame (float32 only where it draws float64's picture).
    device, dtype = engine.resolve_device(eng.device), eng.precision
    start = start_window(cfg.experiment.window, video)
    if rnd.mode != "compute":
        ffmpeg_exe()  # a missing encoder is known now, not after hours of compute
    store_dir = Path(rnd.store_dir) if rnd.store_dir else run_dir / "frames"
    for directory in (run_dir, store_dir):
        check_writable(directory)
    store = FrameStore(store_dir, fingerprint(cfg, exp, start))
    timings = {}
    plan = make_plan(exp, start, zoom, rnd, video, color, device, dtype, store)
    timings["target_s"] = time.perf_counter() - t0
    counts = {"computed": 0, "reused": 0}
    if rnd.mode != "assemble":
        check_disk_space(store, plan)
        t = time.perf_counter()
        try:
            counts = compute_frames(exp, plan, store, rnd, device, dtype, eng.backend)
        except KeyboardInterrupt:
            done = len(plan.windows) - len(missing_frames(plan, store))
            raise Interrupted(
                f"interrupted: {done} of {len(plan.windows)} frames are safe in {store.root}; "
                "run the same command again (same output directory) to resume"
            ) from None
        timings["frames_s"] = time.perf_counter() - t
    missing = missing_frames(plan, store)
    outputs = {}
    if rnd.mode == "assemble" and missing:
        raise RuntimeError(
            f"cannot assemble: {len(missing)} of {len(plan.windows)} frames are missing from "
            f"{store.root} (indices {_ranges(missing)}); run the shards that compute them"
        )
    if rnd.mode != "compute" and not missing:
        t = time.perf_counter()
        video_path, poster = run_dir / f"zoom.{video.format}", run_dir / "poster.png"
        log.info("encoding %d frames to %s", video.n_frames, video_path)
        encode(exp, plan, store, video, color, video_path, poster)
        timings["encode_s"] = time.perf_counter() - t
        outputs = {"video": str(video_path), "poster": str(poster)}
    elif missing:
        log.info("%d frames (%s) are left to other shards; then run with render.mode=assemble",
                 len(missing), _ranges(missing))
    timings["total_s"] = time.perf_counter() - t0
    meta = metadata(cfg, exp, plan, device, dtype, timings, counts, missing, outputs, store)
    write_atomic(run_dir / "metadata.json", lambda f: f.write(json.dumps(meta, indent=1).encode()))
    log.info("done in %.1f s: %s", timings["total_s"], outputs.get("video", f"{len(missing)} frames still missing"))
    return meta


class Interrupted(RuntimeError):
    """Ctrl-C during compute: every finished frame is already in the store."""


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
        raise RuntimeError(f"ffmpeg is not available ({why}); reinstall imageio-ffmpeg or fix IMAGEIO_FFMPEG_EXE")
    return exe


def check_writable(run_dir: Path) -> None:
    """Fail before compute if an output directory cannot be written."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".zoomer-write-test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as e:
        raise RuntimeError(f"cannot write to the output directory {run_dir}: {e.strerror}") from None


def check_disk_space(store: FrameStore, plan: Plan) -> None:
    """Fail before compute if the frames left to compute cannot fit on the store's disk."""
    import shutil

    need = len(missing_frames(plan, store)) * plan.size[0] * plan.size[1] * 8 * 1.05
    free = shutil.disk_usage(store.root).free
    if need > free:
        raise RuntimeError(
            f"the frame store {store.root} needs about {need / 2**30:.2f} GiB but its disk has "
            f"{free / 2**30:.2f} GiB free; free space or set render.store_dir elsewhere"
        )


def _as(cls, node):
    """A schema dataclass from its config node (Hydra already checked keys and types)."""
    from omegaconf import OmegaConf

    return cls(**OmegaConf.to_container(node, resolve=True))


def fingerprint(cfg, exp: Experiment, start: Window) -> dict:
    """What makes two renders' frames incomparable: the store refuses any other."""
    zoom = cfg.zoom
    return {
        "experiment": exp.to_dict(),
        "start": [start.cx, start.cy, start.half_w, start.half_h],
        "zoom": {k: _plain(zoom[k]) for k in ("target", "depth", "final_width", "seed", "search_resolution", "zoom_per_level")},
        "precision": cfg.engine.precision,
        "frames": cfg.render.frames,
        "guess": cfg.render.guess,
    }


def _plain(value):
    from omegaconf import OmegaConf

    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def metadata(cfg, exp, plan: Plan, device, precision, timings, counts, missing, outputs, store) -> dict:
    from omegaconf import OmegaConf

    return {
        "config": OmegaConf.to_container(cfg, resolve=True),
        "target": plan.target.to_dict(),
        "strategy": plan.strategy,
        "computed_size": list(plan.size),
        "computed_windows": [w.to_dict() for w in plan.windows],
        "frame_windows": [w.to_dict() for w in plan.frame_windows],
        "frames": {**counts, "missing": missing, "store": str(store.root)},
        "timings": {k: round(v, 3) for k, v in timings.items()},
        **provenance(device),
        "precision": precision,
        "computed_dtypes": [
            str(resolve_precision(precision, exp, w, plan.size)).removeprefix("torch.") for w in plan.windows
        ],
        "outputs": outputs,
    }


def _ranges(indices: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2, 5'."""
    out, run = [], [indices[0]]
    for i in indices[1:]:
        if i == run[-1] + 1:
            run.append(i)
        else:
            out.append(run)
            run = [i]
    out.append(run)
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in out)

"""Stored score frames -> coloured video frames -> the video file and its poster.

`exact` frames are coloured as they are; `keyframes` frames are drawn by resampling the two
keyframes that bracket each frame's magnification, cross-fading across each doubling (how
the paper's videos were made). Colouring reads the store only, so it re-runs without the
engine.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from .color import Reference, color_frame, smooth_references, supersample_colors
from .compute import frame_key, progress_bar
from .config import ColorConfig, VideoConfig
from .overlay import draw_overlay, overlay_text
from .plan import Plan
from .store import FrameStore
from .video import VideoWriter, save_png


def encode(exp, plan: Plan, store: FrameStore, video: VideoConfig, color: ColorConfig, path: Path, poster: Path):
    """Colour the stored frames and stream them to the video file; writes a poster PNG."""
    # Frames are read twice (references first, then colours) so no render holds them all.
    load = lambda i: store.load(frame_key(store, plan.windows[i], plan.size))  # noqa: E731
    refs = [Reference.from_scores(load(i), color.n_quantiles) for i in range(len(plan.windows))]
    if plan.strategy == "exact":
        refs = smooth_references(refs, color.smoothing_frames)
        frames = (color_frame(load(i), refs[i], color, exp.readout, plan.supersample) for i in range(len(plan.windows)))
    else:
        per_doubling = video.n_frames / max(1, len(plan.windows) - 1)
        refs = smooth_references(refs, color.smoothing_frames / per_doubling)
        frames = keyframe_frames(exp, plan, load, refs, video, color)
    start = plan.frame_windows[0]
    poster_at = (2 * video.n_frames) // 3
    with VideoWriter(path, video) as writer, progress_bar("encode", video.n_frames, "frame") as bar:
        for i, frame in enumerate(frames):
            if video.overlay:
                window = plan.frame_windows[i]
                frame = draw_overlay(frame, overlay_text(start.width / window.width, window.center, video.caption))
            writer.write(frame)
            if i == poster_at:
                save_png(poster, frame)
            bar.update()


def keyframe_frames(exp, plan: Plan, load, refs, video: VideoConfig, color: ColorConfig):
    """Every video frame, resampled from the two keyframes that bracket its magnification.

    Keyframe k shows the target at magnification 2**k, all windows share the target as
    centre, so a frame is keyframe k scaled up (it covers the whole frame) with keyframe
    k+1 scaled down over the middle, faded in as the zoom crosses the doubling. Both are
    coloured against one reference, the frame's own (blended between the two keyframes'
    by the same fade), so the inset shows no edge and the palette moves smoothly.
    """
    start = plan.frame_windows[0]
    k_ss = plan.supersample
    out_size = (video.height * k_ss, video.width * k_ss)
    cache: dict[int, np.ndarray] = {}

    def keyframe(k: int, reference) -> torch.Tensor:
        if k not in cache:
            if len(cache) > 2:  # frames only move forward: older keyframes are done with
                cache.clear()
            cache[k] = load(k)
        rgb = color_frame(cache[k], reference, color, exp.readout)
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

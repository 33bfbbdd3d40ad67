"""What a render computes: the start window, the frames' layout, the target and every window.

The layout (strategy, pixel size, how many frames) is known from the settings alone, so
every check that depends on it runs before the target search; the plan adds the target
and the windows. Two strategies: `exact` computes every video frame; `keyframes` computes
one frame per zoom doubling and draws the frames between from the two around them.
Supersampling trains k x k runs per video pixel (their colours are averaged, zoomer.color),
so it sets the computed size: it is part of what a frame store holds, not of its colours.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Optional

import torch

from .config import PanelConfig, RenderConfig, VideoConfig, ZoomConfig
from .errors import Refusal
from .experiment import Experiment
from .precision import resolve_precision
from .target import Target
from .window import Window, max_decades, zoom_path

log = logging.getLogger(__name__)

# render.supersample=auto, per device: on a GPU the paper's look (each pixel the mean colour
# of 3 x 3 runs, so a mix of classes finer than a pixel shows as a pastel blend, not
# static); on a CPU one run per pixel, as that costs 9x where classes mix. A named panel
# that needs more (panel.supersample: paraminit's) gets it on any device.
SUPERSAMPLE = {"cuda": 3, "cpu": 1}


@dataclass(frozen=True)
class Layout:
    """The frames to compute, before the target is known."""

    start: Window  # the first video frame's extent (it is centred on the target)
    decades: float  # decades of magnification from the start to the last frame
    strategy: str  # exact | keyframes
    size: tuple  # (H, W) of each computed frame
    n_computed: int  # frames the engine computes (video frames or keyframes)
    supersample: int  # runs per video pixel, per side


@dataclass
class Plan:
    """A layout with its target: the computed frames' windows and every video frame's."""

    target: Target
    strategy: str
    windows: list  # computed frames (keyframes or every frame)
    size: tuple  # (H, W) of each computed frame
    frame_windows: list  # every video frame's window
    supersample: int  # runs per video pixel, per side
    dtypes: tuple  # the float type each computed frame trains in, resolved once (zoomer.precision)


def start_window(window: Window, video: VideoConfig) -> Window:
    """The experiment's window (the condition's) cut to the video's aspect ratio: the
    largest window of that shape inside it, so a tall video does not reach outside it."""
    aspect = video.width / video.height
    if aspect >= window.half_w / window.half_h:
        return window.with_aspect(aspect)
    return Window(window.cx, window.cy, window.half_h * aspect, window.half_h)


def frame_strategy(rnd: RenderConfig, device: torch.device) -> str:
    if rnd.frames != "auto":
        return rnd.frames.value
    return "exact" if device.type == "cuda" else "keyframes"


def supersample(setting, device: torch.device, panel: Optional[PanelConfig] = None) -> int:
    """render.supersample as a number: k as set, or auto's (SUPERSAMPLE, at least the panel's);
    logs which and what it costs, as quality does."""
    if setting != "auto":
        k = setting
    else:
        k = max(SUPERSAMPLE.get(torch.device(device).type, 1), panel.supersample if panel is not None else 1)
    if k > 1:
        log.info("render.supersample %d%s: %d x %d runs per pixel where classes mix (up to %dx the runs of "
                 "render.supersample=1); solid regions cost what they would without", k,
                 " (auto on this device)" if setting == "auto" else "", k, k, k * k)
    return k


def compute_size(video: VideoConfig, k: int, scale: float = 1.0) -> tuple[int, int]:
    return (max(2, round(video.height * scale)) * k, max(2, round(video.width * scale)) * k)


def doublings(decades: float) -> int:
    """Keyframes past the first: one per doubling that the zoom completes. The frames past
    the last one (less than a doubling) magnify it a little rather than pay for a deeper one."""
    return math.floor(decades * math.log2(10) + 1e-9)


def zoom_decades(start: Window, zoom: ZoomConfig) -> float:
    """Decades of magnification from the start window to the last frame: zoom.final_width's
    if set, else zoom.decades."""
    return math.log10(start.width / zoom.final_width) if zoom.final_width is not None else float(zoom.decades)


def layout(start: Window, zoom: ZoomConfig, rnd: RenderConfig, video: VideoConfig, k: int,
           device: torch.device) -> Layout:
    """The frames to compute, k x k runs per video pixel (k: `supersample`)."""
    decades = zoom_decades(start, zoom)
    strategy = frame_strategy(rnd, device)
    if strategy == "exact":
        size, count = compute_size(video, k), video.n_frames
    else:  # odd sides: every other pixel of keyframe k+1 is then a pixel of keyframe k
        size = tuple(side | 1 for side in compute_size(video, k, rnd.keyframe_scale))
        count = doublings(decades) + 1
    return Layout(start, decades, strategy, size, count, k)


def check_decades(lay: Layout, point, precision="float64") -> None:
    """Refuse a depth at which neighbouring pixels merge around `point` in engine.precision."""
    try:
        lay.start.zoom(10**lay.decades, center=point).check_resolution(lay.size, precision)
    except ValueError as e:
        deepest = max_decades(lay.start, lay.size, point, precision)
        raise Refusal(
            f"zoom.decades={lay.decades:.3g} is too deep for engine.precision={precision} at {lay.size[1]}x{lay.size[0]} "
            f"pixels around ({point[0]:.6g}, {point[1]:.6g}): at most about {deepest:.1f} decades ({e})"
        ) from None


def make_plan(lay: Layout, target: Target, video: VideoConfig, ease: float, exp: Experiment, precision) -> Plan:
    """Every video frame's window, the windows of the frames to compute and the float type
    each trains in (engine.precision; auto: per window)."""
    frame_windows = zoom_path(lay.start, target.point, lay.decades, video.n_frames, ease)
    if lay.strategy == "exact":
        windows = frame_windows
    else:
        windows = [lay.start.zoom(2.0**k, center=target.point) for k in range(lay.n_computed)]
    dtypes = tuple(resolve_precision(precision, exp, w, lay.size) for w in windows)
    return Plan(target, lay.strategy, windows, lay.size, frame_windows, lay.supersample, dtypes)

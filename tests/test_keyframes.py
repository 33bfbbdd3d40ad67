"""Frames drawn from keyframes: no inset edge, and the zoom goes all the way down."""
import math

import numpy as np

from zoomer import Experiment
from zoomer.color import ColorConfig, Reference
from zoomer.compose import keyframe_frames
from zoomer.plan import Plan
from zoomer.target import Target
from zoomer.video import VideoConfig
from zoomer.window import Window, zoom_path


def smooth_plan(depth=1.5, n_frames=24, size=(41, 73)):
    """Keyframes of a smooth field of one class (so no class edge): each keyframe sees a
    different spread of scores, as in a real zoom."""
    start = Window(0.0, 0.0, 1.6, 0.9)
    point = (0.0, 0.0)
    windows = [start.zoom(2.0**k, center=point) for k in range(math.floor(depth * math.log2(10)) + 1)]
    frames = zoom_path(start, point, depth, n_frames)
    plan = Plan(Target(point, (start,), depth), "keyframes", windows, size, frames)

    def load(k):
        xs, ys = windows[k].axes(size)
        x, y = np.meshgrid(xs, ys)
        return -np.exp(3 * x + y)

    return plan, load


def test_the_inset_keyframe_shows_no_edge():
    plan, load = smooth_plan()
    video = VideoConfig(width=72, height=40, fps=24, duration_s=1.0, overlay=False)
    color = ColorConfig()
    refs = [Reference.from_scores(load(k)) for k in range(len(plan.windows))]
    frames = [f.astype(float) for f in keyframe_frames(Experiment(), plan, load, refs, video, color)]
    assert len(frames) == video.n_frames
    # A smooth field: neighbouring pixels differ little everywhere, the inset's border included.
    # (Ranking each keyframe against its own reference put steps of up to 26 levels there.)
    for frame in frames:
        steps = np.abs(np.diff(frame, axis=0)).max(), np.abs(np.diff(frame, axis=1)).max()
        assert max(steps) < 10, max(steps)


def test_frames_past_the_last_keyframe_keep_zooming():
    plan, load = smooth_plan(depth=1.5)  # 4.98 doublings: keyframes 0..4, the last frames past 2**4
    assert len(plan.windows) == 5
    video = VideoConfig(width=72, height=40, fps=24, duration_s=1.0, overlay=False)
    refs = [Reference.from_scores(load(k)) for k in range(len(plan.windows))]
    frames = list(keyframe_frames(Experiment(), plan, load, refs, video, ColorConfig()))
    assert not np.array_equal(frames[-1], frames[-2]), "the zoom must not stall on the deepest keyframe"

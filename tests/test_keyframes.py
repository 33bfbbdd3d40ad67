"""Frames drawn from keyframes: no inset edge, the zoom goes all the way down, and each
frame shows what its own window holds."""
import math

import numpy as np
import torch

from zoomer import Experiment
from zoomer.color import Reference, color_frame
from zoomer.config import ColorConfig, VideoConfig
from zoomer.compose import keyframe_frames
from zoomer.plan import Plan
from zoomer.target import Target
from zoomer.window import Window, zoom_path

VIDEO = VideoConfig(width=72, height=40, fps=24, duration_s=1.0, overlay=False)
START = Window(0.0, 0.0, 1.6, 0.9)
POINT = (0.0, 0.0)


def smooth(x, y):
    """One class (so no class edge) whose spread of scores differs in every keyframe."""
    return -np.exp(3 * x + y)


def spiral(x, y):
    """Two classes (scores -3 and 3) split by a logarithmic spiral about POINT: every zoom
    level shows edges, and magnifying by 2**s turns the pattern by s / 0.8 turns, so a
    frame drawn at the wrong magnification shows its classes in the wrong places."""
    r = np.maximum(np.hypot(x - POINT[0], y - POINT[1]), 1e-300)  # the centre pixel sits on POINT
    theta = np.arctan2(y - POINT[1], x - POINT[0])
    return np.where(np.sin(2 * np.pi * np.log2(r) / 0.8 + theta) < 0, -3.0, 3.0)


def keyframe_plan(field, decades=1.5, size=(41, 73)):
    """Keyframes at every doubling down `decades` decades, and a loader of their scores."""
    windows = [START.zoom(2.0**k, center=POINT) for k in range(math.floor(decades * math.log2(10)) + 1)]
    frames = zoom_path(START, POINT, decades, VIDEO.n_frames)
    plan = Plan(Target(POINT, (START,), decades), "keyframes", windows, size, frames, 1, (torch.float64,) * len(windows))

    def load(k):
        xs, ys = windows[k].axes(size)
        return field(*np.meshgrid(xs, ys))

    return plan, load


def drawn_frames(plan, load, color=ColorConfig()):
    refs = [Reference.from_scores(load(k)) for k in range(len(plan.windows))]
    return list(keyframe_frames(Experiment(), plan, load, refs, VIDEO, color))


def test_the_inset_keyframe_shows_no_edge():
    frames = [f.astype(float) for f in drawn_frames(*keyframe_plan(smooth))]
    assert len(frames) == VIDEO.n_frames
    # A smooth field: neighbouring pixels differ little everywhere, the inset's border included.
    # (Ranking each keyframe against its own reference put steps of up to 26 levels there.)
    for frame in frames:
        steps = np.abs(np.diff(frame, axis=0)).max(), np.abs(np.diff(frame, axis=1)).max()
        assert max(steps) < 10, max(steps)


def test_frames_past_the_last_keyframe_keep_zooming():
    plan, load = keyframe_plan(smooth, decades=1.5)  # 4.98 doublings: keyframes 0..4, the last frames past 2**4
    assert len(plan.windows) == 5
    frames = drawn_frames(plan, load)
    assert not np.array_equal(frames[-1], frames[-2]), "the zoom must not stall on the deepest keyframe"


def test_every_frame_shows_its_own_window():
    """Each frame's classes match the field sampled directly on that frame's window.

    Pixels may differ only within 2 pixels of a class edge (a keyframe pixel covers up to
    two frame pixels, and bilinear resampling blends across the edge) and within 8 pixels
    of the spiral's centre (where its arms are finer than a keyframe pixel)."""
    plan, load = keyframe_plan(spiral)
    frames = drawn_frames(plan, load)
    colours = color_frame(np.array([[-3.0, 3.0]]), Reference.from_scores(np.array([-3.0, 3.0])), ColorConfig())[0]
    assert not np.array_equal(colours[0], colours[1])
    h, w = VIDEO.height, VIDEO.width
    rows, cols = np.mgrid[:h, :w]
    centre = np.hypot(rows - (h - 1) / 2, cols - (w - 1) / 2) < 8
    for n, (frame, window) in enumerate(zip(frames, plan.frame_windows)):
        xs, ys = window.axes((h, w))
        direct = spiral(*np.meshgrid(xs, ys))[::-1] > 0  # display orientation: top row is the highest y
        distance = np.stack([np.abs(frame.astype(int) - c).sum(-1) for c in colours])
        drawn = distance[1] < distance[0]
        padded = np.pad(direct, 2, mode="edge")
        windows = np.lib.stride_tricks.sliding_window_view(padded, (5, 5))
        near_edge = windows.any(axis=(-2, -1)) & ~windows.all(axis=(-2, -1))
        wrong = (drawn != direct) & ~near_edge & ~centre
        assert not wrong.any(), f"frame {n}: {wrong.sum()} pixels of the wrong class"
        assert (direct & ~near_edge).any() and (~direct & ~near_edge).any()


def test_each_doubling_fades_from_the_outer_keyframe_to_the_inner():
    """Keyframes made to disagree (every odd one's classes flipped) show which one a frame
    is drawn from: just past doubling k its middle is keyframe k, just before doubling k+1
    it is keyframe k+1, faded in between (a reversed fade jumps at every doubling)."""
    plan, load = keyframe_plan(spiral)
    frames = drawn_frames(plan, lambda k: load(k) * (-1) ** k)
    colours = color_frame(np.array([[-3.0, 3.0]]), Reference.from_scores(np.array([-3.0, 3.0])), ColorConfig())[0]
    h, w = VIDEO.height, VIDEO.width
    rows, cols = np.mgrid[:h, :w]
    middle = (np.abs(rows - (h - 1) / 2) < h / 8) & (np.abs(cols - (w - 1) / 2) < w / 8)
    middle &= np.hypot(rows - (h - 1) / 2, cols - (w - 1) / 2) >= 4  # the spiral's centre is finer than a pixel
    start, checked = plan.frame_windows[0], 0
    for frame, window in zip(frames, plan.frame_windows):
        level = math.log2(start.width / window.width)
        k, fade = math.floor(level), level - math.floor(level)
        if k + 1 >= len(plan.windows) or 0.2 <= fade <= 0.8:
            continue
        shown = k if fade < 0.2 else k + 1
        xs, ys = window.axes((h, w))
        expected = spiral(*np.meshgrid(xs, ys))[::-1] * (-1) ** shown > 0
        distance = np.stack([np.abs(frame.astype(int) - c).sum(-1) for c in colours])
        agree = np.mean(((distance[1] < distance[0]) == expected)[middle])
        assert agree > 0.8, f"level {level:.2f}: the middle is keyframe {shown} on only {agree:.0%} of pixels"
        checked += 1
    assert checked >= 4


def test_the_eta_weighs_each_frame_by_the_frames_of_its_float_type():
    """A deep zoom's perturbation frames come first and cost far more than its float64 ones."""
    from zoomer.compute import eta

    took = {"perturbation": [60.0, 40.0], "float64": [2.0]}
    assert eta(took, ["perturbation", "float64", "float64"]) == 50.0 + 2.0 + 2.0
    assert eta({"float64": [3.0]}, ["float32"]) == 3.0  # a type not seen yet: the mean of all
    assert eta(took, []) == 0

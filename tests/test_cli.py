"""The `zoomer` Hydra app: config composition, bad overrides, and tiny end-to-end renders."""
import json
import os
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module

import zoomer.cli  # noqa: F401  registers the schema
from zoomer import Experiment
from zoomer.video import moov_before_mdat, probe

CONF = Path(str(files("zoomer.conf")))
GROUPS = {g: sorted(p.stem for p in (CONF / g).glob("*.yaml")) for g in ("experiment", "zoom", "color", "video")}

# Small enough for a 2-core CI machine: a few frames of a few pixels, few steps.
# A manual target on the tanh boundary skips the search (tested on its own in test_target.py).
TINY = [
    "video.width=32", "video.height=18", "video.fps=4", "video.duration_s=1.5", "experiment.steps=20",
    "zoom=manual", "zoom.target=[5.0,1.6]", "zoom.depth=1.0", "engine.precision=float32",
]


def run_app(tmp_path, *overrides, module="zoomer", check=True):
    flags = [o for o in overrides if o.startswith("-")]  # e.g. -m: Hydra wants flags first
    cmd = [sys.executable, "-m", module, *flags, f"hydra.run.dir={tmp_path}",
           *(o for o in overrides if not o.startswith("-"))]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.parametrize("group, option", [(g, o) for g, opts in GROUPS.items() for o in opts])
def test_every_group_option_composes(group, option):
    with initialize_config_module(config_module="zoomer.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"{group}={option}"])
    if group == "experiment":
        exp = Experiment.from_config(cfg.experiment)
        assert cfg.experiment.name == option and exp.steps >= 20
        assert cfg.experiment.window.x[0] < cfg.experiment.window.x[1]


def test_paper_conditions_are_all_there():
    assert set(GROUPS["experiment"]) == {"tanh", "relu", "identity", "minibatch", "single_datapoint", "paraminit"}
    assert {"preview", "landscape", "vertical", "square", "gif"} <= set(GROUPS["video"])


@pytest.mark.parametrize(
    "override, key",
    [
        ("video.fps=fast", "video.fps"),
        ("experiment.width=wide", "experiment.width"),
        ("experiment.nonlinearity=sigmoid", "experiment.nonlinearity"),
        ("engine.precision=float16", "engine.precision"),
        ("video.width=33", "video.width"),
        ("zoom.ease=0.9", "zoom.ease"),
        ("experiment=sigmoid", "experiment"),
        ("color.cmap=rainbow", "color.cmap"),
        ("video.nope=1", "nope"),
    ],
)
def test_bad_override_fails_fast_naming_the_key(tmp_path, override, key):
    proc = run_app(tmp_path, override, check=False)
    assert proc.returncode != 0
    assert key in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "frames" / "target.json").exists(), "failed before any compute"


def test_too_deep_a_zoom_is_refused_before_compute(tmp_path):
    proc = run_app(tmp_path, *TINY, "zoom.depth=18", check=False)
    assert proc.returncode == 2 and "too deep for float64" in proc.stderr


@pytest.mark.parametrize("frames", ["keyframes", "exact"])
def test_end_to_end_render_through_real_ffmpeg(tmp_path, frames):
    run_app(tmp_path, *TINY, f"render.frames={frames}")
    info = probe(tmp_path / "zoom.mp4")
    assert (info.width, info.height, info.n_frames) == (32, 18, 6)
    assert info.codec == "h264" and info.pix_fmt == "yuv420p" and moov_before_mdat(tmp_path / "zoom.mp4")
    assert (tmp_path / "poster.png").exists()
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["strategy"] == frames and len(meta["frame_windows"]) == 6
    assert meta["config"]["video"]["width"] == 32 and "frames_s" in meta["timings"]
    widths = [w["x"][1] - w["x"][0] for w in meta["frame_windows"]]
    assert widths[0] / widths[-1] == pytest.approx(10.0)
    assert (tmp_path / ".hydra" / "config.yaml").exists()


def test_vertical_video_shows_a_vertical_window(tmp_path):
    run_app(tmp_path, *TINY, "video=vertical", "video.width=18", "video.height=32", "video.duration_s=0.5",
            "render.frames=exact")
    meta = json.loads((tmp_path / "metadata.json").read_text())
    w = meta["frame_windows"][0]
    aspect = (w["x"][1] - w["x"][0]) / (w["y"][1] - w["y"][0])
    assert aspect == pytest.approx(18 / 32)
    assert probe(tmp_path / "zoom.mp4").width == 18


def test_gif_preset_loops(tmp_path):
    run_app(tmp_path, *TINY, "video=gif", "video.width=32", "video.height=18")
    assert probe(tmp_path / "zoom.gif").n_frames == 6


def test_manual_target_and_final_width(tmp_path):
    run_app(tmp_path, *TINY, "zoom.target=[1.5,1.0]", "zoom.final_width=0.08")
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["target"]["point"] == [1.5, 1.0]
    last = meta["frame_windows"][-1]
    assert last["x"][1] - last["x"][0] == pytest.approx(0.08)
    assert np.mean(last["x"]) == pytest.approx(1.5)


def test_automatic_target_search_end_to_end(tmp_path):
    run_app(tmp_path, *TINY, "zoom=auto", "zoom.target=null", "zoom.search_resolution=12", "zoom.seed=1",
            "zoom.depth=2.0", "video.width=48", "video.height=28", "video.duration_s=3")
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["config"]["zoom"]["target"] is None and len(meta["target"]["point"]) == 2
    assert json.loads((tmp_path / "frames" / "target.json").read_text())["point"] == meta["target"]["point"]
    assert frames_without_both_classes_in_the_central_fifth(tmp_path, meta) == []


def frames_without_both_classes_in_the_central_fifth(run_dir, meta) -> list:
    """Video frames whose central fifth (each way), read from the stored keyframe that
    covers the frame most finely, does not hold both classes."""
    from omegaconf import OmegaConf

    from zoomer import render
    from zoomer.color import ColorConfig
    from zoomer.store import FrameStore
    from zoomer.video import VideoConfig

    cfg = OmegaConf.create(meta["config"])
    exp = Experiment.from_config(cfg.experiment)
    video = render._as(VideoConfig, cfg.video)
    start = render.start_window(cfg.experiment.window, video)
    store = FrameStore(run_dir / "frames", render.fingerprint(cfg, exp, start))
    plan = render.make_plan(exp, start, render._as(render.ZoomConfig, cfg.zoom),
                            render._as(render.RenderConfig, cfg.render), video, render._as(ColorConfig, cfg.color),
                            torch.device("cpu"), "float32", store)
    keyframes = [store.load(render.frame_key(store, w, plan.size)) for w in plan.windows]
    bad = []
    for n, frame in enumerate(plan.frame_windows):
        k = max(i for i, w in enumerate(plan.windows) if w.width >= frame.width * (1 - 1e-9) or i == 0)
        xs, ys = plan.windows[k].axes(plan.size)
        centre = keyframes[k][np.ix_(np.abs(ys - frame.cy) <= frame.half_h / 5, np.abs(xs - frame.cx) <= frame.half_w / 5)]
        if not ((centre < 0).any() and (centre > 0).any()):
            bad.append(n)
    return bad

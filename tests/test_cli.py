"""The `zoomer` Hydra app: config composition, bad overrides, and tiny end-to-end renders."""
import json
import math
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from zoomer import Experiment
from zoomer.video import moov_before_mdat, probe

CONF = Path(str(files("zoomer.conf")))
GROUPS = {g: sorted(p.stem for p in (CONF / g).glob("*.yaml")) for g in ("experiment", "zoom", "color", "video")}

# What each option composes to, written out by hand (from the paper and the README), so a
# YAML that drifts or a group that fails to merge shows up here.
EXPECTED = {
    ("experiment", "tanh"): {"experiment.nonlinearity": "tanh", "experiment.window.x": [-2.0, 6.0],
                             "experiment.window.y": [-3.0, 5.0]},
    ("experiment", "relu"): {"experiment.nonlinearity": "relu", "experiment.window.x": [-3.0, 5.0],
                             "experiment.window.y": [-3.0, 5.0]},
    ("experiment", "identity"): {"experiment.nonlinearity": "identity", "experiment.window.x": [-3.0, 5.0]},
    ("experiment", "minibatch"): {"experiment.nonlinearity": "tanh", "experiment.batch_size": 16},
    ("experiment", "single_datapoint"): {"experiment.n_data": 1, "experiment.window.x": [-4.0, 4.0]},
    ("experiment", "paraminit"): {"experiment.phase_space": "paraminit_vs_lr", "experiment.offset": "every_step",
                                  "experiment.paper_steps": 500, "experiment.window.y": [-3.0, 6.0]},
    ("zoom", "auto"): {"zoom.target": "auto", "zoom.decades": 4.0},
    ("zoom", "panel"): {"zoom.target": "panel", "zoom.decades": 4.0},
    ("zoom", "manual"): {"zoom.target": [1.0149477, 2.3419544], "zoom.decades": 4.0},
    ("color", "spectral"): {"color.cmap": "Spectral"},
    ("color", "fire_ice"): {"color.cmap": "fire_ice"},
    ("color", "rdbu"): {"color.cmap": "RdBu"},
    ("video", "preview"): {"video.width": 224, "video.height": 126, "video.format": "mp4", "video.overlay": True},
    ("video", "landscape"): {"video.width": 1920, "video.height": 1080, "video.format": "mp4"},
    ("video", "vertical"): {"video.width": 1080, "video.height": 1920, "video.format": "mp4"},
    ("video", "square"): {"video.width": 1080, "video.height": 1080},
    ("video", "gif"): {"video.width": 480, "video.height": 270, "video.format": "gif"},
}
DEFAULTS = {"experiment": "tanh", "zoom": "panel", "color": "spectral", "video": "preview"}


@pytest.mark.parametrize("group, option", [(g, o) for g, opts in GROUPS.items() for o in opts])
def test_every_group_option_composes_to_its_values(group, option, compose_config):
    cfg = compose_config("config", f"{group}={option}")
    for key, value in EXPECTED[group, option].items():
        assert OmegaConf.select(cfg, key) == value, key
    for other, default in DEFAULTS.items():  # the other groups keep their defaults
        if other != group:
            for key, value in EXPECTED[other, default].items():
                assert OmegaConf.select(cfg, key) == value, key
    if group == "experiment":
        exp = Experiment.from_config(cfg.experiment)
        assert cfg.experiment.name == option and exp.nonlinearity == cfg.experiment.nonlinearity


def test_overrides_reach_the_composed_config(compose_config, tiny, boundary_target):
    cfg = compose_config("config", *tiny, "video=vertical", "experiment=relu")
    assert (cfg.video.width, cfg.video.height, cfg.video.fps) == (32, 18, 4)  # overrides beat the preset
    assert cfg.video.format == "mp4" and cfg.experiment.nonlinearity == "relu"
    assert cfg.experiment.steps == 20 and cfg.engine.precision == "float32"
    assert list(cfg.zoom.target) == list(boundary_target)


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
        ("zoom.target=null", "zoom.target"),
        ("search.resolution=4", "search.resolution"),
        ("render.frames=some", "render.frames"),
        ("quality=best", "quality"),
        ("experiment=sigmoid", "experiment"),
        ("color.cmap=rainbow", "color.cmap"),
        ("video.nope=1", "nope"),
        ("experiment.window.x=[1]", "experiment.window.x=[1.0] must be [lo, hi]"),
        ("experiment.window.y=[-2,1e400]", "experiment.window.y=[-2.0, inf] must be [lo, hi], finite"),
    ],
)
def test_bad_override_fails_fast_naming_the_key(tmp_path, run_app, override, key):
    """A mistake exits 2, whether Hydra stops it while composing or zoomer refuses it (1 is for bugs)."""
    proc = run_app(tmp_path, override, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert key in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "frames" / "target.json").exists(), "failed before any compute"


def test_too_deep_a_zoom_is_refused_before_compute(tmp_path, run_app, tiny):
    proc = run_app(tmp_path, *tiny, "zoom.decades=18", check=False)
    assert proc.returncode == 2 and "too deep for engine.precision=float32" in proc.stderr  # tiny trains float32


@pytest.mark.slow
@pytest.mark.parametrize("frames", ["keyframes", "exact"])
def test_end_to_end_render_through_real_ffmpeg(tmp_path, run_app, tiny, frames):
    run_app(tmp_path, *tiny, f"render.frames={frames}")
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


@pytest.mark.slow
def test_vertical_video_shows_a_vertical_window(tmp_path, run_app, tiny):
    run_app(tmp_path, *tiny, "video=vertical", "video.width=18", "video.height=32", "video.duration_s=0.5",
            "render.frames=exact")
    meta = json.loads((tmp_path / "metadata.json").read_text())
    w = meta["frame_windows"][0]
    aspect = (w["x"][1] - w["x"][0]) / (w["y"][1] - w["y"][0])
    assert aspect == pytest.approx(18 / 32)
    assert probe(tmp_path / "zoom.mp4").width == 18


@pytest.mark.slow
def test_gif_preset_loops(tmp_path, run_app, tiny):
    run_app(tmp_path, *tiny, "video=gif", "video.width=32", "video.height=18")
    assert probe(tmp_path / "zoom.gif").n_frames == 6


@pytest.mark.slow
def test_manual_target_and_final_width(tmp_path, run_app, tiny, boundary_target):
    run_app(tmp_path, *(o for o in tiny if not o.startswith("zoom.decades=")), "zoom.final_width=0.08")
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["target"]["point"] == list(boundary_target)
    last = meta["frame_windows"][-1]
    assert last["x"][1] - last["x"][0] == pytest.approx(0.08)
    assert np.mean(last["x"]) == pytest.approx(boundary_target[0])


@pytest.mark.slow
def test_automatic_target_search_end_to_end(tmp_path, run_app, tiny):
    run_app(tmp_path, *tiny, "zoom.target=auto", "search.resolution=12", "search.seed=1",
            "zoom.decades=2.0", "video.width=48", "video.height=28", "video.duration_s=3")
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["config"]["zoom"]["target"] == "auto" and len(meta["target"]["point"]) == 2
    assert json.loads((tmp_path / "frames" / "target.json").read_text())["point"] == meta["target"]["point"]
    assert frames_without_both_classes_in_the_central_fifth(tmp_path, meta) == []


def frames_without_both_classes_in_the_central_fifth(run_dir, meta) -> list:
    """Video frames whose central fifth (each way), read from the stored keyframe that
    covers the frame most finely, does not hold both classes."""
    from omegaconf import OmegaConf

    from zoomer import plan as planning
    from zoomer.compute import frame_key
    from zoomer.render import fingerprint
    from zoomer.store import FrameStore
    from zoomer.target import Target

    from zoomer.config import ZoomerConfig

    cfg = OmegaConf.merge(OmegaConf.structured(ZoomerConfig), meta["config"])
    app = OmegaConf.to_object(cfg)
    exp = Experiment.from_config(cfg.experiment)
    start = planning.start_window(app.experiment.window.to_window(), app.video)
    store = FrameStore(run_dir / "frames", fingerprint(cfg, exp, start, app.zoom, 1, meta["computed_by"]))
    lay = planning.layout(start, app.zoom, app.render, app.video, 1, torch.device("cpu"))
    target = Target(tuple(meta["target"]["point"]), (), meta["target"]["decades"])
    plan = planning.make_plan(lay, target, app.video, app.zoom.ease, exp, meta["precision"])
    keyframes = [store.load(frame_key(store, w, plan.size)) for w in plan.windows]
    bad = []
    for n, frame in enumerate(plan.frame_windows):
        k = max(i for i, w in enumerate(plan.windows) if w.width >= frame.width * (1 - 1e-9) or i == 0)
        xs, ys = plan.windows[k].axes(plan.size)
        centre = keyframes[k][np.ix_(np.abs(ys - frame.cy) <= frame.half_h / 5, np.abs(xs - frame.cx) <= frame.half_w / 5)]
        if not ((centre < 0).any() and (centre > 0).any()):
            bad.append(n)
    return bad


APPS = ["config", "still", "dimension", "targets"]  # zoomer, zoomer-still, zoomer-dimension, zoomer-targets


@pytest.mark.parametrize("app", APPS)
def test_every_app_speaks_one_vocabulary(compose_config, app):
    """The shared nodes are the same schema in every app, and no app keeps an old name."""
    from zoomer.config import EngineConfig, ExperimentConfig, Quality, SearchConfig

    cfg = compose_config(app)
    built = OmegaConf.to_object(cfg)
    assert isinstance(built.engine, EngineConfig) and isinstance(built.search, SearchConfig)
    assert isinstance(built.experiment, ExperimentConfig) and built.quality is Quality.auto
    assert not set(cfg) & {"precision", "device", "steps", "seed", "search_resolution", "candidates", "depth"}
    assert "depth" not in cfg.get("zoom", {})  # decades of zoom are `decades`; depth is the net's layers


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("override, words", [
    ("engine.precision=float16", ("engine.precision", "float64, float32, perturbation, auto")),
    ("quality=best", ("quality", "auto, preview, paper")),
])
def test_a_choice_outside_its_enum_is_refused_by_every_app_while_composing(compose_config, app, override, words):
    with pytest.raises(ConfigCompositionException) as refused:
        compose_config(app, override)
    message = f"{refused.value} {refused.value.__cause__}"
    assert all(word in message for word in words), message


@pytest.mark.parametrize("app", APPS)
def test_a_range_is_refused_by_every_app_as_its_config_becomes_objects(compose_config, app):
    with pytest.raises(ValueError, match=r"search\.resolution=4 must be an integer in 8\.\.1024"):
        OmegaConf.to_object(compose_config(app, "search.resolution=4"))


@pytest.mark.parametrize("app", ["still", "dimension"])
def test_a_panels_preview_trains_the_steps_of_its_depth_in_every_app(compose_config, app):
    """The preview's steps follow the depth of the view trained: a panel's 6.8 decades, as
    zoomer paper=tanh quality=preview trains, not the app's default magnification or levels."""
    from zoomer.quality import preview_steps
    from zoomer.study import Study

    cfg = OmegaConf.to_object(compose_config(app, "paper=tanh", "quality=preview"))
    depth = math.log10(cfg.start_window().width / cfg.panel.window().width)
    assert depth > 6 and Study.of(cfg).experiment.steps == preview_steps(depth) > 100


@pytest.mark.parametrize("app, overrides, named", [
    ("config", ["experiment=relu", "paper=tanh"], "experiment=relu"),
    ("config", ["paper=tanh", "zoom.target=[1,2]"], r"zoom.target=\[1.0, 2.0\]"),
    ("config", ["paper=tanh", "zoom=manual"], "zoom.target="),
    ("config", ["paper=tanh", "zoom.decades=6"], "zoom.decades=6"),
    ("config", ["paper=tanh", "zoom.final_width=1e-3"], "zoom.final_width=0.001"),
    ("still", ["paper=relu", "experiment=tanh"], "experiment=tanh"),
    ("still", ["paper=relu", "target=[1,2]"], r"target=\[1.0, 2.0\]"),
    ("still", ["paper=tanh", "experiment.nonlinearity=relu"], r"experiment.nonlinearity='relu' \(the paper's: 'tanh'\)"),
    ("config", ["paper=minibatch", "experiment.batch_size=null"], r"experiment.batch_size=None \(the paper's: 16\)"),
    ("still", ["paper=tanh", "magnification=1000"], "magnification=1000.0"),
    ("still", ["paper=tanh", "aspect=2"], "aspect=2.0"),
    ("dimension", ["paper=tanh", "window.x=[1,1.1]", "window.y=[2,2.1]"], r"window.x=\[1.0, 1.1\]"),
])
def test_a_panel_refuses_settings_that_would_contradict_it(compose_config, app, overrides, named):
    """A panel belongs to its condition and places the view itself: one line names both settings."""
    from zoomer.errors import Refusal

    with pytest.raises(Refusal, match=f"paper=.* {named}"):
        OmegaConf.to_object(compose_config(app, *overrides))
    OmegaConf.to_object(compose_config(app, overrides[0]))  # the panel alone is fine

"""Zooms past float64: decimal targets, engine.precision=perturbation and auto choosing it,
in zoomer-still, zoomer and the target search (zoomer.perturbation's own accuracy is
tests/test_perturbation.py). The deep linear net (identity) keeps these cheap: its boundary
is a smooth curve, so both classes stay in view at any depth with few steps."""
import json
from decimal import Decimal

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

import zoomer
from zoomer.config.parts import check_target
from zoomer.errors import Refusal
from zoomer.landscape import landscape
from zoomer.precision import resolve_precision
from zoomer.still_cli import render_still
from zoomer.target import find_target
from zoomer.window import PERTURBATION, Window

IDENTITY = zoomer.Experiment(nonlinearity="identity", steps=30)
START = Window.from_bounds((-3.0, 5.0), (-3.0, 5.0))  # experiment=identity's window
# On identity's boundary at 30 steps to 22 digits: found by find_target below, 16 decades deep.
DEEP_POINT = ("0.4707209944536397238910", "2.0330093758892424761892")
DEEP = ("experiment=identity", "experiment.steps=30", f"target=['{DEEP_POINT[0]}','{DEEP_POINT[1]}']")


@pytest.fixture
def compose_still(compose_config):
    return lambda *overrides: OmegaConf.to_object(compose_config("still", *overrides))


def test_a_target_keeps_every_digit_of_a_decimal_string():
    assert check_target(["1.5", 2], "target") == ["1.5", 2.0]
    window = Window.around(tuple(map(Decimal, DEEP_POINT)), 8e-18, 1.0)
    assert window.exact == tuple(map(Decimal, DEEP_POINT)) and window.cx == float(DEEP_POINT[0])
    assert Window.from_dict(json.loads(json.dumps(window.to_dict()))) == window
    # a point inside it differs from the centre below float64's ulp, and keeps the difference
    x, _ = window.point(0.5, 0.0)
    assert float(x) == window.cx and x - window.exact[0] == Decimal("2E-18")
    for bad in (["1.5e", 2], ["nan", 2], [" 1.5", 2]):
        with pytest.raises(Refusal, match="decimal strings keep every digit"):
            check_target(bad, "target")


def test_auto_trains_by_perturbation_only_where_float64_cannot():
    size = (9, 9)
    shallow = START.zoom(1e6, center=tuple(map(Decimal, DEEP_POINT)))
    deep = START.zoom(1e16, center=tuple(map(Decimal, DEEP_POINT)))
    assert resolve_precision("auto", IDENTITY, shallow, size) == torch.float64
    assert resolve_precision("auto", IDENTITY, deep, size) == PERTURBATION
    with pytest.raises(Refusal, match="too deep for float64.*engine.precision=perturbation"):
        deep.check_resolution(size, torch.float64)
    with pytest.raises(Refusal, match="too deep for engine.precision=perturbation"):
        START.zoom(1e31, center=tuple(map(Decimal, DEEP_POINT))).check_resolution(size, PERTURBATION)


def test_perturbation_draws_the_float64_landscape_where_both_resolve():
    # a float centre, so that both train its very run (the decimal one differs below an ulp)
    window = START.zoom(1e8, center=tuple(map(float, DEEP_POINT)))
    f64 = landscape(IDENTITY, window, (7, 7))
    deep = landscape(IDENTITY, window, (7, 7), dtype=PERTURBATION)
    assert (f64 < 0).any() and (f64 > 0).any()
    np.testing.assert_array_equal(np.sign(deep), np.sign(f64))
    np.testing.assert_allclose(deep, f64, rtol=1e-6)


def test_the_search_goes_on_below_float64_with_precision_auto():
    target = find_target(IDENTITY, START, 16, resolution=16, zoom_per_level=6, dtype="auto")
    assert all(isinstance(c, Decimal) for c in target.point)  # digits past float64's
    assert len(target.structure) == 33  # every half decade verified to hold both classes
    json.dumps(target.to_dict())  # its record is plain JSON


def test_a_still_16_decades_down(compose_still, tmp_path):
    cfg = compose_still(*DEEP, "size=8", "magnification=1e16", "engine.precision=auto", "figure=true")
    meta = render_still(cfg, tmp_path)
    assert meta["center"] == list(DEEP_POINT) and meta["window"]["center"] == list(DEEP_POINT)
    assert meta["window"]["width"] == pytest.approx(8e-16)
    still = np.asarray(Image.open(tmp_path / "still.png"))
    assert len(np.unique(still.reshape(-1, 3), axis=0)) > 2  # a landscape, not one colour
    assert (tmp_path / "figure.png").exists()


def test_float64_refuses_a_deep_still_before_training(compose_still, tmp_path):
    cfg = compose_still(*DEEP, "size=8", "magnification=1e16")
    with pytest.raises(Refusal, match="engine.precision=perturbation"):
        render_still(cfg, tmp_path)
    assert not (tmp_path / "still.png").exists()


def test_a_zoom_past_float64_renders_and_resumes(run_app, tmp_path):
    overrides = ("experiment=identity", "experiment.steps=30", "engine.precision=auto", "zoom=manual",
                 f"zoom.target=['{DEEP_POINT[0]}','{DEEP_POINT[1]}']", "zoom.decades=15", "video=gif",
                 "video.width=16", "video.height=10", "video.duration_s=0.5", "video.fps=8")
    run_app(tmp_path, *overrides)
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["target"]["point"] == list(DEEP_POINT)
    # auto: float32 or float64 while they resolve the pixels, perturbation past that
    assert meta["computed_dtypes"][0] in ("float32", "float64") and meta["computed_dtypes"][-1] == PERTURBATION
    assert meta["computed_windows"][-1]["center"] == list(DEEP_POINT)
    assert meta["computed_by"]["backend"][PERTURBATION] == PERTURBATION
    run_app(tmp_path, *overrides)  # the same command again finds every frame in the store
    again = json.loads((tmp_path / "metadata.json").read_text())
    assert again["frames"]["computed"] == 0 and again["frames"]["reused"] == len(meta["computed_windows"])

"""Automatic zoom targets stay on the boundary at every level; the zoom path is right."""
import math

import numpy as np
import pytest

import zoomer
from zoomer.dimension import edges
from zoomer.target import NoTargetError, coherence, find_roughest_target, find_target, speckle
from zoomer.window import zoom_path

CONDITIONS = {
    "tanh": (dict(), ((-2.0, 6.0), (-3.0, 5.0))),
    "relu": (dict(nonlinearity="relu"), ((-3.0, 5.0), (-3.0, 5.0))),
    "paraminit": (dict(phase_space="paraminit_vs_lr"), ((-3.0, 3.0), (-3.0, 3.0))),
}


@pytest.mark.parametrize("name", sorted(CONDITIONS))
def test_auto_target_keeps_both_classes_near_the_centre_at_every_level(name):
    kw, (xb, yb) = CONDITIONS[name]
    exp = zoomer.Experiment(steps=25, **kw)  # 25: every condition keeps a boundary to depth 2 with the paper's draws
    start = zoomer.Window.from_bounds(xb, yb)
    points = set()
    for seed in (0, 1, 2):
        target = find_target(exp, start, depth=2.0, seed=seed, resolution=16, dtype="float32")
        points.add(target.point)
        for window in target.levels:
            s = zoomer.landscape(exp, window, (21, 21), dtype="float32")
            centre = s[8:13, 8:13]  # the central fifth
            assert (centre < 0).any() and (centre > 0).any(), (name, seed, window)
            assert coherence(s) > 0.15, ("a boundary, not static", name, seed, window)
    assert len(points) >= 2, "different seeds should give different targets"


def test_the_roughest_target_is_the_candidate_with_the_most_boundary():
    exp = zoomer.Experiment(nonlinearity="identity", steps=50)
    start = zoomer.Window.from_bounds((-3.0, 5.0), (-3.0, 5.0))
    target, record = find_roughest_target(exp, start, depth=2.0, seed=0, candidates=4, resolution=16, dtype="float32")
    assert [c["seed"] for c in record] == [[0, 0], [0, 1], [0, 2], [0, 3]]
    tried = [c for c in record if c["found"]]
    assert len({tuple(c["point"]) for c in tried}) >= 2
    counts = [c["boundary_corners"] for c in tried]
    assert list(target.point) == tried[counts.index(max(counts))]["point"]
    # The count: boundary corners of a 17 px landscape at each decade below the start.
    recount = sum(int(edges(zoomer.landscape(exp, w, (17, 17), dtype="float32")).sum()) for w in target.levels[1:])
    assert recount == max(counts) > min(counts)
    with pytest.raises(ValueError, match="candidates"):
        find_roughest_target(exp, start, depth=2.0, candidates=0)
    # A start window with one class is the window's fault, not a seed's: said at once.
    solid = zoomer.Window.from_bounds((-3.0, -2.9), (-3.0, -2.9))
    with pytest.raises(RuntimeError, match="holds no boundary") as raised:
        find_roughest_target(exp, solid, depth=1.0, candidates=2, resolution=8, dtype="float32")
    assert not isinstance(raised.value, NoTargetError)


def test_static_is_told_from_a_boundary():
    rng = np.random.default_rng(0)
    static = rng.choice([-1.0, 1.0], size=(40, 60))
    y, x = np.mgrid[0:40, 0:60]
    wavy = np.where(y > 20 + 5 * np.sin(x / 4), 1.0, -1.0)
    assert abs(coherence(static)) < 0.05 and coherence(wavy) > 0.9
    assert speckle(static).mean() > 0.15 and speckle(wavy).mean() < 0.01


def test_zoom_path_is_constant_speed_in_log_scale_and_keeps_the_aspect():
    start = zoomer.Window.from_bounds((0.0, 16.0), (0.0, 9.0))
    frames = zoom_path(start, (3.0, 4.0), depth=4.0, n_frames=41)
    mags = np.log10([start.width / w.width for w in frames])
    assert np.allclose(np.diff(mags), 0.1) and mags[-1] == pytest.approx(4.0)
    assert all(w.center == (3.0, 4.0) and w.width / w.height == pytest.approx(16 / 9) for w in frames)
    eased = zoom_path(start, (3.0, 4.0), depth=4.0, n_frames=41, ease=0.2)
    steps = np.diff(np.log10([start.width / w.width for w in eased]))
    assert steps[0] < steps[20] / 4 and steps[-1] < steps[20] / 4 and np.all(steps > 0)


def test_the_app_refuses_a_depth_float64_cannot_resolve():
    start = zoomer.Window.from_bounds((-2.0, 6.0), (-3.0, 5.0))
    from zoomer.window import max_depth

    d = max_depth(start, (180, 320), (2.0, 1.0))
    assert 11 < d < 15  # ~ log10(8 / (320 * 8 ulp(2.0)))
    assert math.isfinite(d)

"""Automatic zoom targets stay on the boundary at every level and prefer structure; the
structure measure tells swirls and islands from bands and static; the zoom path is right."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import zoomer
from zoomer.boundary import coherence, least_coherence, orientation_spread, speckle, structure, structure_map
from zoomer.config import SearchConfig
from zoomer.errors import Refusal
from zoomer.target import NoTargetError, find_target, search_target
from zoomer.window import zoom_path

CONDITIONS = {
    "tanh": (dict(), ((-2.0, 6.0), (-3.0, 5.0))),
    "relu": (dict(nonlinearity="relu"), ((-3.0, 5.0), (-3.0, 5.0))),
    "paraminit": (dict(phase_space="paraminit_vs_lr"), ((-3.0, 3.0), (-3.0, 3.0))),
}


# ---- the structure measure on synthetic borders ---------------------------------------
N = 96
Y, X = np.mgrid[0:N, 0:N] - N / 2 + 0.3
RNG = np.random.default_rng(0)


def islands(count=40):
    """Discs of the other class scattered over the window, of radii 3-10 px."""
    field = np.ones((N, N))
    for cy, cx, r in zip(RNG.uniform(0, N, count), RNG.uniform(0, N, count), RNG.uniform(3, 10, count)):
        field[np.hypot(Y + N / 2 - cy, X + N / 2 - cx) < r] = -1
    return field


SYNTHETIC = {
    "swirl": np.sign(np.sin(np.hypot(X, Y) / 2 + 3 * np.arctan2(Y, X))),
    "islands": islands(),
    "bands": np.sign(np.sin((X * np.cos(0.4) + Y * np.sin(0.4)) / 2.5)),
    "horizontal bands": np.sign(np.sin(Y / 3)),
    "static": RNG.choice([-1.0, 1.0], size=(N, N)),
    "streaks of static": RNG.choice([-1.0, 1.0], size=(N, N // 4)).repeat(4, axis=1),
}


def test_structure_ranks_swirls_and_islands_above_bands_and_static():
    score = {name: structure(s) for name, s in SYNTHETIC.items()}
    for good in ("swirl", "islands"):
        assert score[good] > 0.5, score
        for bad in ("bands", "horizontal bands", "static", "streaks of static"):
            assert score[good] > score[bad] + 0.4, (good, bad, score)
    # Why each bad one is bad: bands have one orientation, static no coherence (in
    # streaks, none across them), though both kinds of static turn every way.
    assert orientation_spread(SYNTHETIC["bands"]) < 0.05 and coherence(SYNTHETIC["bands"]) > 0.7
    assert orientation_spread(SYNTHETIC["static"]) > 0.8 and abs(coherence(SYNTHETIC["static"])) < 0.05
    assert coherence(SYNTHETIC["streaks of static"]) > 0.3 > 0.05 > abs(least_coherence(SYNTHETIC["streaks of static"]))
    assert structure(np.ones((20, 20))) == 0, "one class: no border, no structure"


def test_the_local_structure_map_is_structure_of_each_box():
    """One formula: a box that covers the whole image gives the image's structure."""
    for name, s in SYNTHETIC.items():
        assert structure_map(s, N, N)[N // 2, N // 2] == pytest.approx(structure(s), abs=1e-9), name
    swirl, bands = structure_map(SYNTHETIC["swirl"], 4, 4), structure_map(SYNTHETIC["bands"], 4, 4)
    assert swirl[40:56, 40:56].mean() > 0.2 > 0.05 > bands.mean(), "the swirl's centre turns at 9 px too"


def test_static_is_told_from_a_boundary():
    rng = np.random.default_rng(0)
    static = rng.choice([-1.0, 1.0], size=(40, 60))
    y, x = np.mgrid[0:40, 0:60]
    wavy = np.where(y > 20 + 5 * np.sin(x / 4), 1.0, -1.0)
    assert abs(coherence(static)) < 0.05 and coherence(wavy) > 0.9
    assert speckle(static).mean() > 0.15 and speckle(wavy).mean() < 0.01


# ---- the search --------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CONDITIONS))
def test_auto_target_keeps_the_boundary_in_every_frames_centre(name):
    kw, (xb, yb) = CONDITIONS[name]
    exp = zoomer.Experiment(steps=25, **kw)  # 25: every condition keeps a boundary to depth 2 with the paper draws
    start = zoomer.Window.from_bounds(xb, yb)
    points = set()
    for seed in (0, 1, 2):
        target = find_target(exp, start, decades=2.0, seed=seed, resolution=16, dtype="float32")
        points.add(target.point)
        assert len(target.structure) == 5 and target.rank_score == pytest.approx(np.mean(target.structure))
        for window in zoom_path(start, target.point, decades=2.0, n_frames=9):  # every quarter decade
            s = zoomer.landscape(exp, window, (21, 21), dtype="float32")
            centre = s[8:13, 8:13]  # the central fifth
            assert (centre < 0).any() and (centre > 0).any(), (name, seed, window)
            assert coherence(s) > 0.1, ("a boundary, not static", name, seed, window)
    assert len(points) >= 2, "different seeds should give different targets"


def test_the_chosen_candidate_has_the_most_structure():
    exp = zoomer.Experiment(nonlinearity="identity", steps=50)
    start = zoomer.Window.from_bounds((-3.0, 5.0), (-3.0, 5.0))
    target, record = search_target(exp, start, 2.0, SearchConfig(seed=0, candidates=3, resolution=16),
                                   dtype="float32")
    assert [c["seed"] for c in record] == [[0, 0], [0, 1], [0, 2]]
    tried = [c for c in record if c["found"]]
    assert len({tuple(c["point"]) for c in tried}) >= 2
    scores = [c["rank_score"] for c in tried]
    assert list(target.point) == tried[scores.index(max(scores))]["point"]
    # The score: mean structure of 15 px views centred on the point, every half decade.
    views = [structure(zoomer.landscape(exp, start.zoom(10**d, target.point), (15, 15), dtype="float32"))
             for d in (0, 0.5, 1, 1.5, 2)]
    assert target.rank_score == pytest.approx(np.mean(views)) and max(scores) > 0
    with pytest.raises(ValueError, match="search.candidates=0"):
        SearchConfig(candidates=0)
    # A start window with one class is the window's fault, not a seed's: said at once.
    solid = zoomer.Window.from_bounds((-3.0, -2.9), (-3.0, -2.9))
    with pytest.raises(Refusal, match="holds no boundary") as raised:
        search_target(exp, solid, 1.0, SearchConfig(candidates=2, resolution=8), dtype="float32")
    assert not isinstance(raised.value, NoTargetError)


def test_zoom_path_is_constant_speed_in_log_scale_and_keeps_the_aspect():
    start = zoomer.Window.from_bounds((0.0, 16.0), (0.0, 9.0))
    frames = zoom_path(start, (3.0, 4.0), decades=4.0, n_frames=41)
    mags = np.log10([start.width / w.width for w in frames])
    assert np.allclose(np.diff(mags), 0.1) and mags[-1] == pytest.approx(4.0)
    assert all(w.center == (3.0, 4.0) and w.width / w.height == pytest.approx(16 / 9) for w in frames)
    eased = zoom_path(start, (3.0, 4.0), decades=4.0, n_frames=41, ease=0.2)
    steps = np.diff(np.log10([start.width / w.width for w in eased]))
    assert steps[0] < steps[20] / 4 and steps[-1] < steps[20] / 4 and np.all(steps > 0)


@pytest.mark.slow  # a process of its own: Hydra and torch start up
def test_the_app_refuses_a_depth_float64_cannot_resolve(tmp_path):
    """zoomer itself, as a user runs it: exit code 2 and one line that names the setting and
    the deepest zoom float64 allows, before any training."""
    run = [str(Path(sys.executable).parent / "zoomer"), "zoom=manual", "zoom.target=[2.0,1.0]", "zoom.decades=20",
           f"hydra.run.dir={tmp_path / 'run'}"]
    done = subprocess.run(run, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    message = [line for line in done.stderr.splitlines() if line.startswith("zoomer: error:")]
    assert len(message) == 1 and "zoom.decades=20 is too deep for engine.precision=float64" in message[0], done.stderr
    deepest = float(message[0].split("at most about ")[1].split(" decades")[0])
    assert 11 < deepest < 15  # ~ log10(8 / (width * 8 ulp(2.0)))
    assert not list((tmp_path / "run").rglob("*.npy")), "no frame was computed"


def test_zoomer_targets_seed_is_zoomers_target(compose_config, tmp_path):
    """zoomer-targets searches exactly as zoomer does: in the start window cut to the video's
    shape (a wide 32x18 video here, whose start window is not the condition's square)."""
    from zoomer import render, sweep

    same = ["experiment.steps=20", "engine.precision=float32", "search.resolution=12", "search.seed=0",
            "video.width=32", "video.height=18"]
    row = sweep.candidate(compose_config("targets", *same, "decades=1.0", "thumb=8"), tmp_path)
    meta = render.render(compose_config("config", *same, "zoom=auto", "zoom.decades=1.0", "render.mode=compute",
                                        "video.fps=4", "video.duration_s=1.0", "render.guess=1"), tmp_path)
    assert row["found"] and row["point"] == meta["target"]["point"]


def test_zoomer_targets_override_renders_the_landscape_it_was_searched_in(compose_config, tmp_path):
    """The candidate's override carries every setting that shaped its landscape (a narrower
    net, a minibatch, another window, the video's shape), so zoomer renders it as found."""
    from zoomer import render, sweep

    searched = ["experiment.steps=20", "experiment.width=8", "experiment.batch_size=4", "experiment.window.x=[-1,3]",
                "video.width=16", "video.height=10", "search.resolution=8", "search.seed=0"]
    row = sweep.candidate(compose_config("targets", *searched, "decades=1.0", "thumb=8"), tmp_path)
    override = row["override"].split()
    for setting in ("experiment.width=8", "experiment.batch_size=4", "experiment.window.x=[-1.0,3.0]",
                    "video.width=16", "video.height=10"):
        assert setting in override, row["override"]
    meta = render.render(compose_config("config", *override, "render.mode=compute", "video.duration_s=0.5"),
                         tmp_path)  # the manual target's last frame holds both classes
    assert meta["target"]["point"] == row["point"]

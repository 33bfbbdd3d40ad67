"""Box counting (both methods) against sets of known dimension, and the zoomer-dimension app
end to end."""
import importlib
import json
import math

import numpy as np
import pytest
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import OmegaConf
from PIL import Image, ImageDraw

import zoomer
from zoomer import dimension_table
from zoomer.boundary import edges
from zoomer.dimension import (box_counts, box_dimension, boundary_dimension, fit_range, median_dimension,
                              paper_box_sizes, paper_boxcount, paper_dimension, straddling_boxes)
from zoomer.dimension_cli import measure

CONDITIONS = ("tanh", "relu", "identity", "minibatch", "single_datapoint", "paraminit")


# ---- sets of known dimension --------------------------------------------------------
def sierpinski_triangle(n):
    """Pascal's triangle mod 2: exactly 3^k of the 4^k boxes of each power-of-two size."""
    i, j = np.indices((n, n))
    return (i & j) == 0


def sierpinski_carpet(k):
    i, j = np.indices((3**k, 3**k))
    keep = np.ones(i.shape, dtype=bool)
    for _ in range(k):
        keep &= ~((i % 3 == 1) & (j % 3 == 1))
        i, j = i // 3, j // 3
    return keep


def koch_snowflake(level, size):
    """The filled snowflake as +-1 'scores': its edge set is the Koch curve."""
    points = np.exp(2j * np.pi * np.arange(4) / 3)  # a closed triangle, clockwise below
    for _ in range(level):
        a, b = points[:-1], points[1:]
        d = (b - a) / 3
        peak = a + d + d * np.exp(-1j * np.pi / 3)
        points = np.append(np.stack([a, a + d, peak, a + 2 * d], axis=1).ravel(), points[-1])
    z = points / np.abs(points).max() * size * 0.45 + size / 2 * (1 + 1j)
    image = Image.new("1", (size, size))
    ImageDraw.Draw(image).polygon(list(zip(z.real, z.imag)), fill=1)
    return np.where(np.asarray(image), -1.0, 1.0)


def disk(n):
    i, j = np.indices((n, n))
    return np.where((i - n / 2 + 0.3) ** 2 + (j - n / 2 + 0.1) ** 2 < (0.4 * n) ** 2, -1.0, 1.0)


@pytest.mark.parametrize("name, mask, expected", [
    ("horizontal line", np.eye(512, dtype=bool)[100][None].repeat(512, 0), 1.0),
    ("diagonal line", np.eye(512, dtype=bool), 1.0),
    ("filled square", np.ones((512, 512), dtype=bool), 2.0),
    ("Sierpinski triangle", sierpinski_triangle(512), math.log(3) / math.log(2)),
    ("Sierpinski triangle, not a power of two", sierpinski_triangle(500), math.log(3) / math.log(2)),
    ("Sierpinski carpet", sierpinski_carpet(6), math.log(8) / math.log(3)),
])
def test_box_dimension_of_known_sets(name, mask, expected):
    assert box_dimension(mask).dimension == pytest.approx(expected, abs=0.05), name


@pytest.mark.parametrize("name, scores, expected", [
    ("circle", disk(512), 1.0),
    ("Sierpinski triangle", np.where(sierpinski_triangle(513), -1.0, 1.0), math.log(3) / math.log(2)),
    ("Sierpinski carpet", np.where(sierpinski_carpet(6), -1.0, 1.0), math.log(8) / math.log(3)),
])
def test_boundary_dimension_of_known_sets(name, scores, expected):
    estimate = boundary_dimension(scores)
    assert estimate.dimension == pytest.approx(expected, abs=0.05), name
    assert estimate.stderr < 0.05


def test_rasterised_fractal_curves_come_out_low():
    """The Koch curve (log 4 / log 3 = 1.262) drawn at 1024 px measures 1.16-1.23 however
    it is scaled or turned: detail below a pixel is lost, which flattens the smallest
    fitted boxes. Box counts of the boundary are biased low by up to ~0.1 at this size."""
    estimate = boundary_dimension(koch_snowflake(7, 1024))
    assert math.log(4) / math.log(3) - 0.12 < estimate.dimension < math.log(4) / math.log(3)


def test_edges_mark_2x2_blocks_that_hold_both_classes():
    scores = np.where(np.arange(6)[None, :] < 3, -1.0, 1.0).repeat(4, 0)  # a vertical step
    found = edges(scores)
    assert found.shape == (3, 5)
    assert found[:, 2].all() and found.sum() == 3
    assert not edges(np.ones((5, 5))).any()


def test_box_counts_merge_2x2_boxes_and_count_partial_ones():
    sizes, counts = box_counts(np.ones((5, 7), dtype=bool))
    assert sizes.tolist() == [1, 2, 4]
    assert counts.tolist() == [35, 12, 4]


def test_fit_range_leaves_out_pixels_and_few_boxes():
    assert fit_range((256, 256)) == (2, 32)
    assert fit_range((63, 100)) == (2, 8)  # 8 boxes of 8 px, the last partial, span 63 px
    with pytest.raises(ValueError, match="too small"):
        fit_range((20, 20))


def test_spread_and_failures():
    line = box_dimension(np.eye(256, dtype=bool))
    assert line.stderr == pytest.approx(0, abs=1e-9)
    assert np.allclose(line.local_slopes, 1)
    with pytest.raises(ValueError, match="empty"):
        box_dimension(np.zeros((64, 64), dtype=bool))
    assert median_dimension([line, box_dimension(np.ones((64, 64), bool)), line]) == pytest.approx(1)


# ---- the paper's procedure ---------------------------------------------------------
def test_paper_box_sizes_are_porespys_default_bins():
    """10 sizes log-spaced from 10 px to the side, truncated to whole pixels, repeats once."""
    assert paper_box_sizes(512).tolist() == [10, 15, 23, 37, 57, 89, 137, 213, 330, 512]
    assert paper_box_sizes(100).tolist() == [10, 12, 16, 21, 27, 35, 46, 59, 77, 100]
    assert paper_box_sizes(20).tolist() == [10, 11, 12, 13, 14, 15, 17, 18, 20]  # 16 truncates to 15
    with pytest.raises(ValueError, match="too small"):
        paper_box_sizes(10)


def test_a_box_counts_when_it_holds_some_boundary_but_is_not_all_boundary():
    mask = np.zeros((25, 25), dtype=bool)
    assert straddling_boxes(mask, 10) == 0
    mask[24, 24] = True  # in the partial box at the corner (5 x 5 px)
    assert straddling_boxes(mask, 10) == 1
    mask[20:, 20:] = True  # now that partial box is all boundary: judged on its own pixels
    assert straddling_boxes(mask, 10) == 0
    assert straddling_boxes(np.ones((25, 25), dtype=bool), 10) == 0  # all boundary: no box counts
    mask[0, 0] = True
    assert straddling_boxes(mask, 10) == 1 and straddling_boxes(mask, 25) == 1


@pytest.mark.parametrize("name, mask, expected", [
    ("horizontal line", np.eye(512, dtype=bool)[100][None].repeat(512, 0), 1.0),
    ("diagonal line", np.eye(512, dtype=bool), 1.0),
    ("a filled square's edge", edges(np.pad(-np.ones((300, 390)), ((100, 112), (60, 62)), constant_values=1)), 1.0),
    ("Koch curve, 1024 px", edges(koch_snowflake(7, 1024)), math.log(4) / math.log(3)),
    ("Sierpinski triangle's edge", edges(np.where(sierpinski_triangle(513), -1.0, 1.0)), math.log(3) / math.log(2)),
    # A box that is all boundary does not count: filled sets measure as their border.
    ("a filled square", np.pad(np.ones((300, 390), bool), ((100, 112), (60, 62))), 1.0),
    ("a filled disk", disk(512) < 0, 1.0),
])
def test_paper_dimension_of_known_sets(name, mask, expected):
    assert paper_dimension([paper_boxcount(mask)]) == pytest.approx(expected, abs=0.06), name


def test_paper_slopes_are_local_and_pooled_by_the_median():
    line = paper_boxcount(np.eye(512, dtype=bool))
    sizes, counts = line.sizes, line.counts
    # Central differences inside, one-sided at the ends: numpy.gradient in log-log.
    inner = -(math.log(counts[2]) - math.log(counts[0])) / (math.log(sizes[2]) - math.log(sizes[0]))
    assert line.slopes[0] == pytest.approx(-math.log(counts[1] / counts[0]) / math.log(sizes[1] / sizes[0]))
    assert abs(line.slopes[1] - inner) < 0.05
    assert counts[-1] == 1, "one box covers the image"
    empty = paper_boxcount(np.zeros((64, 64), dtype=bool))
    assert np.isnan(empty.slopes).all() and empty.to_dict()["local_slopes"][0] is None
    assert paper_dimension([line, empty]) == pytest.approx(np.median(line.slopes))
    pooled = paper_dimension([line, paper_boxcount(sierpinski_triangle(512))])
    assert pooled == pytest.approx(np.median(np.r_[line.slopes, paper_boxcount(sierpinski_triangle(512)).slopes]))
    with pytest.raises(ValueError, match="no image"):
        paper_dimension([empty])


# ---- the app ------------------------------------------------------------------------
@pytest.fixture
def compose_dimension(compose_config):
    """compose(overrides) -> DimensionConfig, as the app builds it."""
    return lambda *overrides: OmegaConf.to_object(compose_config("dimension", *overrides))


# Small enough for a CPU: 48 px fits two box sizes (2 and 4 px), so each level's estimate
# is one local slope; levels a decade apart about the most structured of 4 candidate targets.
# Depth differs by condition because their boundaries turn fractal at different depths
# (docs/dimension.md): the tanh-family conditions within one or two decades of their
# default windows, single_datapoint only two to three decades down (its first levels read
# about 1). It and identity cost a twentieth as much per run and go to 6 levels. Measured
# with these settings: tanh 1.42, relu 1.70, identity 1.07, minibatch 1.09,
# single_datapoint 1.14, paraminit 1.44 (8 candidates took twice as long: 125 s of the
# suite's ten minutes against 60 s).
SMALL = ("size=48", "experiment.steps=100", "zoom_factor=10", "engine.precision=float32", "search.resolution=16",
         "search.candidates=4")
LEVELS = {"identity": 6, "single_datapoint": 6}


@pytest.mark.slow
@pytest.mark.parametrize("experiment", CONDITIONS)
def test_dimension_of_each_condition(compose_dimension, experiment, tmp_path):
    levels = LEVELS.get(experiment, 4)
    result = measure(compose_dimension(f"experiment={experiment}", f"levels={levels}", *SMALL), tmp_path)
    assert 1 < result["median_dimension"] < 2, [level["dimension"] for level in result["levels"]]
    written = json.loads((tmp_path / "dimension.json").read_text())
    assert written["experiment"] == experiment and len(written["levels"]) == levels
    assert {"window", "dimension", "stderr", "box_counts", "box_sizes", "coherence"} <= set(written["levels"][0])
    assert written["config"]["size"] == 48 and written["experiment_settings"]["steps"] == 100
    found = [c for c in written["candidate_targets"] if c["found"]]
    scores = [c["rank_score"] for c in found]
    assert written["center"] == found[scores.index(max(scores))]["point"]
    assert [c["seed"] for c in written["candidate_targets"]] == [[0, i] for i in range(4)]
    assert Image.open(tmp_path / "boxcount.png").size[0] > 400
    assert (tmp_path / f"level_{levels - 1}.png").exists()


@pytest.mark.parametrize("override, setting", [
    ("levels=0", "levels"), ("zoom_factor=1", "zoom_factor"), ("size=16", "size"),
    ("search.candidates=0", "search.candidates"), ("engine.precision=float16", "engine.precision"),
    ("target=[1]", "target"), ("target=null", "target"), ("experiment.steps=5", "steps"),
    ("search.resolution=4", "search.resolution"), ("levels=1", "target=auto"),
    ("method=fractal", "method"), ("window.x=[1,2]", "window.y"),
    ("outer_width=0", "outer_width"), ("window.x=[2,1]", "window.x"), ("engine.device=tpu", "engine.device"),
    ("zoom_factor=inf", "zoom_factor=inf must be finite"), ("outer_width=inf", "outer_width=inf must be finite"),
    ("zoom_factor=1e200", r"zoom 10\^600 times"),
])
def test_bad_settings_fail_before_compute_naming_the_setting(compose_dimension, override, setting, tmp_path,
                                                             monkeypatch):
    """Ranges fail as the config becomes objects, choices (Enums) as Hydra composes it, the
    device as the study resolves it: each before any run trains."""
    # where it is used: landscape imported train_grid, so patching zoomer.engine would miss it
    monkeypatch.setattr(importlib.import_module("zoomer.landscape"), "train_grid", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises((ValueError, ConfigCompositionException), match=setting):
        measure(compose_dimension(override), tmp_path)


def test_a_decimal_target_is_written_to_every_digit(compose_dimension, tmp_path):
    """A target given as decimal strings (deep zooms) reaches dimension.json as strings, as
    in zoomer-still's JSON; it once failed to serialise after every level had trained."""
    measure(compose_dimension("target=['1.5','2.0']", "levels=2", "size=30", "experiment.steps=20"), tmp_path)
    assert json.loads((tmp_path / "dimension.json").read_text())["center"] == ["1.5", "2.0"]


def test_unknown_experiment_is_refused_by_hydra(compose_dimension):
    with pytest.raises(MissingConfigException, match="experiment"):
        compose_dimension("experiment=sigmoid")


@pytest.mark.slow  # a process of its own: Hydra and torch start up
def test_a_multirun_writes_each_result_and_the_table(tmp_path, run_app):
    run_app(tmp_path, "-m", "experiment=single_datapoint,identity", "target=center", "size=32", "levels=1",
            "experiment.steps=20", "engine.precision=float32", script="zoomer-dimension")
    results = sorted(tmp_path.glob("*/dimension.json"))
    assert len(results) == 2 and json.loads(results[0].read_text())["levels"][0]["magnification"] == 1
    rows = (tmp_path / "dimensions.md").read_text().splitlines()  # the DimensionTable callback's
    assert [row.split(" | ")[0] for row in rows[2:]] == ["| identity", "| single_datapoint"]


def test_paper_method_zooms_out_of_a_given_window_by_twos(compose_dimension, tmp_path):
    cfg = compose_dimension("method=paper", "experiment=identity", "window.x=[0.5,0.6]", "window.y=[1.0,1.1]",
                            "size=32", "experiment.steps=20", "engine.precision=float32", "frames=false",
                            "outer_width=6")
    result = measure(cfg, tmp_path)
    widths = [level["window"]["x"][1] - level["window"]["x"][0] for level in result["levels"]]
    assert widths[-1] == pytest.approx(0.1) and np.allclose(np.diff(np.log2(widths)), -1)
    assert 6 / 2**0.5 <= widths[0] <= 6 * 2**0.5  # 0.1 * 2^6 = 6.4: about 6 decades wide
    assert all(np.allclose(np.mean(level["window"]["x"]), 0.55) for level in result["levels"])
    assert result["method"] == "paper" and result["candidate_targets"] == []
    slopes = [s for level in result["levels"] if level["dimension"] is not None for s in level["local_slopes"]
              if s is not None]
    assert result["median_dimension"] == pytest.approx(np.median(slopes))
    assert result["levels"][0]["box_sizes"] == paper_box_sizes(31).tolist()  # the edge image is 31 px
    assert not (tmp_path / "boxcount.png").exists()


def test_table_collects_a_multirun(tmp_path):
    for i, (name, d) in enumerate([("relu", 1.4), ("tanh", 1.3)]):
        (tmp_path / str(i)).mkdir()
        result = {"experiment": name, "median_dimension": d, "experiment_settings": {"steps": 20},
                  "levels": [{"dimension": d, "coherence": 0.9}, {"dimension": None, "coherence": 0.02}],
                  "config": {"size": 32, "zoom_factor": 10.0, "engine": {"precision": "float32"}}}
        (tmp_path / str(i) / "dimension.json").write_text(json.dumps(result))
    rows = dimension_table.table(tmp_path).splitlines()
    assert rows[2].startswith("| tanh | boxcount | 1.300 | 1.30, - | 1 | 1.300 | 32 | 20 | 10^0..1 |")
    assert rows[3].startswith("| relu |")
    result.update(method="paper", experiment="identity")
    (tmp_path / "2").mkdir()
    (tmp_path / "2" / "dimension.json").write_text(json.dumps(result))
    assert dimension_table.table(tmp_path).splitlines()[4].startswith("| identity | paper | 1.300 | 1.30, - |")


def test_a_sweeps_results_are_its_own_in_job_order(tmp_path):
    """A multirun's figure and table take its jobs in order (job 10 after job 9) and leave
    out an earlier sweep's results in the same folder."""
    import os
    import time

    from zoomer.study import sweep_results

    for name in ("0_tanh", "1_tanh", "10_tanh", "2_tanh", "9_tanh"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "dimension.json").write_text("{}")
    names = lambda since=None: [p.parent.name for p in sweep_results(tmp_path, "**/dimension.json", since)]  # noqa: E731
    assert names() == ["0_tanh", "1_tanh", "2_tanh", "9_tanh", "10_tanh"]
    os.utime(tmp_path / "1_tanh" / "dimension.json", (0, 0))  # written by an earlier sweep
    assert names(time.time() - 60) == ["0_tanh", "2_tanh", "9_tanh", "10_tanh"]

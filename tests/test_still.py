"""zoomer-still: the PNG, its figure and metadata, and refusals before compute."""
import importlib
import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

import zoomer
from zoomer.color import Reference, color_frame
from zoomer.config import ColorConfig
from zoomer.figure import MIN_PLOT, edge_ticks, enlarged, still_figure
from zoomer.plan import SUPERSAMPLE, supersample
from zoomer.still_cli import render_still
from zoomer.window import Window

SMALL = ("experiment=single_datapoint", "size=24", "experiment.steps=20", "engine.precision=float32")


@pytest.fixture
def compose_still(compose_config):
    return lambda *overrides: OmegaConf.to_object(compose_config("still", *overrides))


def locate(figure: np.ndarray, picture: np.ndarray) -> tuple[int, int]:
    """(top, left) of the one place where the picture's inside (all but a 2-pixel rim,
    which the frame's outline covers) sits unchanged in the figure."""
    inside = picture[2:-2, 2:-2]
    h, w = inside.shape[:2]
    hits = [(r - 2, c - 2) for r, c in zip(*np.nonzero((figure == inside[0, 0]).all(-1)))
            if np.array_equal(figure[r:r + h, c:c + w], inside)]
    assert len(hits) == 1, f"the picture appears {len(hits)} times in the figure"
    return hits[0]


def test_still_writes_png_figure_and_metadata(compose_still, tmp_path):
    cfg = compose_still(*SMALL, "aspect=1.5", "figure=true", "color=fire_ice", "render.supersample=2",
                        "magnification=2", "target=[0.5,1.0]")
    render_still(cfg, tmp_path)
    # single_datapoint's window is 8 decades wide; 1.5 : 1, magnified 2x about the target
    window = Window(0.5, 1.0, 2.0, 4 / 3)
    still = np.asarray(Image.open(tmp_path / "still.png"))
    assert still.shape == (16, 24, 3)  # height = size / aspect; supersampled 2x2 then averaged
    scores = zoomer.landscape(zoomer.Experiment(n_data=1, steps=20), window, (32, 48), dtype="float32", supersample=2)
    color = ColorConfig(cmap="fire_ice")
    np.testing.assert_array_equal(still, color_frame(scores, Reference.from_scores(scores), color, "loss", 2))
    top, _ = locate(np.asarray(Image.open(tmp_path / "figure.png")), enlarged(still))
    assert top > 0  # room for the title above

    written = json.loads((tmp_path / "metadata.json").read_text())
    assert sorted(written["files"]) == sorted(p.name for p in tmp_path.iterdir() if p.name != "metadata.json")
    assert written["window"]["x"] == pytest.approx(list(window.x_bounds))
    assert written["window"]["y"] == pytest.approx(list(window.y_bounds))
    assert written["center"] == [0.5, 1.0] and written["magnification"] == 2
    assert written["pixels"] == {"width": still.shape[1], "height": still.shape[0], "supersample": 2}
    assert written["config"]["color"]["cmap"] == "fire_ice"
    assert {"target_s", "compute_s", "write_s", "total_s"} <= set(written["timings"])
    assert {"torch", "numpy", "python"} <= set(written["provenance"]["versions"])
    assert written["computed_dtype"] == "float32"  # what trained, beside engine.precision as given
    assert set(written["provenance"]["computed_by"]["backend"]) >= {"float32"}
    assert written["axis_labels"][0] == "log10 input-layer learning rate"


def test_still_without_figure_writes_no_figure(compose_still, tmp_path):
    render_still(compose_still(*SMALL), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metadata.json", "still.png"]


@pytest.mark.parametrize("override, setting", [
    ("size=4", "size"), ("magnification=0.5", "magnification"), ("aspect=0", "aspect"),
    ("render.supersample=0", "render.supersample"), ("target=auto_", "target"),
    ("target=[10,10]", r"target=\[10, 10\] is outside the experiment's window"),
    ("magnification=inf", r"magnification=inf must be in 1..1e300"),
])
def test_bad_settings_fail_before_compute(compose_still, override, setting, tmp_path, monkeypatch):
    # where it is used: landscape imported train_grid, so patching zoomer.engine would miss it
    monkeypatch.setattr(importlib.import_module("zoomer.landscape"), "train_grid", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(ValueError, match=setting):
        render_still(compose_still(override), tmp_path)


def test_console_entry_refuses_unknown_experiment(tmp_path, run_app):
    done = run_app(tmp_path, "experiment=sigmoid", script="zoomer-still", check=False)
    assert done.returncode != 0 and "experiment/sigmoid" in done.stderr


def test_edge_ticks_tell_the_edges_apart_at_depth():
    labels = [label for _, label in edge_ticks(1.234567891 - 1e-9, 1.234567891 + 1e-9)]
    assert len(set(labels)) == 3 and labels[1] == "1.234567891"


def picture(height=50, width=80):
    """A picture that cannot be mistaken for the figure's white, ink or grid."""
    return np.random.default_rng(0).integers(40, 216, (height, width, 3), dtype=np.uint8)


def test_a_small_still_is_enlarged_in_whole_pixels_not_dwarfed_by_its_title():
    rgb = picture(64, 64)
    figure = np.asarray(still_figure(rgb, Window.from_bounds((0.0, 1.0), (2.0, 3.0)), ("x", "y"), "t" * 120))
    shown = enlarged(rgb)
    assert min(shown.shape[:2]) >= MIN_PLOT and shown.shape[0] % 64 == 0
    np.testing.assert_array_equal(shown[:: shown.shape[0] // 64, :: shown.shape[1] // 64], rgb)
    locate(figure, shown)
    assert shown.shape[0] * shown.shape[1] >= 0.25 * figure.shape[0] * figure.shape[1]


def test_figure_frames_the_picture_with_title_and_edge_ticks():
    rgb, window = enlarged(picture()), Window.from_bounds((0.0, 1.0), (2.0, 3.0))
    figure = np.asarray(still_figure(rgb, window, ("x", "y"), "a title"))
    top, left = locate(figure, rgb)
    h, w = rgb.shape[:2]
    ink = figure.sum(-1) < 3 * 128
    assert ink[: top - 2].any(), "the title above the picture"
    below = ink[top + h + 1: top + h + 8]
    for column in (left, left + w // 2, left + w - 1):  # ticks at both edges and the centre
        assert below[:, column - 1: column + 2].any(), column
    retitled = np.asarray(still_figure(rgb, window, ("x", "y"), "another title"))
    assert retitled.shape == figure.shape
    changed = np.nonzero((retitled != figure).any(-1))[0]
    assert changed.size and changed.max() < top, "a new title changes only the rows above the picture"


def test_figure_ticks_follow_the_window():
    """Other y bounds change the y tick labels beside the picture, and nothing below it."""
    rgb = enlarged(picture())  # as large as a figure shows it: nothing enlarges it again
    h, w = rgb.shape[:2]
    figures = [np.asarray(still_figure(rgb, Window.from_bounds((0.0, 1.0), y), ("x", "y"), "t"))
               for y in ((2.0, 3.0), (7.0, 9.0))]
    (ta, la), (tb, lb) = (locate(f, rgb) for f in figures)
    margin = min(la, lb)
    beside = [f[t:t + h, l - margin:l] for f, (t, l) in zip(figures, ((ta, la), (tb, lb)))]
    assert not np.array_equal(*beside), "the y tick labels name the window's y bounds"
    below = [f[t + h + 2:t + h + 20, l:l + w] for f, (t, l) in zip(figures, ((ta, la), (tb, lb)))]
    np.testing.assert_array_equal(*below)  # the x ticks and their labels, unchanged
    assert [v for v, _ in edge_ticks(7.0, 9.0)] == [7.0, 8.0, 9.0]


def test_figure_frames_the_picture_under_a_title():
    rgb = picture()
    figure = np.asarray(still_figure(rgb, Window.from_bounds((0, 1), (0, 1)), ("x", "y"), "title"))
    assert figure.shape[0] > 50 and figure.shape[1] > 80
    ink = (figure != 255).any(-1)
    top = np.argmax(ink.sum(1) > rgb.shape[1] // 2)  # the first row across the picture (or its frame)
    assert ink[:top].any(), "a title above the picture"


def test_supersample_auto_is_one_run_a_pixel_on_a_cpu_the_papers_look_on_a_gpu_and_what_a_panel_needs(compose_still):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert supersample("auto", cpu) == 1 and supersample("auto", cuda) == SUPERSAMPLE["cuda"] > 1
    assert supersample(1, cuda) == 1 and supersample(4, cpu) == 4
    panel = compose_still("paper=paraminit").panel
    assert supersample("auto", cpu, panel) == panel.supersample == 2
    assert compose_still("paper=tanh").panel.supersample == 1

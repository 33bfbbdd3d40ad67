"""zoomer-still: the PNG, its figure and metadata, and refusals before compute."""
import json
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from PIL import Image

import zoomer
from zoomer.figure import edge_ticks, still_figure
from zoomer.still_cli import render_still

CONF = str(files("zoomer.conf"))
SMALL = ("experiment=single_datapoint", "size=24", "steps=20", "precision=float32")


@pytest.fixture(scope="module")
def compose_still():
    with initialize_config_dir(config_dir=CONF, version_base=None):
        yield lambda *overrides: OmegaConf.to_object(compose("still", overrides=list(overrides)))


def test_still_writes_png_figure_and_metadata(compose_still, tmp_path):
    cfg = compose_still(*SMALL, "aspect=1.5", "figure=true", "color=fire_ice", "magnification=2",
                        "target=[0.5,1.0]")
    metadata = render_still(cfg, tmp_path)
    still = np.asarray(Image.open(tmp_path / "still.png"))
    assert still.shape == (16, 24, 3)  # height = size / aspect; supersampled 2x2 then averaged
    figure = Image.open(tmp_path / "figure.png")
    assert figure.width > 24 and figure.height > 16
    written = json.loads((tmp_path / "metadata.json").read_text())
    assert written == json.loads(json.dumps(metadata))
    # single_datapoint's window is 8 decades wide; 1.5 : 1, magnified 2x about the target
    assert written["window"]["x"] == pytest.approx([-1.5, 2.5])
    assert written["window"]["y"] == pytest.approx([1 - 4 / 3, 1 + 4 / 3])
    assert written["config"]["color"]["cmap"] == "fire_ice"
    assert written["pixels"] == {"width": 24, "height": 16, "supersample": 2}
    assert {"target_s", "compute_s", "write_s", "total_s"} <= set(written["timings"])
    assert {"torch", "numpy", "python"} <= set(written["provenance"]["versions"])
    assert written["axis_labels"][0] == "log10 input-layer learning rate"


def test_still_without_figure_writes_no_figure(compose_still, tmp_path):
    render_still(compose_still(*SMALL), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metadata.json", "still.png"]


@pytest.mark.parametrize("override, setting", [
    ("size=4", "size"), ("magnification=0.5", "magnification"), ("aspect=0", "aspect"),
    ("color.supersample=0", "supersample"), ("target=auto_", "target"),
])
def test_bad_settings_fail_before_compute(compose_still, override, setting, tmp_path, monkeypatch):
    monkeypatch.setattr(zoomer.engine, "train_grid", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(ValueError, match=setting):
        render_still(compose_still(override), tmp_path)


def test_console_entry_refuses_unknown_experiment(tmp_path):
    done = subprocess.run([sys.executable, "-m", "zoomer.still_cli", "experiment=sigmoid",
                           f"hydra.run.dir={tmp_path}"], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "experiment/sigmoid" in done.stderr


def test_edge_ticks_tell_the_edges_apart_at_depth():
    labels = [label for _, label in edge_ticks(1.234567891 - 1e-9, 1.234567891 + 1e-9)]
    assert len(set(labels)) == 3 and labels[1] == "1.234567891"


def test_figure_uses_matplotlib_when_installed():
    pytest.importorskip("matplotlib")
    from zoomer.window import Window

    rgb = np.zeros((50, 80, 3), np.uint8)
    figure = still_figure(rgb, Window.from_bounds((0, 1), (0, 1)), ("x", "y"), "title")
    assert figure.width > 80 and figure.height > 50

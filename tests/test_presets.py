"""Every video preset finds a zoom target in every paper condition: the search runs in the
start window cut to the preset's shape, inside the condition's window."""
from importlib.resources import files
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from hydra import compose, initialize_config_module

from conftest import VERSION_BASE
from zoomer.config import ColorConfig, ExperimentConfig, VideoConfig, ZoomConfig, register_configs
from zoomer.plan import start_window
from zoomer.quality import experiment_of
from zoomer.target import search_target

CONF = Path(str(files("zoomer.conf")))
PRESETS = sorted(p.stem for p in (CONF / "video").glob("*.yaml"))
CONDITIONS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


def one_preset_per_shape() -> list[str]:
    """The search sees only the start window's shape: one preset stands for each aspect ratio."""
    shapes = {}
    for name in PRESETS:
        video = OmegaConf.merge(OmegaConf.structured(VideoConfig), OmegaConf.load(CONF / "video" / f"{name}.yaml"))
        shapes.setdefault(round(video.width / video.height, 6), name)
    return sorted(shapes.values())


@pytest.fixture(scope="module")
def composed():
    register_configs()
    with initialize_config_module(config_module="zoomer.conf", version_base=VERSION_BASE):
        yield lambda *overrides: compose(config_name="config", overrides=list(overrides))


@pytest.mark.parametrize("preset", PRESETS)
def test_the_start_window_lies_inside_the_condition_window(composed, preset):
    cfg = composed(f"video={preset}")
    app = OmegaConf.to_object(cfg)
    condition = app.experiment.window.to_window()
    video, start = app.video, start_window(condition, app.video)
    assert start.width / start.height == pytest.approx(video.width / video.height)
    assert condition.x_bounds[0] <= start.x_bounds[0] and start.x_bounds[1] <= condition.x_bounds[1]
    assert condition.y_bounds[0] <= start.y_bounds[0] and start.y_bounds[1] <= condition.y_bounds[1]
    assert max(start.width / condition.width, start.height / condition.height) == pytest.approx(1)


@pytest.mark.slow
@pytest.mark.parametrize("condition", CONDITIONS)
@pytest.mark.parametrize("preset", one_preset_per_shape())
def test_every_preset_finds_a_target_in_every_condition(composed, preset, condition):
    cfg = composed(f"video={preset}", f"experiment={condition}")
    app = OmegaConf.to_object(cfg)
    start = start_window(app.experiment.window.to_window(), app.video)
    exp = experiment_of(app.experiment, "preview", "cpu")
    target, _ = search_target(exp, start, 1.2, app.search)  # the app's own search, two levels deep
    (x0, x1), (y0, y1) = start.x_bounds, start.y_bounds
    assert x0 <= target.point[0] <= x1 and y0 <= target.point[1] <= y1


@pytest.mark.parametrize("group, schema", [("experiment", ExperimentConfig), ("color", ColorConfig),
                                           ("video", VideoConfig), ("zoom", ZoomConfig)])
def test_a_group_yaml_sets_only_what_differs_from_its_schema(group, schema):
    """Each default is written once, in its dataclass: a preset that repeated one would keep
    the old value when the dataclass changes."""
    default = OmegaConf.structured(schema)
    for path in sorted((CONF / group).glob("*.yaml")):
        preset = OmegaConf.load(path)
        repeated = [key for key in preset if OmegaConf.to_container(default)[key] == OmegaConf.to_container(preset)[key]]
        assert not repeated, f"{path.name} repeats {schema.__name__}'s defaults for {repeated}"

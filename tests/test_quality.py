"""How many steps a run trains: the preview's follow the zoom's depth, the paper's are the
condition's; and the default zoom's target, the paper's panel of the condition."""
import pytest
import torch

from zoomer.config import EngineConfig, ExperimentConfig, PanelConfig, Quality, ZoomConfig
from zoomer.errors import Refusal
from zoomer.experiment import Experiment
from zoomer.plan import Layout
from zoomer.quality import PREVIEW_STEPS_PER_DECADE, preview_steps, steps_for
from zoomer.render import _panel_or_search
from zoomer.run_setup import RunSetup
from zoomer.window import Window

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("decades, steps", [(None, 100), (1.0, 100), (3.3, 100), (4.0, 120), (6.0, 180),
                                            (10.0, 300), (4.01, 130)])
def test_the_preview_trains_more_steps_the_deeper_the_zoom(decades, steps):
    assert PREVIEW_STEPS_PER_DECADE == 30  # docs/steps.md: 100 steps lost the boundary at 5 decades, 200 kept it to 10
    assert preview_steps(decades) == steps


def test_quality_picks_the_preview_by_depth_the_condition_s_paper_steps_or_the_steps_given():
    assert steps_for(Quality.preview, None, CPU, 1000, decades=6.0) == 180
    assert steps_for(Quality.auto, None, CPU, 1000, decades=6.0) == 180  # auto: the preview on a CPU
    assert steps_for(Quality.auto, None, CUDA, 500, decades=6.0) == 500  # and the paper's on CUDA
    assert steps_for(Quality.paper, None, CPU, 1000, decades=6.0) == 1000
    assert steps_for(Quality.preview, 42, CPU, 1000, decades=6.0) == 42  # experiment.steps wins


def test_steps_too_few_for_the_zoom_s_depth_are_named_before_training(caplog):
    cpu = torch.device("cpu")
    assert steps_for("auto", 200, cpu, decades=10) == 200
    assert not caplog.records  # 20 steps per decade keep the structure (docs/steps.md)
    assert steps_for("auto", 200, cpu, decades=22) == 200
    assert "experiment.steps=200 keeps the boundary's structure to about 10 decades" in caplog.text
    assert "quality=preview (unset experiment.steps) takes 660" in caplog.text


def test_a_panel_target_is_the_centre_of_the_condition_s_panel_in_the_paper():
    x, y = PanelConfig.of_condition("tanh").window().center
    assert x == pytest.approx(1.12384427, abs=1e-8) and y == pytest.approx(2.30180757, abs=1e-8)
    with pytest.raises(Refusal, match=r"zoom.target=panel: the experiment 'wide' has no panel"):
        PanelConfig.of_condition("wide")


def test_every_apps_run_setup_trains_the_steps_of_its_decades():
    """RunSetup, which every app calls, hands the decades to the steps: 6 decades, 180 steps."""
    run = RunSetup.resolve(ExperimentConfig(), Quality.preview, EngineConfig(device="cpu"), 6.0)
    assert run.experiment.steps == 180 and run.device == CPU
    assert RunSetup.resolve(ExperimentConfig(), Quality.preview, EngineConfig(device="cpu"), None).experiment.steps == 100


def test_the_default_zoom_searches_where_the_panel_is_off_the_boundary_at_these_steps(caplog):
    """The tanh panel's centre stays on the boundary at the preview's steps; paraminit's
    panel is a 500-step landscape, which at 40 steps converges everywhere near it."""
    caplog.set_level("INFO", logger="zoomer.render")
    def aim(name, exp, window):
        point = PanelConfig.of_condition(name).window().center
        lay = Layout(Window.from_bounds(*window), 4.0, "keyframes", (9, 17), 14, 1)
        return _panel_or_search(exp, lay, ZoomConfig(target=list(point)), point, CPU, "float64")

    zoom, point = aim("tanh", Experiment(steps=120), ((-2.0, 6.0), (-1.25, 3.25)))
    assert zoom.target == list(point) and point is not None
    paraminit = Experiment(phase_space="paraminit_vs_lr", offset="every_step", steps=40)
    zoom, point = aim("paraminit", paraminit, ((-3.0, 6.0), (-1.0, 4.0)))
    assert zoom.target == "auto" and point is None
    assert "not on the boundary at 40 steps" in caplog.text and "the target is zoom=auto's instead" in caplog.text

"""How many steps a run trains: the preview's follow the zoom's depth, the paper's are the
condition's; and the default zoom's target, the paper's panel of the condition."""
import pytest
import torch

from zoomer.config import PanelConfig, Quality
from zoomer.errors import Refusal
from zoomer.quality import PREVIEW_STEPS_PER_DECADE, preview_steps, steps_for

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


def test_a_panel_target_is_the_centre_of_the_condition_s_panel_in_the_paper():
    x, y = PanelConfig.of_condition("tanh").window().center
    assert x == pytest.approx(1.12384427, abs=1e-8) and y == pytest.approx(2.30180757, abs=1e-8)
    with pytest.raises(Refusal, match=r"zoom.target=panel: the experiment 'wide' has no panel"):
        PanelConfig.of_condition("wide")

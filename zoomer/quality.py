"""Preview or paper quality: how long each run trains, chosen by name or by the device.

The paper's figures and videos trained 1000 steps (its paraminit panel 500: each
condition's experiment.paper_steps). The preview trains as few steps as the zoom's depth
allows: a run of T steps tells two learning rates apart only where training's chaos
amplifies their difference to order one within T steps, so structure reaches deeper with
more steps, as a Mandelbrot zoom needs more iterations the deeper it goes. Measured along
the zoom into the paper's tanh panel (docs/steps.md): 100 steps lose the boundary 5
decades down, 200 steps keep its swirls to 10; the preview takes PREVIEW_STEPS_PER_DECADE
steps per decade of zoom (120 for the default 4 decades), at least 100. `auto` takes the
paper's quality where a GPU makes it affordable and the preview on a CPU, as
render.frames=auto chooses keyframes. An explicit experiment.steps wins over either.
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict

import torch

from .config import ExperimentConfig, Quality
from .config.parts import check_int, choice
from .experiment import DEFAULT_STEPS, MIN_STEPS, PAPER_STEPS, Experiment

log = logging.getLogger(__name__)

# The steps per decade at which the tanh path's structure ends (docs/steps.md: 100 steps
# kept it to 4.5 decades, not to 5; 200 steps to 10); the preview takes half again.
STRUCTURE_STEPS_PER_DECADE = 20
PREVIEW_STEPS_PER_DECADE = 30


def preview_steps(decades: float | None) -> int:
    """The preview's steps for a zoom `decades` deep: PREVIEW_STEPS_PER_DECADE per decade,
    rounded up to a multiple of 10, at least DEFAULT_STEPS (also without a zoom: None)."""
    if decades is None:
        return DEFAULT_STEPS
    return max(DEFAULT_STEPS, 10 * math.ceil(PREVIEW_STEPS_PER_DECADE * decades / 10 - 1e-9))


def resolve(quality: Quality | str, device: torch.device) -> Quality:
    """The quality a name stands for on this device: auto -> paper on CUDA, preview elsewhere."""
    quality = choice(Quality, quality, "quality")
    if quality != Quality.auto:
        return quality
    return Quality.paper if torch.device(device).type == "cuda" else Quality.preview


def steps_for(quality: str, steps, device: torch.device, paper_steps: int = PAPER_STEPS,
              decades: float | None = None) -> int:
    """experiment.steps if set, else the (resolved) quality's: the preview's for a zoom
    `decades` deep, or the condition's paper_steps; logs which and the other's cost."""
    if steps is not None:
        # (fewer than MIN_STEPS: refused as the Experiment is made, with nothing to warn of first)
        if decades is not None and MIN_STEPS <= int(steps) < STRUCTURE_STEPS_PER_DECADE * decades:
            log.warning("experiment.steps=%d keeps the boundary's structure to about %.3g decades (%d steps per "
                        "decade, docs/steps.md); this zoom goes %.3g, and its last frames may show bands or one "
                        "class; quality=preview (unset experiment.steps) takes %d", int(steps),
                        int(steps) / STRUCTURE_STEPS_PER_DECADE, STRUCTURE_STEPS_PER_DECADE, decades,
                        preview_steps(decades))
        return int(steps)
    check_int(paper_steps, "experiment.paper_steps", MIN_STEPS)
    table = {Quality.preview: preview_steps(decades), Quality.paper: paper_steps}
    chosen = resolve(quality, device)
    other = Quality.preview if chosen == Quality.paper else Quality.paper
    log.info("quality %s%s: %d training steps per run; quality=%s trains %d (about %.3gx the compute)",
             chosen, " (auto on this device)" if quality == "auto" else "", table[chosen], other, table[other],
             table[other] / table[chosen])
    return table[chosen]


def experiment_of(config: ExperimentConfig, quality: Quality | str, device: torch.device,
                  decades: float | None = None) -> Experiment:
    """The Experiment an experiment config describes, its steps resolved as above for a
    zoom `decades` deep (None: no zoom)."""
    settings = asdict(config)
    steps = steps_for(quality, settings["steps"], device, settings["paper_steps"], decades)
    return Experiment.from_config({**settings, "steps": steps})

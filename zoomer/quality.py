"""Preview or paper quality: how long each run trains, chosen by name or by the device.

The paper's figures and videos trained 1000 steps (its paraminit panel 500: each
condition's experiment.paper_steps); at 100 the boundary turns smooth a few decades down,
but a frame costs a tenth. `auto` takes the paper's quality where a GPU makes it affordable
and the preview on a CPU, as render.frames=auto chooses keyframes. An explicit
experiment.steps wins over either.
"""
from __future__ import annotations

import logging
from dataclasses import asdict

import torch

from .config import ExperimentConfig, Quality
from .config.parts import check_int, choice
from .experiment import DEFAULT_STEPS, MIN_STEPS, PAPER_STEPS, Experiment

log = logging.getLogger(__name__)


def resolve(quality: Quality | str, device: torch.device) -> Quality:
    """The quality a name stands for on this device: auto -> paper on CUDA, preview elsewhere."""
    quality = choice(Quality, quality, "quality")
    if quality != Quality.auto:
        return quality
    return Quality.paper if torch.device(device).type == "cuda" else Quality.preview


def steps_for(quality: str, steps, device: torch.device, paper_steps: int = PAPER_STEPS) -> int:
    """experiment.steps if set, else the (resolved) quality's: the preview's, or the condition's
    paper_steps; logs which and the other's cost."""
    if steps is not None:
        return int(steps)
    check_int(paper_steps, "experiment.paper_steps", MIN_STEPS)
    table = {Quality.preview: DEFAULT_STEPS, Quality.paper: paper_steps}
    chosen = resolve(quality, device)
    other = Quality.preview if chosen == Quality.paper else Quality.paper
    log.info("quality %s%s: %d training steps per run; quality=%s trains %d (about %.3gx the compute)",
             chosen, " (auto on this device)" if quality == "auto" else "", table[chosen], other, table[other],
             table[other] / table[chosen])
    return table[chosen]


def experiment_of(config: ExperimentConfig, quality: Quality | str, device: torch.device) -> Experiment:
    """The Experiment an experiment config describes, its steps resolved as above."""
    settings = asdict(config)
    steps = steps_for(quality, settings["steps"], device, settings["paper_steps"])
    return Experiment.from_config({**settings, "steps": steps})

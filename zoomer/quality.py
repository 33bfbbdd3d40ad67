"""Preview or paper quality: how long each run trains, chosen by name or by the device.

The paper's figures and videos trained 1000 steps; at 100 the boundary turns smooth a few
decades down, but a frame costs a tenth. `auto` takes the paper's quality where a GPU
makes it affordable and the preview on a CPU, as render.frames=auto chooses keyframes.
An explicit experiment.steps wins over either.
"""
from __future__ import annotations

import logging
from dataclasses import asdict

import torch

from .config import ExperimentConfig, Quality
from .config.parts import choice
from .experiment import DEFAULT_STEPS, Experiment

log = logging.getLogger(__name__)

STEPS = {Quality.preview: DEFAULT_STEPS, Quality.paper: 1000}


def resolve(quality: Quality | str, device: torch.device) -> Quality:
    """The quality a name stands for on this device: auto -> paper on CUDA, preview elsewhere."""
    quality = choice(Quality, quality, "quality")
    if quality != Quality.auto:
        return quality
    return Quality.paper if torch.device(device).type == "cuda" else Quality.preview


def steps_for(quality: str, steps, device: torch.device) -> int:
    """experiment.steps if set, else the (resolved) quality's; logs which and the other's cost."""
    if steps is not None:
        return int(steps)
    chosen = resolve(quality, device)
    other = Quality.preview if chosen == Quality.paper else Quality.paper
    log.info("quality %s%s: %d training steps per run; quality=%s trains %d (about %.3gx the compute)",
             chosen, " (auto on this device)" if quality == "auto" else "", STEPS[chosen], other, STEPS[other],
             STEPS[other] / STEPS[chosen])
    return STEPS[chosen]


def experiment_of(config: ExperimentConfig, quality: Quality | str, device: torch.device) -> Experiment:
    """The Experiment an experiment config describes, its steps resolved as above."""
    settings = asdict(config)
    return Experiment.from_config({**settings, "steps": steps_for(quality, settings["steps"], device)})

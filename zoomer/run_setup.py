"""What every app resolves from its engine and experiment settings before any training: the
device, the Experiment with its steps (which follow the zoom's decades), and a backend
checked to train it there in every float type the app uses. One place, so zoomer,
zoomer-still, zoomer-dimension, zoomer-targets and zoomer-explore cannot set up a run
differently.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import EngineConfig, ExperimentConfig, Quality
from .engine import resolve_device
from .experiment import Experiment
from .preflight import check_backend
from .quality import experiment_of


@dataclass(frozen=True)
class RunSetup:
    """The engine's side of an app's config, resolved and checked."""

    experiment: Experiment
    device: torch.device
    precision: str  # engine.precision: float64 | float32 | auto (per window, zoomer.precision)
    backend: str  # engine.backend

    @classmethod
    def resolve(cls, experiment: ExperimentConfig, quality: Quality | str, engine: EngineConfig,
                decades: float | None, **more) -> "RunSetup":
        """Resolve the device and the experiment for a zoom `decades` deep (None: no zoom),
        and refuse a backend that cannot train it; `more`: a subclass's own fields."""
        device = resolve_device(engine.device)
        exp = experiment_of(experiment, quality, device, decades)
        check_backend(engine.backend, exp, device, engine.precision)
        return cls(exp, device, engine.precision.value, engine.backend, **more)

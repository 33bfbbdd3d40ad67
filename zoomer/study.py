"""What zoomer-dimension and zoomer-still share at run time: the zoom centre, the settings
resolved for the engine, and the record of how a result was made (written beside it).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from .atomic import write_atomic
from .config import StudyConfig
from .engine import resolve_device, resolve_dtype
from .experiment import Experiment
from .provenance import provenance
from .target import find_target
from .window import Window


@dataclass(frozen=True)
class Study:
    """A validated StudyConfig turned into what the engine takes."""

    experiment: Experiment
    start: Window
    device: torch.device
    dtype: torch.dtype

    @classmethod
    def of(cls, cfg: StudyConfig) -> "Study":
        cfg.validate()
        return cls(cfg.make_experiment(), cfg.start_window(), resolve_device(cfg.device),
                   resolve_dtype(cfg.precision))

    def center(self, cfg: StudyConfig, start: Window) -> tuple[float, float]:
        """Where to zoom: target "auto" asks zoomer.target for a point that stays on the
        boundary from `start` down to the config's depth, as a video would; a point is
        taken as is; None is the start window's centre."""
        if cfg.target is None:
            return start.center
        if cfg.target == "auto":
            found = find_target(self.experiment, start, cfg.depth, seed=cfg.seed, resolution=cfg.search_resolution,
                                device=self.device, dtype=self.dtype)
            return found.point
        return float(cfg.target[0]), float(cfg.target[1])

    def provenance(self) -> dict:
        """Versions, the device and the dtype: enough to tell whether two results compare."""
        return {**provenance(self.device), "dtype": str(self.dtype).removeprefix("torch.")}

    def record(self, cfg: StudyConfig, config: dict | None, timings: dict) -> dict:
        """What every study's JSON holds besides its results: the experiment, the config
        (`config` as resolved by Hydra, by default cfg's fields), timings and provenance."""
        return {
            "experiment": cfg.experiment.name,
            "experiment_settings": self.experiment.to_dict(),
            "config": config if config is not None else OmegaConf.to_container(OmegaConf.structured(cfg)),
            "timings": timings,
            "provenance": self.provenance(),
        }


def write_json(path: Path, data: dict) -> None:
    """JSON that numpy scalars and arrays can go into as they are, written atomically."""
    def plain(value):
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, np.generic):
            return value.item()
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")

    text = json.dumps(data, indent=2, default=plain) + "\n"
    write_atomic(path, lambda f: f.write(text.encode()))

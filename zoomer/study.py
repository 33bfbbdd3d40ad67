"""What zoomer-dimension and zoomer-still share at run time: the run setup with the start
window, the zoom centre, and the record of how a result was made (written beside it).
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hydra.experimental.callback import Callback
from omegaconf import OmegaConf

from .atomic import write_atomic
from .config import PanelConfig, StudyConfig
from .engine import computed_by
from .preflight import check_inside
from .precision import dtypes, resolve_precision
from .provenance import provenance
from .run_setup import RunSetup
from .target import search_target
from .window import Window


@dataclass(frozen=True)
class Study(RunSetup):
    """A StudyConfig (checked as it was built) turned into what the engine takes."""

    start: Window

    @classmethod
    def of(cls, cfg: StudyConfig) -> "Study":
        """The run setup for the study's depth and its start window, before any training."""
        return cls.resolve(cfg.experiment, cfg.quality, cfg.engine, cfg.depth(), start=cfg.start_window())

    def center(self, cfg: StudyConfig, start: Window) -> tuple[tuple[float, float], list[dict]]:
        """Where to zoom, and the candidates searched for it: target "auto" asks zoomer.target
        for the most structured point that stays on the boundary from `start` down to the
        config's decades, as a video would; "center" is the start window's; "panel" the centre
        of the condition's panel in the paper's figure; a point is taken as is."""
        if cfg.target == "center":
            return start.center, []
        if cfg.target == "panel":
            return PanelConfig.of_condition(cfg.experiment.name, "target").window().center, []
        if cfg.target == "auto":
            found, candidates = search_target(self.experiment, start, cfg.decades, cfg.search, device=self.device,
                                              dtype=self.precision)
            return found.point, candidates
        return check_inside(cfg.target, cfg.start_window(), "target"), []

    def provenance(self) -> dict:
        """Versions, the device, the precision and what trains each float type (as a render's
        metadata says): enough to tell whether two results compare."""
        return {**provenance(self.device), "precision": self.precision,
                "computed_by": computed_by(self.backend, self.experiment, self.device, dtypes(self.precision))}

    def dtype_of(self, window: Window, size) -> str:
        """The float type `window` trains in at `size` (engine.precision auto: per window)."""
        return str(resolve_precision(self.precision, self.experiment, window, size)).removeprefix("torch.")

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


def sweep_results(folder, pattern: str, since: float | None = None) -> list[Path]:
    """The files matching `pattern` below a multirun's `folder`, in job order (job 10 after
    job 9, not after job 1), leaving out those written before `since` (a time.time()): an
    earlier sweep into the same folder is not this one's."""
    folder = Path(folder)
    found = [p for p in folder.glob(pattern) if since is None or p.stat().st_mtime >= since]
    return sorted(found, key=lambda p: [(0, int(t), "") if t.isdigit() else (1, 0, t)
                                        for t in re.split(r"(\d+)", p.relative_to(folder).as_posix())])


class SweepCallback(Callback):
    """A Hydra callback that sums up a multirun: it knows when the sweep started, so only
    its own jobs' results count (sweep_results)."""

    started: float | None = None

    def on_multirun_start(self, config, **kwargs) -> None:
        self.started = time.time() - 1  # file times may be rounded down to the second


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

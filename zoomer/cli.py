"""Hydra entry points (thin): compose the config, hand it to the pipeline, report errors."""
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig

from .color import ColorConfig
from .config import ExperimentConfig
from .render import EngineConfig, RenderConfig, ZoomConfig, render
from .store import StoreMismatch
from .video import VideoConfig

log = logging.getLogger("zoomer")


@dataclass
class Config:
    """The typed schema every YAML file and override is checked against."""

    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    zoom: ZoomConfig = field(default_factory=ZoomConfig)
    color: ColorConfig = field(default_factory=ColorConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    render: RenderConfig = field(default_factory=RenderConfig)


ConfigStore.instance().store(name="base_config", node=Config)


def run_reporting_errors(task, cfg):
    """Run task(cfg, run_dir); a bad setting ends with one clear line, not a traceback."""
    try:
        return task(cfg, Path(HydraConfig.get().runtime.output_dir))
    except (ValueError, RuntimeError, MemoryError, StoreMismatch) as e:
        log.error("%s", e)
        print(f"zoomer: error: {e}", file=sys.stderr)
        sys.exit(2)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg) -> None:
    run_reporting_errors(render, cfg)


if __name__ == "__main__":
    main()

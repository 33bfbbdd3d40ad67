"""Structured-config schemas: the types Hydra checks every YAML file and override against.

Schemas only, in one place and registered one way (register_configs): `choices` (the
Enums), `parts` (the nodes every app shares) and `apps` (what each app adds). Nothing
from the compute side is imported but the Experiment dataclass (the `experiment` schema is
derived from it) and one constant of the box count, so every app checks its settings
before anything heavy runs.
"""
from .apps import (DimensionConfig, ExploreConfig, PanelWindowConfig, RenderConfig, StillConfig, StudyConfig,
                   TargetsConfig, ZoomConfig, ZoomerConfig)
from .choices import Codec, Frames, Method, Mode, Precision, Preset, Quality, VideoFormat
from .parts import (COLORMAPS, ColorConfig, EngineConfig, ExperimentConfig, PanelConfig, SearchConfig, VideoConfig,
                    WindowConfig, known_colormap)

# The Hydra behaviour every app is written against (one for all five apps and the tests).
HYDRA_VERSION_BASE = "1.3"

SCHEMAS = {"zoomer_schema": ZoomerConfig, "still_schema": StillConfig, "dimension_schema": DimensionConfig,
           "targets_schema": TargetsConfig, "explore_schema": ExploreConfig}


def register_configs() -> None:
    """Put the app schemas in Hydra's ConfigStore, for the primary configs to extend."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for name, schema in SCHEMAS.items():
        store.store(name=name, node=schema)


__all__ = ["COLORMAPS", "Codec", "ColorConfig", "DimensionConfig", "EngineConfig", "ExperimentConfig", "ExploreConfig",
           "Frames", "HYDRA_VERSION_BASE", "Method", "Mode", "PanelConfig", "PanelWindowConfig", "Precision", "Preset",
           "Quality", "RenderConfig", "SCHEMAS", "SearchConfig", "StillConfig", "StudyConfig", "TargetsConfig",
           "VideoConfig", "VideoFormat", "WindowConfig", "ZoomConfig", "ZoomerConfig", "known_colormap"]

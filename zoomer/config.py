"""Structured-config schemas: the types Hydra checks every YAML file and override against.

The experiment schema is derived from the Experiment dataclass itself, so a field added
there is configurable at once and the two can never disagree.
"""
from dataclasses import MISSING, dataclass, field, fields, make_dataclass
from typing import List

from .experiment import Experiment
from .window import Window


@dataclass
class WindowConfig:
    """A window by its bounds in axis units (log10)."""

    x: List[float] = field(default_factory=lambda: [-2.0, 6.0])
    y: List[float] = field(default_factory=lambda: [-3.0, 5.0])

    @staticmethod
    def to_window(node) -> Window:
        return Window.from_bounds(tuple(node.x), tuple(node.y))


ExperimentConfig = make_dataclass(
    "ExperimentConfig",
    [("name", str, field(default="tanh"))]
    + [(f.name, f.type, field(default=f.default)) for f in fields(Experiment) if f.default is not MISSING]
    + [("window", WindowConfig, field(default_factory=WindowConfig))],
)
ExperimentConfig.__doc__ = "An Experiment's fields, its name and its default start window."

"""The nodes every app shares: experiment, engine, target search, colour and video.

One name per concept in every app: `experiment.*` (the condition; its `depth` is layers),
`quality`, `engine.*` (where and in which float type runs train), `search.*` (how an
automatic target is found) and a `target` that is `auto`, `center` or `[x, y]`. Every
range is checked in `__post_init__`, so a bad value is refused with the setting's name
both when Hydra builds the object and when Python code does.
"""
from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from dataclasses import MISSING, dataclass, field, fields, make_dataclass
from enum import Enum
from importlib.resources import files
from typing import ClassVar, List, Optional, TypeVar

from omegaconf import OmegaConf

from ..colormaps import TABLES
from ..errors import Refusal
from ..experiment import PAPER_STEPS, Experiment
from ..window import Window
from .choices import Codec, Precision, Preset, VideoFormat

E = TypeVar("E", bound=Enum)

# Every colormap runs from -1 (converged) to +1 (diverged); "_r" flips any of them.
COLORMAPS = (*TABLES, "fire_ice")


def known_colormap(name: str) -> bool:
    return name.removesuffix("_r") in COLORMAPS


def choice(enum: type[E], value, key: str) -> E:
    """`value` as a member of `enum` (Python callers may pass the plain name), or a
    Refusal naming the setting and the names allowed."""
    try:
        return enum(value)
    except ValueError:
        raise Refusal(f"{key}={value!r} must be one of {[m.value for m in enum]}") from None


def check_target(value, key: str):
    """`auto`, `center`, `panel` or [x, y]: two finite numbers in axis units (log10), each a
    number or, to keep digits past float64's for a deep zoom, a decimal string. Returns it
    (numbers as floats, strings as given)."""
    if value in ("auto", "center", "panel"):
        return value
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(_finite(v) for v in value)):
        raise Refusal(f"{key}={value!r} must be auto (search the boundary), center (the window's centre), "
                      "panel (the centre of the condition's panel in the paper's figure) "
                      "or [x, y], two finite numbers in axis units (log10); for a zoom deeper than float64 "
                      "holds, decimal strings keep every digit: ['1.12384426690000000000001','2.3018']")
    return [v if isinstance(v, str) else float(v) for v in value]


def _finite(v) -> bool:
    """A finite number, or a string that reads as one (a deep target's decimal)."""
    if isinstance(v, str):
        try:
            return Decimal(v.strip()).is_finite() and v.strip() == v
        except InvalidOperation:
            return False
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_guess(step):
    """render.guess, the lattice step of solid guessing (zoomer.guess): 1 or a power of two."""
    if not (isinstance(step, int) and not isinstance(step, bool) and step >= 1 and step & (step - 1) == 0):
        raise Refusal(f"render.guess={step!r} must be 1 (train every pixel) or a power of two such as 4")
    return step


def check_supersample(value, key: str):
    """auto (zoomer.plan.supersample decides) or k >= 1 runs per output pixel, per side. Returns it."""
    if value != "auto":
        check_int(value, key, 1, " (runs per output pixel, per side) or auto")
    return value


def check_int(value, key: str, least: int, why: str = "", most: int | None = None) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and least <= value <= (most or value)):
        allowed = f"in {least}..{most}" if most else f">= {least}"
        raise Refusal(f"{key}={value!r} must be an integer {allowed}{why}")


def check_bounds(key: str, bounds) -> None:
    """A window's side as the user writes it: [lo, hi], finite, lo < hi (log10 units)."""
    if not (len(bounds) == 2 and all(math.isfinite(b) for b in bounds) and bounds[0] < bounds[1]):
        raise Refusal(f"{key}={list(bounds)} must be [lo, hi], finite, with lo < hi (log10 units)")


@dataclass
class WindowConfig:
    """A window by its bounds in axis units (log10)."""

    x: List[float] = field(default_factory=lambda: [-2.0, 6.0])
    y: List[float] = field(default_factory=lambda: [-3.0, 5.0])

    def __post_init__(self) -> None:
        for name, bounds in (("x", self.x), ("y", self.y)):
            check_bounds(f"experiment.window.{name}", bounds)

    def to_window(self) -> Window:
        return Window.from_bounds(tuple(self.x), tuple(self.y))


# An Experiment's fields, derived from the dataclass itself so the two never disagree.
ExperimentConfig = make_dataclass(
    "ExperimentConfig",
    [("name", str, field(default="tanh"))]
    + [(f.name, f.type, field(default=f.default)) for f in fields(Experiment)
       if f.default is not MISSING and f.name != "steps"]
    + [("steps", Optional[int], field(default=None)),  # null: the quality's (zoomer.quality)
       ("paper_steps", int, field(default=PAPER_STEPS)),  # the steps of quality=paper for this condition
       ("window", WindowConfig, field(default_factory=WindowConfig))],
)
ExperimentConfig.__doc__ = ("An Experiment's fields, its name, its window (where zooms start) and the steps "
                            "its paper quality trains.")


def condition_settings(name: str) -> dict:
    """A condition's experiment settings as conf/experiment/<name>.yaml defines them."""
    path = files("zoomer.conf") / "experiment" / f"{name}.yaml"
    merged = OmegaConf.merge(OmegaConf.structured(ExperimentConfig), OmegaConf.load(str(path)))
    return OmegaConf.to_container(merged)


@dataclass
class PanelConfig:
    """A window named by its hyperparameter values (not log10), as a paper's figure prints
    them: x input-layer rate (or weight offset), y output-layer rate (or the one rate)."""

    title: str = ""
    experiment: Optional[str] = None  # the condition whose panel it is: paper=<panel> with another is refused
    x: List[float] = field(default_factory=lambda: [1.0, 10.0])
    y: List[float] = field(default_factory=lambda: [1.0, 10.0])
    # Runs per pixel side that the panel's look needs at least (render.supersample=auto takes
    # it on any device): 1, or more where runs change class finer than a pixel.
    supersample: int = 1

    def __post_init__(self) -> None:
        check_int(self.supersample, "panel.supersample", 1)
        for name, bounds in (("x", self.x), ("y", self.y)):
            if not (len(bounds) == 2 and 0 < bounds[0] < bounds[1]):
                raise Refusal(f"panel.{name}={list(bounds)} must be two increasing positive values (not log10)")

    def check_alone(self, experiment, **settings) -> None:
        """Refuse what would silently contradict the panel: another condition, a net that
        trains otherwise than the condition's (`experiment`: an ExperimentConfig; its steps
        are the quality's), or a setting that places the view (given here as name=value,
        None or "auto" when unset; "panel", the default zoom's target, is this panel's centre)."""
        if self.experiment is not None:
            if experiment.name != self.experiment:
                raise Refusal(f"paper={self.experiment} is the {self.experiment} condition's panel but experiment="
                              f"{experiment.name} is set; drop one of them")
            condition = condition_settings(self.experiment)
            for f in fields(Experiment):
                now = getattr(experiment, f.name)
                if f.name != "steps" and now != condition[f.name]:
                    raise Refusal(f"paper={self.experiment} is the paper's {self.experiment} net, but experiment."
                                  f"{f.name}={now!r} (the paper's: {condition[f.name]!r}) trains another; drop "
                                  "paper= or the override")
        for name, value in settings.items():
            if value not in (None, "auto", "panel"):
                raise Refusal(f"paper={self.experiment} places the view on its panel, which {name}={value} "
                              "would contradict; drop one of them")

    def window(self) -> Window:
        """The panel in axis units (log10)."""
        return Window.from_bounds(tuple(math.log10(v) for v in self.x), tuple(math.log10(v) for v in self.y))

    @classmethod
    def of_condition(cls, condition: str, key: str = "zoom.target") -> "PanelConfig":
        """The condition's panel in the paper's figure, as conf/paper/<condition>.yaml gives
        it (the one place its window is written); `key` names the setting that asked."""
        path = files("zoomer.conf") / "paper" / f"{condition}.yaml"
        if not path.is_file():
            raise Refusal(f"{key}=panel: the experiment {condition!r} has no panel in the paper's figure (conf/paper); "
                          "use auto (search a target) or [x, y]")
        return cls(**OmegaConf.to_container(OmegaConf.load(str(path)).panel))


@dataclass
class EngineConfig:
    """Where and in which float type the runs train (node `engine`, in every app).

    The device and the backend are checked where torch is at hand (zoomer.run_setup, which
    every app calls), still before any training.
    """

    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: Precision = Precision.float64  # float64 | float32 | perturbation | auto (float32 where measured to agree, perturbation past float64)
    backend: str = "auto"  # auto | torch | a fused kernel (zoomer/kernels)

    def __post_init__(self) -> None:
        self.precision = choice(Precision, self.precision, "engine.precision")


@dataclass
class SearchConfig:
    """How an automatic target is found (zoomer.target; node `search`, in every app).

    `candidates` searches are run (seeds [seed, 0..candidates-1]) and the one whose views
    have the most structure wins; with 1, the search of `seed` alone.
    """

    # A level of 1024 x 1024 runs already takes minutes on a GPU; far more cannot be allocated.
    MAX_RESOLUTION: ClassVar[int] = 1024

    seed: int = 0
    candidates: int = 1
    resolution: int = 32  # pixels per side of each search level, at most MAX_RESOLUTION
    zoom_per_level: float = 4.0  # magnification between search levels

    def __post_init__(self) -> None:
        check_int(self.seed, "search.seed", 0)
        check_int(self.candidates, "search.candidates", 1, " (targets searched)")
        check_int(self.resolution, "search.resolution", 8, " (pixels per side)", SearchConfig.MAX_RESOLUTION)
        if not self.zoom_per_level > 1:
            raise Refusal(f"search.zoom_per_level={self.zoom_per_level!r} must be > 1")


@dataclass
class ColorConfig:
    """How frames are coloured (Hydra group `color`)."""

    cmap: str = "Spectral"  # for the loss readout (training scores)
    probe_cmap: str = "magma"  # for the probe_point readout
    smoothing_frames: float = 8.0  # Gaussian sigma, in frames, of the reference smoothing
    n_quantiles: int = 256  # size of each side of a Reference

    def __post_init__(self) -> None:
        for key in ("cmap", "probe_cmap"):
            name = getattr(self, key)
            if not known_colormap(name):
                raise Refusal(f"color.{key}={name!r} is not a known colormap; "
                                 f"choose from {sorted(COLORMAPS)} (add _r to reverse)")
        if not self.smoothing_frames >= 0:
            raise Refusal(f"color.smoothing_frames={self.smoothing_frames!r} must be >= 0 (0 = no smoothing)")
        check_int(self.n_quantiles, "color.n_quantiles", 2)


@dataclass
class VideoConfig:
    """What gets written and how (Hydra group `video`)."""

    format: VideoFormat = VideoFormat.mp4  # mp4 | gif | webp
    width: int = 1920
    height: int = 1080
    fps: float = 30.0
    duration_s: float = 10.0
    codec: Codec = Codec.h264  # mp4 only: h264 | hevc
    crf: int = 18  # mp4 only: 0 = lossless .. 51 = worst; ~18 looks transparent
    preset: Preset = Preset.medium  # mp4 only: encoder speed vs size
    overlay: bool = False  # print zoom depth and view centre on each frame
    caption: Optional[str] = None  # an extra overlay line (needs overlay: refused without it)

    @property
    def n_frames(self) -> int:
        return round(self.duration_s * self.fps)

    def __post_init__(self) -> None:
        self.format = choice(VideoFormat, self.format, "video.format")
        self.codec = choice(Codec, self.codec, "video.codec")
        self.preset = choice(Preset, self.preset, "video.preset")
        for key in ("width", "height"):
            size = getattr(self, key)
            check_int(size, f"video.{key}", 2)
            if self.format == VideoFormat.mp4 and size % 2:
                raise Refusal(f"video.{key}={size} must be even: mp4 is encoded as yuv420p, "
                                 "which needs an even width and height")
        for key in ("fps", "duration_s"):
            if not getattr(self, key) > 0:
                raise Refusal(f"video.{key}={getattr(self, key)!r} must be > 0")
        if not (isinstance(self.crf, int) and 0 <= self.crf <= 51):
            raise Refusal(f"video.crf={self.crf!r} must be an integer in 0..51 (lower = better)")
        if not (self.caption is None or isinstance(self.caption, str)):
            raise Refusal(f"video.caption={self.caption!r} must be text or null")
        if self.caption is not None and not self.overlay:
            raise Refusal(f"video.caption={self.caption!r} is drawn by the overlay, which is off: "
                          "set video.overlay=true too, or drop the caption")

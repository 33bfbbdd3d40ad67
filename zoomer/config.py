"""Structured-config schemas: the types Hydra checks every YAML file and override against.

Schemas only: this module imports no compute module, so every app can load and check its
settings before anything heavy is imported or run.

The experiment schema is derived from the Experiment dataclass itself, so a field added
there is configurable at once and the two can never disagree.
"""
import math
from dataclasses import MISSING, asdict, dataclass, field, fields, make_dataclass
from typing import Any, ClassVar, List, Optional

from .color import ColorConfig
from .video import VideoConfig
from .dimension import MIN_SIDE
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
    + [(f.name, f.type, field(default=f.default)) for f in fields(Experiment)
       if f.default is not MISSING and f.name != "steps"]
    + [("steps", Optional[int], field(default=None)),  # null: the quality's (zoomer.quality)
       ("window", WindowConfig, field(default_factory=WindowConfig))],
)
ExperimentConfig.__doc__ = "An Experiment's fields, its name and its default start window."


@dataclass
class PanelConfig:
    """A window named by its hyperparameter values (not log10), as a paper's figure prints
    them: x input-layer rate (or weight offset), y output-layer rate (or the one rate)."""

    title: str = ""
    x: List[float] = field(default_factory=lambda: [1.0, 10.0])
    y: List[float] = field(default_factory=lambda: [1.0, 10.0])

    def window(self) -> Window:
        """The panel in axis units (log10)."""
        for name, (lo, hi) in (("x", self.x), ("y", self.y)):
            if not 0 < lo < hi:
                raise ValueError(f"panel.{name}={[lo, hi]} must be two increasing positive values (not log10)")
        return Window.from_bounds(tuple(math.log10(v) for v in self.x), tuple(math.log10(v) for v in self.y))


@dataclass
class StudyConfig:
    """What zoomer-dimension and zoomer-still share: which experiment, where, how to compute.

    `target` is where the zoom centres: "auto" (a boundary point that zoomer.target finds
    and follows to the zoom's depth), [x, y] in axis units, or null (the centre of the
    experiment's window). `seed` and `search_resolution` steer that search (zoomer-dimension
    runs `candidates` of them and measures the one with the most structure); the experiment's own seed
    (experiment.seed) draws its data and initial weights.
    """

    experiment: ExperimentConfig = MISSING  # type: ignore[valid-type]
    target: Any = "auto"
    size: int = 256  # pixels across
    steps: Optional[int] = None  # overrides experiment.steps
    seed: int = 0
    search_resolution: int = 32  # pixels per side of each target-search level
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "float64"  # float64 | float32
    quality: str = "auto"  # auto | preview | paper (zoomer.quality): training steps unless experiment.steps is set
    panel: Optional[PanelConfig] = None  # a named window (conf/paper): the view instead of target/magnification

    min_size: ClassVar[int] = 8  # pixels across, at the least

    def validate(self) -> None:
        """Raise ValueError naming the setting; runs before any compute."""
        if not (isinstance(self.size, int) and self.size >= self.min_size):
            raise ValueError(f"size={self.size!r} must be an integer >= {self.min_size} (pixels)")
        if self.precision not in ("float64", "float32"):
            raise ValueError(f"precision={self.precision!r} must be one of ['float64', 'float32']")
        resolve_device(self.device)
        if not (self.target in ("auto", None) or _is_point(self.target)):
            raise ValueError(f"target={self.target!r} must be auto, null or [x, y] in axis units")
        if self.target == "auto" and not self.depth > 0:
            raise ValueError("target=auto follows the boundary down a zoom, but this view does not zoom "
                             "(levels=1 or magnification=1); use target=null or target=[x,y]")
        if not (isinstance(self.search_resolution, int) and self.search_resolution >= 8):
            raise ValueError(f"search_resolution={self.search_resolution!r} must be an integer >= 8")
        if self.panel is not None:
            self.panel.window()
        self.start_window()

    @property
    def depth(self) -> float:
        """Decades of magnification the app zooms through below the experiment's window."""
        raise NotImplementedError

    def make_experiment(self, device=None) -> Experiment:
        from .quality import steps_for

        node = {k: v for k, v in asdict(self.experiment).items() if k not in ("name", "window")}
        steps = self.steps if self.steps is not None else node["steps"]
        node["steps"] = steps_for(self.quality, steps, resolve_device(self.device) if device is None else device)
        return Experiment(**node)

    def start_window(self) -> Window:
        return WindowConfig.to_window(self.experiment.window)


def resolve_device(name: str):
    """The torch device a setting names; refuses one this machine does not have."""
    from .engine import resolve_device as resolve

    return resolve(name)


def _is_point(value) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(v, (int, float)) and math.isfinite(v) for v in value))


@dataclass
class PanelWindowConfig:
    """An explicit window in axis units (log10), or null bounds: none given."""

    x: Optional[List[float]] = None
    y: Optional[List[float]] = None


@dataclass
class DimensionConfig(StudyConfig):
    """zoomer-dimension: box-counting dimension of the boundary over a zoom sequence.

    The deepest window is `window` when given, else the experiment's window magnified
    zoom_factor**(levels-1) about the target. method=boxcount measures `levels` windows
    zoom_factor apart up to it, each by one least-squares slope; method=paper zooms out of
    it by factors of 2 until the window is about `outer_width` wide and takes the median
    of the local slopes of every image (zoomer.dimension, the paper's procedure).
    """

    method: str = "boxcount"
    levels: int = 4
    zoom_factor: float = 10.0
    outer_width: float = 6.0  # method=paper: width (log10 units) of the widest window
    window: PanelWindowConfig = field(default_factory=PanelWindowConfig)
    candidates: int = 8  # targets searched with target=auto; the most structured is measured
    frames: bool = True  # also write each level's coloured landscape as PNG

    methods: ClassVar[tuple[str, ...]] = ("boxcount", "paper")
    # The edge image of a landscape is one pixel smaller; it must resolve two box sizes.
    min_size: ClassVar[int] = MIN_SIDE + 1

    def validate(self) -> None:
        if self.method not in self.methods:
            raise ValueError(f"method={self.method!r} must be one of {', '.join(self.methods)}")
        if not (isinstance(self.levels, int) and self.levels >= 1):
            raise ValueError(f"levels={self.levels!r} must be an integer >= 1")
        if not self.zoom_factor > 1:
            raise ValueError(f"zoom_factor={self.zoom_factor!r} must be > 1 (magnification per level)")
        if not (isinstance(self.candidates, int) and self.candidates >= 1):
            raise ValueError(f"candidates={self.candidates!r} must be an integer >= 1 (targets searched)")
        if not self.outer_width > 0:
            raise ValueError(f"outer_width={self.outer_width!r} must be > 0 (log10 units)")
        if (self.window.x is None) != (self.window.y is None):
            raise ValueError("window.x and window.y must be given together ([lo, hi] each, log10 units), "
                             f"got window.x={self.window.x}, window.y={self.window.y}")
        if self.window.x is not None:
            self.final_window()
        super().validate()

    @property
    def depth(self) -> float:
        """Decades of magnification from the first level to the last."""
        return (self.levels - 1) * math.log10(self.zoom_factor)

    def final_window(self) -> Optional[Window]:
        """The explicit deepest window (a named panel's, else `window`), or None (found from
        the target)."""
        if self.panel is not None:
            return self.panel.window()
        if self.window.x is None:
            return None
        for name, bounds in (("window.x", self.window.x), ("window.y", self.window.y)):
            if not (len(bounds) == 2 and bounds[0] < bounds[1]):
                raise ValueError(f"{name}={list(bounds)} must be [lo, hi] with lo < hi (log10 units)")
        return Window.from_bounds(tuple(self.window.x), tuple(self.window.y))


@dataclass
class StillConfig(StudyConfig):
    """zoomer-still: one window at high resolution, coloured as in videos.

    The window is the experiment's window (override experiment.window.x / .y) magnified
    `magnification` times about the target; size is its width, size / aspect its height.
    """

    target: Any = None
    size: int = 1024
    magnification: float = 1.0
    aspect: float = 1.0  # width / height
    color: ColorConfig = field(default_factory=ColorConfig)
    figure: bool = False  # also write figure.png: axes in hyperparameter units and a title
    title: Optional[str] = None  # the figure's title; null: experiment and view

    def validate(self) -> None:
        if not self.magnification >= 1:
            raise ValueError(f"magnification={self.magnification!r} must be >= 1")
        if not self.aspect > 0:
            raise ValueError(f"aspect={self.aspect!r} must be > 0 (width / height)")
        super().validate()
        if round(self.size / self.aspect) < 8:
            raise ValueError(f"size / aspect = {self.size / self.aspect:.3g} must be >= 8 pixels (the height)")
        self.color.validate()

    @property
    def depth(self) -> float:
        return math.log10(self.magnification)

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the picture, before supersampling."""
        return round(self.size / self.aspect), self.size


@dataclass
class ZoomConfig:
    """Where and how deep to zoom (Hydra group `zoom`)."""

    target: Optional[List[float]] = None  # [x, y] in axis units; null = search automatically
    depth: float = 4.0  # decades of magnification from the start window
    final_width: Optional[float] = None  # the last frame's width in axis units (sets depth)
    seed: int = 0  # which automatic target
    ease: float = 0.1  # share of the video spent speeding up (and slowing down) the zoom
    search_resolution: int = 32  # pixels per side of each search level
    zoom_per_level: float = 4.0  # magnification between search levels


@dataclass
class EngineConfig:
    """Where and in which float type the runs train (Hydra node `engine`)."""

    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "float64"  # float64 | float32 | auto (float32 where measured to agree)
    backend: str = "auto"  # auto | torch | a fused kernel (zoomer/kernels)


@dataclass
class RenderConfig:
    """How the frames are computed and stored (Hydra node `render`)."""

    frames: str = "auto"  # exact | keyframes | auto (exact on CUDA, keyframes on the CPU)
    keyframe_scale: float = 1.0  # keyframe pixels per video pixel (per side)
    guess: int = 8  # solid guessing: train every guess-th pixel, then only near the boundary; 1 = all
    mode: str = "all"  # all | compute (frames only) | assemble (encode from the store)
    num_shards: int = 1
    shard: int = 0  # this process computes frames i with i % num_shards == shard
    store_dir: Optional[str] = None  # default: <run dir>/frames


@dataclass
class ZoomerConfig:
    """The `zoomer` app: every YAML file and override is checked against it."""

    quality: str = "auto"  # auto | preview | paper (zoomer.quality): training steps unless experiment.steps is set
    panel: Optional[PanelConfig] = None  # a named final window (conf/paper): the zoom ends on it
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)  # type: ignore[valid-type]
    zoom: ZoomConfig = field(default_factory=ZoomConfig)
    color: ColorConfig = field(default_factory=ColorConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    render: RenderConfig = field(default_factory=RenderConfig)


# The Hydra behaviour every app is written against (one for all four apps and the tests).
HYDRA_VERSION_BASE = "1.3"


def register_configs() -> None:
    """Put the app schemas in Hydra's ConfigStore, for the primary configs to extend."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(name="base_config", node=ZoomerConfig)
    store.store(name="dimension_schema", node=DimensionConfig)
    store.store(name="still_schema", node=StillConfig)

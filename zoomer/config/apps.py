"""The five apps' schemas: what each adds to the shared nodes (zoomer.config.parts).

The YAML files under conf/ carry only what differs from these defaults (a group's
choices, Hydra's own settings), so each default is written once, here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, List, Optional

from ..dimension import MIN_SIDE
from ..errors import Refusal
from ..window import Window
from .choices import Frames, Method, Mode, Quality
from .parts import (ColorConfig, EngineConfig, ExperimentConfig, PanelConfig, SearchConfig, VideoConfig,
                    check_bounds, check_guess, check_int, check_supersample, check_target, choice)


# The deepest zoom any setting may ask for, in decades: far past what perturbation resolves
# (about 29), so the depth checks that know the float type refuse it in their own words,
# but small enough that 10**decades stays a float64.
MOST_DECADES = 300


@dataclass
class ZoomConfig:
    """Where and how deep a video zooms (Hydra group `zoom`)."""

    target: Any = "auto"  # auto (search the boundary) | center (the start window's) | [x, y] in axis units
    decades: float = 4.0  # of magnification from the start window to the last frame
    final_width: Optional[float] = None  # the last frame's width in axis units (sets decades)
    ease: float = 0.1  # share of the video spent speeding up (and slowing down) the zoom

    def __post_init__(self) -> None:
        self.target = check_target(self.target, "zoom.target")
        if self.final_width is None and not 0 < self.decades <= MOST_DECADES:
            raise Refusal(f"zoom.decades={self.decades!r} must be in (0, {MOST_DECADES:g}]")
        if self.final_width is not None and not self.final_width > 0:
            raise Refusal(f"zoom.final_width={self.final_width!r} must be > 0 (axis units)")
        # Both set the depth; decades at its default is not told from unset (final_width wins)
        if self.final_width is not None and self.decades != ZoomConfig.decades:
            raise Refusal(f"zoom.decades={self.decades!r} and zoom.final_width={self.final_width!r} both set the "
                          "zoom's depth; set one of them")
        if not 0 <= self.ease <= 0.5:
            raise Refusal(f"zoom.ease={self.ease!r} must be in [0, 0.5] (share of the video spent speeding up)")


@dataclass
class RenderConfig:
    """How the frames are computed and stored (node `render`)."""

    frames: Frames = Frames.auto  # exact | keyframes | auto (exact on CUDA, keyframes on the CPU)
    keyframe_scale: float = 1.0  # keyframe pixels per video pixel (per side); keyframes only
    guess: int = 8  # solid guessing: train every guess-th pixel, then only near the boundary; 1 = all
    supersample: Any = "auto"  # k x k runs per video pixel, coloured then averaged | auto (zoomer.plan)
    mode: Mode = Mode.all  # all | compute (frames only) | assemble (encode from the store)
    num_shards: int = 1
    shard: int = 0  # this process computes frames i with i % num_shards == shard
    store_dir: Optional[str] = None  # default: <run dir>/frames

    def __post_init__(self) -> None:
        self.frames = choice(Frames, self.frames, "render.frames")
        self.mode = choice(Mode, self.mode, "render.mode")
        check_guess(self.guess)
        self.supersample = check_supersample(self.supersample, "render.supersample")
        if not self.keyframe_scale > 0:
            raise Refusal(f"render.keyframe_scale={self.keyframe_scale!r} must be > 0")
        if self.frames == Frames.exact and self.keyframe_scale != type(self).keyframe_scale:
            raise Refusal(f"render.keyframe_scale={self.keyframe_scale!r} sizes keyframes, but render.frames=exact "
                          "computes every frame at the video's size; drop one of them")
        check_int(self.num_shards, "render.num_shards", 1)
        if not (isinstance(self.shard, int) and 0 <= self.shard < self.num_shards):
            raise Refusal(f"render.shard={self.shard!r} must be in 0..{self.num_shards - 1} (render.num_shards - 1)")


@dataclass
class ZoomerConfig:
    """`zoomer`: a zoom video into the boundary."""

    quality: Quality = Quality.auto  # auto | preview | paper (zoomer.quality), unless experiment.steps is set
    panel: Optional[PanelConfig] = None  # a named final window (conf/paper): the zoom ends on it
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)  # type: ignore[valid-type]
    zoom: ZoomConfig = field(default_factory=ZoomConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    color: ColorConfig = field(default_factory=ColorConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    render: RenderConfig = field(default_factory=RenderConfig)

    def __post_init__(self) -> None:
        self.quality = choice(Quality, self.quality, "quality")
        if self.panel is not None:  # zoom.decades at its default is not told from unset: the panel's wins
            zoom = self.zoom
            self.panel.check_alone(self.experiment, **{
                "zoom.target": zoom.target, "zoom.final_width": zoom.final_width,
                "zoom.decades": None if zoom.decades == ZoomConfig.decades else zoom.decades})
        if self.video.n_frames < 2:
            raise Refusal(f"video.duration_s x video.fps gives {self.video.n_frames} frame(s); "
                             "a zoom needs at least 2")


@dataclass
class StudyConfig:
    """What zoomer-still and zoomer-dimension share: a view of one experiment, centred on
    `target` (auto: the search's point at the view's depth; center; [x, y])."""

    quality: Quality = Quality.auto
    panel: Optional[PanelConfig] = None  # a named window (conf/paper): the view instead of target
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)  # type: ignore[valid-type]
    engine: EngineConfig = field(default_factory=EngineConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    target: Any = "auto"
    size: int = 256  # pixels across

    min_size: ClassVar[int] = 8  # pixels across, at the least

    def __post_init__(self) -> None:
        self.quality = choice(Quality, self.quality, "quality")
        check_int(self.size, "size", self.min_size, " (pixels)")
        self.target = check_target(self.target, "target")
        if self.panel is not None:  # a setting at its default is not told from unset: the panel wins
            self.panel.check_alone(self.experiment, **self.placing())
        if self.target == "auto" and self.final_window() is None and not self.decades > 0:
            raise Refusal("target=auto follows the boundary down a zoom, but this view does not zoom "
                             "(levels=1 or magnification=1); use target=center or target=[x,y]")
        self.start_window()

    @property
    def decades(self) -> float:
        """Decades of magnification the app zooms through below the experiment's window."""
        raise NotImplementedError

    def placing(self) -> dict:
        """The settings that place the view, as name=value (None at their default), which a
        panel (paper=) would contradict."""
        return {"target": None if self.target == type(self).target else self.target}

    def depth(self) -> float:
        """Decades from the experiment's window down to the deepest view the app trains (what
        the preview's steps follow): the view's given outright, else `decades`."""
        final = self.final_window()
        return self.decades if final is None else max(0.0, math.log10(self.start_window().width / final.width))

    def start_window(self) -> Window:
        return self.experiment.window.to_window()

    def final_window(self) -> Optional[Window]:
        """The view given outright (a named panel), or None: found from the target."""
        return None if self.panel is None else self.panel.window()


@dataclass
class PanelWindowConfig:
    """An explicit window in axis units (log10), or null bounds: none given."""

    x: Optional[List[float]] = None
    y: Optional[List[float]] = None

    def __post_init__(self) -> None:
        if (self.x is None) != (self.y is None):
            raise Refusal("window.x and window.y must be given together ([lo, hi] each, log10 units), "
                             f"got window.x={self.x}, window.y={self.y}")
        for name, bounds in (("window.x", self.x), ("window.y", self.y)):
            if bounds is not None:
                check_bounds(name, bounds)


@dataclass
class DimensionConfig(StudyConfig):
    """zoomer-dimension: box-counting dimension of the boundary over a zoom sequence.

    The deepest window is the panel's or `window` when given, else the experiment's window
    magnified zoom_factor**(levels-1) about the target. method=boxcount measures `levels`
    windows zoom_factor apart up to it, each by one least-squares slope; method=paper zooms
    out of it by factors of 2 until the window is about `outer_width` wide and takes the
    median of the local slopes of every image (zoomer.dimension, the paper's procedure).
    """

    search: SearchConfig = field(default_factory=lambda: SearchConfig(candidates=8))
    method: Method = Method.boxcount
    levels: int = 4
    zoom_factor: float = 10.0
    outer_width: float = 6.0  # method=paper: width (log10 units) of the widest window
    window: PanelWindowConfig = field(default_factory=PanelWindowConfig)
    frames: bool = True  # also write each level's coloured landscape as PNG

    # The edge image of a landscape is one pixel smaller; it must resolve two box sizes.
    min_size: ClassVar[int] = MIN_SIDE + 1

    def __post_init__(self) -> None:
        self.method = choice(Method, self.method, "method")
        check_int(self.levels, "levels", 1)
        if not 1 < self.zoom_factor < math.inf:
            raise Refusal(f"zoom_factor={self.zoom_factor!r} must be finite and > 1 (magnification per level)")
        if not 0 < self.outer_width < math.inf:
            raise Refusal(f"outer_width={self.outer_width!r} must be finite and > 0 (log10 units)")
        if self.decades > MOST_DECADES:
            raise Refusal(f"levels={self.levels} and zoom_factor={self.zoom_factor!r} zoom 10^{self.decades:.4g} times; "
                          f"no float type reaches past 10^{MOST_DECADES:g}: fewer levels or a smaller zoom_factor")
        super().__post_init__()

    @property
    def decades(self) -> float:
        """Decades of magnification from the first level to the last."""
        return (self.levels - 1) * math.log10(self.zoom_factor)

    def placing(self) -> dict:
        return {**super().placing(), "window.x": self.window.x, "window.y": self.window.y}

    def final_window(self) -> Optional[Window]:
        """The explicit deepest window (a named panel's, else `window`), or None (found from
        the target)."""
        if self.panel is not None:
            return self.panel.window()
        if self.window.x is None:
            return None
        return Window.from_bounds(tuple(self.window.x), tuple(self.window.y))


@dataclass
class StillRenderConfig:
    """How a still's runs are laid out (node `render`, named as zoomer's)."""

    supersample: Any = "auto"  # k x k runs per pixel, coloured then averaged | auto (zoomer.plan)

    def __post_init__(self) -> None:
        self.supersample = check_supersample(self.supersample, "render.supersample")


@dataclass
class StillConfig(StudyConfig):
    """zoomer-still: one window at high resolution, coloured as in videos.

    The window is the experiment's window (override experiment.window.x / .y) magnified
    `magnification` times about the target; size is its width, size / aspect its height.
    """

    target: Any = "center"
    size: int = 1024
    magnification: float = 1.0
    aspect: float = 1.0  # width / height
    color: ColorConfig = field(default_factory=ColorConfig)
    render: StillRenderConfig = field(default_factory=StillRenderConfig)
    figure: bool = False  # also write figure.png: axes in hyperparameter units and a title
    title: Optional[str] = None  # the figure's title; null: experiment and view

    def __post_init__(self) -> None:
        if not 1 <= self.magnification <= 10**MOST_DECADES:
            raise Refusal(f"magnification={self.magnification!r} must be in 1..1e{MOST_DECADES:g}")
        if not self.aspect > 0:
            raise Refusal(f"aspect={self.aspect!r} must be > 0 (width / height)")
        super().__post_init__()
        if round(self.size / self.aspect) < 8:
            raise Refusal(f"size / aspect = {self.size / self.aspect:.3g} must be >= 8 pixels (the height)")

    @property
    def decades(self) -> float:
        return math.log10(self.magnification)

    def placing(self) -> dict:
        changed = {key: getattr(self, key) for key in ("magnification", "aspect")
                   if getattr(self, key) != getattr(type(self), key)}
        return {**super().placing(), **changed}

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the picture, before supersampling."""
        return round(self.size / self.aspect), self.size


@dataclass
class TargetsConfig:
    """zoomer-targets: one candidate target per job (search.seed); a multirun's candidates
    are ranked into one contact sheet (zoomer.sweep)."""

    quality: Quality = Quality.auto
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)  # type: ignore[valid-type]
    engine: EngineConfig = field(default_factory=EngineConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    color: ColorConfig = field(default_factory=ColorConfig)
    video: VideoConfig = field(default_factory=VideoConfig)  # its shape cuts the start window, as zoomer's
    decades: float = 4.0  # of zoom the candidate must keep the boundary in view
    thumb: int = 96  # thumbnail side in pixels

    def __post_init__(self) -> None:
        self.quality = choice(Quality, self.quality, "quality")
        if not self.decades > 0:
            raise Refusal(f"decades={self.decades!r} must be > 0")
        check_int(self.thumb, "thumb", 8, " (pixels)")


@dataclass
class ExploreConfig:
    """zoomer-explore: a local web page over the engine, to find a zoom target by eye.

    Each view is trained in passes `coarse`, 2 x coarse, ... `size` pixels across, each pass
    reusing the runs of the one before; its height follows the video's aspect, so a view is
    the last frame of the zoom the page's render button starts (with `video`'s settings).
    """

    quality: Quality = Quality.auto  # the page's first quality; it switches preview | paper
    panel: Optional[PanelConfig] = None  # paper=<panel>: the page opens on the panel
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)  # type: ignore[valid-type]
    engine: EngineConfig = field(default_factory=EngineConfig)
    color: ColorConfig = field(default_factory=ColorConfig)  # the page's first colormap
    video: VideoConfig = field(default_factory=VideoConfig)  # of the renders; its aspect is the view's
    size: int = 256  # pixels across of the last pass
    coarse: int = 32  # pixels across of the first pass
    guess: int = 8  # solid guessing in every pass (zoomer.guess); 1 = train every pixel
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port
    open_browser: bool = False  # also open the page in the default browser
    cache: int = 256  # score images kept in memory (one per view, quality and pass)

    def __post_init__(self) -> None:
        self.quality = choice(Quality, self.quality, "quality")
        check_int(self.coarse, "coarse", 4, " (pixels)")
        check_int(self.size, "size", self.coarse, " (pixels, at least coarse)")
        ratio = self.size // self.coarse
        if self.size % self.coarse or ratio & (ratio - 1):
            raise Refusal(f"size={self.size} must be coarse={self.coarse} times a power of two "
                             "(each pass doubles the one before)")
        check_guess(self.guess)
        if not (isinstance(self.port, int) and 0 <= self.port <= 65535):
            raise Refusal(f"port={self.port!r} must be 0 (a free port) or a port number up to 65535")
        check_int(self.cache, "cache", 1, " (score images)")

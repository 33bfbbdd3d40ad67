"""The settings that take one of a few names, as Enums: Hydra refuses any other name while it
composes the config, before the app starts, and its message lists the names allowed."""
from enum import Enum


class Choice(str, Enum):
    """A name that compares, formats and serialises as its plain string."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class Quality(Choice):
    """How long each run trains (zoomer.quality): auto = paper on CUDA, preview on a CPU."""

    auto = "auto"
    preview = "preview"
    paper = "paper"


class Precision(Choice):
    """The float type runs train in; auto = float32 where measured to agree, perturbation
    past float64's reach (zoomer.precision)."""

    float64 = "float64"
    float32 = "float32"
    perturbation = "perturbation"  # float64 differences from a double-double reference run
    auto = "auto"


class Frames(Choice):
    """exact: every video frame computed; keyframes: one per zoom doubling; auto: exact on CUDA."""

    auto = "auto"
    exact = "exact"
    keyframes = "keyframes"


class Mode(Choice):
    """What a render does: all; compute (frames into the store only); assemble (encode from it)."""

    all = "all"
    compute = "compute"
    assemble = "assemble"


class Method(Choice):
    """How zoomer-dimension measures (zoomer.dimension): one slope per level, or the paper's."""

    boxcount = "boxcount"
    paper = "paper"


class VideoFormat(Choice):
    mp4 = "mp4"
    gif = "gif"
    webp = "webp"


class Codec(Choice):
    """mp4's video codec (the ffmpeg encoder is in zoomer.video)."""

    h264 = "h264"
    hevc = "hevc"


class Preset(Choice):
    """x264/x265 speed against file size."""

    ultrafast = "ultrafast"
    superfast = "superfast"
    veryfast = "veryfast"
    faster = "faster"
    fast = "fast"
    medium = "medium"
    slow = "slow"
    slower = "slower"
    veryslow = "veryslow"

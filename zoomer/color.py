"""Scores -> RGB: adaptive normalisation, temporal smoothing, colormaps.

A run's score (Sohl-Dickstein 2024) is -sum(v) when training converged and sum(1/v)
when it diverged, where v_t is the loss relative to its start. Its sign is the class;
its magnitude grows the slower training converges or diverges, i.e. the nearer the run
sits to the fractal boundary. Normalised values keep that order: converged scores land
in [-1, -gap] and diverged ones in [gap, 1], ranked separately on each side of zero, so
|value| -> 1 means "near the boundary". Every colormap here runs from converged (-1) to
diverged (+1) and is most intense at its ends, so colour is intense at the boundary and
pale far from it, as in the paper's figures.

Ranks come from a small Reference (quantiles of each side), not from sorting each frame:
references are smoothed across frames, so the palette drifts instead of flickering.
"""
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .boundary import converged
from .colormaps import TABLES
from .config import COLORMAPS, ColorConfig, known_colormap

# Distance of each class band from zero, per readout: scores keep a visible jump between
# converged and diverged; the probe readout (the net's output at a fixed input) is just
# signed, so its two halves meet at zero.
GAPS = {"loss": 0.25, "probe_point": 0.0}

# Every map runs from -1 (converged) to +1 (diverged); append "_r" to any name to flip it.
# The named maps are matplotlib's own tables (zoomer.colormaps). ColorBrewer's Spectral and
# RdBu run red-first in matplotlib; zoomer reverses them so that blue means converged.
_REVERSED = {"Spectral", "RdBu"}
# zoomer's own map, as control points: dark far from the boundary, glowing ice / fire at it.
_FIRE_ICE = "e8f8ff 5fc8ff 1f5fbf 0a1a40 000000 400a0a bf2f0a ffa020 fff8d0"

def _rgb(hex_colours: str) -> np.ndarray:
    return np.array([[int(c[i:i + 2], 16) for i in (0, 2, 4)] for c in hex_colours.split()], dtype=np.uint8)


@lru_cache(maxsize=None)
def lookup_table(name: str) -> np.ndarray:
    """256 x 3 uint8 table from converged (-1) to diverged (+1)."""
    if not known_colormap(name):
        raise ValueError(f"unknown colormap {name!r}; known: {sorted(COLORMAPS)} (add _r to reverse)")
    base = name.removesuffix("_r")
    table = _rgb(TABLES[base]) if base in TABLES else _interpolate(_rgb(_FIRE_ICE))
    flip = (base in _REVERSED) != name.endswith("_r")
    return np.ascontiguousarray(table[::-1] if flip else table)


def _interpolate(points: np.ndarray) -> np.ndarray:
    """256 entries linear in sRGB between evenly spaced control points."""
    at = np.linspace(0, 1, len(points))
    table = np.stack([np.interp(np.linspace(0, 1, 256), at, points[:, ch]) for ch in range(3)], axis=1)
    return np.round(table).astype(np.uint8)


def colorize(values: np.ndarray, cmap: str = "Spectral") -> np.ndarray:
    """Map values in [-1, 1] (clipped) through a colormap -> uint8 (..., 3), same layout."""
    index = np.round((np.clip(values, -1, 1) + 1) * 127.5).astype(np.intp)
    return lookup_table(cmap)[index]


@dataclass(frozen=True)
class Reference:
    """The distribution a frame is ranked against: quantiles of each sign of value.

    Row 0 of `quantiles` holds the negative (converged) values, row 1 the rest, each
    ascending. `counts` says how many pixels stand behind each row; a count of 0 means
    that class was absent, and its row (zeros) is ignored.
    """

    quantiles: np.ndarray  # (2, n_quantiles)
    counts: np.ndarray  # (2,)

    @classmethod
    def from_scores(cls, values: np.ndarray, n_quantiles: int = 256) -> "Reference":
        flat = np.ravel(values)
        negative = converged(flat)
        sides = (flat[negative], flat[~negative])
        probs = np.linspace(0, 1, n_quantiles)
        rows = [np.quantile(s, probs) if s.size else np.zeros(n_quantiles) for s in sides]
        return cls(np.stack(rows), np.array([s.size for s in sides], dtype=float))

    def blend(self, other: "Reference", t: float) -> "Reference":
        """The reference a share t of the way to `other` (per side, weighted by pixel counts)."""
        return _mix([self, other], np.array([1 - t, t]))


def _mix(references: list["Reference"], kernel: np.ndarray) -> Reference:
    """Average references, each side weighted by kernel x that side's pixel count, so a
    reference where a class is absent or scarce does not drag that class's quantiles."""
    quantiles = np.stack([r.quantiles for r in references])  # (T, 2, n)
    weights = kernel[:, None] * np.stack([r.counts for r in references])  # (T, 2)
    total = weights.sum(axis=0)
    mean = np.einsum("js,jsn->sn", weights, quantiles) / np.where(total > 0, total, 1)[:, None]
    return Reference(mean, total / kernel.sum())  # count 0 exactly where a class is absent


def smooth_references(references: list[Reference], sigma_frames: float) -> list[Reference]:
    """Gaussian-smooth references over frame index so a video's palette does not flicker.

    Each side's quantiles are averaged over frames within 4 sigma, weighted by the
    Gaussian in frame distance times that frame's pixel count on the side, so frames
    where a class is absent or scarce do not drag the average. sigma_frames <= 0 returns
    the references as they are.
    """
    if sigma_frames <= 0 or len(references) < 2:
        return list(references)
    radius = math.ceil(4 * sigma_frames)
    smoothed = []
    for i in range(len(references)):
        near = np.arange(max(0, i - radius), min(len(references), i + radius + 1))
        kernel = np.exp(-0.5 * ((near - i) / sigma_frames) ** 2)
        smoothed.append(_mix([references[j] for j in near], kernel))
    return smoothed


def normalize(values: np.ndarray, reference: Reference, gap: float = GAPS["loss"]) -> np.ndarray:
    """Rank values against a reference: negatives -> [-1, -gap], the rest -> [gap, 1].

    Monotone in the value, so the most negative maps to -1 and the largest to +1. Values
    beyond the reference's range clip to the band ends (or, if the end is a tie, to that
    tie's rank); a value tied with many in the reference (runs with equal scores) gets
    the middle of their ranks; values of a class the reference lacks, the middle of
    their band.
    """
    out = np.empty(np.shape(values))
    negative = converged(values)
    bands = ((-1.0, -gap), (gap, 1.0))
    for mask, q, count, (lo, hi) in zip((negative, ~negative), reference.quantiles, reference.counts, bands):
        if count == 0:
            out[mask] = (lo + hi) / 2
            continue
        # Tied quantiles (many runs with one score) share the middle of their ranks.
        unique, first, repeats = np.unique(q, return_index=True, return_counts=True)
        mid_rank = (first + (repeats - 1) / 2) / (q.size - 1)
        out[mask] = np.interp(values[mask], unique, lo + (hi - lo) * mid_rank)
    return out


_TO_LINEAR = ((np.arange(256) / 255) ** 2.2).astype(np.float32)  # sRGB byte -> linear light


def supersample_colors(rgb: np.ndarray, k: int) -> np.ndarray:
    """Average k x k blocks of colours (in linear light, gamma 2.2) -> one pixel each.

    Averaging colours rather than scores antialiases the boundary: a block that is half
    converged, half diverged becomes a blend of blue and red, not some third colour.
    """
    h, w = rgb.shape[0] // k, rgb.shape[1] // k
    if (h * k, w * k) != rgb.shape[:2]:
        raise ValueError(f"image of {rgb.shape[1]}x{rgb.shape[0]} px is not a multiple of supersample={k}")
    if k == 1:
        return rgb
    linear = _TO_LINEAR[rgb]
    mean = sum(linear[i::k, j::k] for i in range(k) for j in range(k)) / k**2  # strided sums: fast
    return np.round(mean ** (1 / 2.2) * 255).astype(np.uint8)


def colormap_for(config: ColorConfig, readout: str) -> str:
    """The map a readout is coloured with: cmap for training scores, probe_cmap for the probe."""
    if readout not in GAPS:
        raise ValueError(f"readout={readout!r} is unknown; choose from {sorted(GAPS)}")
    return config.probe_cmap if readout == "probe_point" else config.cmap


def color_frame(values: np.ndarray, reference: Reference, config: ColorConfig,
                readout: str = "loss", supersample: int = 1) -> np.ndarray:
    """One frame of readout values -> uint8 (H, W, 3) image in DISPLAY orientation.

    `values` is in maths orientation (row 0 = lowest y) at supersample x the picture's
    size; every run is normalised and coloured on its own, then each k x k block of
    colours is averaged, so a block that mixes classes shows their blend. The result has
    its top row at the highest y. This is the only place the flip happens.
    """
    cmap = colormap_for(config, readout)
    rgb = colorize(normalize(values, reference, GAPS[readout]), cmap)
    return np.ascontiguousarray(supersample_colors(rgb, supersample)[::-1])

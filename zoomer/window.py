"""The camera: a rectangle of the hyperparameter plane in axis units (log10), and its pixels.

Row 0 of every image is the lowest y and column 0 the lowest x: pixel (i, j) sits at
x = linspace(x0, x1, W)[j], y = linspace(y0, y1, H)[i].
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from decimal import Decimal, localcontext

import numpy as np

from .errors import Refusal

# Neighbouring pixels must differ by at least this many ulps of the coordinate (float64)
# and of the hyperparameter 10**coordinate (in the float type that trains), or the image
# is made of repeated runs.
MIN_ULPS_PER_PIXEL = 8
# The narrowest frame engine.precision=perturbation resolves (axis units): its reference run
# is double-double, about 32 digits, and neighbouring pixels need a few digits between them.
PERTURBATION_NARROWEST = 1e-29
DIGITS = 60  # significant digits of a deep point's arithmetic: far past what perturbation resolves
PERTURBATION = "perturbation"  # engine.precision's name for training as differences (zoomer.perturbation)
# The highest coordinate each float type trains: the axes are log10 of hyperparameters, and
# past about 10**(its largest exponent - 1) an offset times an input overflows in a run's
# first products, where a fused multiply-add (the compiled kernels) and a rounded product
# (torch) part ways: a class there would say which arithmetic ran, not how training went.
# The margin below float64's 10**308 and float32's 10**38 keeps well clear of that.
HIGHEST = {"float64": 300.0, "float32": 30.0}


def coordinate(value) -> float | Decimal:
    """One axis coordinate as given: a number is a float; a decimal string keeps every
    digit (a Decimal), for zooms deeper than float64 resolves."""
    return Decimal(value) if isinstance(value, (str, Decimal)) else float(value)


@dataclass(frozen=True)
class Window:
    """A view of the plane, stored by its centre and half extents so deep zooms keep digits."""

    cx: float
    cy: float
    half_w: float
    half_h: float
    # The centre to every digit it was given (Decimals), where a target is deeper than
    # float64 holds; cx, cy are then its float64 roundings. None: cx, cy are exact.
    exact: tuple[Decimal, Decimal] | None = None

    def __post_init__(self):
        for name in ("cx", "cy", "half_w", "half_h"):
            if not math.isfinite(getattr(self, name)):
                raise Refusal(f"window.{name} must be finite, got {getattr(self, name)!r}")
        if not (self.half_w > 0 and self.half_h > 0):
            raise Refusal(
                f"window must have positive width and height (x0 < x1 and y0 < y1), got "
                f"x={self.x_bounds}, y={self.y_bounds}"
            )

    @classmethod
    def from_bounds(cls, x: tuple[float, float], y: tuple[float, float]) -> "Window":
        (x0, x1), (y0, y1) = map(float, x), map(float, y)
        if not (x0 < x1):
            raise Refusal(f"window x bounds must satisfy x0 < x1 (not empty or inverted), got {x}")
        if not (y0 < y1):
            raise Refusal(f"window y bounds must satisfy y0 < y1 (not empty or inverted), got {y}")
        return cls((x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2)

    @classmethod
    def from_dict(cls, d: dict) -> "Window":
        """The window to_dict wrote (a deep one with its exact centre)."""
        if "center" in d:
            return cls.around(tuple(Decimal(c) for c in d["center"]), d["width"], d["width"] / d["height"])
        return cls.from_bounds(tuple(d["x"]), tuple(d["y"]))

    @classmethod
    def around(cls, center: tuple[float, float], width: float, aspect: float) -> "Window":
        """A window of the given width centred on a point; aspect = width / height. A point
        with a Decimal coordinate (a deep target) is kept exactly."""
        return cls(float(center[0]), float(center[1]), width / 2, width / 2 / aspect, _exact(center))

    @property
    def x_bounds(self) -> tuple[float, float]:
        return (self.cx - self.half_w, self.cx + self.half_w)

    @property
    def y_bounds(self) -> tuple[float, float]:
        return (self.cy - self.half_h, self.cy + self.half_h)

    @property
    def center(self) -> tuple:
        """The centre as given: Decimals for a deep window, floats otherwise."""
        return self.exact if self.exact is not None else (self.cx, self.cy)

    @property
    def exact_center(self) -> tuple[Decimal, Decimal]:
        """The centre as Decimals (a float centre converts exactly)."""
        return self.exact if self.exact is not None else (Decimal(self.cx), Decimal(self.cy))

    def point(self, ux: float, uy: float) -> tuple:
        """The point at (ux, uy) half extents from the centre: Decimals in a deep window,
        so a search can go on below float64's reach."""
        if self.exact is None:
            return (float(self.cx + ux * self.half_w), float(self.cy + uy * self.half_h))
        # to a millionth of the window's scale: every digit that can matter, and no float noise
        quantum = Decimal(10) ** (math.floor(math.log10(min(self.half_w, self.half_h))) - 6)
        with localcontext(prec=DIGITS):
            return ((self.exact[0] + Decimal(ux * self.half_w)).quantize(quantum),
                    (self.exact[1] + Decimal(uy * self.half_h)).quantize(quantum))

    @property
    def farthest_corner(self) -> tuple[float, float]:
        """The corner farthest from zero, where float64's spacing is coarsest: a zoom that
        resolves there resolves anywhere in the window (the depth check before a search)."""
        return (max(self.x_bounds, key=abs), max(self.y_bounds, key=abs))

    @property
    def width(self) -> float:
        return 2 * self.half_w

    @property
    def height(self) -> float:
        return 2 * self.half_h

    def zoom(self, factor: float, center: tuple[float, float] | None = None) -> "Window":
        """Magnify by `factor` (2 halves the extents) about `center` (default: own centre)."""
        center = center if center is not None else self.center
        return Window(float(center[0]), float(center[1]), self.half_w / factor, self.half_h / factor, _exact(center))

    def with_aspect(self, aspect: float) -> "Window":
        """The same centre and width, with height = width / aspect (no stretched pixels)."""
        return replace(self, half_h=self.half_w / aspect)

    def axes(self, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (xs of length W, ys of length H) for size = (H, W)."""
        h, w = check_size(size)
        return _pixels(self.cx, self.half_w, w), _pixels(self.cy, self.half_h, h)

    def offsets(self, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates relative to the centre (dxs of length W, dys of length H): what
        engine.precision=perturbation trains from, at any depth."""
        h, w = check_size(size)
        return _pixels(0.0, self.half_w, w), _pixels(0.0, self.half_h, h)

    def grid(self, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Flattened (x, y) coordinates of every pixel, row-major from the lowest y."""
        xs, ys = self.axes(size)
        gx, gy = np.meshgrid(xs, ys)
        return gx.ravel(), gy.ravel()

    def check_resolution(self, size: tuple[int, int], dtype="float64") -> None:
        """Refuse a window too deep for `dtype` (the float type its runs train in, a torch
        dtype or its name; "perturbation" or "auto", which turns to perturbation past float64,
        by perturbation's bound): neighbouring pixels must stay distinct runs, and every
        hyperparameter within what the float type holds."""
        self.check_range(dtype)
        if dtype in (PERTURBATION, "auto"):
            dxs, dys = self.offsets(size)
            step = min(np.min(np.diff(d)) if len(d) > 1 else math.inf for d in (dxs, dys))
            if step * MIN_ULPS_PER_PIXEL < PERTURBATION_NARROWEST:
                raise Refusal(
                    f"window is too deep for engine.precision={dtype}: neighbouring pixels are {step:.3g} apart, "
                    f"below the {PERTURBATION_NARROWEST / MIN_ULPS_PER_PIXEL:.3g} its double-double reference "
                    "run resolves; use a shallower zoom or fewer pixels")
            return
        name = str(dtype).removeprefix("torch.")
        xs, ys = self.axes(size)
        for axis, c in (("x", xs), ("y", ys)):
            if len(c) < 2:
                continue
            step = np.min(np.diff(c))
            ulp = np.spacing(np.max(np.abs(c)))  # coordinates are float64 whatever trains
            # The hyperparameter is 10**c, rounded to dtype: its relative step is ln(10) * step.
            rel = math.log(10) * step
            if step < MIN_ULPS_PER_PIXEL * ulp or rel < MIN_ULPS_PER_PIXEL * np.finfo(name).eps:
                raise Refusal(
                    f"window is too deep for {name} (engine.precision) on the {axis} axis: neighbouring "
                    f"pixels are {step:.3g} apart at coordinate {np.max(np.abs(c)):.6g}, below "
                    f"{MIN_ULPS_PER_PIXEL} {name} ulps; use a shallower zoom"
                    + (" or engine.precision=float64" if name != "float64" else
                       f" or engine.precision={PERTURBATION} (or auto)")
                )

    def check_range(self, dtype="float64") -> None:
        """Refuse a window whose hyperparameters 10**coordinate pass what `dtype` trains
        (perturbation and auto: float64's, which they fall back on)."""
        name = str(dtype).removeprefix("torch.")
        name = name if name in HIGHEST else "float64"
        for axis, (_, top) in (("x", self.x_bounds), ("y", self.y_bounds)):
            if top > HIGHEST[name]:
                raise Refusal(
                    f"window reaches {top:.6g} on the {axis} axis, a hyperparameter of 10^{top:.4g}: "
                    f"{name} (engine.precision) trains up to 10^{HIGHEST[name]:g}, past which a run's "
                    "first products overflow; choose a window below that"
                    + (" or engine.precision=float64" if name != "float64" else ""))

    def to_dict(self) -> dict:
        """Bounds as floats and, for a deep window, its exact centre and extents as strings."""
        bounds = {"x": list(self.x_bounds), "y": list(self.y_bounds)}
        if self.exact is None:
            return bounds
        return {**bounds, "center": [str(c) for c in self.exact], "width": self.width, "height": self.height}


def point_json(point) -> list:
    """A point for JSON: floats as they are, a deep point's Decimals as strings."""
    return [str(c) if isinstance(c, Decimal) else c for c in point]


def _exact(center) -> tuple[Decimal, Decimal] | None:
    """A centre's Decimals when it has any (a deep target), else None."""
    if any(isinstance(c, Decimal) for c in center):
        return (Decimal(center[0]), Decimal(center[1]))
    return None


def _pixels(mid: float, half: float, n: int) -> np.ndarray:
    """n points from mid - half to mid + half inclusive; a single pixel sits at the centre.

    Written as mid + offset * step so that nested grids hit the same numbers: with n odd,
    every other pixel of a window zoomed 2x about its centre is bit-for-bit a pixel of the
    wider window (its step is exactly half), which lets keyframes reuse each other's runs.
    """
    if n == 1:
        return np.array([mid])
    return mid + (np.arange(n) - (n - 1) / 2) * (2 * half / (n - 1))


def check_size(size) -> tuple[int, int]:
    """Validate an (H, W) pixel size."""
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise Refusal(f"size must be (height, width) in pixels, got {size!r}") from None
    if h < 1 or w < 1 or (h, w) != tuple(size):
        raise Refusal(f"size must be two integers >= 1 (height, width), got {size!r}")
    return h, w


def zoom_path(
    start: Window, target: tuple[float, float], decades: float, n_frames: int, ease: float = 0.0
) -> list[Window]:
    """One window per frame, centred on the target, from the start width down `decades`.

    The zoom speed is constant in log scale (each second multiplies the magnification by
    the same factor), except that with ease > 0 it ramps up over the first `ease` share of
    the frames and down over the last (a smooth velocity profile, not a jump).
    """
    if not (0 <= ease <= 0.5):
        raise Refusal(f"zoom.ease must be in [0, 0.5] (share of the video spent speeding up), got {ease!r}")
    if n_frames < 1:
        raise Refusal(f"a zoom needs at least one frame, got {n_frames}")
    return [start.zoom(10 ** (decades * s), center=target) for s in _progress(n_frames, ease)]


def _progress(n: int, ease: float) -> np.ndarray:
    """Share of the log-zoom done at each of n frames: 0 at the first, 1 at the last."""
    if n == 1:
        return np.zeros(1)
    u = np.linspace(0.0, 1.0, n)
    if ease == 0:
        return u
    # Velocity: a raised-cosine ramp up over [0, ease], flat, then down over [1 - ease, 1].
    ramp = lambda t: 0.5 - 0.5 * np.cos(np.pi * np.clip(t / ease, 0, 1))  # noqa: E731
    fine = np.linspace(0.0, 1.0, 20 * n + 1)
    speed = ramp(fine) * ramp(1 - fine)
    done = np.concatenate([[0], np.cumsum((speed[1:] + speed[:-1]) / 2)])
    return np.interp(u, fine, done / done[-1])


def max_decades(start: Window, size: tuple[int, int], target: tuple[float, float], dtype="float64") -> float:
    """The deepest zoom (decades) whose frames still resolve in `dtype` at this size."""
    lo, hi = 0.0, 40.0
    while hi - lo > 0.01:
        mid = (lo + hi) / 2
        try:
            start.zoom(10**mid, center=target).check_resolution(size, dtype)
            lo = mid
        except ValueError:
            hi = mid
    return lo

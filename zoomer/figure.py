"""Figures with axes: the box-counting plot and a still with hyperparameter axes.

Drawn with Pillow, which zoomer needs anyway: one renderer, so a figure looks the same
wherever it is made. Pillow's built-in font has no rotated text, so the y label is drawn
on its own strip and turned.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .color import lookup_table
from .dimension import BoxDimension
from .window import Window

INK = (30, 30, 30)
GRID = (225, 225, 225)


@dataclass
class Axes:
    """A plot area of a white canvas that maps data (x, y) to pixels, y growing upwards."""

    image: Image.Image
    box: tuple[int, int, int, int]  # left, top, right, bottom in pixels
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    font_size: int

    @classmethod
    def around(cls, plot: tuple[int, int], xlim, ylim, xticks, yticks, texts: tuple[str, ...],
               font_size: int) -> "Axes":
        """A canvas with room around a plot area (width, height) for the tick labels and
        the texts (x label, y label, title); wide enough that the title and the x label fit
        across, tall enough that the y label fits upright."""
        font = ImageFont.load_default(size=font_size)
        left = round(2.5 * font_size + max(font.getlength(label) for _, label in yticks))
        right = round(font_size + max(font.getlength(label) for _, label in xticks) / 2)
        top, bottom = 3 * font_size, 4 * font_size
        xlabel, ylabel, title = (round(font.getlength(t)) + 2 * font_size for t in texts)
        size = (max(left + plot[0] + right, xlabel, title), max(top + plot[1] + bottom, top + ylabel))
        box = (left, top, left + plot[0], top + plot[1])
        return cls(Image.new("RGB", size, "white"), box, tuple(xlim), tuple(ylim), font_size)

    @property
    def draw(self) -> ImageDraw.ImageDraw:
        return ImageDraw.Draw(self.image)

    @property
    def font(self) -> ImageFont.FreeTypeFont:
        return ImageFont.load_default(size=self.font_size)

    def px(self, x, y) -> tuple[float, float]:
        left, top, right, bottom = self.box
        (x0, x1), (y0, y1) = self.xlim, self.ylim
        return left + (x - x0) / (x1 - x0) * (right - left), bottom - (y - y0) / (y1 - y0) * (bottom - top)

    def frame(self, xticks, yticks, xlabel: str, ylabel: str, title: str, grid: bool = False) -> None:
        """Ticks (value, label) on both axes, axis labels, a title and the frame itself."""
        draw, font, size = self.draw, self.font, self.font_size
        (left, top, right, bottom), tick = self.box, size // 2
        for value, label in xticks:
            u = self.px(value, self.ylim[0])[0]
            if grid:
                draw.line([(u, top), (u, bottom)], fill=GRID)
            draw.line([(u, bottom), (u, bottom + tick)], fill=INK, width=2)
            draw.text((u, bottom + tick + 2), label, font=font, fill=INK, anchor="ma")
        for value, label in yticks:
            v = self.px(self.xlim[0], value)[1]
            if grid:
                draw.line([(left, v), (right, v)], fill=GRID)
            draw.line([(left - tick, v), (left, v)], fill=INK, width=2)
            draw.text((left - tick - 3, v), label, font=font, fill=INK, anchor="rm")
        draw.rectangle(self.box, outline=INK, width=2)
        centre = self.image.width / 2
        draw.text((centre, bottom + 2 * size + tick), xlabel, font=font, fill=INK, anchor="ma")
        draw.text((centre, top - 1.5 * size), title, font=font, fill=INK, anchor="mm")
        strip = Image.new("RGB", (round(font.getlength(ylabel)) + 4, round(1.5 * size)), "white")
        ImageDraw.Draw(strip).text((strip.width / 2, strip.height / 2), ylabel, font=font, fill=INK, anchor="mm")
        strip = strip.rotate(90, expand=True)
        self.image.paste(strip, (round(0.2 * size), max(top, round((top + bottom - strip.height) / 2))))


def boxcount_plot(estimates: list[tuple[str, BoxDimension]], title: str, plot=(760, 520)) -> Image.Image:
    """log-log plot of occupied boxes against box size, one colour per (label, estimate).

    Fitted sizes are filled dots, the rest hollow; each fit is drawn over its sizes, and
    the legend gives its dimension and standard error.
    """
    font_size = 16
    sizes = np.concatenate([e.sizes for _, e in estimates])
    counts = np.concatenate([e.counts for _, e in estimates])
    counts = counts[counts > 0]
    xlim = (-0.5, math.log2(sizes.max()) + 0.5)
    ylim = (-0.5, math.log2(counts.max()) + 1.0)
    xticks = [(math.log2(s), str(s)) for s in np.unique(sizes)]
    yticks = [(math.log2(10**k), f"{10**k:g}") for k in range(int(math.log10(counts.max())) + 1)]
    labels = ("box size (pixels)", "boxes that hold an edge", title)
    axes = Axes.around(plot, xlim, ylim, xticks, yticks, labels, font_size)
    axes.frame(xticks, yticks, *labels, grid=True)
    palette = lookup_table("viridis")[np.linspace(0, 200, max(2, len(estimates))).astype(int)]
    font, draw, r = axes.font, axes.draw, font_size / 3
    for i, (label, est) in enumerate(estimates):
        colour = tuple(int(c) for c in palette[i])
        x = np.log2(est.sizes[est.fitted])
        ends = [axes.px(u, est.intercept - est.dimension * u) for u in (x.min(), x.max())]
        draw.line(ends, fill=colour, width=2)
        for s, n, fitted in zip(est.sizes, est.counts, est.fitted):
            if n > 0:
                u, v = axes.px(math.log2(s), math.log2(n))
                draw.ellipse([u - r, v - r, u + r, v + r], outline=colour, width=2, fill=colour if fitted else "white")
        legend = f"{label}: D = {est.dimension:.3f}" + ("" if math.isnan(est.stderr) else f" ± {est.stderr:.3f}")
        draw.text((axes.box[2] - font_size, axes.box[1] + font_size * (0.8 + 1.3 * i)), legend,
                  font=font, fill=colour, anchor="ra")
    return axes.image


def edge_ticks(lo: float, hi: float) -> list[tuple[float, str]]:
    """Ticks at both edges and the centre, with the digits that tell them apart at any depth."""
    digits = 3 + max(0, math.ceil(math.log10(max(abs(lo), abs(hi), 1e-300) / (hi - lo))))
    return [(v, f"{v:.{digits}g}") for v in (lo, (lo + hi) / 2, hi)]


def linear_ticks(lo: float, hi: float) -> list[tuple[float, str]]:
    """Ticks of a log10 axis labelled with the hyperparameter itself (10**value), as the
    paper's figures print them."""
    ends = edge_ticks(10**lo, 10**hi)
    return [(math.log10(v), label) for v, label in (ends[0], ends[-1])]


# The shorter side of a still's plot, at least: a smaller picture is enlarged by a whole
# factor, so its title, ticks and labels do not dwarf it.
MIN_PLOT = 384


def enlarged(rgb: np.ndarray) -> np.ndarray:
    """The picture as a still's figure shows it: each pixel repeated a whole number of
    times until the shorter side is at least MIN_PLOT (crisp, every pixel the same size)."""
    k = -(-MIN_PLOT // min(rgb.shape[:2]))
    return np.repeat(np.repeat(rgb, k, axis=0), k, axis=1) if k > 1 else rgb


def still_figure(rgb: np.ndarray, window: Window, labels: tuple[str, str], title: str,
                 linear: bool = False) -> Image.Image:
    """The picture (display orientation) framed by axes in axis units (log10), or with
    `linear` in the hyperparameters' own values."""
    ticks = linear_ticks if linear else edge_ticks
    if linear:
        labels = tuple(label.removeprefix("log10 ") for label in labels)
    if window.exact is not None:  # deeper than float64 holds: offsets from the exact centre
        digits = 3 + max(0, math.ceil(-math.log10(min(window.width, window.height))))
        centre = [f"{c:.{digits}g}" for c in window.exact]
        labels = tuple(f"{label} - c{axis}" for label, axis in zip(labels, "xy"))
        title = f"{title}; centre ({centre[0]}, {centre[1]})"
        window = Window(0.0, 0.0, window.half_w, window.half_h)
    rgb = enlarged(rgb)
    height, width = rgb.shape[:2]
    xticks, yticks = ticks(*window.x_bounds), ticks(*window.y_bounds)
    font_size = max(12, min(height, width) // 40)
    axes = Axes.around((width, height), window.x_bounds, window.y_bounds, xticks, yticks, (*labels, title), font_size)
    axes.image.paste(Image.fromarray(rgb), axes.box[:2])
    axes.frame(xticks, yticks, *labels, title)
    return axes.image

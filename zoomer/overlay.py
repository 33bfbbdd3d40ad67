"""The overlay: zoom depth, the view's centre and a caption, printed on video frames.

The text scales with the frame's shorter side, a caption wraps (at its own newlines and
to the width of a column beside the numbers), and the box under the text covers at most
MAX_SHARE of the frame on every preset: the font shrinks to fit, and where even MIN_SIZE
does not fit, the last lines give way (a cut caption ends in an ellipsis). The font is
DejaVu Sans Condensed, shipped in zoomer/fonts: Pillow's built-in font has glyphs for
ASCII and a dozen other characters only, so an accent, a Greek letter or a multiplication
sign printed as a box.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .video import check_frame

FONT = Path(__file__).with_name("fonts") / "DejaVuSansCondensed.ttf"
MAX_SHARE = 0.1  # of the frame's area, at most, under the overlay's box
TEXT_SHARE = 0.032  # font size (px) per pixel of the frame's shorter side: 35 px on 1080p
MIN_SIZE = 7  # px: smaller reads as a smudge, so lines give way instead
CAPTION_SHARE = 0.25  # of the frame's width, the least a caption wraps to
LINE_SPACING = 1.25  # line height per font size
ELLIPSIS = "\u2026"


@dataclass(frozen=True)
class OverlayText:
    """What the overlay says: lines that stay whole (the numbers) and a caption that wraps."""

    lines: tuple[str, ...]
    caption: Optional[str] = None


def overlay_text(magnification: float, centre: tuple[float, float], caption: Optional[str] = None,
                 axis_names: tuple[str, str] = ("x", "y")) -> OverlayText:
    """Zoom depth and the view's centre in axis units, with an optional caption.

    The centre gets enough significant digits to still differ between neighbouring views
    at this depth (about log10(magnification) + 4). A caption breaks at its newlines and at
    a typed `\\n`, since Hydra's command line passes that as two characters.
    """
    digits = 4 + max(0, math.ceil(math.log10(magnification)))
    mantissa, exponent = f"{magnification:.1e}".split("e")
    depth = f"{magnification:.3g}" if magnification < 1e3 else f"{mantissa}e{int(exponent)}"
    lines = (f"zoom {depth}", *(f"{name} = {value:.{digits}g}" for name, value in zip(axis_names, centre)))
    return OverlayText(lines, caption.replace("\\n", "\n") if caption else None)


@lru_cache(maxsize=64)
def font(size: int) -> ImageFont.FreeTypeFont:
    """The overlay's font at `size` px (loaded once per size: frames share it)."""
    return ImageFont.truetype(str(FONT), size)


@dataclass(frozen=True)
class Layout:
    """The text as drawn on one frame shape: font size, the lines after wrapping, the box."""

    size: int
    lines: tuple[str, ...]
    width: int  # of the box, px
    height: int

    @property
    def margin(self) -> int:
        """Between the box and the frame's edge, and between the box's edge and the text."""
        return max(2, self.size // 3)

    @property
    def line_height(self) -> int:
        return round(self.size * LINE_SPACING)

    def fits(self, frame_height: int, frame_width: int) -> bool:
        inside = self.width + 2 * self.margin <= frame_width and self.height + 2 * self.margin <= frame_height
        return inside and self.width * self.height <= MAX_SHARE * frame_height * frame_width


def layout(frame_height: int, frame_width: int, text: OverlayText) -> Layout:
    """The largest font, up to the frame's own size, at which the text fits (see the module doc)."""
    largest = max(MIN_SIZE, round(TEXT_SHARE * min(frame_height, frame_width)))
    for size in range(largest, MIN_SIZE - 1, -1):
        lines = _wrap(text, size, frame_width)
        laid = _box(size, lines)
        if laid.fits(frame_height, frame_width):
            return laid
    while lines and not laid.fits(frame_height, frame_width):  # MIN_SIZE: the last lines give way
        lines = lines[:-1]
        if len(lines) > len(text.lines):  # the caption goes on: say that it was cut
            lines = (*lines[:-1], lines[-1].rstrip(" " + ELLIPSIS) + ELLIPSIS)
        laid = _box(MIN_SIZE, lines)
    return laid


def draw_overlay(frame: np.ndarray, text: OverlayText, opacity: float = 0.55) -> np.ndarray:
    """The frame with the text in its bottom-left corner over a semi-transparent dark box."""
    check_frame(frame)
    height, width = frame.shape[:2]
    laid = layout(height, width, text)
    if not laid.lines:
        return frame
    pad, top = laid.margin, height - laid.margin - laid.height
    box = Image.new("RGBA", (laid.width, laid.height), (0, 0, 0, round(255 * opacity)))
    draw = ImageDraw.Draw(box)
    for i, line in enumerate(laid.lines):
        draw.text((pad, pad + i * laid.line_height), line, font=font(laid.size), fill=(255, 255, 255, 255))
    out = frame.copy()  # only the box is composited: a 1080p frame in milliseconds
    under = Image.fromarray(frame[top:top + laid.height, pad:pad + laid.width]).convert("RGBA")
    out[top:top + laid.height, pad:pad + laid.width] = np.asarray(Image.alpha_composite(under, box).convert("RGB"))
    return out

def _box(size: int, lines: tuple[str, ...]) -> Layout:
    pad = max(2, size // 3)
    text_width = max((font(size).getlength(line) for line in lines), default=0)
    return Layout(size, lines, math.ceil(text_width) + 2 * pad, round(size * LINE_SPACING) * len(lines) + 2 * pad)


def _wrap(text: OverlayText, size: int, frame_width: int) -> tuple[str, ...]:
    """The numbers as they are, then the caption broken at its newlines and wrapped to the
    numbers' width (at least CAPTION_SHARE of the frame's): at spaces, or inside a word
    longer than a line."""
    face = font(size)
    column = max([CAPTION_SHARE * frame_width, *(face.getlength(line) for line in text.lines)])
    wrapped = []
    for paragraph in (text.caption or "").splitlines():
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if face.getlength(candidate) <= column or not line:
                line = candidate
            else:
                wrapped.append(line)
                line = word
            while face.getlength(line) > column and len(line) > 1:  # a word wider than the column
                cut = next((n for n in range(len(line) - 1, 0, -1) if face.getlength(line[:n]) <= column), 1)
                wrapped.append(line[:cut])
                line = line[cut:]
        wrapped.append(line)
    return (*text.lines, *wrapped)

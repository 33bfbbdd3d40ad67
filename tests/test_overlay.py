"""The overlay fits every preset's frame, wraps its caption and draws what its font holds."""
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from zoomer.config import VideoConfig
from zoomer.errors import Refusal
from zoomer.overlay import ELLIPSIS, MAX_SHARE, draw_overlay, font, layout, overlay_text

PRESETS = sorted((Path(str(files("zoomer.conf"))) / "video").glob("*.yaml"))
DEEP = (3.7e12, (-0.123456789012345, 2.34567890123456))  # the longest numbers a float64 zoom prints
CAPTIONS = ["tanh, width 16\nthe paper's baseline",
            "a caption that goes on about the fractal boundary of neural network trainability " * 3]


def marked(height, width, text):
    frame = np.full((height, width, 3), 200, np.uint8)
    out = draw_overlay(frame, text)
    assert out.shape == frame.shape and out.dtype == np.uint8 and np.all(frame == 200)  # input left alone
    return out, np.any(out != frame, axis=-1)


def text_rows(out, changed) -> list[tuple[int, int]]:
    """(first, last) row of each run of rows holding text: light on the dark box."""
    rows = np.flatnonzero((changed & np.all(out > 150, axis=-1)).any(axis=1))
    breaks = np.flatnonzero(np.diff(rows) > 1)
    return list(zip(rows[np.r_[0, breaks + 1]], rows[np.r_[breaks, len(rows) - 1]]))


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
@pytest.mark.parametrize("caption", CAPTIONS, ids=["two lines", "long"])
def test_each_presets_overlay_covers_at_most_a_tenth_in_the_bottom_left(preset, caption):
    video = VideoConfig(**OmegaConf.to_container(OmegaConf.load(preset)))  # a preset sets what differs
    height, width = video.height, video.width
    out, changed = marked(height, width, overlay_text(*DEEP, caption))
    rows, cols = np.nonzero(changed)
    box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    assert box <= MAX_SHARE * height * width, f"{preset.stem}: the overlay covers {box / (height * width):.1%}"
    assert rows.min() > 0 and rows.max() < height - 1 and cols.min() > 0  # inside the frame, off its edges
    assert rows.min() > height / 2 and cols.max() < width / 2  # the bottom-left corner
    assert len(text_rows(out, changed)) >= 3  # the numbers are all there


def test_a_multiline_caption_stays_in_a_1080x1920_frame_legibly():
    lines = text_rows(*marked(1920, 1080, overlay_text(*DEEP, "tanh, width 16\nfull batch\nseed 0")))
    assert len(lines) == 6  # zoom, x, y and the caption's three lines, each whole
    first, last = lines[0]
    assert last - first >= 20  # "zoom 3.7e12" stands over 20 px tall on the phone's 1080 px width


def test_a_caption_too_long_for_a_small_frame_is_cut_with_an_ellipsis():
    text = overlay_text(1.2e4, (-0.1234, 2.0), CAPTIONS[1])
    laid = layout(126, 224, text)
    assert laid.lines[:3] == text.lines and laid.lines[-1].endswith(ELLIPSIS)
    assert laid.width * laid.height <= MAX_SHARE * 126 * 224


def test_a_word_wider_than_the_column_is_broken_not_spilled():
    laid = layout(1080, 1080, overlay_text(1.2e4, (0.5, 2.0), "x" * 200))
    face = font(laid.size)
    assert len(laid.lines) > 4 and all(face.getlength(line) <= laid.width for line in laid.lines)


def test_a_non_ascii_caption_draws_glyphs_not_boxes():
    caption = "é α × Ж ≈ Δη"
    missing = "\ue000" * len(caption)  # a private-use character: no font has it, every font draws its box
    face = font(20)
    assert all(bytes(face.getmask(c)) != bytes(face.getmask("\ue000")) for c in caption if c != " ")
    drawn, _ = marked(1080, 1920, overlay_text(*DEEP, caption))
    boxes, _ = marked(1080, 1920, overlay_text(*DEEP, missing))
    assert not np.array_equal(drawn, boxes)


def test_overlay_text():
    text = overlay_text(1.2e4, (-0.123456789012, 2.0), caption="relu")
    assert text.lines == ("zoom 1.2e4", "x = -0.123456789", "y = 2") and text.caption == "relu"
    assert overlay_text(3.0, (1.0, 2.0), axis_names=("lr_in", "lr_out")).lines[:2] == ("zoom 3", "lr_in = 1")
    assert overlay_text(3.0, (1.0, 2.0), caption=r"tanh\nwidth 16").caption == "tanh\nwidth 16"  # typed in a shell


def test_a_caption_without_the_overlay_is_refused_not_dropped():
    with pytest.raises(Refusal, match=r"video.caption='tanh' is drawn by the overlay, which is off: set video.overlay=true"):
        VideoConfig(caption="tanh")
    assert VideoConfig(caption="tanh", overlay=True).caption == "tanh"

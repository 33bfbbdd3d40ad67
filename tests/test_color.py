from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from zoomer.boundary import converged
from zoomer.config import COLORMAPS, ColorConfig
from zoomer.color import (Reference, color_frame, colorize, lookup_table,
                          normalize, smooth_references, supersample_colors)

CONF = Path(str(files("zoomer.conf"))) / "color"
BLUE, RED = (0x5E, 0x4F, 0xA2), (0x9E, 0x01, 0x42)  # Spectral's ends


def synthetic_scores(rng, shape=(40, 60)):
    """Paper-like scores: converged -sum(v) <= -1, diverged sum(1/v) > 0, wide ranges."""
    magnitude = np.exp(rng.uniform(0, 8, shape))
    return np.where(rng.random(shape) < 0.6, -magnitude, magnitude)


def test_normalize_fills_each_class_band_in_score_order():
    scores = synthetic_scores(np.random.default_rng(0))
    values = normalize(scores, Reference.from_scores(scores))
    converged, diverged = values[scores < 0], values[scores >= 0]
    assert converged.min() == -1 and converged.max() == -0.25
    assert diverged.min() == 0.25 and diverged.max() == 1
    order = np.argsort(scores, axis=None)
    assert np.all(np.diff(values.ravel()[order]) >= 0)  # monotone: boundary (large |score|) -> ends


def test_values_outside_reference_clip_to_band_ends():
    reference = Reference.from_scores(np.array([-10.0, -1.0, 1.0, 10.0]))
    assert normalize(np.array([-1e9, -1e-9, 1e-9, 1e9]), reference).tolist() == [-1, -0.25, 0.25, 1]


def test_empty_side_is_graceful():
    all_converged = -np.exp(np.random.default_rng(1).uniform(0, 5, (8, 8)))
    reference = Reference.from_scores(all_converged)
    assert reference.counts.tolist() == [64, 0]
    values = normalize(np.array([-3.0, 5.0]), reference)
    assert -1 <= values[0] <= -0.25 and values[1] == pytest.approx(0.625)  # middle of its band
    # Smoothing must not mix the absent side's placeholder row into its neighbours.
    diverged = Reference.from_scores(np.array([2.0, 4.0, 8.0]))
    smoothed = smooth_references([reference, diverged, reference], sigma_frames=1.0)
    assert smoothed[0].counts[1] > 0
    np.testing.assert_allclose(smoothed[0].quantiles[1], diverged.quantiles[1])
    nothing = smooth_references([reference, reference], sigma_frames=2.0)
    assert nothing[0].counts[1] == 0


def test_probe_readout_splits_at_zero_without_gap():
    outputs = np.random.default_rng(2).normal(size=(20, 20)) * 1e3
    values = normalize(outputs, Reference.from_scores(outputs), gap=0.0)
    assert values[outputs < 0].min() == -1 and values[outputs < 0].max() <= 0
    assert values[outputs >= 0].min() == 0 and values[outputs >= 0].max() == 1
    config = ColorConfig(cmap="Spectral", probe_cmap="viridis")
    rgb = color_frame(outputs, Reference.from_scores(outputs), config, readout="probe_point")
    assert rgb.shape == (20, 20, 3)
    assert set(map(tuple, rgb.reshape(-1, 3))) <= set(map(tuple, lookup_table("viridis")))
    with pytest.raises(ValueError, match="readout"):
        color_frame(outputs, Reference.from_scores(outputs), config, readout="accuracy")


def test_spectral_is_blue_for_converged_and_red_for_diverged():
    table = lookup_table("Spectral")
    assert table.shape == (256, 3) and table.dtype == np.uint8
    assert tuple(table[0]) == BLUE and tuple(table[-1]) == RED
    assert tuple(table[128]) == pytest.approx((0xFF, 0xFF, 0xBF), abs=3)  # pale yellow middle
    np.testing.assert_array_equal(lookup_table("Spectral_r"), table[::-1])
    assert colorize(np.array([-1.0, 1.0])).tolist() == [list(BLUE), list(RED)]
    for name in COLORMAPS:
        assert lookup_table(name).shape == (256, 3)


# zoomer's name -> matplotlib's map with the same orientation (blue = converged = -1).
MATPLOTLIB_NAMES = {"Spectral": "Spectral_r", "RdBu": "RdBu_r", "coolwarm": "coolwarm",
                    "viridis": "viridis", "magma": "magma"}


def test_named_colormaps_equal_matplotlibs():
    matplotlib = pytest.importorskip("matplotlib")
    assert set(MATPLOTLIB_NAMES) == set(COLORMAPS) - {"fire_ice"}  # zoomer's own map
    for name, theirs in MATPLOTLIB_NAMES.items():
        expected = np.round(matplotlib.colormaps[theirs](np.arange(256))[:, :3] * 255)
        np.testing.assert_array_equal(lookup_table(name), expected, err_msg=name)
        np.testing.assert_array_equal(lookup_table(name + "_r"), expected[::-1], err_msg=name)


@pytest.mark.parametrize("name, first, middle, last", [
    ("Spectral", 0x5E4FA2, 0xFFFEBE, 0x9E0142),
    ("RdBu", 0x053061, 0xF7F6F6, 0x67001F),
    ("coolwarm", 0x3B4CC0, 0xDDDCDC, 0xB40426),
    ("viridis", 0x440154, 0x21918C, 0xFDE725),
    ("magma", 0x000004, 0xB73779, 0xFCFDBF),
])
def test_colormap_entries_without_matplotlib(name, first, middle, last):
    """matplotlib's values at entries 0, 128 and 255, written down so this runs without it."""
    table = lookup_table(name)
    assert [int.from_bytes(bytes(table[i])) for i in (0, 128, 255)] == [first, middle, last]


def test_color_frame_flips_to_display_orientation():
    scores = np.full((4, 6), 50.0)
    scores[0] = -50.0  # row 0 = lowest y is converged
    reference = Reference.from_scores(scores)
    rgb = color_frame(scores, reference, ColorConfig())
    assert rgb.shape == (4, 6, 3) and rgb.flags.c_contiguous
    np.testing.assert_array_equal(rgb, colorize(normalize(scores, reference))[::-1])
    bottom, top = rgb[-1, 0].astype(int), rgb[0, 0].astype(int)
    assert bottom[2] > bottom[0] and top[0] > top[2]  # lowest y (blue) is drawn at the bottom


def test_ties_get_their_mid_rank():
    scores = np.array([-8.0, -2.0, -2.0, -2.0, -1.0, 3.0, 3.0])
    values = normalize(scores, Reference.from_scores(scores, n_quantiles=7))
    assert values[1] == values[2] == pytest.approx(-0.625)  # middle of the converged band
    assert values[5] == pytest.approx(0.625)  # a uniform class sits mid-band, not at an end


def test_supersample_averages_colours_in_blocks():
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[:2, :2] = 200  # one uniform block
    rgb[2:, 4:] = [[[255, 0, 0], [0, 0, 255]], [[0, 0, 255], [255, 0, 0]]]  # a two-colour block
    small = supersample_colors(rgb, 2)
    assert small.shape == (2, 3, 3) and small.dtype == np.uint8
    assert small[0, 0].tolist() == [200, 200, 200] and small[0, 1].tolist() == [0, 0, 0]
    red, _, blue = small[1, 2]
    assert red == blue and 128 < red < 255  # half-and-half blend, gamma-aware (brighter than 128)
    with pytest.raises(ValueError, match="supersample=4"):
        supersample_colors(rgb, 4)
    scores = np.where(np.arange(8)[:, None] < 4, -1.0, 1.0) * np.ones((8, 12))
    assert color_frame(scores, Reference.from_scores(scores), ColorConfig(), "loss", 2).shape == (4, 6, 3)


def test_classes_alternating_finer_than_a_pixel_render_as_their_average_colour():
    """A checkerboard of converged and diverged runs, 2 x 2 runs a pixel: every pixel is the
    same blend of the two class colours (each run coloured first), neither class's colour."""
    runs = np.where(np.indices((8, 12)).sum(axis=0) % 2, 1.0, -1.0)
    reference = Reference.from_scores(runs)
    rgb = color_frame(runs, reference, ColorConfig(), "loss", 2)
    assert (rgb == rgb[0, 0]).all()
    one_each = color_frame(np.array([[-1.0, 1.0]]), reference, ColorConfig())
    assert rgb[0, 0].tolist() == supersample_colors(np.tile(one_each, (2, 1, 1)), 2)[0, 0].tolist()
    assert not (rgb[0, 0] == one_each[0]).all(axis=-1).any()


def zoom_frames(n_frames=24, size=48):
    """A slow zoom on a fixed field; on odd frames a strip of extreme divergers enters."""
    rng = np.random.default_rng(3)
    frames = []
    for t in range(n_frames):
        half = 1.0 * 0.98**t
        y, x = np.meshgrid(*2 * [np.linspace(-half, half, size)], indexing="ij")
        field = np.sin(5 * x + 3 * y) + 0.5 * np.cos(7 * x * y)
        scores = np.sign(field) * np.exp(4 * np.abs(field))
        if t % 2:
            scores[:, :6] = 1e6 * (1 + rng.random((size, 6)))
        frames.append(scores)
    return frames


def test_smoothing_steadies_references_and_colours():
    frames = zoom_frames()
    raw = [Reference.from_scores(s) for s in frames]
    smoothed = smooth_references(raw, sigma_frames=4.0)

    def reference_steps(references):
        return [np.abs(np.log(np.abs(b.quantiles[1]) / np.abs(a.quantiles[1]))).mean()
                for a, b in zip(references, references[1:])]

    assert max(reference_steps(smoothed)) < 0.5 * max(reference_steps(raw))

    def colour_steps(references):
        rgb = [color_frame(s, r, ColorConfig()).astype(float)[:, 6:] for s, r in zip(frames, references)]
        return [np.abs(b - a).mean() for a, b in zip(rgb, rgb[1:])]

    assert max(colour_steps(smoothed)) < 0.6 * max(colour_steps(raw))


def test_config_validation_names_the_field():
    ColorConfig()
    with pytest.raises(ValueError, match=r"color\.cmap='jet'.*Spectral"):
        ColorConfig(cmap="jet")
    with pytest.raises(ValueError, match=r"color\.probe_cmap"):
        ColorConfig(probe_cmap="nope")
    with pytest.raises(ValueError, match=r"color\.smoothing_frames"):
        ColorConfig(smoothing_frames=-1.0)
    with pytest.raises(ValueError, match=r"color\.n_quantiles"):
        ColorConfig(n_quantiles=1)


@pytest.mark.parametrize("path", sorted(CONF.glob("*.yaml")), ids=lambda p: p.stem)
def test_color_yaml_matches_schema(path):
    merged = OmegaConf.merge(OmegaConf.structured(ColorConfig), OmegaConf.load(path))
    OmegaConf.to_object(merged)


def test_default_color_yaml_exists():
    assert (CONF / "spectral.yaml").exists()


def test_a_score_of_exactly_zero_is_coloured_as_its_class():
    """Colour ranks each class in its own band; a score of 0 (or -0.0) belongs to the band of
    the class boundary.converged gives it, the one rule the border and the box count use."""
    scores = np.array([-4.0, -1.0, -0.0, 0.0, 1.0, 4.0])
    reference = Reference.from_scores(scores)
    assert reference.counts.tolist() == [converged(scores).sum(), (~converged(scores)).sum()]
    values = normalize(scores, reference)
    assert np.array_equal(values <= -0.25, converged(scores)) and np.all(np.abs(values) >= 0.25)

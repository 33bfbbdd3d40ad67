"""Solid guessing trains few runs on a coherent frame, keeps its classes, and is replayable;
keyframes reuse each other's runs with results identical to training them again."""
import logging
import re

import numpy as np
import pytest

from zoomer import Experiment, Window, landscape
from zoomer.color import Reference, color_frame
from zoomer.config import ColorConfig
from zoomer.boundary import converged, dilate, edges, mixed
from zoomer.guess import solid_guess, trained_pixels
from zoomer.landscape import lattice_step


def disc(size=(61, 97)) -> np.ndarray:
    """A smooth field: diverged (positive) inside a disc, converged outside."""
    h, w = size
    y, x = np.mgrid[0:h, 0:w]
    r = np.hypot((y - h / 2) / h, (x - w / 3) / w)
    return np.where(r < 0.3, 1 + r, -(1 + r))


def guessed(truth, step):
    asked = []

    def train(i, j):
        asked.append((i.copy(), j.copy()))
        return truth[i, j]

    return solid_guess(train, truth.shape, step), asked


@pytest.mark.parametrize("step", [2, 4, 8])
def test_a_coherent_frame_trains_few_runs_and_keeps_every_class(step):
    truth = disc()
    scores, asked = guessed(truth, step)
    trained = sum(len(i) for i, _ in asked)
    assert trained < (0.45 if step == 2 else 0.35) * truth.size  # a small frame: much of it is edge
    np.testing.assert_array_equal(scores > 0, truth > 0)
    pairs = np.concatenate([i * truth.shape[1] + j for i, j in asked])
    assert len(np.unique(pairs)) == len(pairs), "no pixel is trained twice"
    interpolated = np.abs(scores - truth)
    assert interpolated.max() < 0.05, "smooth areas are interpolated closely"


def test_refined_cells_are_the_boundary_and_its_neighbours():
    """Guessing refines what boundary.edges calls boundary (either class's sign), grown by one cell."""
    truth = disc((9, 9))
    lattice = truth > 0
    np.testing.assert_array_equal(mixed(lattice), edges(truth))
    cell = np.zeros((5, 5), bool)
    cell[0, 4] = True
    grown = dilate(cell)
    assert grown.sum() == 4 and grown[:2, 3:].all(), "clipped at the corner, 8-neighbourhood"


def test_the_one_cell_margin_finds_a_spike_past_a_solid_looking_cell():
    """A spike of the converged side pokes past the mixed cells into a cell whose four lattice
    corners all diverge; only the margin around mixed cells sends guessing in to find it."""
    y, x = np.mgrid[0:33, 0:33]
    truth = np.where(x < 12.5 + 10 * np.exp(-((y - 20) / 1.0) ** 2), -1.0, 1.0)
    scores, _ = guessed(truth, 8)
    np.testing.assert_array_equal(scores > 0, truth > 0)


def test_a_score_of_exactly_zero_is_one_class_everywhere():
    """Guessing splits classes by boundary.converged, as colour and the box count do: a run
    scoring exactly 0 is not converged, so its border with converged runs is refined."""
    x = np.mgrid[0:17, 0:33][1]
    truth = np.where(x < 12.5, -1.0, 0.0)
    scores, _ = guessed(truth, 8)
    np.testing.assert_array_equal(converged(scores), converged(truth))


def test_static_trains_everything_and_step_one_is_exact():
    rng = np.random.default_rng(0)
    noise = rng.choice([-1.0, 1.0], size=(33, 47)) * rng.uniform(1, 2, size=(33, 47))
    scores, asked = guessed(noise, 4)
    assert sum(len(i) for i, _ in asked) > 0.9 * noise.size
    exact, asked = guessed(noise, 1)
    np.testing.assert_array_equal(exact, noise)
    assert len(asked) == 1 and len(asked[0][0]) == noise.size


@pytest.mark.parametrize("size", [(1, 9), (9, 1), (1, 1)])
def test_a_frame_one_pixel_high_or_wide_trains_every_pixel(size):
    truth = disc(size)
    scores, asked = guessed(truth, 8)
    np.testing.assert_array_equal(scores, truth)
    assert sum(len(i) for i, _ in asked) == truth.size


def test_replay_recovers_the_trained_pixels():
    truth = disc()
    scores, asked = guessed(truth, 4)
    mask = np.zeros(truth.shape, bool)
    for i, j in asked:
        mask[i, j] = True
    np.testing.assert_array_equal(trained_pixels(scores, 4), mask)


def test_a_bad_guess_step_names_the_setting():
    with pytest.raises(ValueError, match="render.guess"):
        landscape(Experiment(steps=20), Window(0, 0, 1, 1), (8, 8), guess=3)


@pytest.mark.parametrize("guess, supersample", [(1, 1), (4, 1), (2, 2)])
def test_reused_runs_give_the_frame_training_would(guess, supersample):
    """Keyframe k+1 (2x deeper, odd size) holds every other pixel of keyframe k's centre
    bit for bit; handing those runs to keyframe k changes nothing but the work."""
    exp = Experiment(steps=30)
    outer = Window(1.0099, 2.3392, 0.02, 0.02 * 9 / 16)
    h, w = size = (21, 37)
    inner = landscape(exp, outer.zoom(2.0), size, guess=guess, supersample=supersample)
    trained = trained_pixels(inner, lattice_step(guess, supersample))
    i, j = np.arange(5, 16), np.arange(9, 28)  # keyframe k's middle half each way
    ii, jj = np.ix_(2 * i - (h - 1) // 2, 2 * j - (w - 1) // 2)
    known = np.full(size, np.nan)
    known[np.ix_(i, j)] = np.where(trained[ii, jj], inner[ii, jj], np.nan)
    assert np.isfinite(known).sum() > 50
    np.testing.assert_array_equal(landscape(exp, outer, size, guess=guess, known=known, supersample=supersample),
                                  landscape(exp, outer, size, guess=guess, supersample=supersample))


def test_a_solid_window_supersampled_costs_no_extra_runs_and_looks_the_same(caplog):
    """Every run converges here: guessing interpolates the supersamples, so 2 x 2 runs a
    pixel train the runs one a pixel does, and the picture differs only by rounding."""
    exp, window = Experiment(steps=20), Window.from_bounds((-1.0, 0.0), (-1.0, 0.0))
    caplog.set_level(logging.INFO, logger="zoomer.landscape")
    one = landscape(exp, window, (16, 16), guess=4)
    four = landscape(exp, window, (32, 32), guess=4, supersample=2)
    trained = [int(re.search(r"trained (\d+) runs", r.message).group(1)) for r in caplog.records]
    assert (one < 0).all() and (four < 0).all() and trained == [25, 25]
    plain = color_frame(one, Reference.from_scores(one), ColorConfig()).astype(int)
    mixed = color_frame(four, Reference.from_scores(four), ColorConfig(), "loss", 2).astype(int)
    assert np.abs(plain - mixed).max() <= 6

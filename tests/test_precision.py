"""precision="auto": float32 where the measurements say it draws float64's picture."""
import numpy as np
import pytest
import torch

import zoomer
from zoomer.precision import resolve_precision

DEFAULT = zoomer.Window.from_bounds((-2.0, 6.0), (-3.0, 5.0))  # the tanh condition's window
SIZE = (1080, 1920)


@pytest.mark.parametrize(
    "kw", [dict(), dict(nonlinearity="relu"), dict(n_data=1), dict(phase_space="paraminit_vs_lr")]
)
def test_auto_is_float32_at_the_default_window(kw):
    assert resolve_precision("auto", zoomer.Experiment(**kw), DEFAULT, SIZE) == torch.float32


def test_auto_is_float64_deep_for_minibatches_and_for_long_training():
    exp = zoomer.Experiment()
    assert resolve_precision("auto", exp, DEFAULT.zoom(10**0.9), SIZE) == torch.float32
    assert resolve_precision("auto", exp, DEFAULT.zoom(100), SIZE) == torch.float64
    assert resolve_precision("auto", zoomer.Experiment(batch_size=16), DEFAULT, SIZE) == torch.float64
    assert resolve_precision("auto", zoomer.Experiment(steps=1000), DEFAULT, SIZE) == torch.float64
    # So many pixels that neighbours' learning rates are the same float32 number.
    assert resolve_precision("auto", exp, DEFAULT, (2, 100_000_000)) == torch.float64


def test_auto_is_float64_where_float32_cannot_hold_the_hyperparameters():
    """An offset of 10^38 is past float32's range: auto leaves such a window to float64."""
    wide = zoomer.Window.from_bounds((-2.0, 40.0), (-3.0, 5.0))
    assert resolve_precision("auto", zoomer.Experiment(phase_space="paraminit_vs_lr"), wide, SIZE) == torch.float64


def test_explicit_precisions_are_kept():
    deep = DEFAULT.zoom(1e6)
    assert resolve_precision("float32", zoomer.Experiment(), deep, SIZE) == torch.float32
    assert resolve_precision("float64", zoomer.Experiment(), DEFAULT, SIZE) == torch.float64


def test_a_bad_precision_names_the_setting_and_the_choices():
    with pytest.raises(ValueError, match=r"engine.precision='half' must be one of \['float64', 'float32', 'perturbation', 'auto'\]"):
        resolve_precision("half", zoomer.Experiment(), DEFAULT, SIZE)


def test_landscape_accepts_auto():
    exp = zoomer.Experiment(steps=20)
    auto = zoomer.landscape(exp, DEFAULT, (3, 3), dtype="auto", backend="torch")
    assert np.array_equal(auto, zoomer.landscape(exp, DEFAULT, (3, 3), dtype="float32", backend="torch"))

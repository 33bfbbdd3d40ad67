"""backend=auto trusts a fused kernel only after it matched the torch path on a probe grid."""
import sys
import types
import warnings

import numpy as np
import pytest
import torch

import zoomer
from zoomer import engine, kernels

CPU = torch.device("cpu")
EXP = zoomer.Experiment(steps=20, width=8)
WINDOW = zoomer.Window.from_bounds((-1.0, 6.0), (-1.0, 4.0))


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny grids gain nothing from more threads, and lose much on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def fake_kernel(monkeypatch):
    """Install a kernel named "fake" as the only one auto tries; returns a setter for its train."""
    module = types.ModuleType("zoomer.kernels.fake")
    module.supports = lambda exp, device, dtype: True
    monkeypatch.setitem(sys.modules, "zoomer.kernels.fake", module)
    monkeypatch.setattr(kernels, "_FAST", ("fake",))
    monkeypatch.setattr(kernels, "BACKENDS", (*kernels.BACKENDS, "fake"))
    monkeypatch.setattr(kernels, "_verdicts", {})

    def install(train):
        module.train = train
        return module

    return install


def torch_path(exp, prob, lrs, offsets):
    return engine.train_chunk(exp, prob, lrs, offsets, backend="torch")


def raises(exp, prob, lrs, offsets):
    raise RuntimeError("PTX for sm_42 failed to assemble")


def wrong(exp, prob, lrs, offsets):
    return -torch_path(exp, prob, lrs, offsets)


@pytest.mark.parametrize("train, reason", [(raises, "PTX for sm_42"), (wrong, "disagree")])
def test_a_failing_kernel_falls_back_with_one_warning_and_the_torch_paths_scores(fake_kernel, train, reason):
    fake_kernel(train)
    with pytest.warns(UserWarning) as caught:
        scores = zoomer.landscape(EXP, WINDOW, (5, 5), backend="auto")
        assert kernels.find("auto", EXP, CPU, torch.float64) is None
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "fake kernel" in messages[0] and reason in messages[0], messages
    assert np.array_equal(scores, zoomer.landscape(EXP, WINDOW, (5, 5), backend="torch"))


def test_a_kernel_that_agrees_is_used(fake_kernel):
    module = fake_kernel(torch_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert kernels.find("auto", EXP, CPU, torch.float64) is module.train


def test_a_named_kernel_is_not_probed_and_its_errors_surface(fake_kernel):
    fake_kernel(raises)
    with pytest.raises(RuntimeError, match="sm_42"):
        zoomer.landscape(EXP, WINDOW, (3, 3), backend="fake")

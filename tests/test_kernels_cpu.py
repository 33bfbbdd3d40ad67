"""The compiled CPU kernel against the slow reference and the torch path, and its promises."""
import dataclasses
import os
import shutil
import warnings

import numpy as np
import pytest
import torch

import zoomer
from zoomer import engine, kernels
from zoomer.kernels import cpu, cpu_perturbation
from zoomer.reference import reference_grid

from conftest import ENGINE_CASES as CASES, agreement

CPU = torch.device("cpu")
built = cpu.supports(zoomer.Experiment(), CPU, torch.float64)
needs_kernel = pytest.mark.skipif(not built, reason="the CPU kernel could not be built here")
LOSS_CASES = sorted(name for name, (kw, _) in CASES.items() if kw.get("readout") != "probe_point")
STEPS = 30


@pytest.fixture(autouse=True)
def one_thread():
    """torch's intra-op threads stall when the machine is oversubscribed (shared CI runners
    often are), which made the reference and torch-path comparisons here take minutes; one
    thread does not. The kernel follows torch's thread count (two threads: see below)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def grid_scores(exp, bounds, size, backend, dtype=torch.float64):
    """Scores (H, W) of a window from the engine with this backend, or from the reference."""
    window = zoomer.Window.from_bounds(*bounds)
    if backend == "reference":
        return reference_grid(exp, *window.grid(size)).reshape(size)
    return zoomer.landscape(exp, window, size, dtype=dtype, backend=backend)


def case_scores(case, size, backend):
    kw, bounds = CASES[case]
    return grid_scores(zoomer.Experiment(steps=STEPS, **kw), bounds, size, backend)


def assert_same_scores(fast, slow):
    same, med = agreement(fast, slow)
    assert same >= 0.99 and med <= 1e-9, (same, med)


@needs_kernel
@pytest.mark.parametrize("case", LOSS_CASES)
def test_kernel_matches_reference(case):
    """Against the one-run-at-a-time autograd reference (slow: a few pixels per case)."""
    assert_same_scores(case_scores(case, (4, 4), "cpu"), case_scores(case, (4, 4), "reference"))


@needs_kernel
@pytest.mark.parametrize("case", LOSS_CASES)
def test_kernel_matches_torch_path(case):
    """Against the batched torch path (itself held to the reference) on a bigger grid."""
    fast = case_scores(case, (10, 10), "cpu")
    assert_same_scores(fast, case_scores(case, (10, 10), "torch"))
    assert (fast < 0).any() and (fast > 0).any(), "case should straddle the boundary"


@needs_kernel
def test_runs_that_die_early_score_as_in_the_torch_path():
    exp = zoomer.Experiment(steps=STEPS)
    bounds = ((-1.0, 6.0), (-1.0, 4.0))  # many runs overflow within a few steps
    fast = grid_scores(exp, bounds, (10, 10), "cpu")
    slow = grid_scores(exp, bounds, (10, 10), "torch")
    assert ((fast > 0) & (fast < STEPS)).any(), "some runs must die early for this test to bite"
    assert_same_scores(fast, slow)
    overflow = grid_scores(zoomer.Experiment(steps=30), ((20.0, 40.0), (20.0, 40.0)), (4, 4), "cpu")
    assert np.isfinite(overflow).all() and (overflow > 0).all()


@needs_kernel
def test_float32_tells_the_same_story():
    kw, bounds = CASES["tanh"]
    exp = zoomer.Experiment(steps=STEPS, **kw)
    single = grid_scores(exp, bounds, (16, 16), "cpu", torch.float32)
    double = grid_scores(exp, bounds, (16, 16), "cpu")
    assert np.isfinite(single).all()
    assert np.mean(np.sign(single) == np.sign(double)) >= 0.95
    same, med = agreement(single, double)
    assert med <= 1e-3, med


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_tanh_is_within_a_few_ulps_of_torch(dtype):
    """Its largest relative error, in eps: the kernel's tanh is within ~1.8 ulp of the true
    value (measured against long double), torch's within ~0.8."""
    x = torch.cat([torch.linspace(-25, 25, 200_001), torch.logspace(-30, 1.3, 20_001)]).to(dtype)
    x = torch.cat([x, -x])
    ours, torchs = cpu.tanh(x), torch.tanh(x)
    error = (ours - torchs).abs() / torchs.abs().clamp_min(torch.finfo(dtype).tiny)
    assert error.max() <= 2.5 * torch.finfo(dtype).eps, (error.max(), x[error.argmax()])
    special = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1e-310]).to(dtype)
    got = cpu.tanh(special)
    assert torch.isnan(got[0]) and got[1] == 1 and got[2] == -1
    assert torch.equal(got[3:].sign(), special[3:].sign()) and torch.signbit(got[4])
    assert got[5] == special[5]


@needs_kernel
@pytest.mark.parametrize("kw", [{}, {"batch_size": 16}], ids=["full_batch", "minibatch"])
def test_scores_are_bit_identical_whatever_the_chunking_and_threads(kw):
    """Each lane starts the next run as soon as its own ends (in lockstep for minibatches),
    so which runs share a call, a lane or a thread must not change a bit of any score."""
    exp = zoomer.Experiment(steps=STEPS, **kw)
    prob = exp.problem()
    gx, gy = zoomer.Window.from_bounds((-1.0, 6.0), (-1.0, 4.0)).grid((9, 9))
    lrs, offsets = exp.hparams(torch.from_numpy(gx), torch.from_numpy(gy))
    whole = cpu.train(exp, prob, lrs, offsets)
    assert (whole < 0).any() and (whole > 0).any()  # runs that end early beside runs that do not
    assert torch.equal(whole, cpu.train(exp, prob, lrs, offsets))
    pieces = [cpu.train(exp, prob, lrs[i : i + 7], offsets[i : i + 7]) for i in range(0, 81, 7)]
    assert torch.equal(whole, torch.cat(pieces))
    alone = [cpu.train(exp, prob, lrs[i : i + 1], offsets[i : i + 1]) for i in range(0, 81, 10)]
    assert torch.equal(whole[::10], torch.cat(alone))
    torch.set_num_threads(2)
    assert torch.equal(whole, cpu.train(exp, prob, lrs, offsets))


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("kw", [{}, {"depth": 3}, {"target_dim": 2}], ids=["paper", "depth_3", "two_targets"])
def test_a_saturated_run_trains_its_output_layer_alone_to_the_same_bits(kw, dtype):
    """Once every tanh unit of a run is exactly +-1 its hidden layers can no longer move,
    and the kernel trains its output layer alone (cpu_kernel.c, Frozen): every running sum
    must keep every bit of training all layers, and runs must go that way for it to bite."""
    exp = zoomer.Experiment(steps=300, **kw)
    prob = exp.problem().to(dtype=dtype)
    gx, gy = zoomer.Window.from_bounds((-1.0, 6.0), (-1.0, 4.0)).grid((8, 8))  # many overflow
    lrs, offsets = exp.hparams(torch.from_numpy(gx), torch.from_numpy(gy))
    frozen_at = torch.empty(64, dtype=torch.int64)
    fast = cpu.running_sums(exp, prob, lrs, offsets, frozen_at=frozen_at)
    slow = cpu.running_sums(exp, prob, lrs, offsets, freeze=False)
    for name in slow:
        assert torch.equal(fast[name].view(torch.int8), slow[name].view(torch.int8)), name
    frozen = frozen_at < exp.steps
    assert frozen.sum() >= 4, frozen_at
    assert (frozen_at[frozen] <= slow["dead_at"][frozen]).all()
    assert (zoomer.score.finish(exp.steps, **slow)[frozen] > 0).all()  # saturated runs diverge


@needs_kernel
def test_a_saturated_run_whose_output_overflows_into_its_hidden_layers_dies_as_before():
    """delta_out w_out^T can overflow while the loss is still finite, when huge output
    weights cancel: inf * (1 - h^2) = NaN then reaches the hidden layers, and the next loss
    is NaN. Units 0 and 1 here have the same activations (one input column twice, scaled
    to saturate every row) and output weights +-1e300; the output rates sweep so that the
    overflow comes before the kernel first looks for saturated runs, as it looks, or after,
    with the run in a Frozen group."""
    exp = zoomer.Experiment(steps=200)
    prob = exp.problem()
    w0, w_out = (w.clone() for w in prob.weights)
    w0 *= 1e6
    w0[:, 1] = w0[:, 0]
    w_out[0], w_out[1] = 1e300, -1e300
    prob = dataclasses.replace(prob, weights=(w0, w_out))
    lrs, offsets = exp.hparams(torch.full((48,), 0.5), torch.linspace(2.5, 5.0, 48, dtype=torch.float64))
    frozen_at = torch.empty(48, dtype=torch.int64)
    fast = cpu.running_sums(exp, prob, lrs, offsets, frozen_at=frozen_at)
    slow = cpu.running_sums(exp, prob, lrs, offsets, freeze=False)
    for name in slow:
        assert torch.equal(fast[name].view(torch.int8), slow[name].view(torch.int8)), name
    dead_at = slow["dead_at"]
    assert (dead_at < 30).all(), dead_at  # every run overflows
    assert (frozen_at < dead_at).sum() >= 4, frozen_at  # frozen, then dead there
    assert (frozen_at == exp.steps).sum() >= 4, frozen_at  # dead before it could be frozen


@needs_kernel
def test_the_block_of_data_rows_changes_no_bit_even_when_changed_in_a_running_process(monkeypatch):
    """cpu.ROWS sets both the zero padding of the data and the kernel build that reads it
    in blocks; a library cached for another block size would read the padding wrong."""
    exp = zoomer.Experiment(steps=STEPS)
    prob = exp.problem()
    gx, gy = zoomer.Window.from_bounds((-1.0, 6.0), (-1.0, 4.0)).grid((4, 4))
    lrs, offsets = exp.hparams(torch.from_numpy(gx), torch.from_numpy(gy))
    before = cpu.train(exp, prob, lrs, offsets)
    monkeypatch.setattr(cpu, "ROWS", 8)
    assert torch.equal(before, cpu.train(exp, prob, lrs, offsets))


@pytest.mark.skipif(shutil.which(os.environ.get("CC", "gcc")) is None, reason="no C compiler here")
def test_every_compiled_kernel_builds_where_there_is_a_compiler():
    """Their tests skip where a kernel cannot be built, so a kernel broken at the source
    would pass unseen: with a compiler at hand, each must build (its error shows here)."""
    exp = zoomer.Experiment()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the build's warning, with the compiler's message
        assert cpu.supports(exp, CPU, torch.float64) and cpu.supports(exp, CPU, torch.float32)
        assert cpu_perturbation.supports(exp, CPU)


@needs_kernel
@pytest.mark.parametrize("backend", ["torch", "cpu"])
def test_an_empty_chunk_gives_no_scores(backend):
    """No run to train is a chunk like any other (the kernel's idle lanes copy the first
    run, and once crashed the process when there was none)."""
    exp = zoomer.Experiment(steps=20)
    lrs, offsets = torch.empty(0, 2, dtype=torch.float64), torch.empty(0, dtype=torch.float64)
    scores = engine.train_chunk(exp, exp.problem(), lrs, offsets, backend=backend)
    assert scores.shape == (0,)


@needs_kernel
def test_auto_picks_the_kernel_on_the_cpu_and_only_where_it_can():
    exp = zoomer.Experiment()
    assert kernels.find("auto", exp, CPU, torch.float64) is cpu.train
    assert kernels.find("torch", exp, CPU, torch.float64) is None
    probe = zoomer.Experiment(readout="probe_point")
    assert kernels.find("auto", probe, CPU, torch.float64) is None
    with pytest.raises(ValueError, match="backend='cpu'"):
        kernels.find("cpu", probe, CPU, torch.float64)
    assert not cpu.supports(exp, torch.device("cuda"), torch.float64)


@pytest.fixture
def no_compiler(monkeypatch, tmp_path):
    """The kernel as it is on a machine without a C compiler."""
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("ZOOMER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(cpu, "_warned", False)
    cpu._library.cache_clear()
    yield
    cpu._library.cache_clear()


def test_without_a_compiler_the_torch_path_trains_instead(no_compiler):
    exp = zoomer.Experiment(steps=20)
    with pytest.warns(UserWarning, match="could not be built"):
        assert not cpu.supports(exp, CPU, torch.float64)
    assert kernels.find("auto", exp, CPU, torch.float64) is None
    s = zoomer.landscape(exp, zoomer.Window.from_bounds((-1.0, 1.0), (-1.0, 1.0)), (2, 2))
    assert np.isfinite(s).all()


@pytest.fixture
def fresh_cache(monkeypatch, tmp_path):
    """An empty kernel cache, and nothing built in this process yet."""
    monkeypatch.setenv("ZOOMER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(cpu, "_warned", False)
    cpu._library.cache_clear()
    yield tmp_path / "cache"
    cpu._library.cache_clear()


def library_in(cache):
    (so,) = cache.glob("cpu_kernel_*.so")
    return so


@pytest.mark.slow
@needs_kernel
def test_a_tampered_or_stale_cached_kernel_is_rebuilt(fresh_cache):
    exp = zoomer.Experiment(steps=20, width=8)
    window = zoomer.Window.from_bounds((-1.0, 6.0), (-1.0, 4.0))
    good = grid_scores(exp, ((-1.0, 6.0), (-1.0, 4.0)), (4, 4), "cpu")
    so = library_in(fresh_cache)
    built = so.read_bytes()
    assert cpu.cache_dir() == fresh_cache
    so.unlink()  # a new file: this process has the old one mapped, and must keep it intact
    so.write_bytes(built[:1000] + b"\x90" * 64 + built[1064:])  # same size, other code
    cpu._library.cache_clear()
    assert np.array_equal(zoomer.landscape(exp, window, (4, 4), backend="cpu"), good)
    assert library_in(fresh_cache).read_bytes() == built
    record = so.with_suffix(".json")
    record.write_text(record.read_text().replace('"compiler": "', '"compiler": "an older '))
    cpu._library.cache_clear()
    assert np.array_equal(zoomer.landscape(exp, window, (4, 4), backend="cpu"), good)
    assert "an older" not in record.read_text()


def test_without_its_source_the_kernel_warns_once_and_the_torch_path_trains(fresh_cache, monkeypatch, tmp_path):
    monkeypatch.setattr(cpu, "SOURCE", tmp_path / "cpu_kernel.c")
    exp = zoomer.Experiment(steps=20)
    with pytest.warns(UserWarning, match="could not be built.*cpu_kernel.c"):
        assert not cpu.supports(exp, CPU, torch.float64)
    assert kernels.find("auto", exp, CPU, torch.float64) is None

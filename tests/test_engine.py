"""The batched engine against the slow reference, and the engine's promises."""
import numpy as np
import pytest
import torch

import zoomer
from zoomer import engine
from zoomer.errors import Refusal

STEPS = 30  # past the score's 20-step tail, so the tail is not the whole history


@pytest.mark.slow
def test_batched_engine_matches_reference(engine_case, assert_matches_reference):
    _, kw, window = engine_case
    exp = zoomer.Experiment(steps=STEPS, **kw)
    fast = zoomer.landscape(exp, window, size=(10, 10), backend="torch")
    if exp.readout == "loss":
        assert (fast < 0).any() and (fast > 0).any(), "case should straddle the boundary"
    assert_matches_reference(exp, window, fast)


def test_scores_are_finite_even_when_runs_overflow():
    exp = zoomer.Experiment(steps=30)
    s = zoomer.landscape(exp, zoomer.Window.from_bounds((20.0, 40.0), (20.0, 40.0)), (4, 4))
    assert np.isfinite(s).all() and (s > 0).all()


def test_same_config_gives_identical_scores():
    exp = zoomer.Experiment(steps=30)
    win = zoomer.Window.from_bounds((-1.0, 5.0), (-1.0, 2.5))
    a = zoomer.landscape(exp, win, (12, 12))
    b = zoomer.landscape(zoomer.Experiment(steps=30), win, (12, 12))
    assert np.array_equal(a, b)


def test_compaction_gives_identical_results_to_dense():
    exp = zoomer.Experiment(steps=40)
    prob = exp.problem()
    gx, gy = zoomer.Window.from_bounds((-1.0, 6.0), (-1.0, 4.0)).grid((12, 12))
    lrs, off = exp.hparams(torch.from_numpy(gx), torch.from_numpy(gy))
    dense = engine.train_chunk(exp, prob, lrs, off, compact=False, backend="torch")
    compact = engine.train_chunk(exp, prob, lrs, off, compact=True, backend="torch")
    assert ((dense > 0) & (dense < 40)).any(), "some runs must die early for this test to bite"
    assert torch.equal(dense, compact)


@pytest.fixture
def one_thread():
    """The torch path's many small elementwise ops stall on an oversubscribed CI runner with
    two threads; its results do not depend on the thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("backend", ["torch", "auto"])
@pytest.mark.parametrize("kw", [dict(), dict(batch_size=16)], ids=["full_batch", "minibatch"])
def test_a_run_gives_the_same_bits_alone_and_in_a_chunk_of_hundreds(backend, kw, monkeypatch, one_thread):
    """Batch invariance: reuse, resume, shards and guessing are exact only if a run's score
    does not depend on which runs share its chunk, nor on how many."""
    monkeypatch.setattr(engine, "CPU_WORKING_SET", float("inf"))  # one chunk of all 300 runs
    exp = zoomer.Experiment(steps=20, **kw)
    x, y = zoomer.Window.from_bounds((-1.0, 5.0), (-1.0, 3.0)).grid((15, 20))
    assert engine.chunk_size(exp, x.size, torch.device("cpu"), torch.float64) >= x.size
    chunk = zoomer.train_grid(exp, x, y, backend=backend)
    assert (chunk < 0).any() and ((chunk > 0) & (chunk < 20)).any(), "runs that die beside runs that converge"
    picks = range(0, x.size, 37)
    alone = [zoomer.train_grid(exp, x[i : i + 1], y[i : i + 1], backend=backend)[0] for i in picks]
    assert np.array_equal(chunk[list(picks)], alone)
    assert np.array_equal(chunk[5:12], zoomer.train_grid(exp, x[5:12], y[5:12], backend=backend))


def test_learning_rates_are_the_same_bits_alone_and_in_a_batch():
    """torch's vectorised pow and its scalar tail differ in the last bit; rates must not."""
    exp = zoomer.Experiment()
    x = torch.linspace(-3.0, 6.0, 1003, dtype=torch.float64)
    lrs = exp.hparams(x, x.flip(0))[0]
    alone = torch.cat([exp.hparams(x[i : i + 1], x.flip(0)[i : i + 1])[0] for i in range(x.numel())])
    assert torch.equal(lrs, alone)


def test_elementwise_ops_give_the_same_bits_in_vector_body_and_scalar_tail():
    """The torch path's batch invariance rests on torch computing each element of tanh, relu,
    multiply and add the same wherever it sits (a vector body, a scalar tail, alone)."""
    gen = torch.Generator().manual_seed(0)
    for dtype in (torch.float64, torch.float32):
        a, b = 3 * torch.randn(2, 1003, generator=gen, dtype=dtype)
        for op in (lambda a, b: torch.tanh(a), lambda a, b: torch.relu(a), lambda a, b: a * b + b):
            whole = op(a, b)
            assert all(torch.equal(whole[i : i + 1], op(a[i : i + 1], b[i : i + 1])) for i in range(0, 1003, 7))


def test_minibatch_is_deterministic_and_differs_from_full_batch():
    win = zoomer.Window.from_bounds((-1.0, 5.0), (-1.0, 2.5))
    mini = zoomer.Experiment(steps=30, batch_size=16)
    a = zoomer.landscape(mini, win, (8, 8))
    b = zoomer.landscape(zoomer.Experiment(steps=30, batch_size=16), win, (8, 8))
    full = zoomer.landscape(zoomer.Experiment(steps=30), win, (8, 8))
    assert np.array_equal(a, b)
    assert not np.allclose(a, full)


def test_row_zero_is_lowest_y():
    """Raising only the output-layer rate (y) far enough diverges: at the top, not the bottom."""
    exp = zoomer.Experiment(steps=30)
    s = zoomer.landscape(exp, zoomer.Window.from_bounds((-1.0, 1.0), (-2.0, 4.0)), (8, 3))
    assert (s[0] < 0).all() and (s[-1] > 0).all()
    xs, ys = zoomer.Window.from_bounds((0.0, 1.0), (2.0, 5.0)).axes((4, 3))
    assert np.array_equal(xs, np.linspace(0, 1, 3)) and np.array_equal(ys, np.linspace(2, 5, 4))


def test_problem_is_reproducible_and_shaped_like_the_paper():
    exp = zoomer.Experiment()
    p, q = exp.problem(), zoomer.Experiment().problem()
    assert exp.n_params == 272 and p.X.shape == (272, 16) and p.Y.shape == (272, 1)
    assert [w.shape for w in p.weights] == [(16, 16), (16, 1)]
    assert torch.equal(p.X, q.X) and all(torch.equal(a, b) for a, b in zip(p.weights, q.weights))
    assert zoomer.Experiment(nonlinearity="identity").dataset_size == 16
    assert zoomer.Experiment(n_data=1).problem().X.shape == (1, 16)
    assert zoomer.Experiment(target_dim=2).dataset_size == (256 + 32) // 2


def test_each_problem_is_its_own_copy_of_the_draws_drawn_once():
    """The draws are kept per process (they take ~30 ms of pure Python); a caller that
    changes its problem's tensors in place changes nobody else's."""
    exp = zoomer.Experiment(batch_size=4, steps=20)
    first = exp.problem()
    tensors = lambda p: (p.X, p.Y, *p.weights, p.probe, p.batches)  # noqa: E731
    kept = [t.clone() for t in tensors(first)]
    for t in tensors(first):
        t.add_(1)
    assert all(torch.equal(a, b) for a, b in zip(tensors(exp.problem()), kept))


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(width=0), "width"),
        (dict(nonlinearity="sigmoid"), "nonlinearity"),
        (dict(steps=10), "steps"),
        (dict(depth=1), "depth"),
        (dict(phase_space="lr"), "phase_space"),
        (dict(offset="sometimes"), "offset"),
        (dict(readout="acc"), "readout"),
        (dict(batch_size=0), "batch_size"),
    ],
)
def test_bad_experiment_settings_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        zoomer.Experiment(**kwargs)


def test_bad_windows_and_sizes_are_refused_before_compute():
    with pytest.raises(ValueError, match="x0 < x1"):
        zoomer.Window.from_bounds((1.0, 1.0), (0.0, 1.0))
    with pytest.raises(ValueError, match="y0 < y1"):
        zoomer.Window.from_bounds((0.0, 1.0), (2.0, 1.0))
    win = zoomer.Window.from_bounds((0.0, 1.0), (0.0, 1.0))
    with pytest.raises(ValueError, match="size"):
        zoomer.landscape(zoomer.Experiment(), win, size=(0, 4))
    with pytest.raises(ValueError, match="too deep"):
        zoomer.landscape(zoomer.Experiment(), zoomer.Window(1.0, 1.0, 1e-17, 1e-17), size=(8, 8))
    with pytest.raises(ValueError, match="dtype"):
        zoomer.landscape(zoomer.Experiment(), win, size=(2, 2), dtype="float16")
    with pytest.raises(ValueError, match="backend"):
        zoomer.landscape(zoomer.Experiment(), win, size=(2, 2), backend="cobol")


def test_a_run_too_big_for_memory_is_refused(monkeypatch):
    monkeypatch.setattr(engine, "free_memory", lambda device: 1000)
    with pytest.raises(Refusal, match="width"):
        zoomer.landscape(zoomer.Experiment(), zoomer.Window.from_bounds((0, 1), (0, 1)), (2, 2))


def test_chunks_are_sized_from_free_memory(monkeypatch):
    exp = zoomer.Experiment()
    per_run = engine.bytes_per_run(exp, torch.float64)
    monkeypatch.setattr(engine, "free_memory", lambda device: 40 * per_run / engine.MEMORY_SHARE)
    monkeypatch.setattr(engine, "CPU_WORKING_SET", float("inf"))
    assert engine.chunk_size(exp, 10_000, torch.device("cpu"), torch.float64) == 32
    assert engine.chunk_size(exp, 5, torch.device("cpu"), torch.float64) == 8


def test_out_of_gpu_memory_halves_the_chunk_and_retries(monkeypatch, caplog):
    real = engine.train_chunk
    sizes = []

    def flaky(exp, prob, lrs, *args):
        sizes.append(lrs.shape[0])
        if lrs.shape[0] > 4:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(exp, prob, lrs, *args)

    monkeypatch.setattr(engine, "train_chunk", flaky)
    monkeypatch.setattr(engine, "chunk_size", lambda *a: 16)
    exp = zoomer.Experiment(steps=20)
    win = zoomer.Window.from_bounds((-1.0, 5.0), (-1.0, 2.5))
    with caplog.at_level("WARNING"):
        s = zoomer.landscape(exp, win, (4, 5))
    monkeypatch.setattr(engine, "train_chunk", real)
    assert np.array_equal(s, zoomer.landscape(exp, win, (4, 5)))
    assert sizes[:3] == [16, 8, 4] and "halved" in caplog.text


def test_score_definition_caps_and_never_overflows():
    from zoomer.score import CAP, score_from_losses

    converging = torch.tensor([4.0, 2.0, 1.0] + [0.5] * 20, dtype=torch.float64)
    assert score_from_losses(converging) == pytest.approx(-(1 + 0.5 + 0.25 + 20 * 0.125))
    blown = torch.tensor([1.0, 10.0, float("inf")] + [1.0] * 20, dtype=torch.float64)
    # non-finite once, non-finite for good: every later loss counts as the cap
    assert score_from_losses(blown) == pytest.approx(1 + 0.1 + 21 / CAP)
    underflow = torch.tensor([1.0, 1e3] + [0.0] * 21 + [1e9], dtype=torch.float32)
    assert torch.isfinite(score_from_losses(underflow))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tanh", "relu", "identity", "minibatch", "single_datapoint", "paraminit"])
def test_each_paper_condition_default_window_holds_both_classes(name, compose_config):
    cfg = compose_config("config", f"experiment={name}")
    exp = zoomer.Experiment.from_config(cfg.experiment)
    win = zoomer.Window.from_bounds(tuple(cfg.experiment.window.x), tuple(cfg.experiment.window.y))
    s = zoomer.landscape(exp, win, (64, 64))
    assert (s < 0).mean() > 0.05 and (s > 0).mean() > 0.05, (s < 0).mean()

"""The perturbation engine against direct training in 50 digits (mpmath) and zoomer's float64
engine, on tiny nets (width 4, 4 datapoints, 20 steps) near each condition's boundary.

What is compared: the reference's final weights (to 1e-25), and per pixel: the score (relative 1e-9), the class wherever the exact run's
tail mean is further than 1e-9 from the threshold (closer, the float64 score cannot
decide it at all), and the final weight difference from the reference run, W - W_ref
(relative 1e-6 in norm): the quantity that float64 itself cannot hold past ~13 decades.
"""
from __future__ import annotations

from decimal import Decimal

import mpmath
import numpy as np
import pytest
import torch

import zoomer
from zoomer import perturbation
from zoomer.engine import train_grid
from zoomer.errors import Refusal
from zoomer.experiment import Experiment
from zoomer.perturbation import DD, ReferenceRun, pixel_hparams, reference_hparams, render, train_perturbed
from zoomer.kernels import cpu_perturbation
from zoomer.score import CAP, TAIL

SMALL = dict(width=4, n_data=4, steps=20)
# Each condition with a centre near its boundary (found by bisection in float64) and
# digits past float64's, so the decimal coordinates matter.
CONDITIONS = {
    "tanh": (dict(), "1.76162864370136260000000000000123", "0"),
    "relu": (dict(nonlinearity="relu"), "0.83412447348416650000000000000456", "0"),
    "identity": (dict(nonlinearity="identity"), "0.38434007395194960000000000000789", "0"),
    "minibatch": (dict(batch_size=2), "1.97553446421835000000000000000123", "0"),
    "single_datapoint": (dict(n_data=1), "0.05131623905160155600000000000321", "1"),
    "paraminit_at_init": (dict(phase_space="paraminit_vs_lr"), "0", "0.75000000000000000000000000000654"),
    "paraminit_every_step": (dict(phase_space="paraminit_vs_lr", offset="every_step"),
                             "0", "0.70000000000000000000000000000987"),
    "depth3": (dict(depth=3), "0.99302260042831540000000000000111", "0"),
}
# Pixels of a frame `width` wide (log10 units), as fractions of it: corners and inside.
PIXELS = np.array([[0.5, -0.5], [-0.5, 0.5], [0.25, 0.1], [-0.3, -0.2]])


needs_kernel = pytest.mark.skipif(not cpu_perturbation.supports(Experiment(**SMALL), "cpu"),
                                  reason="the perturbation kernel does not build here")


@pytest.fixture(autouse=True)
def fresh_reference_runs(monkeypatch):
    """Each test trains its own reference runs: one kept from another test would skip the
    path (compiled or torch, agreeing or not) this one means to take."""
    monkeypatch.setattr(perturbation, "_RUNS", {})


def experiment(name: str) -> Experiment:
    return Experiment(**{**SMALL, **CONDITIONS[name][0]})


# ---- the oracle: the training loop restated in 50-digit mpmath ------------------------------
def exact_run(exp: Experiment, x: mpmath.mpf, y: mpmath.mpf):
    """(score, tail mean of v, final weights) of the run at axis coordinates (x, y)."""
    prob = exp.problem()
    X = [[mpmath.mpf(float(v)) for v in row] for row in prob.X]
    Y = [[mpmath.mpf(float(v)) for v in row] for row in prob.Y]
    W = [[[mpmath.mpf(float(v)) for v in row] for row in w] for w in prob.weights]
    if exp.phase_space == "lr_vs_lr":
        rates, offset = [10**x if i % 2 == 0 else 10**y for i in range(exp.depth)], 0
    else:
        rates, offset = [10**y] * exp.depth, 10**x
    act, dact = {
        "tanh": (lambda z: mpmath.tanh(mpmath.sqrt(2) * z), lambda z: mpmath.sqrt(2) / mpmath.cosh(mpmath.sqrt(2) * z) ** 2),
        "relu": (lambda z: mpmath.sqrt(2) * max(z, 0), lambda z: mpmath.sqrt(2) if z > 0 else 0),
        "identity": (lambda z: z, lambda z: 1),
    }[exp.nonlinearity]

    def matmul(a, b):
        return [[mpmath.fdot(row, col) for col in zip(*b)] for row in a]

    def forward(xs):
        hs, zs = [xs], []
        for i, w in enumerate(W):
            z = [[v / mpmath.sqrt(len(w)) for v in row] for row in matmul(hs[-1], w)]
            zs.append(z)
            if i < len(W) - 1:
                hs.append([[act(v) for v in row] for row in z])
        out = [[v / mpmath.sqrt(len(W[-1])) for v in row] for row in zs[-1]]
        return hs, zs, out

    def mse(out, ys):
        return mpmath.fsum((o - t) ** 2 for ro, rt in zip(out, ys) for o, t in zip(ro, rt)) / (len(ys) * len(ys[0]))

    losses = []
    for t in range(exp.steps):
        if t == 0 or exp.offset_every_step:
            W[0] = [[v + offset for v in row] for row in W[0]]
        losses.append(mse(forward(X)[2], Y))
        rows = range(len(X)) if prob.batches is None else prob.batches[t].tolist()
        xs, ys = [X[k] for k in rows], [Y[k] for k in rows]
        hs, zs, out = forward(xs)
        count = len(ys) * len(ys[0])
        # dL/dz of the last layer (z scaled by 1/sqrt(fan_in), out = z / sqrt(fan_in))
        g = [[2 * (o - t) / count / mpmath.sqrt(len(W[-1])) for o, t in zip(ro, rt)] for ro, rt in zip(out, ys)]
        grads = [None] * len(W)
        for i in range(len(W) - 1, -1, -1):
            s = 1 / mpmath.sqrt(len(W[i]))
            grads[i] = [[v * s for v in row] for row in matmul(list(zip(*hs[i])), g)]
            if i:
                back = matmul(g, [list(r) for r in zip(*W[i])])
                g = [[b * s * dact(z) for b, z in zip(rb, rz)] for rb, rz in zip(back, zs[i - 1])]
        W = [[[w - rate * d for w, d in zip(rw, rd)] for rw, rd in zip(wl, gl)]
             for wl, gl, rate in zip(W, grads, rates)]
    v = [min(l / losses[0], CAP) for l in losses]
    tail = mpmath.fsum(v[-TAIL:]) / TAIL
    score = -mpmath.fsum(v) if tail < 1 else mpmath.fsum(1 / max(u, 1 / mpmath.mpf(CAP)) for u in v)
    return float(score), tail, W


@pytest.fixture(scope="module")
def exact():
    """exact(name, x, y) with memory: the reference run is shared by every depth."""
    cache = {}

    def run(name, x, y):
        key = (name, x, y)
        if key not in cache:
            with mpmath.workdps(50):
                cache[key] = exact_run(experiment(name), x, y)
        return cache[key]

    return run


def check_depth(name: str, decades: int, exact, device: str = "cpu") -> None:
    exp = experiment(name)
    cx, cy = CONDITIONS[name][1:]
    width = 10.0**-decades
    offsets = torch.tensor(PIXELS * width, device=device)
    run = ReferenceRun(exp, exp.problem().to(device), *reference_hparams(exp, cx, cy, device))
    out = train_perturbed(run, *pixel_hparams(exp, run.lrs, run.offset, offsets[:, 0], offsets[:, 1]))
    offsets = offsets.cpu().numpy()
    assert not out.glitched.any()
    with mpmath.workdps(50):
        x0, y0 = mpmath.mpf(cx), mpmath.mpf(cy)
        _, _, W_ref = exact(name, x0, y0)
        for got, want in zip(out.reference, W_ref):  # the double-double run itself
            for g, w in zip(got.decimals().ravel(), (v for row in want for v in row)):
                assert abs(mpmath.mpf(str(g)) - w) <= 1e-25 * (1 + abs(w)), (name, decades)
        for k, (ox, oy) in enumerate(offsets):
            score, tail, W = exact(name, x0 + mpmath.mpf(ox), y0 + mpmath.mpf(oy))
            assert float(out.scores[k]) == pytest.approx(score, rel=1e-9), (name, decades, k, device)
            if abs(tail - 1) > 1e-9:
                assert (float(out.scores[k]) < 0) == (tail < 1), (name, decades, k)
            for layer, (w, w_ref) in enumerate(zip(W, W_ref)):
                want = np.array([[float(a - b) for a, b in zip(ra, rb)] for ra, rb in zip(w, w_ref)])
                got = out.deltas[layer][k].cpu().numpy()
                err = np.linalg.norm(got - want) / np.linalg.norm(want)
                assert err < 1e-6, (name, decades, k, layer, err)


@pytest.fixture(params=["kernel", "torch"])
def path(request, monkeypatch):
    """Each way of training the reference and stepping the pixels: compiled for the CPU,
    and torch (CUDA, deeper nets, a CPU without a compiler)."""
    if request.param == "kernel":
        if not cpu_perturbation.supports(experiment("tanh"), "cpu"):
            pytest.skip("the perturbation kernel does not build here")
    else:
        monkeypatch.setattr(cpu_perturbation, "supports", lambda *args: False)
    return request.param


@pytest.mark.parametrize("decades", [13, 30])
@pytest.mark.parametrize("name", ["tanh", "relu", "minibatch", "paraminit_every_step"])
def test_matches_50_digit_training(name, decades, exact, path):
    check_depth(name, decades, exact)


@pytest.mark.slow
@pytest.mark.parametrize("decades", [5, 13, 20, 30])
@pytest.mark.parametrize("name", list(CONDITIONS))
def test_matches_50_digit_training_every_condition(name, decades, exact):
    check_depth(name, decades, exact)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("decades", [13, 30])
@pytest.mark.parametrize("name", list(CONDITIONS))
def test_matches_50_digit_training_on_cuda(name, decades, exact):
    """Perturbation's torch path on a GPU: the reference and the pixels as CUDA tensors."""
    check_depth(name, decades, exact, device="cuda")


@pytest.mark.parametrize("decades", [2, 10])
@pytest.mark.parametrize("name", list(CONDITIONS))
def test_matches_float64_engine_to_10_decades(name, decades):
    """Where float64 holds the pixels apart, the two engines give the same frame (the
    pixels taken 5 at a time, so chunks share the reference's steps)."""
    exp = experiment(name)
    cx, cy = CONDITIONS[name][1:]
    g = np.linspace(-0.5, 0.5, 4) * 10.0**-decades
    dx, dy = (a.ravel() for a in np.meshgrid(g, g))
    got = render(exp, (cx, cy), dx, dy, chunk=5)
    want = train_grid(exp, float(cx) + dx, float(cy) + dy, device="cpu")
    assert not got.glitched.any()
    np.testing.assert_allclose(got.scores, want, rtol=1e-6)


@needs_kernel
@pytest.mark.parametrize("name", ["tanh", "relu", "identity", "minibatch", "single_datapoint", "paraminit_at_init"])
def test_the_compiled_step_is_the_torch_step_where_differences_are_large(name):
    """One step from differences as large as the weights (tanh units saturating the other
    way, relu units across the kink, glitched pixels): the kernel's losses, glitch flags
    and stepped differences are torch's to rounding. A minibatch step trains on its rows
    and scores the loss on the full batch's."""
    exp = experiment(name)
    prob = exp.problem()
    lrs, offset = reference_hparams(exp, *CONDITIONS[name][1:])
    net = perturbation._Net(exp, "cpu")
    W = [DD.of(w) for w in prob.weights]
    W[0] = W[0] + offset
    full = net.forward(W, prob.X, prob.Y)
    ref_loss = full.loss
    step = full if prob.batches is None else net.forward(W, prob.X[prob.batches[0]], prob.Y[prob.batches[0]])
    generator = torch.Generator().manual_seed(0)
    B = 4 * 11  # a lane group's worth past whole ones on every vector width
    scale = torch.logspace(-12, 1.5, B, dtype=torch.float64)[:, None, None]
    dW = [torch.randn((B, *w.shape), generator=generator, dtype=torch.float64) * scale for w in prob.weights]
    for d, w in zip(dW, W):  # the reference ran away from this pixel: glitched
        d[-1] = -w.hi
    dlrs = torch.randn((B, 2), generator=generator, dtype=torch.float64) * lrs.hi * 1e-3
    want_loss, want_lost, want = perturbation._step(net, full, step, W, ref_loss, lrs, dlrs, dW)
    got = [d.clone() for d in dW]
    ref = perturbation._reference_step(net, full, step, W, ref_loss, lrs)
    got_loss, got_lost = cpu_perturbation.step(exp, ref, dlrs, got, perturbation.GLITCH_RATIO)
    assert torch.equal(got_lost, want_lost) and want_lost[-1]
    np.testing.assert_allclose(got_loss, want_loss, rtol=1e-12)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-13 * float(w.abs().max()))
    if name == "tanh":
        b = torch.matmul(prob.X, dW[0]) * net.gain[0].hi
        assert bool((1 + full.h[0].hi * torch.tanh(b) < 0.5).any()), "no unit took tanh's far form"


@needs_kernel
def test_a_kernel_that_disagrees_with_torch_is_set_aside(monkeypatch):
    """The kernel is checked against torch on its first step in a process; one that
    disagrees warns once, naming itself, and torch steps the pixels instead."""
    exp = experiment("tanh")
    cx, cy = CONDITIONS["tanh"][1:]
    dx, dy = PIXELS[:, 0] * 1e-14, PIXELS[:, 1] * 1e-14
    monkeypatch.setattr(perturbation, "_KERNEL_AGREES", {})
    right = render(exp, (cx, cy), dx, dy).scores
    assert perturbation._KERNEL_AGREES == {("tanh", exp.width, exp.target_dim, True): True}
    step = cpu_perturbation.step

    def off_by_a_little(exp, ref, dlrs, dW, ratio):
        loss, lost = step(exp, ref, dlrs, dW, ratio)
        dW[0] *= 1 + 1e-6
        return loss, lost

    monkeypatch.setattr(cpu_perturbation, "step", off_by_a_little)
    monkeypatch.setattr(perturbation, "_KERNEL_AGREES", {})
    monkeypatch.setattr(perturbation, "_RUNS", {})  # as in a new process: the reference trains again
    with pytest.warns(UserWarning, match="perturbation kernel disagrees"):
        got = render(exp, (cx, cy), dx, dy).scores
    np.testing.assert_allclose(got, right, rtol=1e-9)


@needs_kernel
def test_the_torch_backend_trains_perturbation_through_torch_and_says_so(monkeypatch):
    """engine.backend=torch is the torch path for perturbation frames too (the compiled
    kernel ran anyway), and what the store records names it: the two differ in last bits."""
    from zoomer import landscape
    from zoomer.engine import computed_by

    exp = experiment("tanh")
    cx, cy = CONDITIONS["tanh"][1:]
    window = zoomer.Window.around((cx, cy), 1e-14, 1.0)
    compiled = landscape(exp, window, (3, 3), dtype="perturbation")
    for name in ("step", "reference_pass"):
        monkeypatch.setattr(cpu_perturbation, name, lambda *a, **k: pytest.fail("the compiled kernel ran"))
    monkeypatch.setattr(perturbation, "_RUNS", {})
    through_torch = landscape(exp, window, (3, 3), dtype="perturbation", backend="torch")
    np.testing.assert_allclose(through_torch, compiled, rtol=1e-9)
    names = [computed_by(b, exp, torch.device("cpu"), ("perturbation",))["backend"]["perturbation"]
             for b in ("auto", "torch")]
    assert names == ["perturbation", "perturbation-torch"]


@needs_kernel
def test_a_pixels_compiled_run_does_not_depend_on_its_neighbours():
    """One SIMD lane per pixel: a pixel trained alone, or among others in any lane group,
    gives the same bits against the same reference. (A glitched pixel's repair depends on
    which reference its glitched neighbours choose; none glitch here.)"""
    exp = experiment("tanh")
    cx, cy = CONDITIONS["tanh"][1:]
    g = np.linspace(-0.5, 0.5, 3) * 1e-16
    dx, dy = (a.ravel() for a in np.meshgrid(g, g))
    frame = render(exp, (cx, cy), dx, dy)
    assert len(frame.references) == 1
    together = frame.scores
    alone = [render(exp, (cx, cy), dx[k:k + 1], dy[k:k + 1]).scores[0] for k in (0, 4, 8)]
    assert np.array_equal(together[[0, 4, 8]], alone)
    reordered = render(exp, (cx, cy), dx[::-1], dy[::-1]).scores[::-1]
    assert np.array_equal(together, reordered)


@needs_kernel
def test_the_compiled_reference_pass_is_the_same_on_any_number_of_threads():
    exp = experiment("tanh")
    prob = exp.problem()
    net = perturbation._Net(exp, "cpu")
    W = [DD.of(w) for w in prob.weights]
    threads = torch.get_num_threads()
    try:
        passes = []
        for n in (1, 3):
            torch.set_num_threads(n)
            passes.append(net._compiled_forward(W, prob.X, prob.Y))
    finally:
        torch.set_num_threads(threads)
    one, three = passes
    for name in ("p", "h", "s2", "slope", "g", "pre", "grads"):
        for a, b in zip(getattr(one, name), getattr(three, name)):
            if a is not None:
                assert torch.equal(a.hi, b.hi) and torch.equal(a.lo, b.lo), name
    assert torch.equal(one.loss.hi, three.loss.hi) and torch.equal(one.loss.lo, three.loss.lo)


@needs_kernel
def test_a_reference_pass_that_disagrees_with_torch_is_set_aside(monkeypatch):
    """The compiled reference pass is checked against the torch pass to 1e-28 the first
    time; one a few ulps of float64 off warns once, and the torch pass runs instead."""
    exp = experiment("relu")
    cx, cy = CONDITIONS["relu"][1:]
    dx, dy = PIXELS[:, 0] * 1e-20, PIXELS[:, 1] * 1e-20
    monkeypatch.setattr(perturbation, "_PASS_AGREES", {})
    right = render(exp, (cx, cy), dx, dy).scores
    compiled = cpu_perturbation.reference_pass

    def slightly_off(*args):
        out = compiled(*args)
        hi, lo = out["grad0"]
        return {**out, "grad0": (hi, lo + 1e-20 * hi)}

    monkeypatch.setattr(cpu_perturbation, "reference_pass", slightly_off)
    monkeypatch.setattr(perturbation, "_PASS_AGREES", {})
    monkeypatch.setattr(perturbation, "_RUNS", {})  # as in a new process: the reference trains again
    with pytest.warns(UserWarning, match="compiled reference pass disagrees"):
        got = render(exp, (cx, cy), dx, dy).scores
    np.testing.assert_allclose(got, right, rtol=1e-9)


def test_a_frames_passes_train_its_reference_once(monkeypatch):
    """Solid guessing trains a frame in passes, and a zoom's keyframes share their centre:
    the reference's steps are kept, so a later pass about the same centre trains only its
    pixels, to the same bits as one pass over all of them."""
    exp = experiment("tanh")
    cx, cy = CONDITIONS["tanh"][1:]
    g = np.linspace(-0.5, 0.5, 3) * 1e-16
    dx, dy = (a.ravel() for a in np.meshgrid(g, g))
    together = render(exp, (cx, cy), dx, dy).scores
    taken = []
    take_step = ReferenceRun._take_step
    monkeypatch.setattr(ReferenceRun, "_take_step", lambda run: taken.append(run) or take_step(run))
    passes = [render(exp, (cx, cy), dx[k], dy[k]).scores for k in (slice(0, 4), slice(4, None))]
    assert not taken and np.array_equal(np.concatenate(passes), together)
    render(exp, (cx, cy), dx[:1] + 1e-16, dy[:1])  # another frame about the same centre
    assert not taken
    render(exp, (cx, "0.00000000000000000000000000001"), dx[:1], dy[:1])  # another centre
    assert len(taken) == exp.steps
    monkeypatch.setattr(perturbation, "KEPT_BYTES", 0)  # a run too large to keep: each pass trains it
    taken.clear()
    again = [render(exp, (cx, cy), dx[k], dy[k]).scores for k in (slice(0, 4), slice(4, None))]
    assert len(taken) == 2 * exp.steps and np.array_equal(np.concatenate(again), together)


def test_a_diverging_reference_is_repaired():
    """A reference that diverges while its pixels converge glitches them; they are
    trained again from a reference among them and agree with the float64 engine."""
    exp = experiment("identity")
    # the boundary sits near x = 0.384: the centre's weights grow past 1e100, while the
    # left of the frame converges (its weights are then differences of those)
    cx, cy = "1.5", "0"
    dx = np.array([-1.3, -1.2, -1.0, -0.5, 0.0])
    dy = np.zeros_like(dx)
    want = train_grid(exp, 1.5 + dx, dy, device="cpu")
    assert want[-1] > 0 and (want < 0).sum() >= 2
    first = render(exp, (cx, cy), dx, dy, max_references=1)
    assert first.glitched[want < 0].all()
    got = render(exp, (cx, cy), dx, dy)
    assert len(got.references) > 1 and not got.glitched.any()
    np.testing.assert_allclose(got.scores, want, rtol=1e-6)


def test_a_repair_starts_from_the_glitched_pixel_closest_to_converging():
    """A reference that diverges glitches the pixels still training, those that converge
    and those that diverge later. The repair starts from the one whose loss had fallen
    lowest, which converges and carries every other that does: one repair. The glitched
    pixel nearest their middle (0.6) diverges itself, and starting there took two."""
    exp = experiment("identity")
    x = np.array([0.0, 0.2, 0.6, 0.65, 0.7, 0.8, 0.9])
    dx, dy = x - 1.5, np.zeros_like(x)
    want = train_grid(exp, x, dy, device="cpu")
    assert (want[:2] < 0).all() and (want[2:] > 0).all()
    assert render(exp, ("1.5", "0"), dx, dy, max_references=1).glitched.all()
    got = render(exp, ("1.5", "0"), dx, dy)
    assert [round(float(r[0]), 9) for r in got.references] == [1.5, 0.2] and not got.glitched.any()
    np.testing.assert_allclose(got.scores, want, rtol=1e-6)


def test_refuses_what_it_cannot_do():
    with pytest.raises(Refusal, match="engine.precision=perturbation"):
        render(experiment("tanh"), ("1.7", "0"), [0.0, 1e-31], [0.0, 0.0])
    probe = Experiment(**SMALL, readout="probe_point")
    with pytest.raises(Refusal, match="experiment.readout=loss"):
        render(probe, ("1.7", "0"), [0.0], [0.0])


def test_coordinates_are_exact_decimals():
    """The reference rate is 10**x to DD precision for x given past float64's digits."""
    exp = experiment("tanh")
    x = "1.7616286437013626000000000000012345"
    lrs, _ = reference_hparams(exp, x, "0")
    with mpmath.workdps(50):
        want = mpmath.power(10, mpmath.mpf(x))
        got = mpmath.mpf(str(lrs.decimals()[0]))
        assert abs(got / want - 1) < 1e-30
    assert reference_hparams(exp, Decimal(x), "0")[0].decimals()[0] == lrs.decimals()[0]
    with mpmath.workdps(50):  # an mpf is read from its binary mantissa, all of it
        assert reference_hparams(exp, mpmath.mpf(x), "0")[0].decimals()[0] == lrs.decimals()[0]


def test_double_double_matrix_product_holds_31_digits():
    """The reference's GEMMs (Ozaki slices) against 50-digit sums, on entries spread over
    twenty decades of magnitude, as weights and activations can be."""
    g = torch.Generator().manual_seed(0)

    def draw(*shape):
        hi = torch.randn(*shape, generator=g, dtype=torch.float64) * torch.exp(3 * torch.randn(*shape, generator=g, dtype=torch.float64))
        return DD(hi, hi * 1e-17 * torch.randn(*shape, generator=g, dtype=torch.float64))

    a, b = draw(40, 16), draw(16, 3)
    got = (a @ b).decimals()
    A, B = a.decimals(), b.decimals()
    with mpmath.workdps(50):
        for i in range(40):
            for j in range(3):
                terms = [mpmath.mpf(str(A[i, k])) * mpmath.mpf(str(B[k, j])) for k in range(16)]
                err = abs(mpmath.mpf(str(got[i, j])) - mpmath.fsum(terms)) / mpmath.fsum(map(abs, terms))
                assert err < 1e-30


def test_tanh_difference_has_no_cancellation():
    """tanh(a + b) - tanh(a) to float64's relative precision: tiny b, saturated units of
    either sign (where tanh(b)(1 - h^2)/(1 + h tanh(b)) is 0/0), and units far apart."""
    from zoomer.perturbation import _Constants, _tanh_and_sech2, _tanh_difference

    pairs = [("0.3", 1e-25), ("2", -2.1), ("30", -10.0), ("-15", 30.0), ("5", -50.0), ("-0.7", 0.4)]
    a = DD.exact([Decimal(x) for x, _ in pairs])
    b = torch.tensor([y for _, y in pairs], dtype=torch.float64)
    h, s2 = _tanh_and_sech2(a, _Constants("cpu"))
    got = _tanh_difference(a, b, h, s2)
    with mpmath.workdps(50):
        for (x, y), value in zip(pairs, got.tolist()):
            want = mpmath.tanh(mpmath.mpf(x) + mpmath.mpf(y)) - mpmath.tanh(mpmath.mpf(x))
            assert value == pytest.approx(float(want), rel=1e-14, abs=1e-300), (x, y)

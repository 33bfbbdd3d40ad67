"""Perturbation: every pixel's run as a float64 difference from one high-precision run.

Past about 13 decades float64 cannot tell neighbouring pixels' hyperparameters apart.
Deep-zoom Mandelbrot renderers answer this with one reference orbit in high precision and
every pixel as a small float64 difference from it; training a net is the same kind of
iteration. The reference run here is in double-double (DD: pairs of float64, about 32
digits, vectorised torch ops), its coordinates decimal strings; each pixel carries
d = W - W_ref for every layer and its rate as dlr = lr - lr_ref, and its step is written
in difference form so that only small quantities are ever subtracted:

    d  <- d - lr_ref (g(W_ref + d) - g(W_ref)) - dlr g(W_ref + d)
    tanh(a + b) - tanh(a) = tanh(b) (1 - tanh(a)^2) / (1 + tanh(a) tanh(b))
                          = sinh(b) / (cosh(a) cosh(a + b))   (where the first cancels)
    (a + da)(b + db) - a b = a db + da (b + db),   loss = l_ref + dl

The algebra is exact, so a pixel's rounding is relative to its difference, not to its
weights; relu's difference is read at the kink from the pixel's own pre-activation sign.
A difference as large as the weights is therefore no loss by itself (a pixel diverging
from a converging reference is computed as well as float64 computes it). A pixel is
"glitched" where it does lose: its weights are much smaller than its difference from the
reference (the reference ran away from it, Pauldelbrot's criterion), or the reference's
loss went non-finite while the pixel still trained (its difference can no longer be
formed). Glitched pixels are trained again from a new reference among them (render).

The reference takes each step once, then every pixel takes it from the reference's
values; a pixel's state between steps is only its weight differences. The frame centre's
reference keeps its steps (ReferenceRun, reference_run), so a frame's later passes and
the next keyframes about the same centre read them instead of training it again. Its
matrix products are float64 GEMMs on exact slices of its operands (Ozaki's scheme),
summed in DD. On the CPU, for nets of two layers, the reference's pass and the pixels'
step are compiled (zoomer/kernels/perturbation_kernel.c), each checked against its torch
version below on its first use in a process; elsewhere torch takes them, the pixels
`chunk` at a time.
"""
from __future__ import annotations

import math
import threading
import warnings
from dataclasses import dataclass
from decimal import Decimal, localcontext

import numpy as np
import torch

from .errors import Refusal
from .experiment import Experiment, Problem
from .kernels import cpu_perturbation
from .score import CAP, ScoreAccumulator
from .window import PERTURBATION_NARROWEST

DIGITS = 40  # decimal digits of the reference's coordinates and constants (DD holds ~32)
# A pixel whose largest weight difference is this many times its own largest weight holds
# its state to only ~eps * GLITCH_RATIO of itself (the reference has run away from it):
# it is re-rendered from a nearer reference.
GLITCH_RATIO = 100.0
# References per frame: the first, then up to 11 rounds of repair, each only while pixels
# stay glitched. At 28.6 decades a guessing pass of 301 runs along the stripes kept 244
# glitched after 4 references (a lattice of wrong pixels in the frame) and none after 12.
MAX_REFERENCES = 12
CHUNK = 256  # pixels whose differences are formed at once (their activations are in memory)


# ---- double-double arithmetic (Dekker, Knuth; the QD library's algorithms) ----------------
_SPLIT = 134217729.0  # 2**27 + 1


def _two_sum(a, b):
    s = a + b
    v = s - a
    return s, (a - (s - v)) + (b - v)


def _quick_two_sum(a, b):
    s = a + b
    return s, b - (s - a)


def _split(a):
    t = _SPLIT * a
    hi = t - (t - a)
    return hi, a - hi


def _two_prod(a, b):
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


@dataclass
class DD:
    """A tensor of double-double numbers hi + lo, |lo| <= ulp(hi) / 2."""

    hi: torch.Tensor
    lo: torch.Tensor

    @classmethod
    def of(cls, value) -> "DD":
        if isinstance(value, DD):
            return value
        value = torch.as_tensor(value, dtype=torch.float64)
        return cls(value, torch.zeros_like(value))

    @classmethod
    def exact(cls, values, device=None) -> "DD":
        """From Decimals (any shape of nested lists), rounded to the nearest DD."""
        arr = np.asarray(values, dtype=object)
        hi = np.vectorize(float, otypes=[np.float64])(arr)
        lo = np.vectorize(lambda v, h: float(v - Decimal(h)), otypes=[np.float64])(arr, hi)
        return cls(torch.tensor(hi, device=device), torch.tensor(lo, device=device))

    def decimals(self) -> np.ndarray:
        """The exact value of every element, as Decimals (for tests and reports)."""
        hi, lo = self.hi.cpu().numpy(), self.lo.cpu().numpy()
        with localcontext() as ctx:
            ctx.prec = DIGITS
            return np.vectorize(lambda h, l: Decimal(h) + Decimal(l), otypes=[object])(hi, lo)

    def __add__(self, other) -> "DD":
        other = DD.of(other)
        s, e = _two_sum(self.hi, other.hi)
        t, f = _two_sum(self.lo, other.lo)
        s, e = _quick_two_sum(s, e + t)
        return DD(*_quick_two_sum(s, e + f))

    __radd__ = __add__

    def __neg__(self) -> "DD":
        return DD(-self.hi, -self.lo)

    def __sub__(self, other) -> "DD":
        return self + -DD.of(other)

    def __rsub__(self, other) -> "DD":
        return DD.of(other) + -self

    def __mul__(self, other) -> "DD":
        other = DD.of(other)
        p, e = _two_prod(self.hi, other.hi)
        return DD(*_quick_two_sum(p, e + (self.hi * other.lo + self.lo * other.hi)))

    __rmul__ = __mul__

    def __truediv__(self, other) -> "DD":
        other = DD.of(other)
        q1 = self.hi / other.hi
        r = self - other * q1
        q2 = r.hi / other.hi
        r = r - other * q2
        q = DD(*_quick_two_sum(q1, q2))
        return q + r.hi / other.hi

    def __getitem__(self, index) -> "DD":
        return DD(self.hi[index], self.lo[index])

    def where(self, keep: torch.Tensor, other) -> "DD":
        other = DD.of(other)
        return DD(torch.where(keep, self.hi, other.hi), torch.where(keep, self.lo, other.lo))

    def ldexp(self, e: torch.Tensor) -> "DD":
        """self * 2**e, exact (barring underflow)."""
        return DD(torch.ldexp(self.hi, e), torch.ldexp(self.lo, e))

    @property
    def mT(self) -> "DD":
        return DD(self.hi.mT, self.lo.mT)

    def sum(self, dim: int) -> "DD":
        """Pairwise sum along dim, every addition in DD."""
        x = DD(self.hi.movedim(dim, 0), self.lo.movedim(dim, 0))
        while x.hi.shape[0] > 1:
            half = x.hi.shape[0] // 2
            pairs = x[:half] + x[half : 2 * half]
            if x.hi.shape[0] % 2:
                pairs = DD(torch.cat([pairs.hi, x.hi[2 * half :]]), torch.cat([pairs.lo, x.lo[2 * half :]]))
            x = pairs
        return x[0]

    def __matmul__(self, other: "DD") -> "DD":
        """A matrix product in DD from float64 GEMMs (Ozaki's scheme): hi x hi is split into
        slices whose products and sums over k are exact, the lo cross terms need only
        float64, and the exact partial products are added in DD."""
        k = self.hi.shape[-1]
        width = (53 - max(1, k - 1).bit_length()) // 2 - 1  # bits per slice: k products exact
        count = -(-110 // width)  # slices down to 2**-110 of each row's (column's) largest
        a = _slices(self.hi, -1, width, count)
        b = _slices(other.hi, -2, width, count)
        # one batched GEMM for every product kept (slice orders i + j < count), smallest first
        pairs = [(i, order - i) for order in range(count - 1, -1, -1) for i in range(order + 1)]
        left = torch.stack([a[i] for i, _ in pairs] + [self.hi, self.lo])
        right = torch.stack([b[j] for _, j in pairs] + [other.lo, other.hi])
        products = torch.matmul(left, right)
        total = DD.of(products[-2] + products[-1])  # the lo cross terms: float64 is enough
        for term in products[:-2]:
            total = total + term
        return total


def _slices(x: torch.Tensor, dim: int, width: int, count: int) -> list[torch.Tensor]:
    """x as a sum of `count` slices (plus a remainder below 2**-(width * count) of the
    largest along dim) whose elements are integers of `width` bits times one power of two
    per row (dim=-1) or column (dim=-2): Rump's ExtractScalar, (x + s) - s."""
    top = x.abs().amax(dim, keepdim=True)
    e = torch.frexp(torch.where(top > 0, top, 1.0)).exponent  # top < 2**e
    out = []
    for i in range(count):
        sigma = torch.ldexp(torch.ones_like(top), e - i * width + 52 - width)
        q = (x + sigma) - sigma
        out.append(q)
        x = x - q
    return out


def _decimal(value) -> Decimal:
    """A coordinate as an exact Decimal: a decimal string, a Decimal, a float, or an mpmath
    mpf (converted from its binary mantissa and exponent, without mpmath)."""
    if hasattr(value, "man_exp"):
        man, exp = value.man_exp
        return Decimal(man) * Decimal(2) ** exp
    if isinstance(value, (str, Decimal, int, float)):
        return Decimal(value)
    raise Refusal(f"a perturbation coordinate must be a decimal string, Decimal or mpf, got {value!r}")


class _Constants:
    """DD constants of the reference's maths, computed once per device in decimal."""

    def __init__(self, device):
        with localcontext() as ctx:
            ctx.prec = DIGITS
            self.sqrt2 = DD.exact(Decimal(2).sqrt(), device)
            self.ln2 = DD.exact(Decimal(2).ln(), device)
            # Taylor coefficients 1/k! of expm1, k = 1..EXPM1_TERMS
            self.inv_fact = [DD.exact(1 / Decimal(math.factorial(k)), device) for k in range(1, _EXPM1_TERMS + 1)]


_EXPM1_TERMS = 10  # |r| < 0.35 / 2**8: the 11th term is below 1e-38 of r
_EXPM1_HALVINGS = 8


def _expm1_reduced(r: DD, c: _Constants) -> DD:
    """expm1(r) for |r| <= ln2 / 2: Taylor on r / 2**8, then expm1(2x) = e (e + 2), 8 times."""
    x = r.ldexp(torch.full_like(r.hi, -_EXPM1_HALVINGS, dtype=torch.int32))
    s = c.inv_fact[-1]
    for coef in reversed(c.inv_fact[:-1]):
        s = coef + x * s
    s = x * s
    for _ in range(_EXPM1_HALVINGS):
        s = s * (s + 2.0)
    return s


def _tanh_and_sech2(a: DD, c: _Constants) -> tuple[DD, DD]:
    """tanh(a) and 1 - tanh(a)^2, both to DD's relative precision (the second too where
    tanh is within 1e-30 of +-1, where 1 - h*h would be only rounding)."""
    sign = torch.where(a.hi < 0, -1.0, 1.0).to(a.hi)
    x = DD(a.hi * sign, a.lo * sign).where(a.hi.abs() < 350, 350.0)  # tanh(350) is 1 in DD
    r2 = x * -2.0
    m = torch.round(r2.hi / c.ln2.hi)
    s = _expm1_reduced(r2 - c.ln2 * m, c)
    E = (s + 1.0).ldexp(m.to(torch.int32))  # exp(-2|a|), in (0, 1]
    one_minus_E = (-s).where(m == 0, 1.0 - E)  # no cancellation either way
    one_plus_E = E + 1.0
    t = one_minus_E / one_plus_E
    return DD(t.hi * sign, t.lo * sign), E * 4.0 / (one_plus_E * one_plus_E)


# Past this (scaled) pre-activation difference the pixel's unit is far from the
# reference's, the difference is not small, and plain subtraction loses nothing.
_FAR = 20.0


def _tanh_difference(a: DD, b: torch.Tensor, h: DD, s2: DD) -> torch.Tensor:
    """tanh(a + b) - tanh(a) for the reference's a (DD) and the pixels' differences b.

    tanh(b)(1 - h^2) / (1 + h tanh(b)) is products only while its denominator is not
    small; where it is (h and tanh(b) of opposite signs, both near 1: 0 / 0 when both
    units saturate), sinh(b) / (cosh(a) cosh(a + b)), which has no cancellation anywhere,
    or, for |b| >= _FAR, the plain difference of two values that are far apart."""
    tb = torch.tanh(b)
    den = 1 + h.hi * tb
    dh = tb * s2.hi / den
    bad = den < 0.5
    if bool(bad.any()):
        bb, a_hi, a_lo = b[bad], a.hi.expand_as(b)[bad], a.lo.expand_as(b)[bad]
        near = bb.abs() < _FAR
        bn = torch.where(near, bb, 0.0)
        close = torch.sinh(bn) * torch.sqrt(s2.hi.expand_as(b)[bad]) / torch.cosh((a_hi + bn) + a_lo)
        dh[bad] = torch.where(near, close, torch.tanh((a_hi + bb) + a_lo) - h.hi.expand_as(b)[bad])
    return dh


# ---- the reference's pass, then its pixels' differences ------------------------------------
@dataclass
class _Pass:
    """The reference's values of one forward and backward pass (DD), from which every
    pixel's differences are built: hidden pre-activations p, activations h, tanh's
    1 - h^2 (s2), slopes d h / d p, residual r, its loss, and backward dL/dp (g), dL/dh
    (pre) and the gradients."""

    x: torch.Tensor
    p: list
    h: list
    s2: list
    slope: list
    r: DD
    loss: DD
    g: list = None
    pre: list = None
    grads: list = None


class _Net:
    """The mean-field net in two halves: the reference's pass in DD, and the exact float64
    differences of a chunk of pixels built from that pass's values."""

    def __init__(self, exp: Experiment, device, compiled: bool = True):
        """compiled: use the compiled CPU kernel where it supports exp (engine.backend=torch: never)."""
        self.exp = exp
        self.c = _Constants(device)
        with localcontext() as ctx:
            ctx.prec = DIGITS
            # 1/sqrt(fan_in) per layer, and the hidden layers' slope sqrt2/sqrt(fan_in)
            self.scale = [DD.exact(1 / Decimal(a).sqrt(), device) for a, _ in exp.layer_shapes]
        self.gain = [self.c.sqrt2 * s if exp.nonlinearity != "identity" else s for s in self.scale]
        self.out_scale = self.scale[-1] * self.scale[-1]
        self.compiled = compiled and cpu_perturbation.supports(exp, device)

    # -- the reference, in DD --
    def forward(self, W: list[DD], x: torch.Tensor, y: torch.Tensor, backward: bool = True) -> _Pass:
        """The reference's pass over the rows x, y: its values, its loss, and with
        backward its gradients. Compiled on the CPU for two layers (checked against this
        torch pass the first time in a process), torch otherwise."""
        if self.compiled and _compiled_pass_agrees(self, W, x, y):
            return self._compiled_forward(W, x, y)
        ps, hs, s2s, slopes = [], [], [], []
        h = DD.of(x)
        for i, w in enumerate(W[:-1]):
            p, k = h @ w, self.gain[i]
            if self.exp.nonlinearity == "tanh":
                h, s2 = _tanh_and_sech2(p * k, self.c)
                slope = s2 * k
            elif self.exp.nonlinearity == "relu":
                on = p.hi > 0
                h, s2 = (p * k).where(on, 0.0), None
                slope = DD.of(on.to(p.hi)) * k
            else:
                h, s2, slope = p * k, None, DD.of(torch.ones_like(p.hi)) * k
            ps.append(p), hs.append(h), s2s.append(s2), slopes.append(slope)
        r = (h @ W[-1]) * self.out_scale - DD.of(y)
        out = _Pass(x, ps, hs, s2s, slopes, r, self.loss(r))
        if backward:
            self.backward(out, W)
        return out

    def _compiled_forward(self, W: list[DD], x: torch.Tensor, y: torch.Tensor) -> _Pass:
        c = self.c
        consts = [self.gain[0], self.out_scale, c.ln2, *c.inv_fact]
        v = {name: DD(*halves) for name, halves in cpu_perturbation.reference_pass(
            self.exp, x, y, [(w.hi, w.lo) for w in W], [(k.hi, k.lo) for k in consts]).items()}
        s2 = v["s2"] if self.exp.nonlinearity == "tanh" else None
        return _Pass(x, [v["p"]], [v["h"]], [s2], [v["slope"]], v["r"], v["loss"],
                     g=[v["g0"], v["g"]], pre=[None, v["pre"]], grads=[v["grad0"], v["grad1"]])

    @staticmethod
    def loss(r: DD) -> DD:
        return (r * r).sum(-1).sum(-1) / float(r.hi.shape[-2] * r.hi.shape[-1])

    def backward(self, ref: _Pass, W: list[DD]) -> None:
        """Fill ref's gradients: per layer dL/dW, and dL/dp, dL/dh on the way."""
        n, o = ref.r.hi.shape
        g = ref.r * (self.out_scale * (2.0 / (n * o)))
        hs = [DD.of(ref.x)] + ref.h
        ref.g, ref.pre, ref.grads = [None] * len(W), [None] * len(W), [None] * len(W)
        for i in range(len(W) - 1, -1, -1):
            ref.g[i] = g
            ref.grads[i] = hs[i].mT @ g
            if i:
                ref.pre[i] = g @ W[i].mT
                g = ref.pre[i] * ref.slope[i - 1]

    # -- the pixels, as float64 differences from the reference --
    def _act_difference(self, i: int, ref: _Pass, dp: torch.Tensor):
        """(dh, dslope) of hidden layer i from its pre-activation differences dp."""
        k = self.gain[i].hi
        p, h = ref.p[i], ref.h[i]
        if self.exp.nonlinearity == "tanh":
            dh = _tanh_difference(p * self.gain[i], dp * k, h, ref.s2[i])
            return dh, -dh * (2 * h.hi + dh) * k  # (1 - h'^2) - (1 - h^2), times k
        if self.exp.nonlinearity == "relu":
            on = p.hi > 0
            q = (p.hi + dp) + p.lo  # the pixel's pre-activation, exact in sign at the kink
            on_pix = q > 0
            diff = torch.where(on_pix, torch.where(on, dp, q), torch.where(on, -p.hi, 0.0))
            return diff * k, (on_pix.to(dp) - on.to(dp)) * k
        return dp * k, torch.zeros_like(dp)

    def forward_difference(self, ref: _Pass, W: list[DD], dW: list[torch.Tensor]):
        """Per hidden layer (dh, dslope), and dr = the pixels' residuals minus ref.r."""
        hidden, dh = [], None
        for i in range(len(W)):
            h = ref.h[i - 1].hi if i else ref.x
            dp = torch.matmul(h, dW[i])
            if dh is not None:  # (h + dh)(W + dW) - h W = h dW + dh (W + dW)
                dp = dp + torch.matmul(dh, W[i].hi + dW[i])
            if i == len(W) - 1:
                return hidden, dp * self.out_scale.hi
            hidden.append(self._act_difference(i, ref, dp))
            dh = hidden[-1][0]

    @staticmethod
    def loss_difference(ref: _Pass, dr: torch.Tensor) -> torch.Tensor:
        """mean((r + dr)^2) - mean(r^2) = mean(dr (2 r + dr))."""
        return (dr * (2 * ref.r.hi + dr)).sum((-2, -1)) / (dr.shape[-2] * dr.shape[-1])

    def backward_difference(self, ref: _Pass, W, dW, hidden, dr) -> list[torch.Tensor]:
        """The pixels' gradients minus the reference's, per layer."""
        n, o = ref.r.hi.shape
        dg = dr * (self.out_scale.hi * (2.0 / (n * o)))
        dgrads = [None] * len(W)
        for i in range(len(W) - 1, -1, -1):
            g = ref.g[i].hi
            h = ref.h[i - 1].hi if i else ref.x
            dgrads[i] = torch.matmul(h.mT, dg)
            if i:
                dh, dslope = hidden[i - 1]
                dgrads[i] = dgrads[i] + torch.matmul(dh.mT, g + dg)
                dpre = torch.matmul(dg, (W[i].hi + dW[i]).mT) + torch.matmul(g, dW[i].mT)
                slope, pre = ref.slope[i - 1].hi, ref.pre[i].hi
                dg = dpre * (slope + dslope) + pre * dslope
        return dgrads


@dataclass
class Trained:
    """What training pixels against one reference gives."""

    scores: torch.Tensor  # (B,) the paper's score, as zoomer.score
    glitched: torch.Tensor  # (B,) bool: the difference stopped being trustworthy
    glitch_loss: torch.Tensor  # (B,) a glitched pixel's l / l0 at its last trustworthy step
    deltas: list  # per layer (B, fan_in, fan_out): final W - W_ref
    reference: list  # per layer DD: the reference's final weights


@dataclass
class RunStep:
    """One step of the reference run: its weights going into the step, its pass over the
    full batch (its loss is the score's) and over the rows the step trains on (the same
    pass on the full batch); once the compiled kernel has read them, only what it reads
    (compiled), about half their memory."""

    W: list
    full: _Pass
    step: _Pass
    loss: DD
    compiled: cpu_perturbation.ReferenceStep = None


class ReferenceRun:
    """The reference's training run, step by step. A frame is trained in several passes
    (solid guessing) and a zoom's keyframes share their centre: a run that keeps its steps
    (keep) serves every pass about the same point without training again; one that does
    not holds only its latest step. It ends early where its loss goes non-finite."""

    def __init__(self, exp: Experiment, prob: Problem, lrs: DD, offset: DD, keep: bool = False,
                 compiled: bool = True):
        self.exp, self.prob, self.lrs, self.offset, self.keep = exp, prob, lrs, offset, keep
        self.net = _Net(exp, prob.X.device, compiled)
        self.W = [DD.of(w) for w in prob.weights]  # after the last step taken
        self.steps: list[RunStep | None] = []
        self.ended = False
        self._lock = threading.Lock()  # zoomer-explore trains views on several threads

    def __getitem__(self, t: int) -> RunStep | None:
        """Step t's values, or None once the run has ended before it."""
        with self._lock:
            while len(self.steps) <= t and not self.ended:
                self._take_step()
        if t < len(self.steps) and self.steps[t] is None:
            raise RuntimeError(f"step {t} of a reference run that keeps only its latest step was asked for again")
        return self.steps[t] if t < len(self.steps) else None

    def compiled(self, t: int) -> cpu_perturbation.ReferenceStep:
        """Step t's values as the compiled kernel reads them (the passes are let go)."""
        ref = self.steps[t]
        with self._lock:
            if ref.compiled is None:
                ref.compiled = _reference_step(self.net, ref.full, ref.step, ref.W, ref.loss, self.lrs)
                if t != 1:  # the kernel's first-use check (_kernel_agrees) reads step 1's passes
                    ref.W = ref.full = ref.step = None
        return ref.compiled

    def _take_step(self) -> None:
        exp, prob, W = self.exp, self.prob, self.W
        t = len(self.steps)
        if t == 0 or exp.offset_every_step:
            W[0] = W[0] + self.offset
        full = self.net.forward(W, prob.X, prob.Y, backward=prob.batches is None)
        if not bool(torch.isfinite(full.loss.hi)):
            self.ended = True
            return
        # the step uses the minibatch; the scored loss is the full batch's
        step = full if prob.batches is None else self.net.forward(W, prob.X[prob.batches[t]], prob.Y[prob.batches[t]])
        if t and not self.keep:
            self.steps[t - 1] = None
        self.steps.append(RunStep(list(W), full, step, full.loss))
        self.W = [W[i] - self.lrs[i] * step.grads[i] for i in range(len(W))]


def train_perturbed(run: ReferenceRun, dlrs: torch.Tensor, doffsets: torch.Tensor, chunk: int = CHUNK) -> Trained:
    """Train pixels whose rates are the reference's plus dlrs (B, depth) and input-weight
    offsets its offset plus doffsets (B,) as differences from the reference run.

    Each step reads the reference's values once, then trains the pixels `chunk` at a time
    from them; a pixel's state between steps is only its weight differences."""
    exp, net, lrs = run.exp, run.net, run.lrs
    if exp.readout != "loss":
        raise Refusal("engine.precision=perturbation scores the loss only; use experiment.readout=loss")
    device = run.prob.X.device
    B = dlrs.shape[0]
    dW = [torch.zeros((B, *w.shape), dtype=torch.float64, device=device) for w in run.prob.weights]
    acc = ScoreAccumulator(B, exp.steps, device, torch.float64)
    glitched = torch.zeros(B, dtype=torch.bool, device=device)
    v = torch.ones(B, dtype=torch.float64, device=device)  # each pixel's latest l / l0
    glitch_loss = torch.full((B,), math.inf, dtype=torch.float64, device=device)
    parts = [torch.arange(i, min(i + chunk, B), device=device) for i in range(0, B, chunk)]
    fused = net.compiled
    for t in range(exp.steps):
        if t == 0 or exp.offset_every_step:
            dW[0] = dW[0] + doffsets[:, None, None]
        ref = run[t]
        if ref is None:
            # The differences cannot be formed from here on. A pixel past the score's cap
            # counts as diverged from here (its score is the same unless its loss came
            # back); every other pixel still training is glitched, but for those identical
            # to the reference, which died with it.
            lost = (acc.dead_at == exp.steps) & (_sizes(dW) > 0) & (v < CAP)
            glitch_loss = torch.where(lost & ~glitched, v, glitch_loss)
            glitched |= lost
            acc.add(t, torch.full((B,), math.inf, dtype=torch.float64, device=device))
            break
        if fused and t >= 1:  # from the second step on, when the pixels' differences are not 0
            fused = _kernel_agrees(exp, net, ref.full, ref.step, ref.W, ref.loss, lrs, dlrs, dW)
        if fused:
            loss, lost = cpu_perturbation.step(exp, run.compiled(t), dlrs, dW, GLITCH_RATIO)
            acc.add(t, loss)
            lost = (acc.dead_at == exp.steps) & lost
            glitch_loss = torch.where(lost & ~glitched, v, glitch_loss)  # v of the step before
            v = loss / acc.l0
            glitched |= lost
        for rows in [] if fused else parts:
            loss, lost, stepped = _step(net, ref.full, ref.step, ref.W, ref.loss, lrs, dlrs[rows],
                                        [w[rows] for w in dW])
            acc.add(t, loss, rows)
            lost = (acc.dead_at[rows] == exp.steps) & lost
            glitch_loss[rows] = torch.where(lost & ~glitched[rows], v[rows], glitch_loss[rows])
            v[rows] = loss / acc.l0[rows]
            glitched[rows] |= lost
            for i in range(len(dW)):
                dW[i][rows] = stepped[i]
    return Trained(acc.scores(), glitched, glitch_loss, dW, run.W)


def _step(net: _Net, full: _Pass, step: _Pass, W: list[DD], ref_loss: DD, lrs: DD, dlrs, d):
    """One step of some pixels, by torch: their losses, their glitch flags (judged before
    the step), and their stepped weight differences."""
    hidden, dr = net.forward_difference(full, W, d)
    loss = (ref_loss.hi + net.loss_difference(full, dr)) + ref_loss.lo
    if step is not full:
        hidden, dr = net.forward_difference(step, W, d)
    dgrads = net.backward_difference(step, W, d, hidden, dr)
    # Pauldelbrot's criterion: a pixel whose weights are much smaller than its
    # difference from the reference (d ~ -W_ref) holds its state to only eps |d| / |W|.
    lost = _sizes(d) > GLITCH_RATIO * _sizes([w.hi + e for w, e in zip(W, d)])
    stepped = [d[i] - (lrs[i].hi * dgrads[i] + dlrs[:, i, None, None] * (step.grads[i].hi + dgrads[i]))
               for i in range(len(W))]
    return loss, lost, stepped


def _reference_step(net: _Net, full: _Pass, step: _Pass, W: list[DD], ref_loss: DD, lrs: DD):
    """What the compiled kernel reads of the reference's step (two layers): the rows it
    trains on, and for a minibatch the full batch's, which its loss is scored on. Copies,
    so that the passes they come from can be let go."""
    def forward_rows(p: _Pass) -> list:
        """a (hi, lo), h and s2 of a pass's hidden layer, and its residual r."""
        a = p.p[0] * net.gain[0] if net.exp.nonlinearity == "tanh" else p.p[0]
        s2 = p.s2[0].hi if p.s2[0] is not None else torch.zeros_like(p.h[0].hi)
        return [a.hi, a.lo, p.h[0].hi, s2, p.r.hi]

    a_hi, a_lo, h, s2, r = forward_rows(step)
    rows = (a_hi, a_lo, h, s2, step.slope[0].hi, step.pre[1].hi, r, step.g[1].hi)
    scored = None if step is full else forward_rows(full)
    copied = lambda tensors: [t.clone() for t in tensors]  # noqa: E731  (the inputs x are not the passes')
    return cpu_perturbation.ReferenceStep(
        step.x, *copied(rows), copied(w.hi for w in W), copied(g.hi for g in step.grads),
        [float(lrs.hi[i]) for i in range(len(W))], float(net.gain[0].hi), float(net.out_scale.hi),
        float(ref_loss.hi), float(ref_loss.lo), None if scored is None else (full.x, *copied(scored)))


# Whether the compiled reference pass gave the torch pass's values, per (nonlinearity,
# width, target dim), checked the first time it runs in this process.
_PASS_AGREES: dict = {}
PASS_TOLERANCE = 1e-28  # relative to each value's largest: both are double-double


def _compiled_pass_agrees(net: _Net, W: list[DD], x, y) -> bool:
    """Whether the compiled reference pass matches the torch pass here (once per process
    and shape); if not, one warning says so and the torch pass runs instead."""
    exp = net.exp
    key = (exp.nonlinearity, exp.width, exp.target_dim)
    if key not in _PASS_AGREES:
        net.compiled = False
        want = net.forward(W, x, y)
        got = net._compiled_forward(W, x, y)
        net.compiled = True
        pairs = [(got.loss, want.loss), (got.r, want.r)]
        for name in ("p", "h", "s2", "slope", "g", "pre", "grads"):
            pairs += [(a, b) for a, b in zip(getattr(got, name), getattr(want, name)) if b is not None]
        agrees = all(_dd_close(a, b) for a, b in pairs)
        if not agrees:
            warnings.warn(f"zoomer's compiled reference pass disagrees with the torch pass for "
                          f"{exp.nonlinearity} at width {exp.width}; the torch pass runs instead")
        _PASS_AGREES[key] = agrees
    return _PASS_AGREES[key]


def _dd_close(a: DD, b: DD) -> bool:
    """Equal to PASS_TOLERANCE of the largest magnitude (both are double-double)."""
    scale = b.hi.abs().max().clamp_min(1e-300)
    return bool((((a.hi - b.hi) + (a.lo - b.lo)).abs() <= PASS_TOLERANCE * scale).all())


# Whether the compiled kernel gave the torch path's step, per (nonlinearity, width, target
# dim), checked the first time it steps pixels in this process.
_KERNEL_AGREES: dict = {}
PROBE_PIXELS = 64
PROBE_TOLERANCE = 1e-9  # relative: the two differ only in rounding


def _kernel_agrees(exp: Experiment, net: _Net, full: _Pass, step: _Pass, W, ref_loss, lrs, dlrs, dW) -> bool:
    """Whether the kernel's step of the first pixels matches the torch path's (once per
    process, shape and batching); if not, one warning says so and the torch path steps instead."""
    key = (exp.nonlinearity, exp.width, exp.target_dim, step is full)
    if key not in _KERNEL_AGREES:
        rows = slice(0, PROBE_PIXELS)
        probe = [w[rows].clone() for w in dW]
        loss, lost = cpu_perturbation.step(exp, _reference_step(net, full, step, W, ref_loss, lrs),
                                           dlrs[rows], probe, GLITCH_RATIO)
        want = _step(net, full, step, W, ref_loss, lrs, dlrs[rows], [w[rows] for w in dW])
        got = (loss, lost, probe)
        agrees = bool((got[1] == want[1]).all()) and all(
            bool(((g - w).abs() <= PROBE_TOLERANCE * w.abs().max().clamp_min(1e-300)).all())
            for g, w in zip([got[0], *got[2]], [want[0], *want[2]]))
        if not agrees:
            warnings.warn(f"zoomer's compiled perturbation kernel disagrees with the torch path for "
                          f"{exp.nonlinearity} at width {exp.width}; the torch path trains instead")
        _KERNEL_AGREES[key] = agrees
    return _KERNEL_AGREES[key]


def _sizes(dW: list[torch.Tensor]) -> torch.Tensor:
    """Each pixel's largest weight difference, over every layer."""
    return torch.stack([d.flatten(1).abs().amax(1) for d in dW]).amax(0)


# ---- coordinates -> reference and pixel hyperparameters -------------------------------------
def reference_hparams(exp: Experiment, x, y, device=None) -> tuple[DD, DD]:
    """The reference's rates (depth,) and input-weight offset () at axis coordinates (x, y)
    (log10 units, exact decimals), as DD."""
    with localcontext() as ctx:
        ctx.prec = DIGITS
        px, py = Decimal(10) ** _decimal(x), Decimal(10) ** _decimal(y)
        if exp.phase_space == "lr_vs_lr":
            rates, offset = [px if i % 2 == 0 else py for i in range(exp.depth)], Decimal(0)
        else:
            rates, offset = [py] * exp.depth, px
    return DD.exact(rates, device), DD.exact(offset, device)


def pixel_hparams(exp: Experiment, lrs: DD, offset: DD, dx: torch.Tensor, dy: torch.Tensor):
    """Per-pixel differences (B, depth) of the rates and (B,) of the offset, for pixels at
    float64 offsets (dx, dy) from the reference (log10 units): 10**(c + d) - 10**c is
    10**c * expm1(d ln 10), exact relative to itself."""
    fx, fy = torch.expm1(dx * math.log(10)), torch.expm1(dy * math.log(10))
    if exp.phase_space == "lr_vs_lr":
        rel = torch.stack([fx if i % 2 == 0 else fy for i in range(exp.depth)], 1)
        return lrs.hi * rel, torch.zeros_like(dx)
    return lrs.hi * fy[:, None].expand(-1, exp.depth), offset.hi * fx


# ---- a frame: chunks, glitches and new references ---------------------------------------------
@dataclass
class Rendering:
    scores: np.ndarray  # (N,) per pixel
    glitched: np.ndarray  # (N,) bool: still glitched after the last reference
    references: list  # the reference points used, (x, y) as Decimals


# The reference run kept from the last frame, by its point: a frame's passes and a zoom's
# keyframes (all centred on its target) ask for it again and again. It keeps what the
# pixels read of every step, about 8 values per data row and hidden unit on the compiled
# path (240 MB for the paper's net at 1000 steps) and 20 as torch passes; one that would
# take more than KEPT_BYTES is not kept.
_RUNS: dict = {}
_RUNS_LOCK = threading.Lock()
KEPT_BYTES = 2**30


def reference_run(exp: Experiment, point, device, compiled: bool = True) -> ReferenceRun:
    """The reference run at axis coordinates `point` (exact decimals): the one kept from
    the last frame about the same point, or a new one, kept if it fits KEPT_BYTES."""
    key = (exp, str(point[0]), str(point[1]), str(torch.device(device)), compiled)
    with _RUNS_LOCK:
        run = _RUNS.get(key)
        if run is None:
            prob = exp.problem().to(device)
            values = (8 if compiled and cpu_perturbation.supports(exp, device) else 20) * prob.X.shape[0] * exp.width
            keep = exp.steps * values * 8 <= KEPT_BYTES
            run = ReferenceRun(exp, prob, *reference_hparams(exp, *point, device), keep=keep, compiled=compiled)
            _RUNS.clear()
            if keep:
                _RUNS[key] = run
    return run


def render(exp: Experiment, centre, dx, dy, device="cpu", max_references: int = MAX_REFERENCES,
           chunk: int = CHUNK, compiled: bool = True) -> Rendering:
    """Scores of the pixels at centre + (dx[k], dy[k]): centre a pair of exact decimal
    coordinates (strings, Decimals or mpf), dx, dy float64 offsets from it (log10 units).

    The first reference is the centre; glitched pixels are trained again from one of them
    (it can never glitch against itself, so each round settles at least one pixel), up to
    max_references references in all. Pixels glitch mostly where the reference diverged
    while they still trained, and a reference that converges carries every pixel that
    does: so the next one is the glitched pixel that had come closest to converging when
    it glitched (its loss lowest against its first), the one nearest their middle among
    equals. In a keyframe 28.6 decades down, picking the middle one took up to 12
    references a pass where this takes 2 (BENCHMARKS.md). compiled=False trains through
    torch alone (engine.backend=torch), where the compiled CPU kernel would run."""
    dx, dy = np.asarray(dx, np.float64).ravel(), np.asarray(dy, np.float64).ravel()
    extent = max(np.ptp(dx), np.ptp(dy))
    if 0 < extent < PERTURBATION_NARROWEST:
        raise Refusal(f"engine.precision=perturbation resolves frames down to {PERTURBATION_NARROWEST:g} wide "
                      f"(double-double reference); this one is {extent:.3g}")
    with localcontext() as ctx:
        ctx.prec = DIGITS
        ref = (_decimal(centre[0]), _decimal(centre[1]))
        scores = np.zeros(dx.size)
        todo = np.ones(dx.size, dtype=bool)
        glitch_loss = np.full(dx.size, np.inf)
        refs, ox, oy = [], 0.0, 0.0
        for _ in range(max_references):
            refs.append(ref)
            if len(refs) == 1:  # the frame's centre, kept for its next passes and frames
                run = kept = reference_run(exp, ref, device, compiled)
            else:  # a repair's point, the frame's own
                run = ReferenceRun(exp, kept.prob, *reference_hparams(exp, *ref, device), compiled=compiled)
            rows = np.flatnonzero(todo)
            ddx = torch.tensor(dx[rows] - ox, device=device)
            ddy = torch.tensor(dy[rows] - oy, device=device)
            out = train_perturbed(run, *pixel_hparams(exp, run.lrs, run.offset, ddx, ddy), chunk)
            scores[rows] = out.scores.cpu().numpy()
            todo[rows] = out.glitched.cpu().numpy()
            glitch_loss[rows] = out.glitch_loss.cpu().numpy()
            if not todo.any():
                break
            glitched = np.flatnonzero(todo)
            middle = (dx[glitched].mean(), dy[glitched].mean())
            distance = (dx[glitched] - middle[0]) ** 2 + (dy[glitched] - middle[1]) ** 2
            k = glitched[np.lexsort((distance, glitch_loss[glitched]))[0]]
            ox, oy = dx[k], dy[k]
            ref = (_decimal(centre[0]) + Decimal(ox), _decimal(centre[1]) + Decimal(oy))
    return Rendering(scores, todo, refs)

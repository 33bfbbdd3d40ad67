"""What is trained: the network, its data and the hyperparameter plane (the phase space).

An `Experiment` is a plain description (every field has the paper's baseline as its
default); `Experiment.problem()` turns it into the tensors that every run of a frame
shares, and `Experiment.hparams()` turns pixel coordinates into per-run hyperparameters.
"""
import functools
import math
from dataclasses import asdict, dataclass, fields
from typing import Optional

import torch

from zoomer import jax_draws
from zoomer.errors import Refusal

NONLINEARITIES = ("tanh", "relu", "identity")
PHASE_SPACES = ("lr_vs_lr", "paraminit_vs_lr")
READOUTS = ("loss", "probe_point")
# When paraminit_vs_lr adds its offset to the input-layer weights: "at_init", once, to the
# initial weights (the paper's text); "every_step", again before every step, the gradient
# taken and the update applied at the shifted weights (the notebook's train_step, which
# drew the published panel). lr_vs_lr has no offset, so either reading trains the same.
OFFSETS = ("at_init", "every_step")
# "jax": the paper's notebook's draws (JAX's threefry, float64); "torch": zoomer's earlier
# draws from a torch.Generator. The same seed gives different problems under each.
RNGS = ("torch", "jax")

# The paper trained for 500-1000 steps; its interactive demo used 100. 100 keeps previews
# on a CPU within minutes and already shows the fractal boundary over many decades.
DEFAULT_STEPS = 100
# What quality=paper trains unless a condition says otherwise (experiment.paper_steps):
# five of the paper's six panels are 1000-step landscapes; paraminit's is 500.
PAPER_STEPS = 1000
MIN_STEPS = 20  # the score averages the last 20 normalised losses

# The paper's six conditions (conf/experiment), in the order its figures and tables show them.
PAPER_CONDITIONS = ("tanh", "relu", "identity", "minibatch", "single_datapoint", "paraminit")


def paper_order(name: str) -> tuple[int, str]:
    """Sort key for experiment names: the paper's conditions in its order, then the rest
    alphabetically."""
    rank = PAPER_CONDITIONS.index(name) if name in PAPER_CONDITIONS else len(PAPER_CONDITIONS)
    return rank, name


@dataclass(frozen=True)
class Problem:
    """The tensors every run of a frame shares: data, initial weights, minibatch order.

    X is (n, width), Y is (n, target_dim); weights[i] is (fan_in, fan_out), input layer
    first. batches is (steps, batch_size) of row indices into X, or None for full batch.
    probe is the fixed input (width,) read by the probe_point readout.
    """

    X: torch.Tensor
    Y: torch.Tensor
    weights: tuple[torch.Tensor, ...]
    probe: torch.Tensor
    batches: Optional[torch.Tensor]

    def to(self, device=None, dtype=None) -> "Problem":
        def move(t):
            return t.to(device=device, dtype=dtype)

        return Problem(
            X=move(self.X),
            Y=move(self.Y),
            weights=tuple(move(w) for w in self.weights),
            probe=move(self.probe),
            batches=None if self.batches is None else self.batches.to(device),
        )


@dataclass(frozen=True)
class Experiment:
    """One of the paper's conditions, or a generalisation of it.

    Layer i trains with the x-axis rate when i is even and the y-axis rate when i is odd
    (lr_vs_lr); in paraminit_vs_lr, x is log10 of an offset added to the mean of the
    input-layer weights (when: `offset`, see OFFSETS) and y is log10 of one learning rate
    for every layer.
    """

    nonlinearity: str = "tanh"
    width: int = 16
    depth: int = 2
    target_dim: int = 1
    # Dataset size: None follows the paper (parameter count x ratio / target_dim, or
    # width x ratio for the linear net); 1 is the single-datapoint condition.
    n_data: Optional[int] = None
    data_ratio: float = 1.0
    # Minibatch size drawn with replacement; None trains on the full batch.
    batch_size: Optional[int] = None
    phase_space: str = "lr_vs_lr"
    offset: str = "at_init"
    readout: str = "loss"
    steps: int = DEFAULT_STEPS
    seed: int = 0
    rng: str = "jax"

    def __post_init__(self):
        self.validate()

    # ---- validation -----------------------------------------------------------------
    def validate(self) -> None:
        """Raise a Refusal naming the field and what is allowed; runs before any compute."""
        _choice("nonlinearity", self.nonlinearity, NONLINEARITIES)
        _choice("phase_space", self.phase_space, PHASE_SPACES)
        _choice("offset", self.offset, OFFSETS)
        _choice("readout", self.readout, READOUTS)
        _choice("rng", self.rng, RNGS)
        _at_least("width", self.width, 1)
        _at_least("depth", self.depth, 2)
        _at_least("target_dim", self.target_dim, 1)
        _at_least("steps", self.steps, MIN_STEPS)
        if not (isinstance(self.data_ratio, (int, float)) and self.data_ratio > 0):
            raise Refusal(f"experiment.data_ratio must be a number > 0, got {self.data_ratio!r}")
        if self.n_data is not None:
            _at_least("n_data", self.n_data, 1)
        if self.batch_size is not None:
            _at_least("batch_size", self.batch_size, 1)
        if not isinstance(self.seed, int):
            raise Refusal(f"experiment.seed must be an integer, got {self.seed!r}")

    @classmethod
    def from_config(cls, node) -> "Experiment":
        """Build from a Hydra/OmegaConf node or a dict; unknown keys (name, window) are ignored
        and null means the default (steps: null is the preview's; zoomer.quality resolves it)."""
        try:
            from omegaconf import OmegaConf

            if OmegaConf.is_config(node):
                node = OmegaConf.to_container(node, resolve=True)
        except ImportError:  # pragma: no cover - hydra is a dependency
            pass
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in dict(node).items() if k in names and v is not None})

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def offset_every_step(self) -> bool:
        """Whether the input-layer offset is added before every step, not only at init."""
        return self.offset == "every_step"

    # ---- shapes ---------------------------------------------------------------------
    @property
    def layer_shapes(self) -> list[tuple[int, int]]:
        """(fan_in, fan_out) per layer: width in, width hidden, target_dim out."""
        w = self.width
        return [(w, w)] * (self.depth - 1) + [(w, self.target_dim)]

    @property
    def n_params(self) -> int:
        return sum(a * b for a, b in self.layer_shapes)

    @property
    def dataset_size(self) -> int:
        if self.n_data is not None:
            return self.n_data
        if self.nonlinearity == "identity":
            return max(1, int(self.width * self.data_ratio))
        return max(1, int(self.n_params * self.data_ratio / self.target_dim))

    @property
    def axis_labels(self) -> tuple[str, str]:
        """Human names of the x and y axes, in log10 units."""
        if self.phase_space == "lr_vs_lr":
            return ("log10 input-layer learning rate", "log10 output-layer learning rate")
        return ("log10 input-layer weight-mean offset", "log10 learning rate")

    # ---- tensors --------------------------------------------------------------------
    def problem(self) -> Problem:
        """The shared tensors, float64 on the CPU; rng and seed decide all of it, on any machine."""
        draw = self._jax_draws if self.rng == "jax" else self._torch_draws
        return draw()

    def _jax_draws(self) -> Problem:
        """The paper's notebook, draw for draw: weights, data, minibatch order, probe."""
        X, Y, weights, probe, batches = notebook_draws(self.seed, tuple(self.layer_shapes), self.dataset_size,
                                                       self.width, self.target_dim, self.batch_size, self.steps)
        return Problem(X=torch.tensor(X), Y=torch.tensor(Y), weights=tuple(torch.tensor(w) for w in weights),
                       probe=torch.tensor(probe), batches=None if batches is None else torch.tensor(batches))

    def _torch_draws(self) -> Problem:
        """zoomer's earlier draws: a CPU torch.Generator in a fixed order."""
        g = torch.Generator().manual_seed(self.seed)

        def normal(*shape):
            return torch.randn(*shape, generator=g, dtype=torch.float64)

        n = self.dataset_size
        X = normal(n, self.width)
        Y = normal(n, self.target_dim)
        weights = tuple(normal(a, b) for a, b in self.layer_shapes)
        probe = normal(self.width)
        batches = None
        if self.batch_size is not None:
            batches = torch.randint(0, n, (self.steps, self.batch_size), generator=g)
        return Problem(X=X, Y=Y, weights=weights, probe=probe, batches=batches)

    def hparams(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Axis coordinates (B,) -> (learning rates (B, depth), input-weight offsets (B,))."""
        x, y = exp10(x), exp10(y)
        if self.phase_space == "lr_vs_lr":
            lrs = torch.stack([x if i % 2 == 0 else y for i in range(self.depth)], 1)
            return lrs, torch.zeros_like(x)
        return y[:, None].expand(-1, self.depth).contiguous(), x


@functools.lru_cache(maxsize=8)
def notebook_draws(seed: int, layer_shapes: tuple, n: int, width: int, target_dim: int,
                   batch_size: Optional[int], steps: int) -> tuple:
    """The notebook's draws as numpy arrays: (X, Y, weights, probe, batches or None).

    Drawn once per process: the pure-Python threefry takes ~30 ms a problem, and every
    frame, pass, probe and reference run asks for the same one again. Experiment.problem
    copies them into fresh tensors, so no caller can change another's."""
    key, sub = jax_draws.split(jax_draws.prng_key(seed))
    layer_keys = jax_draws.split(sub, len(layer_shapes))
    weights = tuple(jax_draws.normal(k, shape) for k, shape in zip(layer_keys, layer_shapes))
    key, sub = jax_draws.split(key)
    X = jax_draws.normal(sub, (n, width))
    key, sub = jax_draws.split(key)
    Y = jax_draws.normal(sub, (n, target_dim))
    probe = jax_draws.normal(jax_draws.prng_key(-1234567), (1, width))[0]
    batches = None
    if batch_size is not None:
        step_keys = jax_draws.split(jax_draws.prng_key(42), steps)
        batches = jax_draws.randint(step_keys, (batch_size,), 0, n)
    return X, Y, weights, probe, batches


def exp10(t) -> torch.Tensor:
    """10**t (float64), element by element with the C library's pow: torch's vectorised pow
    and its scalar tail differ in the last bit, which would make a run's rate depend on
    where it sits in the batch (and the run alone differ from the run in a frame)."""
    values = torch.as_tensor(t, dtype=torch.float64).tolist()
    return torch.tensor([10.0**v for v in values], dtype=torch.float64)


def _choice(name, value, allowed):
    if value not in allowed:
        raise Refusal(f"experiment.{name} must be one of {list(allowed)}, got {value!r}")


def _at_least(name, value, low):
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise Refusal(f"experiment.{name} must be an integer >= {low}, got {value!r}")


def activation(name: str):
    """The mean-field nonlinearity: tanh(sqrt2 z), sqrt2 relu(z) or z."""
    s = math.sqrt(2.0)
    return {
        "tanh": lambda z: torch.tanh(s * z),
        "relu": lambda z: s * torch.relu(z),
        "identity": lambda z: z,
    }[name]

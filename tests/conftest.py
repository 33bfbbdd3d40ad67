"""Fixtures shared by the test modules (which never import each other).

Constants that depend on the experiment's random draws (a point on the default boundary,
windows that straddle it) live here only, so a change of draws is one edit.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module

import zoomer
from zoomer import engine
from zoomer.reference import reference_grid

from zoomer.config import HYDRA_VERSION_BASE as VERSION_BASE

# A point on the default (tanh) condition's boundary: a manual target skips the search.
BOUNDARY_TARGET = (5.0, 1.6)

# Small enough for a 2-core CI machine: a few frames of a few pixels, few steps.
TINY = (
    "video.width=32", "video.height=18", "video.fps=4", "video.duration_s=1.5", "experiment.steps=20",
    "zoom=manual", f"zoom.target=[{BOUNDARY_TARGET[0]},{BOUNDARY_TARGET[1]}]", "zoom.decades=1.0",
    "engine.precision=float32",
)

# name: (experiment settings, window x and y bounds); each window straddles the boundary so
# both classes are compared.
ENGINE_CASES = {
    "tanh": (dict(), ((-1.0, 5.0), (-1.0, 2.5))),
    "relu": (dict(nonlinearity="relu"), ((-1.0, 4.0), (-1.0, 2.0))),
    "identity": (dict(nonlinearity="identity"), ((-1.0, 4.0), (-1.0, 2.0))),
    "single_datapoint": (dict(n_data=1), ((-1.0, 3.0), (-1.0, 2.0))),
    "target_dim_3": (dict(target_dim=3), ((-1.0, 5.0), (-1.0, 2.5))),
    "depth_3": (dict(depth=3), ((-1.0, 3.0), (-1.0, 3.0))),
    "paraminit": (dict(phase_space="paraminit_vs_lr"), ((-2.0, 2.0), (-1.0, 2.0))),
    "paraminit_every_step": (dict(phase_space="paraminit_vs_lr", offset="every_step"), ((-2.0, 2.0), (-1.0, 1.8))),
    "minibatch": (dict(batch_size=16), ((-1.0, 5.0), (-1.0, 2.5))),
    "probe_point": (dict(readout="probe_point"), ((-1.0, 3.0), (-1.0, 1.0))),
}

# Rounding is amplified by training near the boundary, so two correct engines (different
# operation order) can differ there by more than rounding. A pixel counts as chaotic when
# the engine's own readout moves by more than CHAOTIC relative when its coordinates move
# by NUDGE (log10 units, a few hundred ulps): there scores may differ by up
# to CHAOTIC_ERROR and the class may differ only where the nudge flips it too. Everywhere
# else the engines agree to STABLE_ERROR.
NUDGE = 1e-13
CHAOTIC = 1e-9
STABLE_ERROR = 1e-9
CHAOTIC_ERROR = 2e-2


@pytest.fixture(scope="session")
def tiny():
    """Overrides for a render of a few frames of a few pixels at a known boundary point."""
    return TINY


@pytest.fixture(scope="session")
def boundary_target():
    """(x, y) of a point on the default condition's boundary."""
    return BOUNDARY_TARGET


def launch_app(run_dir, *overrides, module="zoomer", script=None, check=True):
    """Run a zoomer app as a subprocess into a run directory; returns the CompletedProcess.
    The app is `python -m module`, or the installed console script when `script` is named."""
    flags = [o for o in overrides if o.startswith("-")]  # e.g. -m: Hydra wants flags first
    app = [str(Path(sys.executable).parent / script)] if script else [sys.executable, "-m", module]
    dirs = [f"hydra.run.dir={run_dir}"]
    if not any(o.startswith("hydra.sweep.dir=") for o in overrides):  # zoomer-targets is always a multirun
        dirs.append(f"hydra.sweep.dir={run_dir}")
    cmd = [*app, *flags, *dirs, *(o for o in overrides if not o.startswith("-"))]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="session")
def run_app():
    """launch_app, for tests that take it as a fixture."""
    return launch_app


def agreement(a, b):
    """(share of pixels of the same class, median relative score difference): how close a
    fast path comes to another where chaos near the boundary forbids exact comparison."""
    same = np.mean(np.sign(a) == np.sign(b))
    rel = np.abs(a - b) / np.maximum(np.abs(b), 1e-300)
    return same, float(np.median(rel))


@pytest.fixture(scope="session")
def compose_config():
    """Compose an app's config (config, still, ...) through the installed zoomer.conf."""
    from zoomer.config import register_configs

    register_configs()

    def composed(config_name, *overrides):
        with initialize_config_module(config_module="zoomer.conf", version_base=VERSION_BASE):
            return compose(config_name=config_name, overrides=list(overrides))

    return composed


@pytest.fixture(params=sorted(ENGINE_CASES))
def engine_case(request):
    """(name, experiment settings, window) of each case that straddles the boundary."""
    kw, bounds = ENGINE_CASES[request.param]
    return request.param, kw, zoomer.Window.from_bounds(*bounds)


@pytest.fixture(scope="session")
def assert_matches_reference():
    """Check readouts (H, W) of `window` against the slow reference, each class on its own."""
    return matches_reference


def matches_reference(exp, window, fast):
    size = fast.shape
    gx, gy = window.grid(size)
    slow = reference_grid(exp, gx, gy).reshape(size)
    own, nudged = (_torch_readouts(exp, gx + d, gy - d).reshape(size) for d in (0.0, NUDGE))
    chaotic = np.abs(nudged - own) > CHAOTIC * np.abs(own)
    flips = np.sign(nudged) != np.sign(own)
    wrong_class = (np.sign(fast) != np.sign(slow)) & ~flips
    assert not wrong_class.any(), f"class differs from the reference at {np.argwhere(wrong_class).tolist()}"
    error = np.abs(fast - slow) / np.abs(slow)
    for name, members in (("converged / negative", slow < 0), ("diverged / positive", slow > 0)):
        stable, wild = members & ~chaotic & ~flips, members & chaotic & ~flips
        assert stable.any() or not members.any(), f"{name}: no stable pixel to compare"
        assert error[stable].max(initial=0) <= STABLE_ERROR, (name, error[stable].max())
        assert error[wild].max(initial=0) <= CHAOTIC_ERROR, (name, error[wild].max())


def _torch_readouts(exp, gx, gy) -> np.ndarray:
    lrs, offsets = exp.hparams(torch.from_numpy(np.ravel(gx)), torch.from_numpy(np.ravel(gy)))
    return engine.train_chunk(exp, exp.problem(), lrs, offsets, compact=False, backend="torch").numpy()


def pytest_collection_modifyitems(items):
    """A test that runs an app as a subprocess pays Python's, torch's and Hydra's start-up
    (3-4 s) each time: it is slow, so `pytest -m "not slow"` stays a quick loop."""
    for item in items:
        if "run_app" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)

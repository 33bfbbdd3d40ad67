"""The fused Triton kernel against the slow reference and the torch path.

Without a GPU the kernel runs in Triton's interpreter, which is chosen when triton's jit
decorators run, i.e. when the kernel module is imported. So one subprocess with
TRITON_INTERPRET=1 trains every case (`python tests/test_kernels_triton.py OUT.npz`)
while this process, left uninterpreted for the other tests, computes the references.
"""
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import zoomer
from zoomer import engine
from zoomer.reference import reference_grid
from conftest import agreement

triton = pytest.importorskip("triton")

from zoomer.kernels import triton as triton_kernel  # noqa: E402  (after the skip)

STEPS = 20
SIZE = (6, 6)  # 36 runs: two programs in the interpreter, the second one partly empty
# name: (experiment settings, window x and y bounds, dtype); each straddles the boundary
# but "overflow", where every run dies within a few steps.
CASES = {
    "tanh": (dict(width=8), ((-1.0, 5.0), (-1.0, 2.5)), "float64"),
    "tanh_float32": (dict(width=8), ((-1.0, 5.0), (-1.0, 2.5)), "float32"),
    "tanh_width_16": (dict(), ((-1.0, 5.0), (-1.0, 2.5)), "float64"),
    "tanh_width_6": (dict(width=6), ((-1.0, 5.0), (-1.0, 2.5)), "float64"),
    "relu": (dict(width=8, nonlinearity="relu"), ((-1.0, 4.0), (-1.0, 2.0)), "float64"),
    "identity": (dict(width=8, nonlinearity="identity"), ((-1.0, 4.0), (-1.0, 2.0)), "float64"),
    "minibatch": (dict(width=8, batch_size=16), ((-1.0, 5.0), (-1.0, 2.5)), "float64"),
    "single_datapoint": (dict(width=8, n_data=1), ((-1.0, 3.0), (-1.0, 2.0)), "float64"),
    "paraminit": (dict(width=8, phase_space="paraminit_vs_lr"), ((-2.0, 2.0), (-1.0, 2.0)), "float64"),
    "paraminit_every_step": (dict(width=8, phase_space="paraminit_vs_lr", offset="every_step"),
                             ((-2.0, 2.0), (-1.0, 1.8)), "float64"),
    "overflow": (dict(width=8), ((20.0, 40.0), (20.0, 40.0)), "float64"),
}


def experiment(name):
    kw, bounds, dtype = CASES[name]
    return zoomer.Experiment(steps=STEPS, **kw), zoomer.Window.from_bounds(*bounds), dtype


def train_every_case(out: str) -> None:
    """The subprocess: every case through engine.landscape with the (interpreted) kernel."""
    assert triton_kernel.INTERPRET, "run with TRITON_INTERPRET=1"
    warnings.simplefilter("ignore")  # diverging runs overflow, as they should
    scores = {}
    for name in CASES:
        exp, win, dtype = experiment(name)
        scores[name] = zoomer.landscape(exp, win, SIZE, device="cpu", dtype=dtype, backend="triton")
    np.savez(out, **scores)


@pytest.fixture(scope="module")
def scores(tmp_path_factory):
    """{case: (kernel, reference, torch path)}; the references are computed meanwhile."""
    out = tmp_path_factory.mktemp("triton") / "scores.npz"
    root = Path(zoomer.__file__).resolve().parents[1]
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(root), OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, __file__, str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    # One thread each: tiny tensors gain nothing from two, and threads that spin while the
    # subprocess holds the other core make torch ~15x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        expected = {}
        for name in CASES:
            exp, win, dtype = experiment(name)
            gx, gy = win.grid(SIZE)
            slow = reference_grid(exp, gx, gy).reshape(SIZE)
            expected[name] = slow, zoomer.landscape(exp, win, SIZE, dtype=dtype, backend="torch")
    finally:
        torch.set_num_threads(threads)
    log = proc.communicate(timeout=600)[0].decode()
    assert proc.returncode == 0, log
    kernel = np.load(out)
    return {name: (kernel[name], *expected[name]) for name in CASES}


@pytest.mark.slow  # the Triton interpreter
@pytest.mark.parametrize("case", sorted(CASES))
def test_kernel_matches_reference_and_torch_path(scores, case):
    fast, slow, torch_path = scores[case]
    if CASES[case][2] == "float32":
        # float32 is another trajectory near the boundary: compare classes only.
        assert agreement(fast, slow)[0] >= 0.95 and agreement(fast, torch_path)[0] >= 0.95
        return
    for other in (slow, torch_path):
        same, med = agreement(fast, other)
        assert same >= 0.99 and med <= 1e-9, (same, med)
    if case == "overflow":
        assert (fast > 0).all()
    else:
        assert (fast < 0).any() and (fast > 0).any(), "case should straddle the boundary"


def test_kernel_is_only_offered_where_it_can_run():
    exp = zoomer.Experiment()
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    # (find("auto", ...) would also probe the kernel on the device: tested in test_kernels.py)
    assert triton_kernel.supports(exp, cuda, torch.float64) and triton_kernel.supports(exp, cuda, torch.float32)
    assert triton_kernel.INTERPRET or not triton_kernel.supports(exp, cpu, torch.float64)
    for kw in (dict(depth=3), dict(target_dim=2), dict(readout="probe_point")):
        assert not triton_kernel.supports(zoomer.Experiment(**kw), cuda, torch.float64)
    assert not triton_kernel.supports(exp, cuda, torch.float16)
    with pytest.raises(ValueError, match="backend='triton'"):
        engine.train_grid(zoomer.Experiment(depth=3), np.zeros(1), np.zeros(1), backend="triton")


def test_kernel_compiles_for_h100_onto_fp64_tensor_cores():
    """The interpreter accepts more than the compiler: compile for sm_90 (no GPU needed)."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler.compiler import ASTSource

    kernel = triton_kernel._train_kernel
    pointers = {"BATCHES": "*i64", "DEAD_AT": "*i32"}  # lower case: i32 sizes; other pointers: data
    signature = {
        p.name: "constexpr" if p.is_constexpr else "i32" if p.name.islower() else pointers.get(p.name, "*fp64")
        for p in kernel.params
    }
    constants = dict(ACT="tanh", MINIBATCH=True, OFFSET_EVERY_STEP=True, RUNS=triton_kernel.RUNS, ROWS=triton_kernel.ROWS, WP=16,
                     CAP=1e6, TAIL=20)  # fmt: skip
    compiled = triton.compile(
        ASTSource(kernel, signature, constants),
        target=GPUTarget("cuda", 90, 32),
        options=dict(num_warps=triton_kernel.NUM_WARPS, enable_fp_fusion=triton_kernel.FP_FUSION),
    )
    assert re.search(r"mma\.sync\.aligned\.m\w+\.row\.col\.f64", compiled.asm["ptx"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_compiled_kernel_matches_torch_path_on_cuda(dtype):
    exp = zoomer.Experiment(steps=100)
    win = zoomer.Window.from_bounds((-2.0, 6.0), (-3.0, 5.0))
    fast = zoomer.landscape(exp, win, (64, 64), device="cuda", dtype=dtype, backend="triton")
    slow = zoomer.landscape(exp, win, (64, 64), device="cuda", dtype=dtype, backend="torch")
    same, med = agreement(fast, slow)
    assert same >= 0.99 and (dtype == "float32" or med <= 1e-9), (same, med)


if __name__ == "__main__":
    train_every_case(sys.argv[1])

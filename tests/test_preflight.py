"""User mistakes are refused before any training, in one line with exit 2; Ctrl-C at any
stage ends with exit 130 and says what is safe."""
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import TINY


def refused(proc, *words):
    """Exit 2, one line on stderr naming the problem, no traceback."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("zoomer: error: "), lines
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def no_runs_trained(run_dir):
    return not list((run_dir / "frames").glob("*.npy")) and not (run_dir / "frames" / "target.json").exists()


@pytest.mark.parametrize("target, words", [
    ("[100,100]", ("zoom.target=[100, 100]", "outside the experiment's window")),
    ("[nan,1]", ("zoom.target", "finite")),
])
def test_a_manual_target_off_the_window_is_refused_before_training(tmp_path, run_app, target, words):
    proc = run_app(tmp_path, *TINY, f"zoom.target={target}", check=False)
    refused(proc, *words)
    assert no_runs_trained(tmp_path)


def test_a_manual_target_off_the_boundary_suggests_a_boundary_point_that_renders(tmp_path, run_app):
    """The suggestion is refined to the zoom's last frame and checked: following it renders
    the same zoom (it was once a coarse guess, refused in turn with itself as suggestion)."""
    proc = run_app(tmp_path, *TINY, "zoom.target=[-1.5,-2.5]", check=False)
    line = refused(proc, "not on the boundary", "nearby, zoom.target=[", "is on it")
    suggested = line.split("zoom.target=[")[-1].split("]")[0]
    run_app(tmp_path / "again", *TINY, f"zoom.target=[{suggested}]")  # renders: exit 0
    assert no_runs_trained(tmp_path)


def test_a_paper_panel_without_a_boundary_at_fewer_steps_names_the_steps_not_a_target(tmp_path, run_app):
    proc = run_app(tmp_path, "paper=tanh", *TINY[:5], check=False)
    refused(proc, "paper=tanh", "experiment.steps=20", "1000 steps", "quality=paper")
    assert no_runs_trained(tmp_path)


def test_a_size_the_codec_refuses_is_refused_before_training(tmp_path, run_app):
    """libx265 wants 16 pixels a side: said up front, not as zoomer's bug after the compute."""
    proc = run_app(tmp_path, *TINY, "video.codec=hevc", "video.width=16", "video.height=10", check=False)
    refused(proc, "16x10", "video.codec=hevc", "Image size is too small")
    assert no_runs_trained(tmp_path)


@pytest.mark.parametrize("device", ["cuda", "cuda:7", "tpu"])
def test_a_device_this_machine_lacks_is_one_line(tmp_path, run_app, device):
    if device.startswith("cuda"):
        import torch

        if torch.cuda.device_count() > 7:
            pytest.skip("this machine has that GPU")
    refused(run_app(tmp_path, *TINY, f"engine.device={device}", check=False), f"engine.device={device!r}")


def test_a_depth_too_deep_for_an_automatic_target_is_refused_before_the_search(tmp_path, run_app):
    proc = run_app(tmp_path, *TINY, "zoom.target=auto", "zoom.decades=20", check=False)
    refused(proc, "zoom.decades=20", "too deep for engine.precision=float32")  # TINY trains float32
    assert no_runs_trained(tmp_path)


def test_assembling_a_store_that_does_not_exist_creates_nothing(tmp_path, run_app):
    missing = tmp_path / "no-such-store"
    proc = run_app(tmp_path / "run", *TINY, "render.mode=assemble", f"render.store_dir={missing}", check=False)
    refused(proc, "render.store_dir", "holds no frame store")
    assert not missing.exists()


@pytest.mark.parametrize("script", ["zoomer", "zoomer-still", "zoomer-dimension", "zoomer-targets"])
def test_an_output_directory_that_cannot_be_created_is_one_line(tmp_path, run_app, script):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    refused(run_app(blocker / "run", script=script, check=False), "cannot create the output directory")


def interrupt_when(tmp_path, overrides, marker: str, signum=signal.SIGINT):
    """Start zoomer, send `signum` once `marker` appears in its log, return (exit code, stderr)."""
    log = tmp_path / "zoomer.log"
    cmd = [sys.executable, "-m", "zoomer", f"hydra.run.dir={tmp_path}", *overrides]
    with open(log, "w") as out:
        # A shell without job control starts background jobs with SIGINT ignored, and Python
        # keeps it so: give the app the default disposition, as a terminal would.
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.time() + 300
        while marker not in log.read_text() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, f"zoomer ended before {marker!r}: {proc.stderr.read()[-2000:]}"
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    return proc.returncode, err


@pytest.mark.slow
@pytest.mark.parametrize("stage, marker, safe", [
    ("search", "searching a zoom target", "nothing was written"),
    ("compute", "frames to compute", "frames are safe in"),
])
def test_ctrl_c_at_any_stage_exits_130_and_says_what_is_safe(tmp_path, stage, marker, safe):
    overrides = [*TINY, "video.width=96", "video.height=54"]
    if stage == "search":  # a long search: big levels of long runs
        overrides += ["experiment.steps=400", "zoom.target=auto", "search.resolution=48"]
    else:  # frames of a few seconds each at TINY's boundary point
        overrides += ["render.frames=exact", "render.guess=1", "video.duration_s=3"]
    code, err = interrupt_when(tmp_path, overrides, marker)
    assert code == 130, err[-2000:]
    assert "zoomer: interrupted: " in err and safe in err and "Traceback" not in err, err[-2000:]


@pytest.mark.slow
def test_sigterm_is_ctrl_c_with_exit_143(tmp_path):
    """What timeout, SLURM and docker stop send: the same words and cleanup as Ctrl-C."""
    overrides = [*TINY, "video.width=96", "video.height=54", "render.frames=exact", "render.guess=1",
                 "video.duration_s=3"]
    code, err = interrupt_when(tmp_path, overrides, "frames to compute", signal.SIGTERM)
    assert code == 143, err[-2000:]
    assert "zoomer: terminated (SIGTERM): " in err and "frames are safe in" in err and "Traceback" not in err


@pytest.mark.slow
def test_a_bug_is_one_line_naming_the_log_that_holds_its_traceback(tmp_path, run_app):
    """A frame store whose target.json lacks the target's fields: nothing checks that, so
    reading it fails as a bug would."""
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "target.json").write_text("{}")
    auto = [o for o in TINY if not o.startswith("zoom")] + ["zoom=auto", "zoom.decades=1.0"]
    proc = run_app(tmp_path, *auto, check=False)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("zoomer:")]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("zoomer: bug: KeyError") and "report it" in lines[0], lines
    log = lines[0].rsplit(" in ", 1)[1]
    assert "Traceback" in open(log).read() and log.startswith(str(tmp_path))


@pytest.mark.slow
def test_a_multirun_runs_every_valid_job_and_names_the_failed_ones_into_a_closed_pipe(tmp_path):
    """`zoomer -m experiment.steps=-1,20 ... | head -1`: job 0 is refused, job 1 renders, the
    sweep ends naming job 0 (exit 2), and the closed stdout costs no "Logging error"."""
    cmd = [sys.executable, "-m", "zoomer", "-m", f"hydra.sweep.dir={tmp_path}", "experiment.steps=-1,20",
           *(o for o in TINY if not o.startswith("experiment.steps"))]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.readline()  # as head -1 does: one line, then the reader is gone
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 2, err[-2000:]
    assert "Logging error" not in err and "Traceback" not in err, err[-2000:]
    assert "zoomer: job 0 (experiment.steps=-1 " in err and "experiment.steps must be" in err
    assert "zoomer: 1 of 2 jobs failed (job 0); the others ran" in err
    assert (tmp_path / "1_tanh_seed0" / "zoom.mp4").exists()


@pytest.mark.slow
def test_a_disk_already_full_at_start_is_one_line(tmp_path, run_app):
    """Hydra writes its config into the run directory before zoomer starts: a full disk
    is named before that, not in Hydra's traceback. A full disk: a small tmpfs, filled."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root")
    try:
        with open(disk / "fill", "wb") as f, pytest.raises(OSError):
            f.write(bytes(128 * 1024))
        refused(run_app(disk / "run", *TINY, check=False), "cannot write to the output directory",
                "No space left on device")
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_resume_does_not_train_the_boundary_check_again(tmp_path, compose_config, monkeypatch):
    """The check passed before the first frame was stored; on a resume (here: one frame lost)
    it would only cost time (51 s on a deep zoom), and its Ctrl-C line said nothing was computed."""
    from zoomer import render

    cfg = compose_config("config", *TINY, "render.mode=compute")
    render.render(cfg, tmp_path)
    frames = sorted((tmp_path / "frames").glob("*.npy"))
    frames[0].unlink()
    monkeypatch.setattr(render, "check_near_boundary", lambda *a, **k: pytest.fail("checked again"))
    meta = render.render(cfg, tmp_path)
    assert meta["frames"]["computed"] == 1 and len(list((tmp_path / "frames").glob("*.npy"))) == len(frames)
    assert meta["experiment_settings"]["steps"] == 20  # what ran, beside the config as given

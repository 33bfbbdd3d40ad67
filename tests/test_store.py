"""Renders that survive: resume after SIGKILL, shards on real Hydra launchers, re-colouring,
refusing a foreign store, and the target sweep."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_module

from test_cli import TINY, run_app
from zoomer import render as render_module
from zoomer.video import probe

EXACT = [*TINY, "render.frames=exact", "video.duration_s=2.0"]  # 8 frames, each computed


def stored(store: Path) -> dict:
    return {p.name: np.load(p) for p in sorted(store.glob("*.npy"))}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("whole")
    run_app(run_dir, *EXACT)
    return run_dir


def test_killed_render_resumes_and_recomputes_only_missing_frames(tmp_path, uninterrupted):
    cmd = [sys.executable, "-m", "zoomer", f"hydra.run.dir={tmp_path}", *EXACT, "experiment.steps=60"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while len(list((tmp_path / "frames").glob("*.npy"))) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    before = len(list((tmp_path / "frames").glob("*.npy")))
    assert 0 < before < 8, "the kill must land part-way"
    run_app(tmp_path, *EXACT, "experiment.steps=60")
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["frames"]["computed"] == 8 - before and meta["frames"]["reused"] == before
    whole = tmp_path / "whole60"
    run_app(whole, *EXACT, "experiment.steps=60")
    a, b = stored(tmp_path / "frames"), stored(whole / "frames")
    assert a.keys() == b.keys() and len(a) == 8
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert probe(tmp_path / "zoom.mp4").n_frames == 8


@pytest.mark.parametrize("launcher", ["submitit_local", "joblib"])
def test_sharded_render_on_real_launchers_matches_unsharded(tmp_path, uninterrupted, launcher):
    store = tmp_path / "store"
    run_app(tmp_path / "unused", "-m", f"hydra/launcher={launcher}", f"hydra.sweep.dir={tmp_path / 'sweep'}",
            "render.num_shards=2", "render.shard=0,1", f"render.store_dir={store}", *EXACT)
    assert len(list(store.glob("*.npy"))) == 8
    run_app(tmp_path / "assembled", *EXACT, "render.mode=assemble", f"render.store_dir={store}")
    assert probe(tmp_path / "assembled" / "zoom.mp4").n_frames == 8
    a, b = stored(store), stored(uninterrupted / "frames")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_assemble_names_missing_frames(tmp_path):
    store = tmp_path / "store"
    run_app(tmp_path / "s0", *EXACT, "render.num_shards=2", "render.shard=0", f"render.store_dir={store}")
    proc = run_app(tmp_path / "a", *EXACT, "render.mode=assemble", f"render.store_dir={store}", check=False)
    assert proc.returncode == 2 and "4 of 8 frames are missing" in proc.stderr and "1, 3, 5, 7" in proc.stderr


def test_recolouring_reuses_stored_scores_without_the_engine(tmp_path, uninterrupted, monkeypatch):
    run_dir = tmp_path / "recolour"
    run_dir.mkdir()
    os.symlink(uninterrupted / "frames", run_dir / "frames")

    def no_engine(*args, **kwargs):
        raise AssertionError("the engine was called")

    monkeypatch.setattr(render_module.engine, "landscape", no_engine)
    monkeypatch.setattr("zoomer.target.landscape", no_engine)
    with initialize_config_module(config_module="zoomer.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=[*EXACT, "color=rdbu", "video.overlay=false"])
    meta = render_module.render(cfg, run_dir)
    assert meta["frames"]["computed"] == 0 and meta["frames"]["reused"] == 8
    assert probe(run_dir / "zoom.mp4").n_frames == 8


def test_a_store_from_another_config_is_refused(tmp_path, uninterrupted):
    run_dir = tmp_path / "other"
    run_dir.mkdir()
    os.symlink(uninterrupted / "frames", run_dir / "frames")
    proc = run_app(run_dir, *EXACT, "experiment.steps=21", check=False)
    assert proc.returncode == 2
    assert "different render" in proc.stderr and "experiment.steps" in proc.stderr


def test_unwritable_output_fails_before_compute(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    proc = run_app(tmp_path / "run", *EXACT, f"render.store_dir={blocked / 'frames'}", check=False)
    assert proc.returncode == 2 and "cannot write to the output directory" in proc.stderr


def test_missing_ffmpeg_fails_clearly_before_compute(tmp_path):
    env_cmd = [sys.executable, "-m", "zoomer", f"hydra.run.dir={tmp_path}", *EXACT]
    proc = subprocess.run(env_cmd, capture_output=True, text=True,
                          env={**os.environ, "IMAGEIO_FFMPEG_EXE": str(tmp_path / "no-ffmpeg")})
    assert proc.returncode == 2 and "ffmpeg" in proc.stderr
    assert not list(tmp_path.glob("frames/*.npy"))


def test_target_sweep_writes_a_sheet_and_a_ranking(tmp_path):
    run_app(tmp_path, "candidates.seeds=2", "candidates.depth=1.0", "candidates.thumb=16",
            "candidates.search_resolution=12", "experiment.steps=20", "engine.precision=float32",
            module="zoomer.sweep")
    ranking = json.loads((tmp_path / "targets.json").read_text())
    assert [r["seed"] for r in ranking if r["found"]] and (tmp_path / "contact_sheet.png").exists()
    found = [r for r in ranking if r["found"]]
    assert len(found) == 2 and found[0]["rank"] == 1 and "zoom.target=" in found[0]["override"]
    assert found[0]["rank_score"] >= found[1]["rank_score"]  # Target.rank_score, as every search ranks

"""Renders that survive: resume after SIGKILL, shards on real Hydra launchers, re-colouring,
refusing a foreign store, and the target sweep."""
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from hydra import compose, initialize_config_module

import zoomer.conf
from conftest import VERSION_BASE, TINY, launch_app as run_app
from zoomer import render as render_module
from zoomer.atomic import write_atomic
from zoomer.config import register_configs
from zoomer.store import FORMAT, CorruptFrame, FrameStore, StoreMismatch, read_frame
from zoomer.video import probe

COLOR_PRESETS = sorted(p.stem for p in (Path(zoomer.conf.__path__[0]) / "color").glob("*.yaml"))
EXACT = [*TINY, "render.frames=exact", "video.duration_s=2.0"]  # 8 frames, each computed
# Longer training, so that a kill lands part-way; the boundary moves with it.
SLOWER = ["experiment.steps=60", "zoom.target=[5.07,1.83]"]


def stored(store: Path) -> dict:
    return {p.name: read_frame(p) for p in sorted(store.glob("*.npy"))}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("whole")
    run_app(run_dir, *EXACT)
    return run_dir


@pytest.mark.slow  # runs the app
def test_killed_render_resumes_and_recomputes_only_missing_frames(tmp_path, uninterrupted):
    cmd = [sys.executable, "-m", "zoomer", f"hydra.run.dir={tmp_path}", *EXACT, *SLOWER]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while len(list((tmp_path / "frames").glob("*.npy"))) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    before = len(list((tmp_path / "frames").glob("*.npy")))
    assert 0 < before < 8, "the kill must land part-way"
    run_app(tmp_path, *EXACT, *SLOWER)
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["frames"]["computed"] == 8 - before and meta["frames"]["reused"] == before
    whole = tmp_path / "whole60"
    run_app(whole, *EXACT, *SLOWER)
    a, b = stored(tmp_path / "frames"), stored(whole / "frames")
    assert a.keys() == b.keys() and len(a) == 8
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert probe(tmp_path / "zoom.mp4").n_frames == 8


@pytest.mark.slow  # runs the app
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


@pytest.mark.slow  # runs the app
def test_assemble_names_missing_frames(tmp_path):
    store = tmp_path / "store"
    run_app(tmp_path / "s0", *EXACT, "render.num_shards=2", "render.shard=0", f"render.store_dir={store}")
    proc = run_app(tmp_path / "a", *EXACT, "render.mode=assemble", f"render.store_dir={store}", check=False)
    assert proc.returncode == 2 and "4 of 8 frames are missing" in proc.stderr and "1, 3, 5, 7" in proc.stderr


@pytest.mark.slow  # runs the app
def test_recolouring_reuses_stored_scores_without_the_engine(tmp_path, uninterrupted, monkeypatch):
    run_dir = tmp_path / "recolour"
    run_dir.mkdir()
    os.symlink(uninterrupted / "frames", run_dir / "frames")

    def no_engine(*args, **kwargs):
        raise AssertionError("the engine was called")

    for module in ("compute", "target", "preflight"):
        monkeypatch.setattr(f"zoomer.{module}.landscape", no_engine)
    frames = {p: p.stat().st_mtime_ns for p in (run_dir / "frames").iterdir()}
    register_configs()  # as the app does on import; this test composes in-process
    with initialize_config_module(config_module="zoomer.conf", version_base=VERSION_BASE):
        cfgs = {preset: compose(config_name="config", overrides=[*EXACT, f"color={preset}", "video.overlay=false"])
                for preset in COLOR_PRESETS}
    for preset, cfg in cfgs.items():  # fire_ice too: its antialiasing is render.supersample's, not a colour's
        meta = render_module.render(cfg, run_dir)
        assert meta["frames"]["computed"] == 0 and meta["frames"]["reused"] == 8, preset
        assert probe(run_dir / "zoom.mp4").n_frames == 8
    assert {p: p.stat().st_mtime_ns for p in (run_dir / "frames").iterdir()} == frames


@pytest.mark.slow  # runs the app
def test_a_store_from_another_config_is_refused(tmp_path, uninterrupted):
    run_dir = tmp_path / "other"
    run_dir.mkdir()
    os.symlink(uninterrupted / "frames", run_dir / "frames")
    proc = run_app(run_dir, *EXACT, "experiment.steps=21", check=False)
    assert proc.returncode == 2
    assert "different render" in proc.stderr and "experiment.steps" in proc.stderr


@pytest.mark.slow  # runs the app
def test_unwritable_output_fails_before_compute(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    proc = run_app(tmp_path / "run", *EXACT, f"render.store_dir={blocked / 'frames'}", check=False)
    assert proc.returncode == 2 and "cannot write to the output directory" in proc.stderr


@pytest.mark.slow  # runs the app
def test_missing_ffmpeg_fails_clearly_before_compute(tmp_path):
    env_cmd = [sys.executable, "-m", "zoomer", f"hydra.run.dir={tmp_path}", *EXACT]
    proc = subprocess.run(env_cmd, capture_output=True, text=True,
                          env={**os.environ, "IMAGEIO_FFMPEG_EXE": str(tmp_path / "no-ffmpeg")})
    assert proc.returncode == 2 and "ffmpeg" in proc.stderr
    assert not list(tmp_path.glob("frames/*.npy"))


@pytest.mark.slow  # runs the app
def test_target_sweep_writes_a_sheet_and_a_ranking(tmp_path):
    """zoomer-targets is a multirun, one job per search.seed; its callback ranks them."""
    run_app(tmp_path, "search.seed=3,5", "decades=1.0", "thumb=16", "search.resolution=12", "experiment.steps=20",
            "engine.precision=float32", module="zoomer.sweep")
    assert len(list(tmp_path.glob("*_tanh_seed*/candidate.json"))) == 2  # the jobs, in the sweep directory
    ranking = json.loads((tmp_path / "targets.json").read_text())
    found = [r for r in ranking if r["found"]]
    assert sorted(r["seed"] for r in found) == [3, 5] and found[0]["rank"] == 1
    assert found[0]["rank_score"] >= found[1]["rank_score"]  # Target.rank_score, as every search ranks
    # The override renders the landscape the candidate was searched in (its steps and precision included).
    assert found[0]["override"].startswith("experiment=tanh experiment.steps=20 engine.precision=float32 zoom=manual "
                                           "zoom.target=["
                                           f"{found[0]['point'][0]!r},")
    sheet = Image.open(tmp_path / "contact_sheet.png")
    assert sheet.width > 2 * 16 and sheet.height > 16  # two thumbnails and their captions


# Stored frames are checked against the checksum written with them.

def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "zeroed":  # the second half overwritten with zeros, the length kept
        path.write_bytes(data[: len(data) // 2] + bytes(len(data) - len(data) // 2))
    else:  # truncated
        path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("how", ["zeroed", "truncated"])
def test_a_damaged_frame_is_reported_by_its_path_and_counts_as_missing(tmp_path, caplog, how):
    store = FrameStore(tmp_path, {"render": 1})
    scores = np.linspace(-3, 3, 12 * 7).reshape(12, 7)
    store.save("a", scores)
    assert store.has("a") and np.array_equal(store.load("a"), scores)
    assert np.array_equal(np.load(store.path("a")), scores)  # still a .npy file to numpy
    damage(store.path("a"), how)
    with caplog.at_level(logging.WARNING, logger="zoomer.store"):
        assert not store.has("a") and not store.has("a")
    assert len(caplog.records) == 1 and str(store.path("a")) in caplog.text
    with pytest.raises(CorruptFrame, match=str(store.path("a"))):
        store.load("a")
    store.save("a", scores)  # computed again
    assert store.has("a") and np.array_equal(store.load("a"), scores)


def test_a_store_of_another_format_is_refused(tmp_path):
    FrameStore(tmp_path, {"render": 1})
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["store_format"] == FORMAT
    del manifest["store_format"]  # as the stores before checksums were written
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreMismatch, match="store format 1.*new output directory"):
        FrameStore(tmp_path, {"render": 1})


def test_stale_temp_files_are_removed_on_open_and_live_ones_kept(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    FrameStore(tmp_path, {"render": 1})
    host = __import__("zoomer.atomic", fromlist=["_host"])._host()
    stale = tmp_path / f".abc.npy.tmp-{host}-{dead_pid}-k2j4_x"
    live = tmp_path / f".abd.npy.tmp-{host}-{os.getpid()}-k2j4_y"
    foreign = tmp_path / f".abe.npy.tmp-otherhost-{dead_pid}-k2j4_z"
    for path in (stale, live, foreign):
        path.write_bytes(b"half a frame")
    FrameStore(tmp_path, {"render": 1})
    assert not stale.exists() and live.exists() and foreign.exists()  # another host's: only once old


@pytest.mark.parametrize("mask", [0o002, 0o022, 0o077])
def test_stored_files_get_the_permissions_the_umask_allows(tmp_path, mask):
    old = os.umask(mask)
    try:
        store = FrameStore(tmp_path / "store", {"render": 1})
        store.save("a", np.zeros((2, 2)))
        write_atomic(tmp_path / "out.json", lambda f: f.write(b"{}"))
    finally:
        os.umask(old)
    for path in (store.path("a"), tmp_path / "store" / "manifest.json", tmp_path / "out.json"):
        assert path.stat().st_mode & 0o777 == 0o666 & ~mask, path


def test_a_failed_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "metadata.json"
    write_atomic(path, lambda f: f.write(b"good"))

    def disk_full(f):
        f.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        write_atomic(path, disk_full)
    assert path.read_bytes() == b"good" and [p.name for p in tmp_path.iterdir()] == ["metadata.json"]


@pytest.mark.slow
def test_a_damaged_frame_is_recomputed_and_the_video_is_the_same(tmp_path, uninterrupted):
    run_dir = tmp_path / "damaged"
    shutil.copytree(uninterrupted, run_dir, ignore=shutil.ignore_patterns(".hydra", "*.log"))
    (run_dir / "zoom.mp4").unlink()
    frames = sorted((run_dir / "frames").glob("*.npy"))
    damage(frames[3], "zeroed")
    proc = run_app(run_dir, *EXACT)
    assert f"{frames[3]} is damaged" in proc.stdout + proc.stderr  # the log names it
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert meta["frames"]["computed"] == 1 and meta["frames"]["reused"] == 7
    assert (run_dir / "zoom.mp4").read_bytes() == (uninterrupted / "zoom.mp4").read_bytes()
    a, b = stored(run_dir / "frames"), stored(uninterrupted / "frames")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


# One override per fingerprint key that changes that key alone.
FINGERPRINT_OVERRIDES = {
    "experiment": "experiment.steps=21",
    "start": "video.height=32",  # another shape cuts another start window
    "zoom": "zoom.decades=3",
    "search": "search.seed=1",
    "precision": "engine.precision=float64",
    "frames": "render.frames=exact",
    "guess": "render.guess=4",
    "supersample": "render.supersample=2",
    "computed_by": "engine.backend=torch",
}


def render_fingerprint(compose_config, *overrides) -> dict:
    """The fingerprint render() gives the store for these settings, built as it builds it."""
    from omegaconf import OmegaConf

    from zoomer.engine import computed_by
    from zoomer.plan import start_window, supersample, zoom_decades
    from zoomer.precision import dtypes
    from zoomer.run_setup import RunSetup

    cfg = compose_config("config", *TINY, *overrides)
    app = OmegaConf.to_object(cfg)
    start = start_window(app.experiment.window.to_window(), app.video)
    setup = RunSetup.resolve(app.experiment, app.quality, app.engine, zoom_decades(start, app.zoom))
    exp, device = setup.experiment, setup.device
    runner = computed_by(app.engine.backend, exp, device, dtypes(app.engine.precision))
    k = supersample(app.render.supersample, device, app.panel)
    return render_module.fingerprint(cfg, exp, start, app.zoom, k, runner)


def test_every_fingerprint_key_keeps_a_foreign_store_out(compose_config, tmp_path):
    """Each key's setting changed alone changes that key (precision also the float type that
    computed_by names), and the store refuses it by name; a key added to the fingerprint
    without an override here fails the first assert."""
    base = render_fingerprint(compose_config)
    assert set(base) == set(FINGERPRINT_OVERRIDES)
    FrameStore(tmp_path, base).save("a", np.zeros((2, 2)))  # a store with a frame to keep apart
    for key, override in FINGERPRINT_OVERRIDES.items():
        other = render_fingerprint(compose_config, override)
        changed = [k for k in base if base[k] != other[k]]
        assert changed == [key] or (key == "precision" and changed == [key, "computed_by"]), override
        with pytest.raises(StoreMismatch, match=f"differs in: .*{key}"):
            FrameStore(tmp_path, other)
    assert base["computed_by"] == {"device": "cpu", "backend": {"float32": "cpu"}}  # TINY trains float32


def test_a_resume_on_another_backend_is_refused_naming_both(compose_config, tmp_path):
    FrameStore(tmp_path, render_fingerprint(compose_config)).save("a", np.zeros((2, 2)))
    with pytest.raises(StoreMismatch, match=r"computed_by.backend.float32 \(stored cpu, now torch\)"):
        FrameStore(tmp_path, render_fingerprint(compose_config, "engine.backend=torch"))


def test_a_store_that_holds_nothing_yet_is_taken_over_by_another_render(tmp_path):
    """A render refused or stopped before its first frame (a manual target off the boundary,
    Ctrl-C in the search) leaves only its manifest: the same directory serves the next
    try. A searched target or a frame is something to keep apart."""
    FrameStore(tmp_path, {"render": 1})
    FrameStore(tmp_path, {"render": 2})
    assert json.loads((tmp_path / "manifest.json").read_text())["render"] == 2
    store = FrameStore(tmp_path, {"render": 2})
    store.write_json("target.json", {"point": [1.0, 2.0]})
    with pytest.raises(StoreMismatch, match="differs in: render"):
        FrameStore(tmp_path, {"render": 3})


def test_assembling_another_backends_store_asks_for_the_shards_settings(compose_config, tmp_path):
    """Assemble trains nothing, but reads frames by the settings that made them: it asks for
    those, not for a new output directory."""
    from zoomer.render import render

    FrameStore(tmp_path / "store", render_fingerprint(compose_config, "engine.backend=torch"))
    with pytest.raises(StoreMismatch, match=r"computed_by.backend.float32 \(stored torch, now cpu\)\); "
                                            "assemble with the settings the shards computed with"):
        render(compose_config("config", *TINY, "render.mode=assemble", f"render.store_dir={tmp_path / 'store'}"),
               tmp_path / "run")


@pytest.mark.slow  # needs the uninterrupted render
def test_a_disk_full_at_metadata_keeps_the_previous_video_poster_and_metadata(tmp_path, uninterrupted, monkeypatch):
    """The outputs of one render are replaced together or not at all: a re-encode whose
    metadata.json cannot be written leaves the old video and poster beside the old metadata."""
    import errno

    run_dir = tmp_path / "again"
    run_dir.mkdir()
    os.symlink(uninterrupted / "frames", run_dir / "frames")
    outputs = ("zoom.mp4", "poster.png", "metadata.json")
    for name in outputs:
        shutil.copy(uninterrupted / name, run_dir / name)
    before = {name: (run_dir / name).read_bytes() for name in outputs}

    def disk_full(path, write):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(render_module, "write_atomic", disk_full)
    register_configs()
    with initialize_config_module(config_module="zoomer.conf", version_base=VERSION_BASE):
        cfg = compose(config_name="config", overrides=[*EXACT, "color=fire_ice"])  # another video
    with pytest.raises(OSError, match="No space left"):
        render_module.render(cfg, run_dir)
    assert {name: (run_dir / name).read_bytes() for name in outputs} == before
    assert sorted(p.name for p in run_dir.iterdir()) == sorted([*outputs, "frames"])  # no temporary file left


# The CPU default: keyframes, each the next one's runs reused inside it, so a keyframe computed
# in another process or after a stop must still see exactly what an uninterrupted run saw.
KEYFRAMES = [*TINY, "render.frames=keyframes", "zoom.decades=1.5"]  # 5 keyframes, 6 frames


@pytest.mark.slow  # renders in-process: 3 keyframe plans' worth of training
def test_keyframe_renders_resumed_and_sharded_match_an_uninterrupted_one(tmp_path, compose_config):
    """A keyframe render stopped after shard 0's keyframes (render.mode=compute) resumes, and one
    whose shards were computed apart is assembled, to the frames and video bytes of one run."""
    def render(run_dir, *overrides):
        run_dir.mkdir(parents=True)
        return render_module.render(compose_config("config", *KEYFRAMES, *overrides), run_dir)

    whole = tmp_path / "whole"
    render(whole)
    shard = ("render.num_shards=2", "render.mode=compute")
    stopped = tmp_path / "stopped"
    render(stopped, *shard, "render.shard=0")
    done = len(stored(stopped / "frames"))
    sharded = tmp_path / "sharded"
    shutil.copytree(stopped / "frames", sharded / "frames")  # shard 0's keyframes, before the resume
    render(sharded / "1", *shard, "render.shard=1", f"render.store_dir={sharded / 'frames'}")
    render(sharded / "assembled", "render.mode=assemble", f"render.store_dir={sharded / 'frames'}")
    meta = render(stopped / "resumed", f"render.store_dir={stopped / 'frames'}")
    assert meta["frames"]["reused"] == done and 0 < done < meta["frames"]["computed"] + done
    reference = stored(whole / "frames")
    for run_dir, store in ((stopped / "resumed", stopped / "frames"), (sharded / "assembled", sharded / "frames")):
        frames = stored(store)
        assert frames.keys() == reference.keys() and all(np.array_equal(frames[k], reference[k]) for k in frames)
        assert (run_dir / "zoom.mp4").read_bytes() == (whole / "zoom.mp4").read_bytes()
        assert (run_dir / "poster.png").read_bytes() == (whole / "poster.png").read_bytes()

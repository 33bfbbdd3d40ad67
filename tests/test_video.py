import os
import signal
import subprocess
import sys
import time
from importlib.resources import files
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from zoomer import video
from zoomer.atomic import remove_stale
from zoomer.config import VideoConfig
from zoomer.video import VideoWriter, moov_before_mdat, mp4_boxes, probe, save_png

CONF = Path(str(files("zoomer.conf"))) / "video"
WIDTH, HEIGHT, N = 64, 36, 6


@pytest.fixture(scope="module")
def frames():
    """Distinct smooth frames: a colour ramp sliding a little each frame."""
    y, x = np.mgrid[:HEIGHT, :WIDTH]
    return [np.stack([(4 * x + 10 * t) % 256, 7 * y, np.full_like(x, 40 * t)], axis=-1).astype(np.uint8)
            for t in range(N)]


def write(path, frames, **settings):
    config = VideoConfig(width=WIDTH, height=HEIGHT, fps=10, **settings)
    with VideoWriter(path, config) as writer:
        for frame in frames:
            writer.write(frame)
    return path


def test_mp4_round_trip(tmp_path, frames):
    path = write(tmp_path / "zoom.mp4", frames, crf=10, preset="ultrafast")
    info = probe(path)
    assert (info.n_frames, info.width, info.height) == (N, WIDTH, HEIGHT)
    assert (info.codec, info.pix_fmt) == ("h264", "yuv420p")
    assert moov_before_mdat(path) and mp4_boxes(path)[0] == "ftyp"
    decoded = imageio_ffmpeg.read_frames(str(path))
    next(decoded)
    first = np.frombuffer(next(decoded), np.uint8).reshape(HEIGHT, WIDTH, 3)
    decoded.close()
    assert np.abs(first.astype(int) - frames[0]).mean() < 8  # colours survive, in RGB order


def test_hevc_is_tagged_for_apple_players(tmp_path, frames):
    path = write(tmp_path / "zoom.mp4", frames, codec="hevc", preset="ultrafast")
    assert probe(path).codec == "hevc" and b"hvc1" in path.read_bytes()
    assert moov_before_mdat(path)


def test_gif_loops_forever(tmp_path, frames):
    path = write(tmp_path / "zoom.gif", frames, format="gif")
    info = probe(path)
    assert (info.n_frames, info.width, info.height, info.codec) == (N, WIDTH, HEIGHT, "gif")
    assert b"NETSCAPE2.0\x03\x01\x00\x00" in path.read_bytes()  # loop count 0 = forever


def test_webp_loops_forever(tmp_path, frames):
    path = write(tmp_path / "zoom.webp", frames, format="webp")
    info = probe(path)
    assert (info.n_frames, info.width, info.height, info.codec) == (N, WIDTH, HEIGHT, "webp_anim")
    data = path.read_bytes()
    anim = data.index(b"ANIM") + 8  # chunk name, size; then background colour, loop count
    assert data[anim + 4:anim + 6] == b"\x00\x00"


def test_odd_mp4_size_is_rejected_clearly(tmp_path):
    with pytest.raises(ValueError, match=r"video\.width=65.*even"):
        VideoConfig(width=65, height=36)
    with pytest.raises(ValueError, match=r"video\.height=35.*even"):
        VideoConfig(width=64, height=35)
    VideoConfig(format="gif", width=65, height=35)  # GIF has no chroma subsampling


def test_wrong_frame_is_rejected(tmp_path, frames):
    with VideoWriter(tmp_path / "zoom.mp4", VideoConfig(width=WIDTH, height=HEIGHT)) as writer:
        with pytest.raises(ValueError, match=r"expected uint8 \(36, 64, 3\)"):
            writer.write(np.zeros((HEIGHT, WIDTH, 4), np.uint8))
        with pytest.raises(ValueError, match="float64"):
            writer.write(np.zeros((HEIGHT, WIDTH, 3)))
        with pytest.raises(ValueError, match=r"\(64, 36, 3\)"):
            writer.write(np.zeros((WIDTH, HEIGHT, 3), np.uint8))
        writer.write(frames[0])


def test_ffmpeg_failure_reports_its_stderr_and_leaves_nothing(tmp_path, frames, monkeypatch):
    monkeypatch.setattr(video, "_encoder_args", lambda config: ["-c:v", "no-such-encoder"])
    with pytest.raises(RuntimeError, match=r"(?s)ffmpeg failed.*no-such-encoder"):
        write(tmp_path / "zoom.mp4", frames)
    assert not list(tmp_path.iterdir())


def test_a_missing_directory_is_named(tmp_path, frames):
    with pytest.raises(FileNotFoundError, match="missing"):
        write(tmp_path / "missing" / "zoom.mp4", frames)


def test_png_still(tmp_path, frames):
    save_png(tmp_path / "frame.png", frames[3])
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "frame.png")), frames[3])


def test_video_config_validation_names_the_field():
    assert VideoConfig().n_frames == 300
    assert VideoConfig(fps=24, duration_s=2.5).n_frames == 60
    for field, bad in [("format", "avi"), ("codec", "vp9"), ("crf", 60), ("fps", 0), ("duration_s", -1.0),
                       ("preset", "warp"), ("width", 0)]:
        with pytest.raises(ValueError, match=rf"video\.{field}="):
            VideoConfig(**{field: bad})
    with pytest.raises(ValueError, match=r"\['mp4', 'gif', 'webp'\]"):
        VideoConfig(format="mov")


@pytest.mark.parametrize("name, size", [("preview", None), ("landscape", (1920, 1080)), ("vertical", (1080, 1920)),
                                        ("square", (1080, 1080)), ("gif", None)])
def test_video_presets(name, size):
    merged = OmegaConf.merge(OmegaConf.structured(VideoConfig), OmegaConf.load(CONF / f"{name}.yaml"))
    config = OmegaConf.to_object(merged)
    if size:
        assert (config.width, config.height) == size and config.n_frames == 300
    elif name == "preview":  # the default video: small, and at least 8 s long (issue #3)
        assert config.width * config.height <= 480 * 270 and 8 <= config.duration_s <= 10
    else:
        assert config.width * config.height <= 480 * 270 and config.duration_s <= 6
    assert config.format == ("gif" if name == "gif" else "mp4")


# A re-encode that dies part-way must leave the earlier video as it was, and no temporary file.

def old_video(tmp_path, frames):
    path = write(tmp_path / "zoom.mp4", frames, preset="ultrafast")
    return path, path.read_bytes()


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_reencode_interrupted_in_the_frame_loop_keeps_the_old_video(tmp_path, frames, error):
    path, before = old_video(tmp_path, frames)
    with pytest.raises(error):
        with VideoWriter(path, VideoConfig(width=WIDTH, height=HEIGHT, fps=10, preset="ultrafast")) as writer:
            for i, frame in enumerate(reversed(frames)):
                writer.write(frame)
                if i == 2:
                    raise error("stopped part-way")
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["zoom.mp4"]


# The child re-encodes 3 noise frames into argv[1], says so, and waits to be stopped.
CHILD = """
import sys, time
import numpy as np
from zoomer.config import VideoConfig
from zoomer.video import VideoWriter
rng = np.random.default_rng(0)
with VideoWriter(sys.argv[1], VideoConfig(width=64, height=36, fps=10, preset="ultrafast")) as writer:
    for _ in range(int(sys.argv[2])):
        writer.write(rng.integers(0, 256, (36, 64, 3), dtype=np.uint8))
    print("written", flush=True)
    time.sleep(120)
"""


@pytest.mark.slow  # a real child process and ffmpeg
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_reencode_killed_mid_way_keeps_the_old_video(tmp_path, frames, sig):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it, ffmpeg included) and
    kill -9 of the group during a real re-encode."""
    path, before = old_video(tmp_path, frames)
    # A shell without job control starts background jobs with SIGINT ignored, and Python keeps
    # it so (CI runs that way): give the child the default disposition, as a terminal would.
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path), "3"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdout.readline() == b"written\n", proc.stderr.read()
    os.killpg(proc.pid, sig)
    assert proc.wait(timeout=60) != 0
    assert path.read_bytes() == before
    left = sorted(p.name for p in tmp_path.iterdir())
    if sig == signal.SIGINT:  # the child cleaned up itself
        assert left == ["zoom.mp4"]
    else:  # nothing runs to clean up after kill -9: remove_stale does, later
        assert len(left) == 2 and left[0].startswith(".zoom.mp4.tmp-")
        time.sleep(0.2)  # ffmpeg, killed with its group, is gone too
        remove_stale(tmp_path)
        assert [p.name for p in tmp_path.iterdir()] == ["zoom.mp4"]


@pytest.mark.slow  # a real child process and ffmpeg
def test_reencode_on_a_full_disk_keeps_the_old_video(tmp_path, frames):
    """A disk that fills up part-way, as a file-size limit (RLIMIT_FSIZE) on the writer and
    its ffmpeg: the write fails, the old video stays, the partial file goes."""
    path, before = old_video(tmp_path, frames)
    limit = "import resource; resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
    proc = subprocess.run([sys.executable, "-c", limit + CHILD.replace("time.sleep(120)", "pass"), str(path), "30"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "ffmpeg failed" in proc.stderr, proc.stderr[-2000:]
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["zoom.mp4"]

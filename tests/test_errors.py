"""Mistakes are Refusals that name the setting or the file; a full disk names its path."""
import resource
import signal

import numpy as np
import pytest
import torch

from zoomer.atomic import write_atomic
from zoomer.config import RenderConfig, SearchConfig, VideoConfig, ZoomConfig
from zoomer.errors import Refusal
from zoomer.plan import layout, start_window
from zoomer.preflight import check_decades_reachable, check_disk_space
from zoomer.store import FrameStore, frame_bytes
from zoomer.window import Window

CONDITION = Window.from_bounds((-2.0, 6.0), (-3.0, 5.0))


def test_a_search_resolution_past_what_memory_holds_is_refused_with_the_range():
    with pytest.raises(Refusal, match=r"search.resolution=100000 must be an integer in 8\.\.1024"):
        SearchConfig(resolution=100000)


def test_a_final_width_wider_than_the_start_window_is_refused_before_the_search():
    video = VideoConfig(width=32, height=18)
    start = start_window(CONDITION, video)
    lay = layout(start, ZoomConfig(final_width=100.0), RenderConfig(), video, 1, torch.device("cpu"))
    with pytest.raises(Refusal, match=r"zoom.final_width=100 is not narrower than the start window \(8 wide"):
        check_decades_reachable(lay, CONDITION, None, "float64")


@pytest.mark.parametrize("content, why", [("[1, 2, 3]", "a JSON list, not an object"),
                                          ('{"store_format": 2,', "not valid JSON")])
def test_a_damaged_manifest_is_named(tmp_path, content, why):
    (tmp_path / "manifest.json").write_text(content)
    with pytest.raises(Refusal, match=f"{tmp_path / 'manifest.json'} is {why}"):
        FrameStore(tmp_path, {"experiment": "tanh"})


def test_a_full_disk_names_the_file_being_written(tmp_path):
    """A disk that fills as a file-size limit (RLIMIT_FSIZE) on this process, for one write."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails, not kills
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    try:
        with pytest.raises(OSError, match="File too large") as caught:
            write_atomic(tmp_path / "frame.npy", lambda f: f.write(bytes(65536)))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert caught.value.filename == str(tmp_path / "frame.npy")
    assert list(tmp_path.iterdir()) == []  # the partial file went too


def test_a_store_that_holds_every_frame_needs_no_more_disk(tmp_path):
    huge = (10**6, 10**6)  # 8 TB a frame: no disk has room for one more
    with pytest.raises(Refusal, match="needs about"):
        check_disk_space(tmp_path, 2, huge)
    for key in ("a", "b"):
        (tmp_path / f"{key}.npy").write_bytes(frame_bytes(np.zeros((2, 2))))
    check_disk_space(tmp_path, 2, huge)  # a re-encode: nothing left to compute


def test_float32_has_a_depth_check_like_float64s():
    """A zoom deeper than float32 resolves is refused naming engine.precision, before compute."""
    import zoomer

    video = VideoConfig(width=32, height=18)
    start = start_window(CONDITION, video)
    lay = layout(start, ZoomConfig(decades=10.0), RenderConfig(), video, 1, torch.device("cpu"))
    check_decades_reachable(lay, CONDITION, None, "float64")
    check_decades_reachable(lay, CONDITION, None, "auto")  # auto trains deep windows in float64
    with pytest.raises(Refusal, match="too deep for engine.precision=float32"):
        check_decades_reachable(lay, CONDITION, None, "float32")
    with pytest.raises(Refusal, match=r"too deep for float32 \(engine.precision\)"):
        zoomer.landscape(zoomer.Experiment(), start.zoom(1e12, (1.0, 2.0)), (16, 16), dtype=torch.float32)


def test_hyperparameters_past_what_the_float_type_holds_are_refused_before_compute():
    """The axes are log10 of hyperparameters: 10^310 is no float64, and past 10^30 float32's
    first products overflow. Refused with the setting to change, not an OverflowError."""
    import zoomer

    video = VideoConfig(width=32, height=18)
    far = Window.from_bounds((290.0, 310.0), (-3.0, 5.0))
    lay = layout(start_window(far, video), ZoomConfig(decades=2.0), RenderConfig(), video, 1, torch.device("cpu"))
    with pytest.raises(Refusal, match=r"window reaches 307[.0-9]* on the x axis.* float64 \(engine.precision\) trains up to 10\^300"):
        check_decades_reachable(lay, far, None, "auto")
    with pytest.raises(Refusal, match=r"reaches 35 on the y axis.*or engine.precision=float64"):
        zoomer.landscape(zoomer.Experiment(), Window.from_bounds((0.0, 1.0), (31.0, 35.0)), (4, 4), dtype=torch.float32)


def test_two_settings_of_the_zoom_depth_are_refused_not_one_silently_kept():
    with pytest.raises(Refusal, match=r"zoom.decades=2.0 and zoom.final_width=0.01 both set the zoom's depth"):
        ZoomConfig(decades=2.0, final_width=1e-2)
    assert ZoomConfig(final_width=1e-2).final_width == 1e-2  # decades at its default: unset


def test_a_keyframe_scale_for_exact_frames_is_refused_not_ignored():
    with pytest.raises(Refusal, match=r"render.keyframe_scale=3.0 sizes keyframes, but render.frames=exact"):
        RenderConfig(frames="exact", keyframe_scale=3.0)
    RenderConfig(frames="keyframes", keyframe_scale=3.0)


@pytest.mark.parametrize("make, words", [
    (lambda: ZoomConfig(decades=float("inf")), r"zoom.decades=inf must be in \(0, 300\]"),
    (lambda: ZoomConfig(decades=400.0), r"zoom.decades=400.0 must be in \(0, 300\]"),
])
def test_a_depth_past_any_float_type_is_refused_not_a_bug(make, words):
    with pytest.raises(Refusal, match=words):
        make()

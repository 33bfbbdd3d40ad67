"""The pipeline: config -> checks -> target -> frames -> store -> colour -> video.

Raw scores are the artefact: every computed frame goes to the FrameStore first, and
colouring and encoding read it back, so a render resumes after a crash, spreads over
shards, and re-colours without recomputing. Each stage lives in its own module: plan
(what to compute), preflight (every check before compute), compute (the frame loop),
compose (colour and encode); this one runs them in order and writes the metadata.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Optional

from omegaconf import OmegaConf

from .compose import encode
from .compute import compute_frames, missing_frames, progress_bar
from .config import PanelConfig, SearchConfig, VideoConfig, ZoomConfig, ZoomerConfig
from .engine import computed_by
from .errors import Interrupted, Refusal, interruptible
from .experiment import Experiment
from .plan import Layout, Plan, layout, make_plan, start_window, supersample, zoom_decades
from .precision import dtypes
from .preflight import (check_decades_reachable, check_disk_space, check_near_boundary,
                        check_store_exists, check_target_point, check_writable, ffmpeg_exe,
                        last_frame_classes)
from .provenance import provenance
from .run_setup import RunSetup
from .atomic import AtomicFile, remove_stale, write_atomic
from .store import FrameStore
from .video import check_encodes
from .target import Target, search_target
from .window import Window, coordinate

log = logging.getLogger(__name__)


def render(cfg, run_dir: Path) -> dict:
    """Run the whole pipeline for a composed config; returns the metadata it wrote."""
    t0 = time.perf_counter()
    # Every check that needs no training, before any: ranges and choices as the config
    # becomes objects (zoomer.config), then what needs torch, the window or the machine.
    app: ZoomerConfig = OmegaConf.to_object(cfg)
    zoom, eng, rnd, video, color = app.zoom, app.engine, app.render, app.video, app.color
    condition = app.experiment.window.to_window()
    start = start_window(condition, video)
    if app.panel is not None:
        zoom = onto_panel(zoom, app.panel.window(), video)
    toward_panel = app.panel is None and zoom.target == "panel"
    if toward_panel:
        zoom = replace(zoom, target=list(PanelConfig.of_condition(app.experiment.name).window().center))
    point = check_target_point(zoom, condition)
    setup = RunSetup.resolve(app.experiment, app.quality, eng, zoom_decades(start, zoom))  # steps follow the decades
    exp, device = setup.experiment, setup.device
    lay = layout(start, zoom, rnd, video, supersample(rnd.supersample, device, app.panel), device)
    check_decades_reachable(lay, condition, point, eng.precision)
    if toward_panel:  # in every mode, so that shards and assemble agree on the target (81 runs)
        with interruptible("nothing was computed yet"):
            zoom, point = _panel_or_search(exp, lay, zoom, point, device, eng.precision)
        if point is None:  # searched: as deep as float64 allows anywhere in the window
            check_decades_reachable(lay, condition, point, eng.precision)
    if rnd.mode != "compute":
        ffmpeg_exe()  # a missing encoder, or one that refuses this size, is known now, not after hours of compute
        check_encodes(video)
    store_dir = Path(rnd.store_dir) if rnd.store_dir else run_dir / "frames"
    if rnd.mode == "assemble":
        check_store_exists(store_dir)
    for directory in (run_dir, store_dir):
        check_writable(directory)
    remove_stale(run_dir)  # an encode killed outright leaves its temp file
    runner = computed_by(eng.backend, exp, device, dtypes(eng.precision))
    store = FrameStore(store_dir, fingerprint(cfg, exp, start, zoom, lay.supersample, runner), rnd.mode == "assemble")
    if rnd.mode != "assemble":
        check_disk_space(store.root, lay.n_computed, lay.size)
    with interruptible("the target search was stopped; nothing was written but the frame store's manifest"):
        target = _target(exp, lay, app.search, point, device, eng.precision, store)
    plan = make_plan(lay, target, video, zoom.ease, exp, eng.precision)
    # A manual point's last frame must hold both classes; a panel's was checked above. A
    # store that holds a frame passed this check before it (a resume need not train it again).
    if point is not None and not toward_panel and rnd.mode != "assemble" \
            and len(missing_frames(plan, store)) == len(plan.windows):
        with interruptible("nothing was computed yet"):
            check_near_boundary(exp, lay, condition, point, device, eng.precision,
                                app.panel and app.panel.experiment, app.experiment.paper_steps)
    timings = {"target_s": time.perf_counter() - t0}
    counts = {"computed": 0, "reused": 0}
    if rnd.mode != "assemble":
        t = time.perf_counter()
        try:
            counts = compute_frames(exp, plan, store, rnd, device, eng.backend)
        except KeyboardInterrupt:
            done = len(plan.windows) - len(missing_frames(plan, store))
            raise Interrupted(
                f"{done} of {len(plan.windows)} frames are safe in {store.root}; "
                "run the same command again (same output directory) to resume"
            ) from None
        timings["frames_s"] = time.perf_counter() - t
    missing = missing_frames(plan, store)
    outputs = {}
    if rnd.mode == "assemble" and missing:
        raise Refusal(
            f"cannot assemble: {len(missing)} of {len(plan.windows)} frames are missing from "
            f"{store.root} (indices {_ranges(missing)}); run the shards that compute them"
        )
    staged = []  # the render's outputs, renamed into place together once metadata.json is written too
    try:
        if rnd.mode != "compute" and not missing:
            t = time.perf_counter()
            video_path, poster = run_dir / f"zoom.{video.format}", run_dir / "poster.png"
            staged += [AtomicFile(video_path, extension=True), AtomicFile(poster)]
            log.info("encoding %d frames to %s", video.n_frames, video_path)
            with interruptible(f"every frame is safe in {store.root} and an earlier {video_path.name}, if any, "
                               "is untouched; run the same command again to encode"):
                encode(exp, plan, store, video, color, staged[0].temp, staged[1].temp)
            timings["encode_s"] = time.perf_counter() - t
            outputs = {"video": str(video_path), "poster": str(poster)}
        elif missing:
            log.info("%d frames (%s) are left to other shards; then run with render.mode=assemble",
                     len(missing), _ranges(missing))
        timings["total_s"] = time.perf_counter() - t0
        meta = metadata(cfg, exp, plan, device, eng.precision, timings, counts, missing, outputs, store, runner)
        staged.append(AtomicFile(run_dir / "metadata.json"))
        write_atomic(staged[-1].temp, lambda f: f.write(json.dumps(meta, indent=1).encode()))
    except BaseException:
        for out in staged:
            out.discard()
        raise
    for out in staged:
        out.commit()
    log.info("done in %.1f s: %s", timings["total_s"], outputs.get("video", f"{len(missing)} frames still missing"))
    return meta


def _target(exp, lay: Layout, search: SearchConfig, point, device, precision,
            store: Optional[FrameStore]) -> Target:
    """The manual target, the one a shard before us found, or a new search.

    The search runs in the start window, the condition's window cut to the video's shape.
    """
    if point is not None:
        return Target(point, (lay.start.zoom(1.0, point), lay.start.zoom(10**lay.decades, point)), lay.decades)
    saved = store.read_json("target.json") if store is not None else None
    if saved is not None:
        levels = tuple(Window.from_dict(w) for w in saved["levels"])
        return Target(tuple(map(coordinate, saved["point"])), levels, lay.decades)  # the fingerprint holds the zoom
    log.info("searching a zoom target %.1f decades deep (search.seed %d, %d candidate(s))", lay.decades,
             search.seed, search.candidates)
    with progress_bar("target search") as bar:
        target, _ = search_target(exp, lay.start, lay.decades, search, device=device, dtype=precision,
                                  progress=bar.update)
    if store is not None:
        store.write_json("target.json", target.to_dict())
    return target


def _panel_or_search(exp, lay: Layout, zoom: ZoomConfig, point, device, precision):
    """The zoom toward the panel's centre where that stays on the boundary at these steps,
    else a searched target. A panel was rendered at the paper's steps; with fewer, the
    boundary near it can move away (minibatch's panel lies 11 decades down; paraminit's
    converges everywhere below ~460 steps), and a video into one class shows nothing."""
    classes = last_frame_classes(exp, lay, point, device, precision)
    if classes.any() and not classes.all():
        return zoom, point
    log.info("the panel's centre %s is not on the boundary at %d steps, %.3g decades down (every run there %s); "
             "the target is zoom=auto's instead: searched, or read from the frame store where a run before "
             "found it (quality=paper trains the panel's own steps)",
             point, exp.steps, lay.decades, "converges" if classes.all() else "diverges")
    return replace(zoom, target="auto"), None


def onto_panel(zoom: ZoomConfig, panel: Window, video: VideoConfig) -> ZoomConfig:
    """The zoom that ends on a named panel: centred on it, the last frame the smallest of
    the video's shape that holds the whole panel."""
    final_width = max(panel.width, panel.height * video.width / video.height)
    log.info("zooming onto the panel x %s, y %s (log10): last frame %.4g wide", panel.x_bounds, panel.y_bounds,
             final_width)
    return replace(zoom, target=list(panel.center), final_width=final_width)


def fingerprint(cfg, exp: Experiment, start: Window, zoom: ZoomConfig, k: int, runner: dict) -> dict:
    """What makes two renders' frames incomparable: the store refuses any other. That
    includes what trains the runs (engine.computed_by): backends differ in the last bits,
    and near the boundary in a few pixels' class, so frames of two would not join exactly.
    `zoom` is the zoom as rendered (a panel's point and width, where paper= gives one)."""
    return {
        "experiment": exp.to_dict(),
        "start": [start.cx, start.cy, start.half_w, start.half_h],
        "zoom": {k: getattr(zoom, k) for k in ("target", "decades", "final_width")},
        "search": _plain(cfg.search),
        "precision": cfg.engine.precision,
        "frames": cfg.render.frames,
        "guess": cfg.render.guess,
        "supersample": k,
        "computed_by": runner,
    }


def _plain(value):
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def metadata(cfg, exp, plan: Plan, device, precision, timings, counts, missing, outputs, store, runner) -> dict:
    return {
        "config": OmegaConf.to_container(cfg, resolve=True),  # as given; what it resolved to follows
        "experiment_settings": exp.to_dict(),  # the steps the quality chose, among them
        "target": plan.target.to_dict(),
        "strategy": plan.strategy,
        "computed_size": list(plan.size),
        "computed_windows": [w.to_dict() for w in plan.windows],
        "frame_windows": [w.to_dict() for w in plan.frame_windows],
        "frames": {**counts, "missing": missing, "store": str(store.root)},
        "timings": {k: round(v, 3) for k, v in timings.items()},
        **provenance(device),
        "precision": precision,
        "computed_by": runner,
        "computed_dtypes": [str(dtype).removeprefix("torch.") for dtype in plan.dtypes],
        "outputs": outputs,
    }


def _ranges(indices: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2, 5'."""
    out, run = [], [indices[0]]
    for i in indices[1:]:
        if i == run[-1] + 1:
            run.append(i)
        else:
            out.append(run)
            run = [i]
    out.append(run)
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in out)

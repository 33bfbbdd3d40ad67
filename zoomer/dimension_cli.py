"""zoomer-dimension: how fractal is the boundary? Box-counting dimension down a zoom.

    zoomer-dimension experiment=relu levels=4 zoom_factor=10 size=256
    zoomer-dimension method=paper window.x=[0.1,0.11] window.y=[2.0,2.01] size=512
    zoomer-dimension -m experiment=tanh,relu,identity,minibatch,single_datapoint,paraminit

method=boxcount: level k is the experiment's window magnified zoom_factor**k about the
target (target=auto: the most structured of `search.candidates` searched targets), or with
`window` given, that window zoomed out by zoom_factor**(levels-1-k); each level's
landscape gives one estimate, the sequence its median. method=paper: from the deepest of
those windows, zoom out by factors of 2 until the window is about outer_width wide; the
median of every image's local slopes (zoomer.dimension). Writes into Hydra's run
directory: dimension.json, boxcount.png (the log-log plot, method=boxcount) and, with
frames=true, level_K.png (each level coloured as in videos). A multirun collects its
results into one table, dimensions.md in the sweep directory (zoomer.dimension_table).
"""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from .errors import Refusal, quiet_when_piped, run_reporting_errors
from .color import ColorConfig, Reference, color_frame
from .config import HYDRA_VERSION_BASE, DimensionConfig, register_configs
from .boundary import coherence, converged, edges, structure
from .dimension import boundary_dimension, median_dimension, paper_boxcount, paper_dimension
from .landscape import landscape
from .figure import boxcount_plot
from .study import Study, write_json
from .video import save_png
from .window import Window, point_json

log = logging.getLogger(__name__)


def measure(cfg: DimensionConfig, out: Path, config: dict | None = None) -> dict:
    """Run the zoom, write dimension.json, boxcount.png (and frames) into `out`; return the json.

    `config` is the resolved config to record (by default the DimensionConfig's fields).
    """
    study = Study.of(cfg)
    exp, size = study.experiment, (cfg.size, cfg.size)
    started = time.perf_counter()
    final, candidate_targets = cfg.final_window(), []
    if final is not None:
        center = final.center
    else:
        if cfg.target == "auto":
            # Refuse a zoom too deep for engine.precision before the search, judged at the start
            # window's corner farthest from zero: the coarsest spacing a target can meet.
            deepest = study.start.zoom(cfg.zoom_factor ** (cfg.levels - 1), study.start.farthest_corner)
            deepest.check_resolution(size, study.precision)
        center, candidate_targets = study.center(cfg, study.start)  # auto: the most structured candidate
    windows = _windows(cfg, study.start, center, final)
    for window in windows:  # refuse a zoom too deep for engine.precision before training any level
        window.check_resolution(size, study.precision)
    timings = {"target_s": time.perf_counter() - started}
    log.info("%s: %d levels about (%.10g, %.10g), method %s", cfg.experiment.name, len(windows), *center, cfg.method)

    levels, estimates = [], []
    for k, window in enumerate(windows):
        tick = time.perf_counter()
        scores = landscape(exp, window, size, device=study.device, dtype=study.precision, backend=study.backend)
        level = {"level": k, "magnification": study.start.width / window.width, "window": window.to_dict(),
                 "computed_dtype": study.dtype_of(window, size),
                 "edge_pixels": int(edges(scores).sum()), "converged_share": float(converged(scores).mean()),
                 "coherence": coherence(scores),  # about 0 where the boundary is static finer than a pixel
                 "structure": structure(scores)}
        if not level["edge_pixels"]:  # one class fills the window: no boundary to measure at this level
            level["dimension"] = None
        elif cfg.method == "paper":
            counts = paper_boxcount(edges(scores))
            estimates.append((f"level {k}", counts))
            measured = np.isfinite(counts.slopes).any()  # the median of this image's own slopes
            level.update(counts.to_dict(), dimension=paper_dimension([counts]) if measured else None)
        else:
            estimate = boundary_dimension(scores)
            estimates.append((f"level {k}", estimate))
            level.update(estimate.to_dict())
        if cfg.frames:
            save_png(out / f"level_{k}.png", color_frame(scores, Reference.from_scores(scores), ColorConfig()))
        level["seconds"] = time.perf_counter() - tick
        levels.append(level)
        log.info("level %d (zoom %.3g): D = %s, %.1f s", k, level["magnification"], level["dimension"], level["seconds"])
    if not estimates:
        raise Refusal("no level holds a boundary: every window is filled by one class; choose another target")
    found = [e for _, e in estimates]
    dimension = paper_dimension(found) if cfg.method == "paper" else median_dimension(found)

    timings["total_s"] = time.perf_counter() - started
    result = {
        **study.record(cfg, config, timings),
        "method": cfg.method,
        "median_dimension": dimension,
        "levels_measured": len(estimates),
        "center": point_json(center),  # a deep one to every digit
        "candidate_targets": candidate_targets,
        "levels": levels,
    }
    write_json(out / "dimension.json", result)
    if cfg.method == "boxcount":
        title = (f"{cfg.experiment.name}: median D = {dimension:.3f} "
                 f"({len(estimates)} of {cfg.levels} levels, {cfg.size} px, {exp.steps} steps)")
        save_png(out / "boxcount.png", boxcount_plot(estimates, title))
    return result


def _windows(cfg: DimensionConfig, start: Window, center, final: Window | None) -> list[Window]:
    """The windows measured, widest first (see the module doc)."""
    if cfg.method == "paper":
        deepest = final or start.zoom(cfg.zoom_factor ** (cfg.levels - 1), center)
        # Doublings from the deepest window to the one nearest outer_width (in log scale).
        n = max(0, round(math.log2(cfg.outer_width / deepest.width)))
        return [deepest.zoom(2.0 ** -(n - k)) for k in range(n + 1)]
    if final is not None:
        return [final.zoom(cfg.zoom_factor ** (k - cfg.levels + 1)) for k in range(cfg.levels)]
    return [start.zoom(cfg.zoom_factor**k, center) for k in range(cfg.levels)]


register_configs()


def _run(cfg: DictConfig, out: Path) -> float:
    result = measure(OmegaConf.to_object(cfg), out, OmegaConf.to_container(cfg, resolve=True))
    log.info("%s: median dimension %.3f", result["experiment"], result["median_dimension"])
    return result["median_dimension"]


@quiet_when_piped
@hydra.main(version_base=HYDRA_VERSION_BASE, config_path="pkg://zoomer.conf", config_name="dimension")
def main(cfg: DictConfig) -> float:
    return run_reporting_errors(_run, cfg)


if __name__ == "__main__":
    main()

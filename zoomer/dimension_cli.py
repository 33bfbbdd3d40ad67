"""zoomer-dimension: how fractal is the boundary? Box-counting dimension down a zoom.

    zoomer-dimension experiment=relu levels=4 zoom_factor=10 size=256
    zoomer-dimension -m experiment=tanh,relu,identity,minibatch,single_datapoint,paraminit

Level k is the experiment's window magnified zoom_factor**k about the target (target=auto:
the most complex of `candidates` searched targets); each level's landscape gives one
estimate (zoomer.dimension), the sequence its median. Writes into
Hydra's run directory: dimension.json, boxcount.png (the log-log plot) and, with
frames=true, level_K.png (each level coloured as in videos). Collect a multirun's
results into one table with `python -m zoomer.dimension_table multirun/...`.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from .errors import run_reporting_errors
from .color import ColorConfig, Reference, color_frame
from .config import DimensionConfig, register_configs
from .dimension import boundary_dimension, edges, median_dimension
from .landscape import landscape
from .figure import boxcount_plot
from .study import Study, write_json
from .target import coherence, find_roughest_target
from .video import save_png

log = logging.getLogger(__name__)


def measure(cfg: DimensionConfig, out: Path, config: dict | None = None) -> dict:
    """Run the zoom, write dimension.json, boxcount.png (and frames) into `out`; return the json.

    `config` is the resolved config to record (by default the DimensionConfig's fields).
    """
    study = Study.of(cfg)
    exp, size = study.experiment, (cfg.size, cfg.size)
    started = time.perf_counter()
    if cfg.target == "auto":  # where the boundary is most complex, chaotic patches included
        # Refuse a zoom too deep for float64 before the search, judged at the start window's
        # corner farthest from zero: the coarsest float64 spacing a target can meet.
        corner = (max(study.start.x_bounds, key=abs), max(study.start.y_bounds, key=abs))
        study.start.zoom(cfg.zoom_factor ** (cfg.levels - 1), corner).check_resolution(size)
        target, candidate_targets = find_roughest_target(
            exp, study.start, cfg.depth, seed=cfg.seed, candidates=cfg.candidates,
            resolution=cfg.search_resolution, device=study.device, dtype=study.dtype)
        center = target.point
    else:
        center, candidate_targets = study.center(cfg, study.start), []
    windows = [study.start.zoom(cfg.zoom_factor**k, center) for k in range(cfg.levels)]
    for window in windows:  # refuse a zoom too deep for float64 before training any level
        window.check_resolution(size)
    timings = {"target_s": time.perf_counter() - started}
    log.info("%s: %d levels about (%.10g, %.10g)", cfg.experiment.name, cfg.levels, *center)

    levels, estimates = [], []
    for k, window in enumerate(windows):
        tick = time.perf_counter()
        scores = landscape(exp, window, size, device=study.device, dtype=study.dtype)
        level = {"level": k, "magnification": cfg.zoom_factor**k, "window": window.to_dict(),
                 "edge_pixels": int(edges(scores).sum()), "converged_share": float((scores < 0).mean()),
                 "coherence": coherence(scores)}  # about 0 where the boundary is static finer than a pixel
        if level["edge_pixels"]:
            estimate = boundary_dimension(scores)
            estimates.append((f"level {k}", estimate))
            level.update(estimate.to_dict())
        else:  # one class fills the window: no boundary to measure at this level
            level["dimension"] = None
        if cfg.frames:
            save_png(out / f"level_{k}.png", color_frame(scores, Reference.from_scores(scores), ColorConfig()))
        level["seconds"] = time.perf_counter() - tick
        levels.append(level)
        log.info("level %d (zoom %.3g): D = %s, %.1f s", k, level["magnification"], level["dimension"], level["seconds"])
    if not estimates:
        raise RuntimeError("no level holds a boundary: every window is filled by one class; choose another target")

    timings["total_s"] = time.perf_counter() - started
    result = {
        "experiment": cfg.experiment.name,
        "experiment_settings": exp.to_dict(),
        "median_dimension": median_dimension([e for _, e in estimates]),
        "levels_measured": len(estimates),
        "center": list(center),
        "candidate_targets": candidate_targets,
        "levels": levels,
        "config": config if config is not None else OmegaConf.to_container(OmegaConf.structured(cfg)),
        "timings": timings,
        "provenance": study.provenance(),
    }
    write_json(out / "dimension.json", result)
    title = (f"{cfg.experiment.name}: median D = {result['median_dimension']:.3f} "
             f"({len(estimates)} of {cfg.levels} levels, {cfg.size} px, {exp.steps} steps)")
    save_png(out / "boxcount.png", boxcount_plot(estimates, title))
    return result


register_configs()


def _run(cfg: DictConfig, out: Path) -> float:
    result = measure(OmegaConf.to_object(cfg), out, OmegaConf.to_container(cfg, resolve=True))
    log.info("%s: median dimension %.3f", result["experiment"], result["median_dimension"])
    return result["median_dimension"]


@hydra.main(version_base=None, config_path="pkg://zoomer.conf", config_name="dimension")
def main(cfg: DictConfig) -> float:
    return run_reporting_errors(_run, cfg)


if __name__ == "__main__":
    main()

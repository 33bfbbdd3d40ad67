"""zoomer-still: one window at high resolution, coloured as in videos, for papers and posters.

    zoomer-still experiment=relu size=2048 color=fire_ice
    zoomer-still target=auto magnification=1e6 figure=true   (target: center | auto | [x, y])
    zoomer-still experiment.window.x=[0,2] experiment.window.y=[1,3]
    zoomer-still target="['1.123844266915311904226875','2.301807567063441950281234']" magnification=1e22
                 (past float64's ~13 decades engine.precision=auto trains by perturbation)

Writes into Hydra's run directory: still.png, with figure=true figure.png (axes in
hyperparameter units, ticks at the window's edges, a title), and metadata.json (the
resolved config, the window, timings, device and versions).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from .errors import quiet_when_piped, run_reporting_errors
from .color import Reference, color_frame
from .config import HYDRA_VERSION_BASE, StillConfig, register_configs
from .dimension import MIN_SIDE, box_dimension, edges
from .landscape import landscape
from .plan import supersample
from .figure import still_figure
from .study import Study, write_json
from .video import save_png
from .window import point_json

log = logging.getLogger(__name__)


def render_still(cfg: StillConfig, out: Path, config: dict | None = None) -> dict:
    """Render the still (and its figure) into `out`; return the metadata written beside it.

    `config` is the resolved config to record (by default the StillConfig's fields).
    """
    study = Study.of(cfg)
    exp, (height, width) = study.experiment, cfg.shape
    k = supersample(cfg.render.supersample, study.device, cfg.panel)
    started = time.perf_counter()
    if cfg.panel is not None:  # a named window shown as it is, its shape kept
        window = cfg.panel.window()
        height = max(cfg.min_size, round(width * window.height / window.width))
        center = window.center
    else:
        start = study.start.with_aspect(width / height)
        center, _ = study.center(cfg, start)
        window = start.zoom(cfg.magnification, center)
    window.check_resolution((height * k, width * k), study.precision)
    timings = {"target_s": time.perf_counter() - started}

    tick = time.perf_counter()
    scores = landscape(exp, window, (height * k, width * k), device=study.device, dtype=study.precision,
                       backend=study.backend, guess=1, supersample=k)
    timings["compute_s"] = time.perf_counter() - tick
    tick = time.perf_counter()
    rgb = color_frame(scores, Reference.from_scores(scores, cfg.color.n_quantiles), cfg.color, exp.readout, k)
    save_png(out / "still.png", rgb)
    files = ["still.png"]
    edge = edges(scores)
    dimension = box_dimension(edge).dimension if edge.any() and min(edge.shape) >= MIN_SIDE else None
    if cfg.figure:
        view = cfg.panel.title if cfg.panel is not None else f"zoom {cfg.magnification:.3g}"
        title = cfg.title or f"{cfg.experiment.name}, {exp.steps} steps, {view}"
        save_png(out / "figure.png", still_figure(rgb, window, exp.axis_labels, title, linear=cfg.panel is not None))
        files.append("figure.png")
    timings["write_s"] = time.perf_counter() - tick
    timings["total_s"] = time.perf_counter() - started

    metadata = {
        **study.record(cfg, config, timings),
        "window": window.to_dict(),
        "center": point_json(center),  # a deep one to every digit
        "magnification": cfg.magnification,
        "panel": None if cfg.panel is None else {"title": cfg.panel.title, "x": cfg.panel.x, "y": cfg.panel.y},
        "box_dimension": dimension,  # of this image's boundary (zoomer.dimension), at its resolution
        "pixels": {"width": width, "height": height, "supersample": k},
        "computed_dtype": study.dtype_of(window, (height * k, width * k)),
        "axis_labels": list(exp.axis_labels),
        "files": files,
    }
    write_json(out / "metadata.json", metadata)
    return metadata


register_configs()


def _run(cfg: DictConfig, out: Path) -> None:
    metadata = render_still(OmegaConf.to_object(cfg), out, OmegaConf.to_container(cfg, resolve=True))
    log.info("wrote %s to %s in %.1f s", ", ".join(metadata["files"]), out, metadata["timings"]["total_s"])


@quiet_when_piped
@hydra.main(version_base=HYDRA_VERSION_BASE, config_path="pkg://zoomer.conf", config_name="still")
def main(cfg: DictConfig) -> None:
    run_reporting_errors(_run, cfg)


if __name__ == "__main__":
    main()

"""`zoomer-targets`: search K candidate targets, show their deepest views side by side.

For each seed it runs the automatic target search, renders the deepest window as a
thumbnail, and ranks the candidates as every target search does (Target.rank_score: the
mean zoomer.boundary.structure of its views, from the start window to the deepest), so
the user can pick one and pass it on as `zoom=manual zoom.target=[x,y]`.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import hydra
from omegaconf import OmegaConf
import numpy as np
from hydra.core.config_store import ConfigStore
from PIL import Image, ImageDraw, ImageFont

from . import engine
from .atomic import write_atomic
from .color import ColorConfig, Reference, color_frame
from .config import HYDRA_VERSION_BASE, EngineConfig, ExperimentConfig
from .errors import run_reporting_errors
from .precision import PRECISIONS
from .quality import experiment_of
from .landscape import landscape
from .target import NoTargetError, find_target
from .video import save_png
from .window import Window

log = logging.getLogger(__name__)


@dataclass
class CandidatesConfig:
    seeds: int = 4  # how many candidates
    first_seed: int = 0
    depth: float = 4.0  # decades
    thumb: int = 96  # thumbnail side in pixels
    search_resolution: int = 32
    zoom_per_level: float = 4.0


@dataclass
class TargetsConfig:
    quality: str = "auto"  # auto | preview | paper (zoomer.quality): training steps unless experiment.steps is set
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    candidates: CandidatesConfig = field(default_factory=CandidatesConfig)
    color: ColorConfig = field(default_factory=ColorConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)


ConfigStore.instance().store(name="targets_schema", node=TargetsConfig)


def sweep(cfg, run_dir: Path) -> list[dict]:
    """Search every seed, write targets.json (ranked) and contact_sheet.png into run_dir."""
    cand, color, eng = (OmegaConf.to_object(cfg[name]) for name in ("candidates", "color", "engine"))
    color.validate()
    if not (cand.seeds >= 1 and cand.thumb >= 8 and cand.depth > 0):
        raise ValueError("candidates.seeds must be >= 1, candidates.thumb >= 8 and candidates.depth > 0, "
                         f"got seeds={cand.seeds}, thumb={cand.thumb}, depth={cand.depth}")
    if eng.precision not in PRECISIONS:
        raise ValueError(f"engine.precision must be one of {list(PRECISIONS)}, got {eng.precision!r}")
    device, dtype = engine.resolve_device(eng.device), eng.precision  # "auto" resolves per window
    exp = experiment_of(cfg.experiment, cfg.quality, device)
    start = Window.from_bounds(tuple(cfg.experiment.window.x), tuple(cfg.experiment.window.y))
    rows, thumbs = [], []
    for seed in range(cand.first_seed, cand.first_seed + cand.seeds):
        log.info("candidate seed %d", seed)
        try:
            target = find_target(exp, start, cand.depth, seed=seed, resolution=cand.search_resolution,
                                 zoom_per_level=cand.zoom_per_level, device=device, dtype=dtype)
        except NoTargetError as e:
            rows.append({"seed": seed, "found": False, "reason": str(e)})
            continue
        scores = landscape(exp, target.levels[-1], (cand.thumb, cand.thumb), device=device, dtype=dtype,
                                  backend=eng.backend)
        thumbs.append((seed, color_frame(scores, Reference.from_scores(scores), color, exp.readout)))
        x, y = target.point
        rows.append({
            "seed": seed, "found": True, "point": [x, y], "depth": cand.depth,
            "rank_score": target.rank_score, "structure": list(target.structure),
            "override": f"experiment={cfg.experiment.name} zoom=manual zoom.target=[{x!r},{y!r}] zoom.depth={cand.depth}",
        })
    ranked = sorted((r for r in rows if r["found"]), key=lambda r: -r["rank_score"])
    for rank, row in enumerate(ranked, 1):
        row["rank"] = rank
    result = ranked + [r for r in rows if not r["found"]]
    write_atomic(run_dir / "targets.json", lambda f: f.write(json.dumps(result, indent=1).encode()))
    by_seed = dict(thumbs)
    save_png(run_dir / "contact_sheet.png",
             contact_sheet([(f"#{r['rank']} seed {r['seed']}", by_seed[r["seed"]]) for r in ranked], cand.thumb))
    log.info("ranked %d candidates: %s", len(ranked), run_dir / "targets.json")
    return result


def contact_sheet(tiles: list[tuple[str, np.ndarray]], thumb: int, columns: int = 4) -> Image.Image:
    """Thumbnails in a grid, each captioned."""
    label = max(12, thumb // 8)
    font = ImageFont.load_default(size=label - 2)
    cols = max(1, min(columns, len(tiles)))
    rows = max(1, -(-len(tiles) // cols))
    sheet = Image.new("RGB", (cols * (thumb + 4) + 4, rows * (thumb + label + 8) + 4), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (caption, tile) in enumerate(tiles):
        x, y = 4 + (i % cols) * (thumb + 4), 4 + (i // cols) * (thumb + label + 8)
        sheet.paste(Image.fromarray(tile), (x, y))
        draw.text((x, y + thumb + 2), caption, fill="black", font=font)
    return sheet


@hydra.main(version_base=HYDRA_VERSION_BASE, config_path="pkg://zoomer.conf", config_name="targets")
def main(cfg) -> None:
    run_reporting_errors(sweep, cfg)


if __name__ == "__main__":
    main()

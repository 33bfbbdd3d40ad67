"""`zoomer-targets`: candidate zoom targets side by side, ranked by structure.

Always a Hydra multirun (conf/targets.yaml): each job searches one automatic target
(search.seed) exactly as `zoomer` would (in the start window cut to the video's shape,
video=preview unless given), renders its deepest view as a thumbnail and
writes candidate.json; at the end the ContactSheet callback ranks the jobs as every target
search does (Target.rank_score: the mean zoomer.boundary.structure of its views, from the
start window to the deepest) into targets.json and contact_sheet.png in the sweep
directory, each candidate with the override that renders it.
"""
from __future__ import annotations

import json
import logging
from importlib.resources import files
from pathlib import Path

import hydra
import numpy as np
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from PIL import Image, ImageDraw, ImageFont

from .color import Reference, color_frame
from .config import HYDRA_VERSION_BASE, EngineConfig, Quality, TargetsConfig, register_configs
from .config.parts import condition_settings
from .errors import quiet_when_piped, run_reporting_errors
from .landscape import landscape
from .plan import start_window
from .run_setup import RunSetup
from .study import write_json
from .target import NoTargetError, search_target
from .video import save_png
from .window import point_json

log = logging.getLogger(__name__)


def candidate(cfg: DictConfig, run_dir: Path) -> dict:
    """Search one target, write candidate.json (and thumb.png when found) into run_dir."""
    app: TargetsConfig = OmegaConf.to_object(cfg)
    run = RunSetup.resolve(app.experiment, app.quality, app.engine, app.decades)
    exp, device, precision = run.experiment, run.device, run.precision  # precision "auto" resolves per window
    row = {"experiment": app.experiment.name, "seed": app.search.seed, "decades": app.decades}
    try:
        start = start_window(app.experiment.window.to_window(), app.video)  # where zoomer searches
        target, _ = search_target(exp, start, app.decades, app.search, device=device, dtype=precision)
    except NoTargetError as e:
        row.update(found=False, reason=str(e))
    else:
        scores = landscape(exp, target.levels[-1], (app.thumb, app.thumb), device=device, dtype=precision,
                           backend=run.backend)
        save_png(run_dir / "thumb.png", color_frame(scores, Reference.from_scores(scores), app.color, exp.readout))
        point = ",".join(f"'{c}'" if isinstance(c, str) else repr(c) for c in point_json(target.point))
        row.update(found=True, point=point_json(target.point), rank_score=target.rank_score,
                   structure=list(target.structure),
                   override=f"experiment={app.experiment.name}{_same_landscape(app)} zoom=manual "
                            f"zoom.target=[{point}] zoom.decades={app.decades}")
    write_json(run_dir / "candidate.json", row)
    log.info("seed %d: %s", app.search.seed, f"rank score {row['rank_score']:.3f}" if row["found"] else row["reason"])
    return row


def _same_landscape(app: TargetsConfig) -> str:
    """The overrides that give zoomer the landscape this candidate was searched in: every
    experiment setting that differs from its condition's, the video's shape where it differs
    from the preview's (the search ran in the start window cut to it), steps and precision."""
    condition = condition_settings(app.experiment.name)
    experiment = OmegaConf.to_container(OmegaConf.structured(app.experiment))
    changed = [f"experiment.{k}={_hydra_value(v)}" for k, v in _dotted(experiment).items()
               if k.split(".")[0] not in ("name", "steps") and v != _dotted(condition)[k]]
    if app.experiment.steps is not None:
        changed.append(f"experiment.steps={app.experiment.steps}")
    preview = OmegaConf.load(str(files("zoomer.conf") / "video" / "preview.yaml"))
    changed += [f"video.{k}={getattr(app.video, k)}" for k in ("width", "height") if getattr(app.video, k) != preview[k]]
    if app.quality != Quality.auto:
        changed.append(f"quality={app.quality}")
    if app.engine.precision != EngineConfig.precision:
        changed.append(f"engine.precision={app.engine.precision.value}")
    return "".join(f" {c}" for c in changed)


def _dotted(settings: dict, prefix: str = "") -> dict:
    """Nested settings as Hydra's dotted keys (window.x), so each override stays shell-safe."""
    out = {}
    for k, v in settings.items():
        out.update(_dotted(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def _hydra_value(value) -> str:
    """A value as Hydra's command line reads it back."""
    if isinstance(value, list):
        return "[" + ",".join(_hydra_value(v) for v in value) + "]"
    return "null" if value is None else str(value)


def rank(folder: Path) -> list[dict]:
    """Every candidate.json below `folder`, ranked within each experiment; writes targets.json
    and a contact sheet per experiment (contact_sheet.png when there is one) into `folder`."""
    rows = []
    for path in sorted(Path(folder).rglob("candidate.json")):
        rows.append({**json.loads(path.read_text()), "thumb": str(path.parent / "thumb.png")})
    if not rows:
        raise FileNotFoundError(f"no candidate.json below {folder}")
    experiments = sorted({r["experiment"] for r in rows})
    result = []
    for name in experiments:
        ranked = sorted((r for r in rows if r["experiment"] == name and r["found"]), key=lambda r: -r["rank_score"])
        for n, row in enumerate(ranked, 1):
            row["rank"] = n
        sheet = "contact_sheet.png" if len(experiments) == 1 else f"contact_sheet_{name}.png"
        if ranked:
            tiles = [(f"#{r['rank']} seed {r['seed']}", np.asarray(Image.open(r["thumb"]).convert("RGB")))
                     for r in ranked]
            save_png(Path(folder) / sheet, contact_sheet(tiles))
        result += ranked + [r for r in rows if r["experiment"] == name and not r["found"]]
    write_json(Path(folder) / "targets.json", result)
    return result


def contact_sheet(tiles: list[tuple[str, np.ndarray]], columns: int = 4) -> Image.Image:
    """Thumbnails in a grid, each captioned."""
    thumb = max(tile.shape[1] for _, tile in tiles)
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


class ContactSheet(Callback):
    """When the candidates' jobs are done, rank them into one sheet (a Hydra callback)."""

    def on_multirun_end(self, config, **kwargs) -> None:
        self._rank(Path(config.hydra.sweep.dir))

    def on_run_end(self, config, **kwargs) -> None:  # hydra.mode=RUN: a sheet of one
        self._rank(Path(config.hydra.run.dir))

    @staticmethod
    def _rank(folder: Path) -> None:
        try:
            ranked = rank(folder)
        except (OSError, ValueError) as e:
            log.warning("no contact sheet: %s", e)
            return
        best = [r for r in ranked if r.get("rank") == 1]
        log.info("ranked %d candidates into %s; best: %s", len(ranked), folder / "targets.json",
                 "; ".join(r["override"] for r in best) or "none found")


register_configs()


@quiet_when_piped
@hydra.main(version_base=HYDRA_VERSION_BASE, config_path="pkg://zoomer.conf", config_name="targets")
def main(cfg: DictConfig) -> None:
    run_reporting_errors(candidate, cfg)


if __name__ == "__main__":
    main()

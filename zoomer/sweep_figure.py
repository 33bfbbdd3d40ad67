"""One figure from a zoomer-still multirun: every still with its axes, in a grid.

A Hydra callback (conf/still.yaml), so that one command renders and assembles the paper's
2x3 figure:

    zoomer-still -m paper=tanh,relu,identity,minibatch,single_datapoint,paraminit size=256

Each panel is titled with its name and the box-counting dimension of its boundary, with
axes in the hyperparameters' own values for the paper's panels. figure.png lands in the
sweep directory.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .experiment import paper_order
from .figure import still_figure
from .study import SweepCallback, sweep_results
from .video import save_png
from .window import Window

log = logging.getLogger(__name__)

COLUMNS = 3
GAP = 24  # pixels between panels


def panel_image(run_dir: Path) -> Image.Image:
    """One still of a run directory, framed by its axes and titled with its dimension."""
    meta = json.loads((run_dir / "metadata.json").read_text())
    rgb = np.asarray(Image.open(run_dir / "still.png").convert("RGB"))
    window = Window.from_dict(meta["window"])
    name = meta["panel"]["title"] if meta.get("panel") else meta["experiment"]
    dimension = meta.get("box_dimension")
    title = name if dimension is None else f"{name}: D = {dimension:.2f}"
    figure = still_figure(rgb, window, tuple(meta["axis_labels"]), title, linear=bool(meta.get("panel")))
    return figure.crop(ImageOps.invert(figure).getbbox())  # without its empty margin


def grid(images: list[Image.Image], columns: int = COLUMNS) -> Image.Image:
    """Images in rows of `columns`, each in a cell of the largest one's size, on white."""
    width = max(im.width for im in images) + GAP
    height = max(im.height for im in images) + GAP
    rows = -(-len(images) // columns)
    sheet = Image.new("RGB", (width * min(columns, len(images)), height * rows), "white")
    for n, im in enumerate(images):
        r, c = divmod(n, columns)
        sheet.paste(im, (c * width + (width - im.width) // 2, r * height + (height - im.height) // 2))
    return sheet


def sweep_figure(sweep_dir: Path, since: float | None = None) -> Path:
    """Assemble figure.png from every still below `sweep_dir` (written since `since`, when
    given: this sweep's), in job order; returns its path."""
    runs = [p.parent for p in sweep_results(sweep_dir, "*/metadata.json", since) if (p.parent / "still.png").exists()]
    if not runs:
        raise FileNotFoundError(f"no zoomer-still output (still.png, metadata.json) below {sweep_dir}")
    # The paper's order, other names alphabetically; runs of one experiment keep their order.
    runs.sort(key=lambda d: paper_order(json.loads((d / "metadata.json").read_text())["experiment"]))
    path = Path(sweep_dir) / "figure.png"
    save_png(path, grid([panel_image(d) for d in runs]))
    return path


class SweepFigure(SweepCallback):
    """At the end of a zoomer-still multirun, assemble its stills into one figure."""

    def on_multirun_end(self, config, **kwargs) -> None:
        try:
            path = sweep_figure(Path(config.hydra.sweep.dir), self.started)
        except (OSError, ValueError) as e:
            log.warning("no sweep figure: %s", e)
            return
        log.info("sweep figure: %s", path)

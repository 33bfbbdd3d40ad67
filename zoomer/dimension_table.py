"""Collect the dimension.json files under a folder (a zoomer-dimension multirun) into one
markdown table, one row per run, in the order of the paper's conditions: at the end of
every multirun (the DimensionTable callback writes dimensions.md into the sweep
directory), or again for any folder with

    python -m zoomer.dimension_table multirun/dimension/2026-01-01_12-00-00

 "Static levels"
counts the levels whose landscape is static (coherence below zoomer.target's bound): there
the boundary is finer than a pixel and the box count says little beyond "near 2". The
median of the other levels is given beside it. With method=paper the dimension is the
median of all images' local slopes, "per level" the median of each image's own, and the
images are 2x apart.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np

from .atomic import write_atomic
from .experiment import paper_order
from .study import SweepCallback, sweep_results
from .target import MIN_COHERENCE

log = logging.getLogger(__name__)


def _row(result: dict) -> str:
    dims = [level["dimension"] for level in result["levels"]]
    static, coherent = _static_levels(result["levels"])
    config = result["config"]
    per_level = ", ".join("-" if d is None else f"{d:.2f}" for d in dims)
    method = result.get("method", "boxcount")  # results before method=paper were box counts
    step = 2 if method == "paper" else config["zoom_factor"]
    return (f"| {result['experiment']} | {method} | {result['median_dimension']:.3f} | {per_level} | {static} | "
            f"{coherent} | {config['size']} | {result['experiment_settings']['steps']} | "
            f"{step:g}^0..{len(dims) - 1} | {(config.get('engine') or config)['precision']} |")  # older runs: top-level


def _static_levels(levels: list[dict]) -> tuple[str, str]:
    """How many levels are static, and the median dimension of the others ("-" where a
    result predates the coherence record, or no level is left)."""
    if any("coherence" not in level for level in levels):
        return "-", "-"
    static = sum(level["coherence"] < MIN_COHERENCE for level in levels)
    kept = [level["dimension"] for level in levels
            if level["coherence"] >= MIN_COHERENCE and level["dimension"] is not None]
    return str(static), f"{np.median(kept):.3f}" if kept else "-"


def table(folder, since: float | None = None) -> str:
    """The markdown table of every dimension.json below `folder` (written since `since`, when
    given: this sweep's), in job order."""
    results = [json.loads(p.read_text()) for p in sweep_results(folder, "**/dimension.json", since)]
    if not results:
        raise FileNotFoundError(f"no dimension.json below {folder}")
    results.sort(key=lambda r: paper_order(r["experiment"]))
    header = ("| experiment | method | median dimension | per level | static levels | median of the others "
              "| size (px) | steps | zoom | precision |\n|---|---|---|---|---|---|---|---|---|---|")
    return "\n".join([header, *map(_row, results)])


class DimensionTable(SweepCallback):
    """At the end of a zoomer-dimension multirun, its table as dimensions.md in the sweep
    directory (and in the log)."""

    def on_multirun_end(self, config, **kwargs) -> None:
        folder = Path(config.hydra.sweep.dir)
        try:
            text = table(folder, self.started)
        except (OSError, ValueError, KeyError) as e:
            log.warning("no dimension table: %s", e)
            return
        write_atomic(folder / "dimensions.md", lambda f: f.write((text + "\n").encode()))
        log.info("dimension table (%s):\n%s", folder / "dimensions.md", text)


def main(argv=None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.exit("usage: python -m zoomer.dimension_table FOLDER  (a zoomer-dimension multirun's folder)")
    print(table(args[0]))


if __name__ == "__main__":
    main()

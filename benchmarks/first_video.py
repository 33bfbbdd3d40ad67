"""The first video a newcomer sees: how long `zoomer` takes and whether it shows the fractal.

Runs `zoomer` (with any overrides) as a user would, timed end to end, then reads the
keyframes back from its frame store and prints zoomer.boundary.structure of each: 0.15
or more is a view with curves, islands or swirls, below it bands or static. The bar for
the default (the first-video issue): at most 240 s on the 2-core CPU, structure at least
0.15 on at least 60% of the keyframes and a median of at least 0.25.

    python -m benchmarks.first_video [override ...]      # e.g. experiment.steps=300

Optionally tiles every 16th video frame into one PNG (--tile PATH) to look at.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from zoomer.boundary import structure
from zoomer.store import read_frame

HAS_STRUCTURE = 0.15


def run(overrides: list[str], run_dir: Path) -> float:
    """Wall seconds of `zoomer <overrides>` into run_dir."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "zoomer", *overrides, f"hydra.run.dir={run_dir}"], check=True)
    return time.perf_counter() - started


def keyframe_structure(run_dir: Path) -> list[float]:
    """Structure of every stored frame, shallowest first (keyframes are computed deepest
    first, so in reverse order of writing)."""
    store = Path(json.loads((run_dir / "metadata.json").read_text())["frames"]["store"])
    frames = sorted((p for p in store.glob("*.npy") if not p.name.startswith(".")),
                    key=lambda p: p.stat().st_mtime_ns, reverse=True)
    return [structure(read_frame(p)) for p in frames]


def tile(video: Path, out: Path, every: int = 16) -> None:
    """Every `every`-th frame of the video in one PNG, five to a row (ffmpeg's tile filter)."""
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    count = int(subprocess.run([ffmpeg, "-i", str(video), "-map", "0:v:0", "-c", "copy", "-f", "null", "-"],
                               capture_output=True, text=True).stderr.rsplit("frame=", 1)[1].split()[0])
    rows = -(-(count // every + (count % every > 0)) // 4)
    subprocess.run([ffmpeg, "-y", "-loglevel", "error", "-i", str(video), "-vf",
                    f"select='not(mod(n\\,{every}))',tile=4x{rows}:padding=2", "-frames:v", "1", str(out)],
                   check=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--run-dir", type=Path, default=None)
    parser.add_argument("--tile", type=Path, default=None, help="write every 16th frame, tiled, to this PNG")
    args = parser.parse_args(argv)
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="first_video_"))
    seconds = run(args.overrides, run_dir)
    values = keyframe_structure(run_dir)
    meta = json.loads((run_dir / "metadata.json").read_text())
    share = float(np.mean([v >= HAS_STRUCTURE for v in values]))
    print(f"zoomer {' '.join(args.overrides)}: {seconds:.0f} s wall "
          f"(search {meta['timings'].get('target_s', 0):.0f} s, compute {meta['timings'].get('frames_s', 0):.0f} s, "
          f"encode {meta['timings'].get('encode_s', 0):.0f} s), steps {meta['config']['experiment'].get('steps')}")
    print("keyframe structure, shallowest first:", " ".join(f"{v:.2f}" for v in values))
    print(f"median {np.median(values):.3f}, {share:.0%} of {len(values)} keyframes at {HAS_STRUCTURE} or more; "
          f"run dir {run_dir}")
    if args.tile:
        tile(run_dir / Path(meta["outputs"]["video"]).name, args.tile)
        print("tiled frames:", args.tile)


if __name__ == "__main__":
    main()

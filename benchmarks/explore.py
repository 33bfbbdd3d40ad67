"""zoomer-explore's response times: how soon a view's first coarse picture and its full
picture arrive, for the start window and for a window `--decades` deep on the boundary.

    python -m benchmarks.explore                 # the tanh start window and 6 decades down

Starts a real zoomer-explore (its defaults: preview quality on a CPU, 256 px across) and
reads the views' event streams as the page does; the start view is the server's first (as
when a user opens the page), the deep one is centred on zoomer's automatic target for that
depth (found first, not timed). Prints a Markdown table with the machine's load average.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request

from zoomer import Experiment
from zoomer.config import SearchConfig, VideoConfig, WindowConfig
from zoomer.plan import start_window
from zoomer.target import search_target


def timed_view(url: str, x: float, y: float, w: float) -> tuple[float, float, list]:
    """(seconds to the first pass, to the last, each pass's (width, trained runs))."""
    started = time.perf_counter()
    first, passes = None, []
    with urllib.request.urlopen(f"{url}api/view?x={x!r}&y={y!r}&w={w!r}", timeout=600) as stream:
        for raw in stream:
            line = raw.decode()
            if line.startswith("data: ") and '"pass"' in line:
                data = json.loads(line[6:])
                first = first or time.perf_counter() - started
                passes.append((data["size"][1], data["trained"]))
            if line.startswith("event: done"):
                return first, time.perf_counter() - started, passes
    raise RuntimeError("the view's stream ended before its last pass")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decades", type=float, default=6.0)
    args = parser.parse_args()
    start = start_window(WindowConfig().to_window(), VideoConfig(width=224, height=126))  # video=preview's
    server = subprocess.Popen([sys.executable, "-m", "zoomer.explore", "hydra.run.dir=/tmp/zoomer-explore-bench"],
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        url = next(line for line in server.stdout if "open http" in line).split()[2]
        rows = [("start window", *timed_view(url, start.cx, start.cy, start.width))]
        target, _ = search_target(Experiment(steps=100), start, args.decades, SearchConfig())
        deep = start.zoom(10**args.decades, target.point)
        rows.append((f"{args.decades:g} decades deep", *timed_view(url, deep.cx, deep.cy, deep.width)))
    finally:
        server.terminate()
        server.wait(60)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    print("| view | first picture | full picture | passes (px across: runs trained) |\n|---|---|---|---|")
    for name, first, full, passes in rows:
        print(f"| {name} | {first:.2f} s | {full:.2f} s | {', '.join(f'{w}: {n}' for w, n in passes)} |")


if __name__ == "__main__":
    main()

"""The renders zoomer-explore starts: the zoomer command of a view, run in the background.

A render is an ordinary `zoomer` process in its own Hydra run directory, so it resumes
like any other: the command the page shows is the one that runs, and running it again
(same hydra.run.dir) continues where it stopped. Its progress is read from the lines
zoomer logs per stored frame (zoomer.compute), which carry the ETA.
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
import shlex
import signal
import sys
import time
from pathlib import Path

from .config import ExploreConfig, Quality
from .explore_view import View

log = logging.getLogger(__name__)

# The explore app's own overrides that shape a render too, passed on to its command.
# quality and color.cmap come from the page, experiment= is written out from the config.
FORWARDED = ("experiment", "engine", "video", "color")
NOT_FORWARDED = ("experiment", "quality", "color.cmap")

TO_COMPUTE = re.compile(r"(\d+) of this shard's (\d+) frames to compute")
STORED = re.compile(r"frame \d+ stored \((\d+)/(\d+)\), \d+ s elapsed, ETA (\d+) s")
ENCODING = re.compile(r"encoding \d+ frames to")
STOP_WAIT_S = 30.0  # for a render to store its frame in progress after Ctrl-C


def forwarded(task_overrides) -> list[str]:
    """The overrides of the explore app's command line that a render must repeat."""
    keep = []
    for override in task_overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if key not in NOT_FORWARDED and any(key == node or key.startswith(node + ".") for node in FORWARDED):
            keep.append(override)
    return keep


def render_command(cfg: ExploreConfig, overrides: list[str], view: View, quality: Quality, cmap: str,
                   run_dir: Path | None = None) -> list[str]:
    """The zoomer command (argv, from `zoomer`) whose zoom ends on `view`: centred on it,
    its last frame as wide as the view (the view has the video's shape); into run_dir, or
    Hydra's own run directory."""
    # paper= cannot come along (it places the view itself); the runs per pixel its panel needs do
    panel = [] if cfg.panel is None or cfg.panel.supersample == 1 else [f"render.supersample={cfg.panel.supersample}"]
    return ["zoomer", f"experiment={cfg.experiment.name}", *overrides, f"quality={quality.value}", "zoom=manual",
            f"zoom.target=[{view.x!r},{view.y!r}]", f"zoom.final_width={view.width!r}", f"color.cmap={cmap}",
            *panel, *([] if run_dir is None else [f"hydra.run.dir={run_dir}"])]


def zoomer_program() -> list[str]:
    """How to start zoomer here: the console script beside this Python, else its module."""
    script = Path(sys.executable).parent / "zoomer"
    return [str(script)] if script.exists() else [sys.executable, "-m", "zoomer.cli"]


class RenderJob:
    """One background render and what its log says of it."""

    def __init__(self, number: int, argv: list[str], run_dir: Path, video_name: str):
        self.number, self.argv, self.run_dir, self.video_name = number, argv, run_dir, video_name
        self.state = "starting"  # starting | computing | encoding | done | failed | stopped
        self.frames = [0, None]  # stored, to store
        self.eta_s = None
        self.message = ""
        self.started = time.time()
        self.process = None

    @property
    def command(self) -> str:
        return shlex.join(self.argv)

    async def run(self) -> None:
        """Start zoomer and follow its log until it exits."""
        self.process = await asyncio.create_subprocess_exec(
            *zoomer_program(), *self.argv[1:], stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the explorer, which stops renders itself
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.state = "computing"
        async for raw in self.process.stdout:
            self._read(raw.decode(errors="replace").rstrip())
        code = await self.process.wait()
        video = self.run_dir / self.video_name
        if code == 0 and video.exists():
            self.state, self.eta_s = "done", 0
        elif self.state != "stopped":
            self.state = "failed"
        log.info("render %d %s: %s", self.number, self.state, self.message or self.command)

    def _read(self, line: str) -> None:
        if m := TO_COMPUTE.search(line):
            self.frames = [0, int(m[1])]
        elif m := STORED.search(line):
            self.frames, self.eta_s = [int(m[1]), int(m[2])], int(m[3])
        elif ENCODING.search(line):
            self.state, self.eta_s = "encoding", None
        elif line.startswith("zoomer: "):  # errors.py's one line: an error, or what Ctrl-C left
            self.message = line.removeprefix("zoomer: ")

    async def stop(self) -> None:
        """Ctrl-C for the render (it stores its frame in progress and exits), then wait."""
        if self.process is None or self.process.returncode is not None:
            return
        self.state = "stopped"
        self.process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(self.process.wait(), STOP_WAIT_S)
        except asyncio.TimeoutError:
            self.process.kill()

    def status(self) -> dict:
        stored, total = self.frames
        return {
            "id": self.number, "state": self.state, "command": self.command, "run_dir": str(self.run_dir),
            "frames_stored": stored, "frames_total": total, "eta_s": self.eta_s, "message": self.message,
            "elapsed_s": round(time.time() - self.started, 1),
            "video": f"/api/jobs/{self.number}/{self.video_name}" if self.state == "done" else None,
        }

"""zoomer-explore: a local web page over the engine, to find a zoom target by eye.

    zoomer-explore                                  # prints http://127.0.0.1:<port>/
    zoomer-explore experiment=relu open_browser=true

The page (zoomer/explore_page, static, no build step) asks for a view and gets its passes
as server-sent events; a tab's new view cancels the work of the one it replaces, and so
does a page that goes away. Renders are background zoomer processes (zoomer.explore_jobs).
aiohttp serves it all (the `explore` extra): one package for the server, the streams and
the subprocess plumbing, on the asyncio loop the jobs already need.
"""
from __future__ import annotations

import asyncio
import errno
import itertools
import json
import logging
import shlex
import signal
import socket
import threading
import webbrowser
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

try:
    from aiohttp import web
except ImportError:  # the explore extra is missing: _run says so in one line
    web = None

from .config import (COLORMAPS, HYDRA_VERSION_BASE, ExploreConfig, Quality, ZoomConfig, known_colormap,
                     register_configs)
from .config.parts import choice
from .errors import Refusal, quiet_when_piped, run_reporting_errors
from .explore_jobs import RenderJob, forwarded, render_command
from .explore_view import QUALITIES, Cancelled, Explorer, View
from .preflight import check_target_point

log = logging.getLogger(__name__)

PAGE = files("zoomer") / "explore_page"
VIEW_WORKERS = 2  # views trained at once (two tabs); more only share the same cores


class Server:
    """The page's API over one Explorer, and the renders it started."""

    def __init__(self, cfg: ExploreConfig, overrides: list[str], run_dir: Path):
        self.cfg, self.overrides, self.run_dir = cfg, overrides, run_dir
        self.explorer = Explorer(cfg)
        self.pool = ThreadPoolExecutor(VIEW_WORKERS, thread_name_prefix="view")
        self.tabs: dict[str, threading.Event] = {}  # each tab's view in training
        self.streams: set[threading.Event] = set()  # every open view stream's (the loop's own)
        self.running: set[threading.Event] = set()  # views whose runs are training now (the threads')
        self.jobs: dict[int, RenderJob] = {}
        self.tasks: set[asyncio.Task] = set()

    def app(self):
        app = web.Application()
        app.router.add_get("/", self.page)
        app.router.add_get("/explore.js", self.page)
        app.router.add_get("/api/start", self.start)
        app.router.add_get("/api/view", self.view)
        app.router.add_get("/api/status", self.status)
        app.router.add_post("/api/render", self.render)
        app.router.add_get("/api/jobs/{id}", self.job)
        app.router.add_get("/api/jobs/{id}/{video}", self.video)
        return app

    # ---- the request's words -> the engine's objects (4xx with a message otherwise) ----
    def _request(self, query) -> tuple[View, Quality, str]:
        try:
            view = View(*(_number(query, k) for k in ("x", "y", "w")))
            self.explorer.check(view)
            quality = choice(Quality, query.get("quality", self.explorer.quality.value), "quality")
            if quality not in QUALITIES:
                raise Refusal(f"quality={quality.value!r} must be one of {[q.value for q in QUALITIES]}")
        except KeyError as e:
            raise web.HTTPBadRequest(text=f"missing {e.args[0]}: a view needs x, y (its centre) and w (its "
                                          "width), in axis units (log10)")
        except ValueError as e:
            raise web.HTTPBadRequest(text=str(e))
        cmap = query.get("cmap", self.cfg.color.cmap)
        if not known_colormap(cmap):
            raise web.HTTPBadRequest(text=f"cmap={cmap!r} is not a known colormap; choose from {sorted(COLORMAPS)}")
        return view, quality, cmap

    def _command(self, view: View, quality: Quality, cmap: str, run_dir: Path | None = None) -> list[str]:
        return render_command(self.cfg, self.overrides, view, quality, cmap, run_dir)

    # ---- routes ----
    async def page(self, request):
        name = "index.html" if request.path == "/" else request.path.lstrip("/")
        kind = "text/html" if name.endswith(".html") else "text/javascript"
        return web.Response(text=(PAGE / name).read_text(), content_type=kind)

    async def start(self, request):
        """What the page needs before its first view: the start view and the choices."""
        exp, start = self.explorer.experiments[self.explorer.quality], self.explorer.start
        return web.json_response({
            "view": {"x": start.x, "y": start.y, "w": start.width}, "quality": self.explorer.quality.value,
            "qualities": [q.value for q in QUALITIES], "cmap": self.cfg.color.cmap, "cmaps": sorted(COLORMAPS),
            "aspect": self.explorer.aspect, "labels": list(exp.axis_labels), "experiment": self.cfg.experiment.name,
        })

    async def view(self, request):
        """Server-sent events: `view` (its numbers and command), one `pass` per pass, then
        `done`; or `cancelled` when the tab moved on, or `error`."""
        view, quality, cmap = self._request(request.query)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        tab = request.query.get("tab")
        cancel = threading.Event()
        if tab:
            if tab in self.tabs:
                self.tabs[tab].set()
            self.tabs[tab] = cancel
        self.streams.add(cancel)
        loop, queue = asyncio.get_running_loop(), asyncio.Queue()

        def train():
            self.running.add(cancel)
            try:
                self.explorer.refine(view, quality, cancel, lambda part: loop.call_soon_threadsafe(queue.put_nowait,
                                                                                                  part))
                outcome = None
            except Exception as e:  # noqa: BLE001 - Cancelled, or told to the page as an error event
                outcome = e
            self.running.discard(cancel)
            loop.call_soon_threadsafe(queue.put_nowait, outcome or "done")

        loop.run_in_executor(self.pool, train)
        try:
            await _send(response, "view", self._numbers(view, quality, cmap))
            while (item := await queue.get()) != "done":
                if isinstance(item, Cancelled):
                    await _send(response, "cancelled", {})
                    break
                if isinstance(item, Exception):
                    log.warning("view %s: %s", view, item)
                    await _send(response, "error", {"message": str(item)})
                    break
                await _send(response, "pass", self.explorer.describe(quality, item, cmap))
            else:
                await _send(response, "done", {})
        except ConnectionResetError:
            pass  # the page went away (or the handler is cancelled for it): stop training for it
        finally:
            cancel.set()
            self.streams.discard(cancel)
            if tab and self.tabs.get(tab) is cancel:
                del self.tabs[tab]
        return response

    def _numbers(self, view: View, quality: Quality, cmap: str) -> dict:
        window = view.window(self.explorer.sizes[-1])
        command = self._command(view, quality, cmap)
        return {"x": list(window.x_bounds), "y": list(window.y_bounds), "decades": self.explorer.decades(view),
                "steps": self.explorer.experiment(view, quality).steps, "command": shlex.join(command),
                "renderable": self._renderable(view)}

    def _renderable(self, view: View) -> str:
        """Why a render cannot zoom into this view ('' when it can)."""
        try:
            check_target_point(ZoomConfig(target=[view.x, view.y]), self.explorer.condition)
        except ValueError as e:
            return str(e)
        if view.width >= self.explorer.video_start.width:
            return "zoom in first: a render zooms in from the experiment's window to the view"
        return ""

    async def status(self, request):
        return web.json_response({"views_training": len(self.running), "jobs": [j.status() for j in
                                                                                self.jobs.values()]})

    async def render(self, request):
        """Start the view's zoomer command as a background render."""
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="the body must be JSON: {x, y, w, quality, cmap}")
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="the body must be a JSON object: {x, y, w, quality, cmap}")
        view, quality, cmap = self._request({k: str(v) for k, v in body.items()})
        if why := self._renderable(view):
            raise web.HTTPBadRequest(text=why)
        number = len(self.jobs) + 1
        run_dir = self._new_render_dir()
        job = RenderJob(number, self._command(view, quality, cmap, run_dir), run_dir,
                        f"zoom.{self.cfg.video.format.value}")
        self.jobs[number] = job
        task = asyncio.create_task(job.run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        log.info("render %d: %s", number, job.command)
        return web.json_response(job.status())

    def _new_render_dir(self) -> Path:
        """renders/NN under the app's run directory, NN the first number no render has taken
        (one of an earlier session in the same directory, too): made now, so it stays ours."""
        renders = self.run_dir.resolve() / "renders"
        renders.mkdir(parents=True, exist_ok=True)
        for n in itertools.count(1):
            try:
                (renders / f"{n:02d}").mkdir()
                return renders / f"{n:02d}"
            except FileExistsError:
                continue

    def _job(self, request) -> RenderJob:
        try:
            return self.jobs[int(request.match_info["id"])]
        except (KeyError, ValueError):
            raise web.HTTPNotFound(text=f"no render {request.match_info['id']!r} was started here")

    async def job(self, request):
        return web.json_response(self._job(request).status())

    async def video(self, request):
        job = self._job(request)
        if request.match_info["video"] != job.video_name:
            raise web.HTTPNotFound(text=f"render {job.number} writes {job.video_name}")
        if job.state != "done":
            raise web.HTTPConflict(text=f"render {job.number} is {job.state}, not done")
        return web.FileResponse(job.run_dir / job.video_name)

    async def close(self) -> None:
        """Stop training every view, and every render so that it can resume."""
        for cancel in self.streams:
            cancel.set()
        stopped = [job for job in self.jobs.values() if job.process is not None and job.process.returncode is None]
        await asyncio.gather(*(job.stop() for job in stopped))
        for job in stopped:
            print(f"zoomer-explore: render {job.number} stopped; resume it with: {job.command}", flush=True)
        self.pool.shutdown(wait=True)


def _number(query, key: str) -> float:
    try:
        return float(query[key])
    except ValueError:
        raise Refusal(f"{key}={query[key]!r} must be a number (axis units, log10)") from None


async def _send(response, event: str, data: dict) -> None:
    await response.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())


async def serve(server: Server, host: str, port: int, open_browser: bool) -> None:
    """Serve until Ctrl-C (or SIGTERM), then close cleanly."""
    runner = web.AppRunner(server.app(), handler_cancellation=True, access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:  # a port in use, or a host= this machine is not (or no such name)
        fix = "another port= (0: a free one)" if e.errno == errno.EADDRINUSE else "another host= or port="
        raise Refusal(f"cannot listen on {host}:{port} ({e.strerror or e}); choose {fix}") from None
    server.explorer.warm_up()  # once the port is ours, before the URL is given out
    site = web.SockSite(runner, sock)
    await site.start()
    url = f"http://{host if ':' not in host else f'[{host}]'}:{sock.getsockname()[1]}/"
    print(f"zoomer-explore: open {url}  (Ctrl-C stops it)", flush=True)
    if open_browser:
        webbrowser.open(url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    print("zoomer-explore: stopping", flush=True)
    await server.close()
    await runner.cleanup()
    print("zoomer-explore: stopped", flush=True)


register_configs()


def _run(cfg: DictConfig, out: Path) -> None:
    from hydra.core.hydra_config import HydraConfig

    app: ExploreConfig = OmegaConf.to_object(cfg)
    if web is None:
        raise Refusal("zoomer-explore needs the web extra: pip install 'zoomer[explore]' (aiohttp)")
    server = Server(app, forwarded(HydraConfig.get().overrides.task), out)
    asyncio.run(serve(server, app.host, app.port, app.open_browser))


@quiet_when_piped
@hydra.main(version_base=HYDRA_VERSION_BASE, config_path="pkg://zoomer.conf", config_name="explore")
def main(cfg: DictConfig) -> None:
    run_reporting_errors(_run, cfg)


if __name__ == "__main__":
    main()

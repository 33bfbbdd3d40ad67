"""zoomer-explore: a real server on 127.0.0.1, its API without a browser, and the page in
headless Chromium (Debian's, driven by Playwright), rendering a tiny video from a view."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import zoomer
from zoomer.boundary import edges
from zoomer.config import ExploreConfig
from zoomer.errors import Refusal
from zoomer.explore_jobs import forwarded
from zoomer.explore_view import View, pass_sizes


CHROMIUM = "/usr/bin/chromium"
# ZOOMER_EXPLORE_SCREENSHOT=docs/explore.png saves the browser test's screenshot there, of
# views at the app's own size (README.md's picture); otherwise views are small and quick.
SCREENSHOT = os.environ.get("ZOOMER_EXPLORE_SCREENSHOT")
COARSE, SIZE = (32, 256) if SCREENSHOT else (16, 64)
# At the preview quality (100 steps), renders of 32x18 px, 4 frames.
SMALL = (f"size={SIZE}", f"coarse={COARSE}", "video.width=32", "video.height=18", "video.fps=4",
         "video.duration_s=1")
START_S = 60  # for the server to print its URL


class Explorer:
    """A zoomer-explore process and what it printed."""

    def __init__(self, run_dir: Path, *overrides: str):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "zoomer.explore", f"hydra.run.dir={run_dir}", *overrides],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + START_S
        while not any("open http" in line for line in self.lines):
            assert self.process.poll() is None and time.monotonic() < deadline, "".join(self.lines)
            time.sleep(0.1)
        self.url = next(line for line in self.lines if "open http" in line).split()[2]

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)

    def get(self, path: str, body: dict | None = None, method: str | None = None):
        """(status, text) of a request; 4xx and 5xx are answers here, not exceptions."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path.lstrip("/"), data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def events(self, query: str):
        """The (event, data) pairs of a view's stream, as they come; the response to close."""
        response = urllib.request.urlopen(self.url + "api/view?" + query, timeout=60)

        def pairs():
            event = None
            for raw in response:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    yield event, json.loads(line[6:])
        return pairs(), response

    def wait_until(self, check, what: str, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while not (value := check()):
            assert time.monotonic() < deadline, f"{what} not within {timeout} s"
            time.sleep(0.2)
        return value

    def stop(self, timeout: float = 60.0) -> int:
        """Ctrl-C, as a terminal sends it; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)


@pytest.fixture(scope="module")
def explorer(tmp_path_factory):
    """The app as a subprocess (so its tests are marked slow), shared by the module's tests."""
    pytest.importorskip("aiohttp", reason="zoomer-explore needs the explore extra (aiohttp)")
    server = Explorer(tmp_path_factory.mktemp("explore"), *SMALL)
    yield server
    assert server.stop() == 0, "".join(server.lines[-20:])


def start(explorer) -> dict:
    return json.loads(explorer.get("/api/start")[1])


def boundary_box(setup: dict) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of a box a quarter of the start view wide around a boundary point
    near its middle, found in-process at the same steps (a render refuses a view of one class)."""
    v = setup["view"]
    window = zoomer.Window.around((v["x"], v["y"]), v["w"], setup["aspect"])
    scores = zoomer.landscape(zoomer.Experiment(steps=100), window, (19, 33), guess=4)
    ys, xs = window.axes(scores.shape)[::-1]
    i, j = min(np.argwhere(edges(scores)), key=lambda ij: abs(ij[0] - 9) + abs(ij[1] - 16))
    x, y, half = (xs[j] + xs[j + 1]) / 2, (ys[i] + ys[i + 1]) / 2, v["w"] / 8
    return x - half, y - half / setup["aspect"], x + half, y + half / setup["aspect"]


# ---- in-process: the passes' nesting, the command's overrides ----

def test_every_pass_is_every_other_pixel_of_the_next():
    sizes = pass_sizes(32, 256, 16 / 9)
    assert sizes == [(19, 33), (37, 65), (73, 129), (145, 257)]
    view = View(1.0149477, 2.3419544, 1e-3)
    for coarse, fine in zip(sizes, sizes[1:]):
        for a, b in zip(view.window(coarse).axes(coarse), view.window(fine).axes(fine)):
            assert np.array_equal(a, b[::2])  # bit for bit: the runs are the same runs


def test_a_render_repeats_the_overrides_that_shape_it():
    given = ["experiment=relu", "experiment.steps=20", "video=vertical", "video.width=64", "color=fire_ice",
             "color.cmap=magma", "quality=paper", "engine.device=cpu", "port=0", "size=64", "+hydra.x=1"]
    assert forwarded(given) == ["experiment.steps=20", "video=vertical", "video.width=64", "color=fire_ice",
                                "engine.device=cpu"]


@pytest.mark.parametrize("settings, says", [
    (dict(size=100), "size=100 must be coarse=32 times a power of two"),
    (dict(coarse=2), "coarse=2 must be an integer >= 4"),
    (dict(guess=3), "render.guess=3"),
    (dict(port=70000), "port=70000"),
])
def test_the_config_refuses_what_cannot_work(settings, says):
    with pytest.raises(Refusal, match=re.escape(says)):
        ExploreConfig(**settings)


# ---- the server, without a browser (slow: the app is a subprocess) ----

@pytest.mark.slow
@pytest.mark.parametrize("query, says", [
    ("x=2&y=1", "missing w"),
    ("x=2&y=1&w=-1", "width > 0"),
    ("x=nan&y=1&w=1", "finite"),
    ("x=2&y=1&w=abc", "w='abc' must be a number"),
    ("x=2&y=1&w=1e-20", "too deep for float64"),
    ("x=2&y=1&w=1&cmap=rainbow", "not a known colormap"),
    ("x=2&y=1&w=1&quality=best", "quality='best'"),
])
def test_a_bad_view_gets_a_400_with_a_message(explorer, query, says):
    status, text = explorer.get("/api/view?" + query)
    assert status == 400 and says in text and "Traceback" not in text, (status, text)


@pytest.mark.slow
def test_bad_renders_and_unknown_paths_get_a_4xx(explorer):
    v = start(explorer)["view"]
    assert explorer.get("/api/render", {"x": v["x"], "y": v["y"], "w": v["w"]})[0] == 400  # nothing to zoom
    status, text = explorer.get("/api/render", {"x": 100.0, "y": 0.0, "w": 0.1})
    assert status == 400 and "outside the experiment's window" in text
    req = urllib.request.Request(explorer.url + "api/render", data=b"{not json", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=30)
    assert e.value.code == 400 and "JSON" in e.value.read().decode()
    assert explorer.get("/api/jobs/99")[0] == 404
    assert explorer.get("/api/nothing")[0] == 404
    assert explorer.get("/api/start", method="DELETE")[0] == 405


@pytest.mark.slow
def test_a_deep_view_trains_the_steps_its_render_trains(compose_config):
    """The page shows the render's last frame: at the preview's quality a view's steps
    follow its depth below a render's first frame, as zoomer's do for the same zoom."""
    from omegaconf import OmegaConf

    from zoomer.config import Quality
    from zoomer.explore_view import Explorer as Engine
    from zoomer.quality import preview_steps

    engine = Engine(OmegaConf.to_object(compose_config("explore", *SMALL)))
    deep = View(1.0149477, 2.3419544, engine.video_start.width / 10**5.9)
    assert engine.experiment(deep, Quality.preview).steps == preview_steps(5.9) == 180
    assert engine.experiment(View(0.0, 1.0, engine.video_start.width), Quality.preview).steps == 100
    assert engine.experiment(deep, Quality.paper).steps == 1000


@pytest.mark.parametrize("precision, deepest", [("float32", 4), ("float64", 12), ("auto", 25)])
def test_a_view_is_checked_in_the_precision_the_page_trains(compose_config, precision, deepest):
    from omegaconf import OmegaConf

    from zoomer.explore_view import Explorer as Engine

    engine = Engine(OmegaConf.to_object(compose_config("explore", *SMALL, f"engine.precision={precision}")))
    width = engine.video_start.width
    engine.check(View(1.0149477, 2.3419544, width / 10**deepest))
    with pytest.raises(Refusal, match="too deep"):
        engine.check(View(1.0149477, 2.3419544, width / 10**(deepest + 5)))


def test_a_panels_render_keeps_the_runs_per_pixel_it_needs(compose_config):
    """paper=paraminit's panel needs 2x2 runs a pixel (its static otherwise); paper= itself
    cannot come along in a command that places the view, so its supersample does."""
    from omegaconf import OmegaConf

    from zoomer.explore_jobs import render_command

    cfg = OmegaConf.to_object(compose_config("explore", *SMALL, "paper=paraminit"))
    command = render_command(cfg, [], View(1.0, 2.0, 0.1), cfg.quality, "Spectral")
    assert "render.supersample=2" in command and not any(c.startswith("paper=") for c in command)
    plain = OmegaConf.to_object(compose_config("explore", *SMALL))
    assert not any(c.startswith("render.supersample") for c in render_command(plain, [], View(1.0, 2.0, 0.1),
                                                                           plain.quality, "Spectral"))


def test_a_view_refines_in_passes_and_recolours_without_training(explorer):
    v = start(explorer)["view"]
    query = f"x={v['x']}&y={v['y']}&w={v['w'] / 3}&tab=recolour"
    stream, response = explorer.events(query)
    with response:
        got = list(stream)
    (first, numbers), passes, last = got[0], [d for e, d in got if e == "pass"], got[-1][0]
    assert first == "view" and last == "done"
    assert "zoom=manual" in numbers["command"] and f"zoom.final_width={v['w'] / 3!r}" in numbers["command"]
    assert abs(numbers["decades"] - np.log10(3)) < 1e-9
    assert [p["size"][1] for p in passes] == [COARSE * 2**k + 1 for k in range(len(passes))]
    assert passes[-1]["size"][1] == SIZE + 1
    assert all(p["reused"] > 0 for p in passes[1:]), "each pass takes the runs of the one before"
    assert all(0 <= p["structure"] <= 1 and 0 <= p["converged"] <= 1 for p in passes)
    stream, response = explorer.events(query + "&cmap=fire_ice")
    with response:
        again = [d for e, d in stream if e == "pass"]
    assert len(again) == 1 and again[0]["trained"] == 0 and again[0]["size"] == passes[-1]["size"]
    assert again[0]["image"] != passes[-1]["image"]


@pytest.mark.slow
def test_a_new_view_cancels_the_one_it_replaces_and_tabs_work_at_once(explorer):
    v = start(explorer)["view"]
    slow = f"x={v['x'] + 0.123}&y={v['y']}&w={v['w'] / 50}&quality=paper"  # 1000 steps: seconds a pass
    replaced, response_a = explorer.events(slow + "&tab=one")
    other, response_b = explorer.events(f"x={v['x']}&y={v['y']}&w={v['w'] / 7}&tab=two")  # another tab
    with response_a, response_b:
        assert next(replaced)[0] == "view"
        newer, response_c = explorer.events(f"x={v['x']}&y={v['y']}&w={v['w'] / 5}&tab=one")
        with response_c:
            t = time.monotonic()
            events = [e for e, _ in replaced]
            assert events[-1] == "cancelled" and "done" not in events and time.monotonic() - t < 10, events
            assert [e for e, _ in newer][-1] == "done"
        assert [e for e, _ in other][-1] == "done", "the other tab's view is not cancelled"


@pytest.mark.slow
def test_a_page_that_goes_away_stops_its_training(explorer):
    v = start(explorer)["view"]
    stream, response = explorer.events(f"x={v['x'] - 0.071}&y={v['y']}&w={v['w'] / 40}&quality=paper")
    assert next(stream)[0] == "view"
    explorer.wait_until(lambda: json.loads(explorer.get("/api/status")[1])["views_training"] > 0, "training")
    response.close()
    explorer.wait_until(lambda: json.loads(explorer.get("/api/status")[1])["views_training"] == 0,
                        "training stopped after the page closed", timeout=10)


# ---- the page, in a real browser ----

@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run installs it)")
    playwright = pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def final_view(page) -> dict:
    """Wait for the view's last pass; its URL's view and what the page shows."""
    page.wait_for_selector("#status[data-state=done]", timeout=90_000)
    return {"url": page.url, "image": page.get_attribute("#picture", "src"), "x_lo": page.inner_text("#x-lo"),
            "x_hi": page.inner_text("#x-hi"), "command": page.inner_text("#command")}


@pytest.mark.slow
def test_the_page_zooms_goes_back_and_renders_a_video(explorer, browser, tmp_path):
    setup = start(explorer)
    page = browser.new_page(viewport={"width": 1300, "height": 500})
    page.goto(explorer.url)
    first = final_view(page)
    assert "x=" in first["url"] and first["image"].startswith("data:image/png")

    # Drag a box around a boundary point: the window and the picture change, the URL too.
    x0, y0, x1, y1 = boundary_box(setup)
    box, v = page.locator("#picture").bounding_box(), setup["view"]
    height = v["w"] / setup["aspect"]
    to_px = lambda x, y: (box["x"] + (x - v["x"] + v["w"] / 2) / v["w"] * box["width"],  # noqa: E731
                          box["y"] + (v["y"] + height / 2 - y) / height * box["height"])
    page.mouse.move(*to_px(x0, y1))
    page.mouse.down()
    page.mouse.move(*to_px((x0 + x1) / 2, (y0 + y1) / 2), steps=4)
    page.mouse.move(*to_px(x1, y0), steps=4)
    page.mouse.up()
    page.wait_for_function(f"location.href !== {json.dumps(first['url'])}")
    zoomed = final_view(page)
    assert zoomed["image"] != first["image"] and zoomed["x_lo"] != first["x_lo"]
    assert float(zoomed["x_hi"]) / float(zoomed["x_lo"]) < float(first["x_hi"]) / float(first["x_lo"]) / 10
    page.screenshot(path=SCREENSHOT or str(tmp_path / "explore.png"))

    page.go_back()  # the browser's history restores the previous view
    back = final_view(page)
    assert (back["url"], back["x_lo"], back["x_hi"]) == (first["url"], first["x_lo"], first["x_hi"])
    page.go_forward()
    assert final_view(page)["command"] == zoomed["command"]

    # Another colormap: the stored scores recoloured, nothing trained.
    page.select_option("#cmap", "fire_ice")
    page.wait_for_function("location.search.includes('cmap=fire_ice')")
    recoloured = final_view(page)
    assert recoloured["image"] != zoomed["image"] and ", 0 runs trained" in page.inner_text("#status")
    assert recoloured["command"] == zoomed["command"].replace("color.cmap=Spectral", "color.cmap=fire_ice")

    # The command shown renders: the button starts it, the page plays the video.
    assert "zoom=manual" in recoloured["command"] and "zoom.target=" in recoloured["command"]
    page.click("#render")
    page.wait_for_selector("#job[data-state=done] video", timeout=120_000)
    job = json.loads(explorer.get("/api/jobs/1")[1])
    assert job["command"].startswith(recoloured["command"] + " hydra.run.dir=")
    with urllib.request.urlopen(explorer.url + job["video"].lstrip("/"), timeout=30) as served:
        assert served.read() == (Path(job["run_dir"]) / "zoom.mp4").read_bytes()
    page.wait_for_function("document.querySelector('#job video').readyState >= 1", timeout=30_000)  # it plays
    page.close()


# Last: it stops the module's server.
@pytest.mark.slow
def test_ctrl_c_stops_the_server_and_leaves_a_render_resumable(explorer):
    x0, y0, x1, y1 = boundary_box(start(explorer))
    status, text = explorer.get("/api/render", {"x": (x0 + x1) / 2, "y": (y0 + y1) / 2, "w": (x1 - x0) / 2,
                                                "quality": "paper"})  # 1000 steps: still computing below
    assert status == 200, text
    job = json.loads(text)
    explorer.wait_until(lambda: json.loads(explorer.get(f"/api/jobs/{job['id']}")[1])["frames_total"],
                        "the render computing", timeout=60)
    code, out = explorer.stop(), "".join(explorer.lines)
    assert code == 0 and "zoomer-explore: stopped" in out, out[-3000:]
    assert f"render {job['id']} stopped; resume it with: zoomer " in out and "hydra.run.dir=" in out
    assert (Path(job["run_dir"]) / "frames" / "manifest.json").exists()
    assert "zoom.target=" in job["command"] and "quality=paper" in job["command"]

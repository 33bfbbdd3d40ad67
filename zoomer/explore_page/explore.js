// zoomer-explore's page: the URL holds the view (x, y: its centre, w: its width, in log10 axis
// units; quality; cmap), so back, forward and bookmarks work; the server streams the view's
// passes as server-sent events, and a new view closes the stream of the one it replaces.
"use strict";

const $ = (id) => document.getElementById(id);
const tab = Math.random().toString(36).slice(2);  // this page's: its new view cancels its own old one
let setup = null;    // /api/start: the start view, choices, aspect, axis labels
let current = null;  // {x, y, w, quality, cmap} shown now
let bounds = null;   // the window of the picture shown: {x: [lo, hi], y: [lo, hi]} (edge pixels' centres)
let coming = null;   // the window of the view asked for, shown with its first pass
let shown = null;    // the view of the picture shown
let size = null;     // [H, W] of the latest pass
let stream = null;

function viewFromUrl() {
  const q = new URLSearchParams(location.search);
  const v = {x: +q.get("x"), y: +q.get("y"), w: +q.get("w"),
             quality: q.get("quality") || setup.quality, cmap: q.get("cmap") || setup.cmap};
  return q.has("x") && q.has("y") && q.has("w") ? v : {...setup.view, quality: v.quality, cmap: v.cmap};
}

function urlOf(v) {
  return "?" + new URLSearchParams({x: v.x, y: v.y, w: v.w, quality: v.quality, cmap: v.cmap});
}

// A new view: into the history (push) or in place of the entry (replace), then shown.
function go(v, how) {
  history[how === "push" ? "pushState" : "replaceState"](v, "", urlOf(v));
  show(v);
}

function show(v) {
  current = v;
  $("quality").value = v.quality;
  $("cmap").value = v.cmap;
  if (stream) stream.close();  // the server stops training the view it replaces
  $("status").dataset.state = "loading";
  $("status").textContent = "training...";
  const es = stream = new EventSource("/api/view" + urlOf(v) + "&tab=" + tab);
  es.addEventListener("view", (e) => showNumbers(JSON.parse(e.data)));
  es.addEventListener("pass", (e) => showPass(JSON.parse(e.data)));
  es.addEventListener("done", () => { finish("done"); es.close(); });
  es.addEventListener("cancelled", () => es.close());
  es.addEventListener("error", (e) => {
    if (e.data) finish("error", JSON.parse(e.data).message);
    else if (stream === es && $("status").dataset.state !== "done") finish("error", "the server went away");
    es.close();
  });
}

function finish(state, message) {
  $("status").dataset.state = state;
  if (message) $("status").innerHTML = `<span class="error">${message}</span>`;
}

function showNumbers(n) {
  coming = {x: n.x, y: n.y};
  $("decades").textContent = `${n.decades.toFixed(2)} decades below the start (${n.steps} steps per run)`;
  $("command").textContent = n.command;
  $("renderable").textContent = n.renderable;
  $("render").disabled = !!n.renderable;
  const [xl, yl] = setup.labels.map((l) => l.replace(/^log10 /, ""));
  $("x-label").textContent = xl;
  $("y-label").textContent = yl;
  $("x-lo").textContent = rate(n.x[0], n.x);
  $("x-hi").textContent = rate(n.x[1], n.x);
  $("y-lo").textContent = rate(n.y[0], n.y);
  $("y-hi").textContent = rate(n.y[1], n.y);
}

// A hyperparameter value (10^c) with the digits that tell the window's two edges apart.
function rate(c, [lo, hi]) {
  const digits = Math.min(17, Math.max(3, 3 + Math.ceil(-Math.log10(Math.LN10 * (hi - lo)))));
  return Number(Math.pow(10, c).toPrecision(digits)).toString();
}

function showPass(p) {
  $("picture").src = p.image;
  $("picture").style.transform = "";
  [bounds, shown] = [coming, current];
  size = p.size;
  $("structure").textContent = p.structure.toFixed(3);
  $("mix").textContent = `${(100 * p.converged).toFixed(1)}% converge, ${(100 * (1 - p.converged)).toFixed(1)}% diverge`;
  $("status").textContent = `${p.pass + 1}/${p.passes}: ${p.size[1]}x${p.size[0]} px, ${p.trained} runs trained, ` +
    `${p.reused} reused, ${p.seconds.toFixed(2)} s`;
  $("status").dataset.pass = p.pass;
  $("status").dataset.state = p.pass + 1 === p.passes ? "final" : "refining";
}

// Display pixels -> axis units, from the window's edge-pixel centres.
function toAxis(px, py) {
  const r = $("picture").getBoundingClientRect();
  const [h, w] = size;
  const fx = ((px - r.left) / r.width * w - 0.5) / (w - 1);
  const fy = ((r.bottom - py) / r.height * h - 0.5) / (h - 1);
  return [bounds.x[0] + fx * (bounds.x[1] - bounds.x[0]), bounds.y[0] + fy * (bounds.y[1] - bounds.y[0])];
}

function widthFor(dx, dy) {  // the narrowest view of the page's shape that holds a dx x dy box
  return Math.max(dx, dy * setup.aspect);
}

// ---- zoom and pan ----
let drag = null;
const stage = $("picture");
stage.addEventListener("contextmenu", (e) => e.preventDefault());
stage.addEventListener("mousedown", (e) => {
  if (!bounds || !size) return;
  drag = {x: e.clientX, y: e.clientY, pan: e.shiftKey || e.button !== 0};
});
window.addEventListener("mousemove", (e) => {
  if (!drag) return;
  const r = stage.getBoundingClientRect(), box = $("box");
  if (drag.pan) {
    stage.style.transform = `translate(${e.clientX - drag.x}px, ${e.clientY - drag.y}px)`;
    return;
  }
  if (!shown) return;
  box.style.display = "block";
  box.style.left = Math.min(drag.x, e.clientX) - r.left + "px";
  box.style.top = Math.min(drag.y, e.clientY) - r.top + "px";
  box.style.width = Math.abs(e.clientX - drag.x) + "px";
  box.style.height = Math.abs(e.clientY - drag.y) + "px";
});
window.addEventListener("mouseup", (e) => {
  if (!drag) return;
  const d = drag;
  drag = null;
  $("box").style.display = "none";
  if (Math.abs(e.clientX - d.x) < 4 && Math.abs(e.clientY - d.y) < 4) {  // a click, not a drag
    stage.style.transform = "";
    return;
  }
  const [ax, ay] = toAxis(d.x, d.y), [bx, by] = toAxis(e.clientX, e.clientY);
  if (d.pan) {  // the picture stays where it was dropped until the new view's first pass
    go({...shown, quality: current.quality, cmap: current.cmap, x: shown.x - (bx - ax), y: shown.y - (by - ay)},
       "push");
  } else {
    go({...current, x: (ax + bx) / 2, y: (ay + by) / 2, w: widthFor(Math.abs(bx - ax), Math.abs(by - ay))}, "push");
  }
});

// The picture shown, moved and scaled to where `v` will be, until v's first pass replaces it.
function preview(v) {
  const s = shown.w / v.w, width = stage.offsetWidth, height = stage.offsetHeight;  // untransformed
  const tx = (shown.x - v.x) / shown.w * width * s, ty = (v.y - shown.y) / shown.w * setup.aspect * height * s;
  stage.style.transform = `translate(${tx}px, ${ty}px) scale(${s})`;
}

let wheel = null;  // scrolling gathers into one view, committed when the wheel rests
stage.addEventListener("wheel", (e) => {
  e.preventDefault();
  if (!bounds || !size) return;
  const [ax, ay] = toAxis(e.clientX, e.clientY);
  const base = wheel ? wheel.view : current;
  const f = Math.pow(2, e.deltaY / 300);  // > 1 zooms out
  const next = {...base, x: ax + (base.x - ax) * f, y: ay + (base.y - ay) * f, w: base.w * f};
  clearTimeout(wheel && wheel.timer);
  wheel = {view: next, timer: setTimeout(() => { const v = wheel.view; wheel = null; go(v, "push"); }, 250)};
  preview(next);
}, {passive: false});

window.addEventListener("popstate", () => show(viewFromUrl()));
$("quality").addEventListener("change", (e) => go({...current, quality: e.target.value}, "replace"));
$("cmap").addEventListener("change", (e) => go({...current, cmap: e.target.value}, "replace"));

// ---- the command and the render ----
$("copy").addEventListener("click", async () => {
  const text = $("command").textContent;
  try { await navigator.clipboard.writeText(text); $("copy").textContent = "Copied"; }
  catch { getSelection().selectAllChildren($("command")); $("copy").textContent = "Selected: Ctrl-C"; }
  setTimeout(() => { $("copy").textContent = "Copy"; }, 1500);
});

$("render").addEventListener("click", async () => {
  const r = await fetch("/api/render", {method: "POST", body: JSON.stringify(current),
                                        headers: {"Content-Type": "application/json"}});
  if (!r.ok) { $("job").innerHTML = `<p class="error">${await r.text()}</p>`; return; }
  follow((await r.json()).id);
});

async function follow(id) {
  const j = await (await fetch(`/api/jobs/${id}`)).json();
  const share = j.frames_total ? j.frames_stored / j.frames_total : 0;
  const eta = j.eta_s === null ? "" : `, ETA ${j.eta_s} s`;
  const el = $("job");
  el.dataset.state = j.state;
  el.innerHTML = `<p>render ${j.id}: ${j.state}, ${j.frames_stored}/${j.frames_total ?? "?"} frames${eta}, ` +
    `${j.elapsed_s} s</p><progress value="${j.state === "done" ? 1 : share}"></progress>` +
    (j.message ? `<p class="hint">${j.message}</p>` : "") + `<p class="hint">in ${j.run_dir}</p>`;
  if (j.state === "done") {  // a GIF is an image; MP4 and WebM play as video
    const v = document.createElement(j.video.endsWith(".gif") ? "img" : "video");
    Object.assign(v, {src: j.video, controls: true, autoplay: true, loop: true, muted: true});
    el.appendChild(v);
  } else if (j.state !== "failed" && j.state !== "stopped") {
    setTimeout(() => follow(id), 1000);
  }
}

async function main() {
  setup = await (await fetch("/api/start")).json();
  for (const [id, options] of [["quality", setup.qualities], ["cmap", setup.cmaps]]) {
    for (const o of options) $(id).add(new Option(o, o));
  }
  go(viewFromUrl(), "replace");
}
main();

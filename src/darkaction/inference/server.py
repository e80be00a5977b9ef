"""`darkaction serve RUN --port P`: a local web server around one `Recognizer` (FastAPI + uvicorn).

    POST /predict            multipart field `file` (a video); query window, stride (seconds), views, top_k
                             -> JSON: label, prob, top_k, probs, n_frames, windows, segments, id, timeline_png
    GET  /                   a page to upload a clip; it then shows the result page
    GET  /result/{id}        the result as a page: label, probabilities, the timeline and the enhanced thumbnails
    GET  /result/{id}/timeline.png
    GET  /health             {"status": "ok", "classes": [...], "checkpoint": ...}

Bad uploads get a 4xx with a message and leave the server running: an empty file (400), one over the size limit
(413), a file that is not a video or has no decodable frame (422). A truncated video that still decodes is labelled
from the frames it has, with a warning in the JSON. One request runs the model at a time (the CPU is the limit).
The web dependencies are optional: pip install 'darkaction[serve]'.
"""

# no `from __future__ import annotations` here: FastAPI reads the endpoint annotations (UploadFile, Request) at
# definition time, and they are imported inside create_app
import base64
import html
import io
import logging
import math
import tempfile
import threading
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any

from darkaction.errors import ConfigError, DarkActionError, DataError
from darkaction.inference.recognizer import MAX_VIEWS, MAX_WINDOW_S, Recognizer

log = logging.getLogger(__name__)

KEEP_RESULTS = 20  # result pages kept in memory (oldest dropped first)


def _require_web():
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401 - FastAPI needs it for file uploads
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise DataError(
            f"the server needs FastAPI, uvicorn and python-multipart ({e}): pip install 'darkaction[serve]'"
        ) from None


def _jpeg(rgb) -> str:
    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return base64.b64encode(buf.tobytes()).decode("ascii") if ok else ""


class Results:
    """The last KEEP_RESULTS results: JSON, timeline PNG and thumbnails, by id."""

    def __init__(self, keep: int = KEEP_RESULTS) -> None:
        self.keep = keep
        self._items: OrderedDict[str, dict] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, item: dict) -> str:
        rid = uuid.uuid4().hex[:12]
        with self._lock:
            self._items[rid] = item
            while len(self._items) > self.keep:
                self._items.popitem(last=False)
        return rid

    def get(self, rid: str) -> dict | None:
        with self._lock:
            return self._items.get(rid)


def analyse(rec: Recognizer, path: Path, window: float, stride: float, views: int, top_k: int, title: str = "") -> dict:
    """The whole-video prediction (exactly `predict`'s), the windows with their segments, the timeline PNG and
    the windows' enhanced thumbnails (JPEG, base64)."""
    from darkaction.inference.timeline import merge_segments, plot_timeline

    whole = rec.predict(path, views=views, top_k=top_k)
    windows = list(rec.windows(path, window=window, stride=stride, views=views, top_k=top_k))
    with tempfile.TemporaryDirectory() as tmp:
        png = plot_timeline(windows, rec.classes, Path(tmp) / "timeline.png", title=title or path.name).read_bytes()
    thumbs = [_jpeg(w.pop("thumbnail")) for w in windows]
    return {"result": {**whole, "windows": windows, "segments": merge_segments(windows)}, "png": png,
            "thumbnails": thumbs}  # fmt: skip


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes gets 413 before it is read into memory or onto disk (by
    its Content-Length, or by counting a chunked body as it arrives)."""

    def __init__(self, app, limit: int, message: str) -> None:
        self.app, self.limit, self.message = app, limit, message

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._reject(send)
        seen, over = 0, False

        async def counted():
            nonlocal seen, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:  # stop reading: the app sees a disconnect, its answer is replaced below
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message):
            if not over:
                await send(message)

        await self.app(scope, counted, guarded)
        if over:
            await self._reject(send)

    async def _reject(self, send) -> None:
        import json

        body = json.dumps({"detail": self.message}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"connection", b"close")]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})


def create_app(rec: Recognizer, max_upload_mb: float = 200.0, window: float = 4.0, stride: float = 2.0, views: int = 5):
    """The FastAPI app serving `rec`."""
    _require_web()
    from fastapi import FastAPI, File, HTTPException, Request, UploadFile
    from fastapi.responses import HTMLResponse, JSONResponse, Response

    app = FastAPI(title="darkaction", description="Action recognition in dark videos")
    results = Results()
    model_lock = threading.Lock()
    limit = int(max_upload_mb * 1024 * 1024)
    # the multipart envelope adds a little to the file itself
    app.add_middleware(
        BodyLimit, limit=limit + 64 * 1024, message=f"upload too large; the limit is {max_upload_mb:g} MB"
    )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # anything unforeseen still answers in JSON (the page shows `detail`), and the server keeps running
        log.exception("request failed")
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500)

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "classes": rec.classes, "checkpoint": str(rec.checkpoint)}

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return _page("darkaction", _UPLOAD.format(classes=html.escape(", ".join(rec.classes)), mb=f"{max_upload_mb:g}"))

    @app.post("/predict")
    def predict(
        file: UploadFile = File(...),  # noqa: B008 - FastAPI's declaration style
        window: float = window,
        stride: float = stride,
        views: int = views,
        top_k: int = 5,
    ) -> dict:
        if not (math.isfinite(window) and math.isfinite(stride) and 0.1 <= stride and 0 < window <= MAX_WINDOW_S):
            raise HTTPException(400, f"window must be positive and at most {MAX_WINDOW_S:g} s and stride at least "
                                     f"0.1 s, got window={window}, stride={stride}")  # fmt: skip
        if not 1 <= views <= MAX_VIEWS or not 1 <= top_k <= len(rec.classes):
            raise HTTPException(400, f"views must be 1..{MAX_VIEWS} and top_k 1..{len(rec.classes)}")
        suffix = Path(file.filename or "upload").suffix[:10]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"upload{suffix}"
            size = 0
            with open(path, "wb") as f:
                while chunk := file.file.read(1 << 20):
                    size += len(chunk)
                    if size > limit:
                        raise HTTPException(413, f"upload too large (over {max_upload_mb:g} MB)")
                    f.write(chunk)
            if size == 0:
                raise HTTPException(400, f"empty upload: '{file.filename}' has 0 bytes; send a video file")
            name = file.filename or "upload"
            try:
                with model_lock:
                    out = analyse(rec, path, window, stride, views, top_k, title=name)
            except ConfigError as e:
                raise HTTPException(400, str(e).replace(str(path), name)) from None
            except DarkActionError as e:
                raise HTTPException(422, f"not a readable video: {str(e).replace(str(path), name)}") from None
            # FFmpeg puts the file's path into its messages: never show the server's temporary path
            warnings = [w.replace(str(path), name) for w in out["result"].get("warnings", [])]
            if warnings:
                out["result"]["warnings"] = warnings
        rid = results.add({**out, "filename": file.filename})
        log.info(f"{file.filename}: {out['result']['label']} ({100 * out['result']['prob']:.1f} %) -> /result/{rid}")
        return {"id": rid, "filename": file.filename, **out["result"], "timeline_png": f"/result/{rid}/timeline.png"}

    def _get(rid: str) -> dict:
        item = results.get(rid)
        if item is None:
            raise HTTPException(404, f"no result {rid!r} (the server keeps the last {KEEP_RESULTS})")
        return item

    @app.get("/result/{rid}/timeline.png")
    def timeline(rid: str) -> Response:
        return Response(_get(rid)["png"], media_type="image/png")

    @app.get("/result/{rid}", response_class=HTMLResponse)
    def result_page(rid: str) -> str:
        return _page("darkaction result", _result_html(rid, _get(rid)))

    return app


def serve(run: str | Path, host: str = "127.0.0.1", port: int = 8000, precision: str = "run", **kwargs: Any) -> None:
    """Load the run once and serve it until interrupted (`kwargs` go to `create_app`)."""
    _require_web()
    import uvicorn

    rec = Recognizer.from_run(run, precision=precision)
    log.info(f"serving {rec.checkpoint} ({', '.join(rec.classes)}) on http://{host}:{port}/")
    uvicorn.run(create_app(rec, **kwargs), host=host, port=port, log_level="warning")


# ---------------------------------------------------------------------------------------------- pages

_STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;background:#fafafa}
h1{font-size:1.5em} table{border-collapse:collapse} td,th{padding:2px 10px;text-align:left}
.bar{background:#4a78c2;height:10px;display:inline-block} .err{color:#b00020;font-weight:bold}
.thumbs img{height:72px;margin:2px;border:1px solid #ccc} .big{font-size:1.4em;font-weight:bold}"""

_UPLOAD = """<h1>darkaction: what happens in this dark video?</h1>
<p>Classes: {classes}. Upload a clip (at most {mb} MB); it is enhanced, labelled in windows over time and shown
with its timeline.</p>
<form id="f"><input type="file" name="file" accept="video/*" required> <button type="submit">Recognise</button></form>
<p id="msg"></p>
<script>
document.getElementById("f").addEventListener("submit", async (ev) => {{
  ev.preventDefault();
  const msg = document.getElementById("msg");
  msg.className = ""; msg.textContent = "working...";
  let r, data;
  try {{
    r = await fetch("/predict", {{method: "POST", body: new FormData(ev.target)}});
    data = (r.headers.get("content-type") || "").includes("json") ? await r.json() : {{}};
  }} catch (e) {{ msg.className = "err"; msg.textContent = "the server did not answer: " + e; return; }}
  if (r.ok) {{ window.location = "/result/" + data.id; }}
  else {{ msg.className = "err"; msg.textContent = data.detail || (r.status + " " + r.statusText); }}
}});
</script>"""


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>{body}</body></html>")  # fmt: skip


def _result_html(rid: str, item: dict) -> str:
    r = item["result"]
    rows = "".join(
        f"<tr><td>{html.escape(t['label'])}</td><td>{100 * t['prob']:.1f} %</td>"
        f"<td><span class='bar' style='width:{int(300 * t['prob'])}px'></span></td></tr>"
        for t in r["top_k"]
    )
    segs = "".join(
        f"<tr><td>{s['start']:.1f}-{s['end']:.1f} s</td><td>{html.escape(s['label'])}</td>"
        f"<td>{100 * s['prob']:.0f} %</td></tr>"
        for s in r["segments"]
    )
    thumbs = "".join(
        f"<img src='data:image/jpeg;base64,{t}' title='{w['start']:.1f}-{w['end']:.1f} s: {html.escape(w['label'])}'>"
        for t, w in zip(item["thumbnails"], r["windows"])
    )
    warn = "".join(f"<p class='err'>warning: {html.escape(w)}</p>" for w in r.get("warnings", []))
    buf = io.StringIO()
    buf.write(f"<h1>{html.escape(str(item.get('filename') or 'upload'))}</h1>{warn}")
    buf.write(f"<p class='big'>{html.escape(r['label'])} ({100 * r['prob']:.1f} %)</p>")
    buf.write(f"<p>{r['n_frames']} frames, {r['views']} views averaged</p><table>{rows}</table>")
    buf.write(f"<h2>Timeline</h2><img src='/result/{rid}/timeline.png' style='max-width:100%'>")
    buf.write(f"<h2>Segments</h2><table>{segs}</table>")
    buf.write(f"<h2>Enhanced frames, one per window</h2><div class='thumbs'>{thumbs}</div>")
    buf.write("<p><a href='/'>another clip</a></p>")
    return buf.getvalue()

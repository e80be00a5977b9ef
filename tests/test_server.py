"""serve: a real HTTP client against the running server (predict, result page, timeline), bad uploads answered with
a 4xx while the server keeps running, and a headless-browser screenshot of the result page (where Chromium exists)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_recognizer import _encode, _frames, clip, run  # noqa: E402, F401 - module fixtures

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(run):  # noqa: F811
    import uvicorn

    from darkaction.inference import Recognizer
    from darkaction.inference.server import create_app

    rec = Recognizer.from_run(run)
    port = _free_port()
    app = create_app(rec, max_upload_mb=1.0, window=1.0, stride=0.5, views=2)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", rec
    srv.should_exit = True
    thread.join(timeout=10)


def test_predict_over_http_matches_the_recognizer(server, clip):  # noqa: F811
    url, rec = server
    with httpx.Client(base_url=url, timeout=60) as c:
        assert c.get("/health").json()["classes"] == rec.classes
        r = c.post("/predict", files={"file": (clip.name, clip.read_bytes(), "video/mp4")}, params={"views": 3})
        assert r.status_code == 200, r.text
        got = r.json()
        want = rec.predict(clip, views=3)
        assert got["label"] == want["label"] and got["n_frames"] == want["n_frames"]
        assert max(abs(got["probs"][k] - p) for k, p in want["probs"].items()) < 1e-4
        assert got["windows"] and got["segments"] and "thumbnail" not in got["windows"][0]
        page = c.get(f"/result/{got['id']}")
        assert page.status_code == 200 and got["label"] in page.text and "data:image/jpeg;base64," in page.text
        png = c.get(got["timeline_png"])
        assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
        assert c.get("/result/nosuchid").status_code == 404
        assert "<form" in c.get("/").text


def test_bad_uploads_get_clear_4xx_and_the_server_keeps_running(server, clip, tmp_path):  # noqa: F811
    url, _ = server
    frames = np.concatenate([_frames(clip)] * 2)
    avi = _encode(frames, tmp_path / "clip.avi", fmt="avi", codec="mpeg4")
    cases = [
        (("empty.mp4", b"", "video/mp4"), 400, "empty upload"),
        (("notes.mp4", b"this is not a video" * 50, "video/mp4"), 422, "not a readable video"),
        (("huge.mp4", np.zeros(2 * 2**20, np.uint8).tobytes(), "video/mp4"), 413, "too large"),
    ]
    with httpx.Client(base_url=url, timeout=60) as c:
        for file, code, words in cases:
            r = c.post("/predict", files={"file": file})
            assert r.status_code == code and words in r.json()["detail"], (file[0], r.status_code, r.text)
            assert c.get("/health").status_code == 200
        # a truncated MP4 (its index is at the end) cannot be opened: 422 naming the upload
        r = c.post("/predict", files={"file": ("cut.mp4", clip.read_bytes()[:-200], "video/mp4")})
        assert r.status_code == 422 and "cut.mp4" in r.json()["detail"], r.text
        # a truncated AVI still labels the frames that decode, and says so
        r = c.post("/predict", files={"file": ("cut.avi", avi[: len(avi) * 4 // 5], "video/x-msvideo")})
        assert r.status_code == 200, r.text
        assert 0 < r.json()["n_frames"] < len(frames)
        assert any("truncated" in w for w in r.json().get("warnings", [])), r.json().get("warnings")
        for params in ({"window": -1}, {"window": "inf"}, {"stride": 0.001}, {"views": 1000}):
            r = c.post("/predict", files={"file": (clip.name, clip.read_bytes())}, params=params)
            assert r.status_code == 400, (params, r.text)

        # a chunked body (no Content-Length) over the limit is cut off while it arrives, not stored first
        def chunks():
            yield b'--x\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n\r\n'
            for _ in range(40):
                yield b"\0" * 65536

        r = c.post("/predict", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"})
        assert r.status_code == 413 and "too large" in r.json()["detail"]
        assert c.get("/health").status_code == 200


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(_chromium() is None, reason="no Chromium here (Debian: apt-get install chromium)")
def test_headless_browser_screenshot_of_the_result_page(server, clip, tmp_path):  # noqa: F811
    from PIL import Image

    url, _ = server
    with httpx.Client(base_url=url, timeout=60) as c:
        rid = c.post("/predict", files={"file": (clip.name, clip.read_bytes())}).json()["id"]
    for name, page in (("upload", "/"), ("result", f"/result/{rid}")):
        shot = tmp_path / f"{name}.png"
        cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
               "--window-size=1200,1600", f"--screenshot={shot}", url + page]  # fmt: skip
        subprocess.run(cmd, capture_output=True, timeout=120)
        img = np.asarray(Image.open(shot).convert("L"), dtype=float)
        assert img.shape[1] == 1200 and img.std() > 5  # drawn, not a blank page

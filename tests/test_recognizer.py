"""Recognizer: one inference path for files, frames, iterators, long videos in windows and live streams; one .ckpt is
enough; windows, segments, CSV/JSON and the timeline PNG; a local HTTP stream that the test serves itself."""

from __future__ import annotations

import http.server
import json
import shutil
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from darkaction.errors import ConfigError, DataError

sys.path.insert(0, str(Path(__file__).parent))
from test_evaluate import make_tiny_run  # noqa: E402


@pytest.fixture(scope="module")
def run(tiny_synth, tmp_path_factory):
    """A tiny run enhanced by a (random) Zero-DCE whose weights file sits outside the run directory."""
    from darkaction.enhancement.dce import DCENet

    tmp = tmp_path_factory.mktemp("rec")
    torch.manual_seed(0)
    weights = tmp / "dce.pth"
    torch.save(DCENet().state_dict(), weights)
    extra = {
        "train.epochs": 1,
        "train.limit_train_batches": 2,
        "enhance.method": "zero-dce",
        "enhance.weights": weights,
    }
    return make_tiny_run(tiny_synth, tmp, **extra)[1]


@pytest.fixture(scope="module")
def clip(tiny_synth):
    return sorted((tiny_synth / "videos").rglob("*.mp4"))[0]


def _frames(path):
    from darkaction.data.video import decode

    return decode(path, resize="none")[0]


def test_path_array_and_iterator_give_the_same_prediction(run, clip):
    from darkaction.inference import Recognizer

    rec = Recognizer.from_run(run)
    by_path = rec.predict(clip, views=3, top_k=3)
    frames = _frames(clip)
    by_array = rec.predict(frames, views=3, top_k=3)
    by_iter = rec.predict(iter(list(frames)), views=3, top_k=3)
    for other in (by_array, by_iter):
        assert other["label"] == by_path["label"] and other["n_frames"] == len(frames)
        for c in rec.classes:
            assert other["probs"][c] == pytest.approx(by_path["probs"][c], abs=1e-6)
    top = by_path["top_k"]
    assert len(top) == 3 and top[0]["label"] == by_path["label"] and top[0]["prob"] == by_path["prob"]
    assert [t["prob"] for t in top] == sorted((t["prob"] for t in top), reverse=True)
    assert sum(by_path["probs"].values()) == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(ConfigError, match="views"):
        rec.predict(frames, views=0)
    with pytest.raises(DataError, match="uint8"):
        rec.predict(frames.astype(np.float32))
    with pytest.raises(DataError, match="no decodable frame"):
        rec.predict(iter([]))


def test_recognizer_agrees_with_evaluation_on_the_cached_video(run):
    """Same decode, resize, enhancement and views as the cache: evaluate's first test video, predicted from its file
    at the same position, gives the same probabilities."""
    from darkaction.data.index import DatasetIndex
    from darkaction.evaluation.evaluate import evaluate
    from darkaction.inference import Recognizer

    res = evaluate(run, views=2, progress=False)
    rec = Recognizer.from_run(run)  # the run's precision, as the cache was enhanced
    first = DatasetIndex.load(Path(rec.cfg.data.prepared) / "index.json").split("test")[0]
    frames = rec.preprocess(_frames(first.path))
    np.testing.assert_array_equal(frames, rec_cache_frames(rec, first.video_id))  # the cache's very frames
    probs, _ = rec.predict_clips(rec.views(frames, 2, position=0).unsqueeze(0))
    mean = probs[0].mean(0)
    assert res["predictions"][0]["video_id"] == first.video_id
    assert rec.classes[int(mean.argmax())] == res["predictions"][0]["pred"]
    assert float(mean.max()) == pytest.approx(res["predictions"][0]["prob"], abs=1e-5)


def rec_cache_frames(rec, video_id):
    from darkaction.enhancement.run import training_cache

    return np.asarray(training_cache(rec.cfg).frames(video_id))


def test_one_checkpoint_file_is_enough(run, clip, tmp_path):
    """The resolved config and the enhancer's weights are embedded: a lone .ckpt predicts exactly like the run."""
    from darkaction.config import load_config
    from darkaction.inference import Recognizer
    from darkaction.training.run import load_checkpoint

    want = Recognizer.from_run(run).predict(clip, views=2)
    alone = tmp_path / "model.ckpt"
    shutil.copy(run / "checkpoints" / "last.ckpt", alone)
    info = load_checkpoint(alone)["darkaction"]
    assert info["config"]["sampling"]["T"] == 8 and "e_conv1.weight" in info["enhancer"]
    weights = Path(load_config(run / "config.yaml").enhance.weights)
    hidden = weights.with_name("hidden.pth")
    weights.rename(hidden)
    try:
        got = Recognizer.from_run(alone).predict(clip, views=2)
    finally:
        hidden.rename(weights)
    assert got["label"] == want["label"]
    for c, p in want["probs"].items():
        assert got["probs"][c] == pytest.approx(p, abs=1e-6)


def test_denormal_weights_in_a_checkpoint_are_flushed_when_loaded_for_inference(run, tmp_path):
    from darkaction.inference import Recognizer
    from darkaction.training.run import load_checkpoint

    ckpt = load_checkpoint(run / "checkpoints" / "last.ckpt")
    name = next(k for k, v in ckpt["state_dict"].items() if k.startswith("model.") and v.dim() > 1)
    planted = ckpt["state_dict"][name].view(-1)
    planted[:3] = torch.tensor([1e-40, -3e-39, 2e-45])  # denormal float32 values
    keep = planted[3:].clone()
    path = tmp_path / "denormal.ckpt"
    torch.save(ckpt, path)
    model = Recognizer.from_run(path, enhancer=False, precision="fp32").model
    w = model.state_dict()[name.removeprefix("model.")].reshape(-1)
    assert torch.equal(w[:3], torch.zeros(3)) and torch.equal(w[3:], keep)  # only the denormals changed


def test_windows_cover_the_video_with_bounded_frames(run, clip):
    from darkaction.inference import Recognizer

    rec = Recognizer.from_run(run)
    frames = np.concatenate([_frames(clip)] * 4)  # a longer video: 4 takes back to back
    n = len(frames)
    ws = list(rec.windows(frames, window=1.0, stride=0.5, views=2, fps=30))
    size, hop = 30, 15
    full = (n - size) // hop + 1
    tail = (n - size) % hop >= hop // 2  # a leftover of at least half a stride gets a window of its own
    assert len(ws) == full + tail
    assert all(w["n_frames"] == size for w in ws)  # never more than one window of frames held
    assert [w["index"] for w in ws] == list(range(len(ws)))
    assert ws[0]["start"] == 0.0 and ws[1]["start"] == pytest.approx(0.5)
    last_end = n / 30 if tail else (size + (full - 1) * hop) / 30
    assert ws[-1]["end"] == pytest.approx(last_end, abs=1e-3)  # a tail window ends at the last frame
    assert all(w["latency"] >= 0 and w["thumbnail"].dtype == np.uint8 for w in ws)
    short = list(rec.windows(frames[:20], window=1.0, stride=0.5, views=2, fps=30))
    assert len(short) == 1 and short[0]["n_frames"] == 20 and short[0]["end"] == pytest.approx(20 / 30, abs=1e-3)
    for bad in ({"window": 0, "stride": 1}, {"window": float("inf"), "stride": 1}, {"window": 2, "stride": -1}):
        with pytest.raises(ConfigError, match="positive"):
            next(rec.windows(frames, **bad))
    with pytest.raises(ConfigError, match="views"):
        rec.predict(frames, views=10_000)
    # a tail shorter than half a stride is not worth a window of its own
    tail = list(rec.windows(frames[: size + 5], window=1.0, stride=0.5, views=1, fps=30))
    assert len(tail) == 1 and tail[0]["end"] == pytest.approx(1.0)


def test_a_frame_stream_can_be_read_twice_and_reports_each_pass():
    from darkaction.inference import FrameStream

    frames = np.zeros((3, 8, 8, 3), np.uint8)
    stream = FrameStream(frames)
    assert sum(1 for _ in stream) == 3 and sum(1 for _ in stream) == 3 and stream.n_frames == 3


def test_urls_lose_their_credentials_and_live_sources_need_windows(run, capsys):
    from darkaction.cli import main, redact

    assert redact("rtsp://admin:secret@10.0.0.5:554/stream1") == "rtsp://10.0.0.5:554/stream1"
    assert redact("night.mp4") == "night.mp4"
    assert main(["predict", "rtsp://admin:secret@127.0.0.1:9/x", "--run", str(run)]) == 2
    err = capsys.readouterr().err
    assert "--window" in err and "secret" not in err


def test_thumbnails_of_a_long_stream_stay_bounded_and_spread():
    from darkaction.inference.timeline import Thumbnails

    t = Thumbnails(keep=10)
    for i in range(1000):
        t.add(i, i)
    kept = [i for i, _ in t.items]
    assert len(kept) <= 10 and kept[0] == 0 and kept[-1] > 800
    assert len({b - a for a, b in zip(kept, kept[1:])}) == 1  # evenly spaced


def test_segments_tile_time_without_overlap():
    from darkaction.inference.timeline import merge_segments

    def w(i, label, p):
        return {"start": i * 1.0, "end": i * 1.0 + 2.0, "label": label, "prob": p}

    ws = [w(0, "run", 0.9), w(1, "run", 0.7), w(2, "walk", 0.6), w(3, "run", 0.8)]
    segs = merge_segments(ws)
    assert [s["label"] for s in segs] == ["run", "walk", "run"]
    assert [s["windows"] for s in segs] == [2, 1, 1]
    assert segs[0]["prob"] == pytest.approx(0.8)
    assert segs[0]["start"] == 0.0 and segs[-1]["end"] == 5.0
    for a, b in zip(segs, segs[1:]):
        assert a["end"] == b["start"]  # boundaries half-way between the centres of neighbouring windows
    assert segs[0]["end"] == pytest.approx(2.5)
    assert merge_segments([]) == []


def test_cli_windows_write_csv_json_and_timeline(run, clip, tmp_path, capsys):
    from darkaction.cli import main

    out = tmp_path / "pred"
    assert main(["predict", str(clip), "--run", str(run), "--window", "1", "--stride", "0.5", "--views", "2",
                 "--out", str(out)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "latency" in text and "segments:" in text
    data = json.loads((out / "windows.json").read_text())
    rows = (out / "windows.csv").read_text().splitlines()
    assert len(rows) == len(data["windows"]) + 1 and rows[0].startswith("index,start,end,label,prob,latency")
    assert data["segments"] and data["segments"][-1]["end"] == data["windows"][-1]["end"]
    from PIL import Image

    assert Image.open(out / "timeline.png").size[0] > 600


class _Server:
    """Serve one payload over HTTP on the loopback interface; `cut` bytes (if given) then drop the connection."""

    def __init__(self, payload: bytes, cut: int | None = None):
        body, size = payload, len(payload)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                self.send_response(200)
                self.send_header("Content-Type", "video/mp2t")
                self.send_header("Content-Length", str(size))
                self.end_headers()
                self.wfile.write(body if cut is None else body[:cut])
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/cam.ts"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _encode(frames: np.ndarray, path: Path, fmt: str = "mpegts", codec: str = "mpeg2video", fps: int = 30) -> bytes:
    import av

    with av.open(str(path), "w", format=fmt) as out:
        s = out.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for f in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    return path.read_bytes()


def _mpegts(frames: np.ndarray, path: Path) -> bytes:
    return _encode(frames, path)


def test_live_http_stream_and_a_stream_that_dies(run, clip, tmp_path, capsys):
    from darkaction.cli import main
    from darkaction.inference import FrameStream, Recognizer

    frames = np.concatenate([_frames(clip)] * 3)
    payload = _mpegts(frames, tmp_path / "cam.ts")
    rec = Recognizer.from_run(run)
    with _Server(payload) as server:
        stream = FrameStream(server.url, timeout=5)
        whole = list(rec.windows(stream, window=1.0, stride=1.0, views=1))
    assert stream.live and stream.fps == pytest.approx(30) and stream.error is None
    assert stream.n_frames == len(frames) and len(whole) >= len(frames) // 30
    with _Server(payload, cut=len(payload) // 2) as server:
        stream = FrameStream(server.url, timeout=5)
        part = list(rec.windows(stream, window=1.0, stride=1.0, views=1))
        assert 0 < stream.n_frames < len(frames) and 0 < len(part) < len(whole)
        assert "stopped after" in stream.error  # FFmpeg reports the dropped connection (EIO), not a clean end
        # the CLI keeps the windows so far, writes them, and says the source stopped early
        out = tmp_path / "live"
        code = main(["predict", server.url, "--run", str(run), "--window", "1", "--views", "1", "--out", str(out)])
    assert code == 1 and "stopped early" in capsys.readouterr().err
    assert json.loads((out / "windows.json").read_text())["windows"]
    with pytest.raises(DataError, match="cannot open"):
        list(FrameStream("http://127.0.0.1:9/nothing.ts", timeout=2))


def test_a_stream_piped_on_stdin(run, clip, tmp_path):
    """`predict - --window`: MPEG-TS piped into the CLI's stdin is labelled window by window."""
    import subprocess

    payload = _mpegts(np.concatenate([_frames(clip)] * 2), tmp_path / "pipe.ts")
    out = tmp_path / "stdin"
    cmd = [sys.executable, "-m", "darkaction.cli", "predict", "-", "--run", str(run), "--window", "1", "--views", "1",
           "--out", str(out)]  # fmt: skip
    res = subprocess.run(cmd, input=payload, capture_output=True, timeout=300)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    data = json.loads((out / "windows.json").read_text())
    assert data["source"] == "-" and len(data["windows"]) >= 2 and b"latency" in res.stdout


@pytest.mark.parametrize("over", [["model.head=mran"], ["model.backbone=efficientnet_b0", "model.width=0.25"]])
def test_attention_of_models_without_forward_with_attention(over):
    """MRAN and EfficientNet-BERT store their BERT attention on the head: predict_clips (and so evaluate's
    attention plot) still gets it."""
    from darkaction.config import load_config
    from darkaction.inference import Recognizer
    from darkaction.models.build import build_model

    cfg = load_config(None, ["sampling.T=8", "sampling.alpha=4", "augment.height=32", "augment.width=32",
                             "model.backbone=r2plus1d_18", "model.width=0.125", "model.ig65m_midplanes=false",
                             "model.bert_hidden=32", "model.bert_heads=4", "model.bert_ffn=64", *over])  # fmt: skip
    torch.manual_seed(0)
    model = build_model(cfg.model, 6, 8)
    rec = Recognizer(cfg, ["a", "b", "c", "d", "e", "f"], model)
    probs, att = rec.predict_clips(torch.randn(1, 2, 3, 8, 32, 32))
    assert probs.shape == (1, 2, 6) and att is not None and att.shape[:2] == (1, 2)


def test_a_run_saved_before_se_kind_existed_still_loads(tmp_path):
    """Its config says `se: true` only; its gates are channel SE's Conv3d: the loader reads which from the weights."""
    from darkaction.config import load_config, to_dict
    from darkaction.errors import ConfigError as CfgError
    from darkaction.inference import Recognizer
    from darkaction.models.build import build_model

    cfg = load_config(None, ["sampling.T=8", "sampling.alpha=4", "augment.height=32", "augment.width=32",
                             "model.backbone=r2plus1d_18", "model.width=0.125", "model.ig65m_midplanes=false",
                             "model.head=tgap", "model.se=true", "model.se_kind=channel",
                             "enhance.method=identity"])  # fmt: skip
    model = build_model(cfg.model, 6, 8)
    old = to_dict(cfg)
    del old["model"]["se_kind"]
    ckpt = {"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
            "darkaction": {"classes": list("abcdef"), "config": old}}  # fmt: skip
    torch.save(ckpt, tmp_path / "old.ckpt")
    rec = Recognizer.from_run(tmp_path / "old.ckpt")
    assert rec.cfg.model.se_kind == "channel"
    cfg.model.se_kind = "spatial"
    with pytest.raises(CfgError, match="model.se_kind"):
        build_model(cfg.model, 6, 8)


def test_a_checkpoint_saved_before_its_precise_bn_statistics_loads_with_a_warning(run, tmp_path, caplog):
    """Training ends by giving each checkpoint its precise BN statistics; one saved before that (a run stopped
    early) still loads, and says what it lacks."""
    from darkaction.inference import Recognizer
    from darkaction.training.precise_bn import CHECKPOINT_KEY

    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt[CHECKPOINT_KEY] == "done"
    ckpt[CHECKPOINT_KEY] = "pending"
    torch.save(ckpt, tmp_path / "early.ckpt")
    with caplog.at_level("WARNING", logger="darkaction.inference.recognizer"):
        Recognizer.from_run(tmp_path / "early.ckpt")
    assert "BatchNorm statistics" in caplog.text and "--resume" in caplog.text


def test_flip_averages_each_view_with_its_mirror(run, clip):
    """eval.flip: every view's softmax is the mean of its own and its left-right mirror's (one batch holds both)."""
    from darkaction.inference import Recognizer

    rec = Recognizer.from_run(run, precision="fp32")
    assert rec.flip is False  # the run's config: eval.flip off by default
    clips = rec.views(rec.preprocess(_frames(clip)), 3).unsqueeze(0)
    plain, att = rec.predict_clips(clips)
    mirrored, _ = rec.predict_clips(clips.flip(-1))
    assert (plain - mirrored).abs().max() > 1e-3  # not mirror-symmetric, so the check below means something
    rec.flip = True
    both, att_both = rec.predict_clips(clips)
    assert (both - plain).abs().max() > 1e-4
    assert both.shape == plain.shape == (1, 3, len(rec.classes))
    torch.testing.assert_close(both, 0.5 * (plain + mirrored), atol=1e-5, rtol=1e-4)
    if att is not None:
        torch.testing.assert_close(att_both, att, atol=1e-5, rtol=1e-4)  # the unmirrored views' attention
    unflipped = Recognizer.from_run(run, precision="fp32").predict(clip, views=3)
    assert rec.predict(clip, views=3)["probs"] != unflipped["probs"]  # predict goes through the same path


def test_flip_negates_the_horizontal_flow_of_rgb_flow_clips(run):
    """A 5-channel clip (RGB + flow dx, dy) is mirrored as training mirrors it: pixels flipped and dx negated."""
    from darkaction.inference import Recognizer

    class Spy(torch.nn.Module):
        def forward(self, x):
            self.seen = x.clone()
            return x.mean(dim=(2, 3, 4))[:, :2]

    base = Recognizer.from_run(run, precision="fp32")
    spy = Spy()
    rec = Recognizer(base.cfg, ["a", "b"], spy, None, "cpu")
    rec.flip = True
    clips = torch.randn(1, 2, 5, 4, 6, 6)
    probs, _ = rec.predict_clips(clips)
    assert probs.shape == (1, 2, 2) and spy.seen.shape == (4, 5, 4, 6, 6)
    x = clips.flatten(0, 1)
    torch.testing.assert_close(spy.seen[:2], x)
    torch.testing.assert_close(spy.seen[2:, [0, 1, 2, 4]], x[:, [0, 1, 2, 4]].flip(-1))
    torch.testing.assert_close(spy.seen[2:, 3], -x[:, 3].flip(-1))

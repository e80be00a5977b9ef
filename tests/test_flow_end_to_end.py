"""The Table 3 row "R(2+1)D-BERT with Optical Flow" end to end on `tiny_synth`: prepare, gamma enhancement, the
Farneback flow cache, one epoch of a tiny `model.in_channels=5` model through `train` (what `darkaction train` calls),
evaluate and predict; and the errors an RGB + flow run gives when its flow cache is missing or incomplete."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

from darkaction.errors import DataError

sys.path.insert(0, str(Path(__file__).parent))
from test_evaluate import tiny_run_config  # noqa: E402


class ClipShapes(L.Callback):
    """Records the training batches' clip shapes and the spread of their flow channels."""

    def __init__(self):
        self.shapes: list[tuple] = []
        self.flow_std: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        clip = batch["clip"]
        self.shapes.append(tuple(clip.shape))
        self.flow_std.append(float(clip[:, 3:].std()))


@pytest.fixture(scope="module")
def flow_run(tiny_synth, tmp_path_factory):
    """(cfg, run_dir, flow cache folder, ClipShapes) of a 1-epoch RGB + flow run on gamma-enhanced 32x32 frames."""
    from darkaction.data.prepare import prepare
    from darkaction.enhancement.run import enhance
    from darkaction.training.flow_cache import build_flow_cache
    from darkaction.training.run import train

    tmp = tmp_path_factory.mktemp("flow_e2e")
    extra = {"model.in_channels": 5, "train.epochs": 1, "train.limit_train_batches": 2, "eval.views": 2}
    cfg = tiny_run_config(tiny_synth, tmp, name="flow", **extra)
    prepare(cfg, progress=False)
    enhanced = enhance(cfg, progress=False)
    flow_root = build_flow_cache(cfg, workers=1, progress=False)
    shapes = ClipShapes()
    run = train(cfg, callbacks=[shapes])
    assert flow_root.name == Path(enhanced).name  # flow of the enhanced frames, as the paper computes it
    return cfg, run, flow_root, shapes


def _spy_views(monkeypatch) -> list[torch.Tensor]:
    """Collect every clip batch (B,V,C,T,H,W) that evaluate / predict hand to the model."""
    from darkaction.inference.recognizer import Recognizer

    seen: list[torch.Tensor] = []
    real = Recognizer.predict_clips

    def spy(self, clips, rates=None):
        seen.append(clips.detach().cpu())
        return real(self, clips, rates)

    monkeypatch.setattr(Recognizer, "predict_clips", spy)  # evaluate and predict both go through it
    return seen


def _spy_farneback(monkeypatch) -> list[tuple]:
    import darkaction.data.flow as fl

    calls: list[tuple] = []
    real = fl.farneback_flow

    def spy(frames):
        calls.append(tuple(frames.shape))
        return real(frames)

    monkeypatch.setattr(fl, "farneback_flow", spy)  # predict imports it from this module at call time
    return calls


def test_flow_row_trains_evaluates_and_predicts(flow_run, tiny_synth, monkeypatch):
    from darkaction.config import load_config
    from darkaction.data.index import DatasetIndex
    from darkaction.evaluation.evaluate import evaluate, load_run
    from darkaction.evaluation.predict import predict

    cfg, run, flow_root, shapes = flow_run
    T = cfg.sampling.T
    # training saw RGB + flow clips, and the flow channels carry motion rather than a constant
    assert shapes.shapes and all(s[1:] == (5, T, 32, 32) for s in shapes.shapes)
    assert max(shapes.flow_std) > 0.0
    assert load_config(run / "config.yaml").model.in_channels == 5
    assert load_run(run)[2].backbone.in_channels == 5

    clips = _spy_views(monkeypatch)
    res = evaluate(run, progress=False)
    saved = json.loads((run / "results.json").read_text())
    for key in ("top1", "mean_class_acc", "clip_top1"):
        assert 0.0 <= saved[key] <= 1.0 and saved[key] == pytest.approx(res[key])
    assert saved["n_test_videos"] == 12 and saved["views"] == 2
    assert clips and all(c.shape[1:] == (2, 5, T, 32, 32) for c in clips)
    assert sum(len(c) for c in clips) == 12
    assert float(torch.cat(clips)[:, :, 3:].std()) > 0.0
    eval_first = clips[0][0]  # the first test video's views (V,5,T,H,W)

    # predict computes flow of the new video itself (no flow cache involved) ...
    flow_calls = _spy_farneback(monkeypatch)
    first = DatasetIndex.load(Path(cfg.data.prepared) / "index.json").split("test")[0]
    assert saved["predictions"][0]["video_id"] == first.video_id
    clips.clear()
    p = predict([first.path], run, views=2)[0]
    classes = json.loads((run / "data.json").read_text())["classes"]
    assert p["label"] in classes and sum(p["probs"].values()) == pytest.approx(1.0, abs=1e-4)
    assert len(flow_calls) == 1 and flow_calls[0][1:] == (32, 32, 3)
    # ... and that flow is the cache's: its views equal evaluate's for that video, flow channels included
    # (evaluate seeds views by position in the test split; predict treats each video as position 0)
    assert len(clips) == 1 and clips[0].shape == (1, 2, 5, T, 32, 32)
    torch.testing.assert_close(clips[0][0], eval_first, atol=1e-4, rtol=0)


def test_missing_or_incomplete_flow_cache_is_a_clear_error(flow_run, tiny_synth, tmp_path, capsys):
    from darkaction.cli import main
    from darkaction.data.cache import FrameCache
    from darkaction.evaluation.evaluate import evaluate
    from darkaction.evaluation.predict import predict
    from darkaction.training.flow_cache import build_flow_cache
    from darkaction.training.run import train

    cfg, run, flow_root, _ = flow_run
    hidden = flow_root.with_name(flow_root.name + ".hidden")
    flow_root.rename(hidden)
    try:
        with pytest.raises(DataError, match=r"optical-flow cache .* missing or incomplete.*build_flow_cache"):
            evaluate(run, progress=False)
        assert main(["evaluate", str(run), "--views", "1"]) == 2
        assert "optical-flow cache" in capsys.readouterr().err
        # prediction never needed the cache: it computes the flow of the video it is given
        video = sorted((tiny_synth / "videos").rglob("*.mp4"))[0]
        assert predict([video], run, views=1)[0]["views"] == 1
        # training builds the flow cache it reads
        train(dataclasses.replace(cfg, run_dir=str(tmp_path / "noflow")))
        assert FrameCache(flow_root).ids == FrameCache(hidden).ids
    finally:
        shutil.rmtree(flow_root, ignore_errors=True)
        hidden.rename(flow_root)

    cache = FrameCache(flow_root)
    cache.remove(cache.ids[0])
    with pytest.raises(DataError, match=r"1 videos without flow"):
        evaluate(run, progress=False)
    build_flow_cache(cfg, workers=1, progress=False)  # resumable: recomputes only the removed video
    assert evaluate(run, views=1, progress=False)["n_test_videos"] == 12

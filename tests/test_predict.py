"""predict: decode + the run's enhancer + k views -> label and probabilities; CLI text and --json output."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from darkaction.errors import DataError

sys.path.insert(0, str(Path(__file__).parent))
from test_evaluate import make_tiny_run  # noqa: E402


@pytest.fixture(scope="module")
def run(tiny_synth, tmp_path_factory):
    return make_tiny_run(tiny_synth, tmp_path_factory.mktemp("pred"), **{"train.epochs": 1})[1]


def test_predict_returns_valid_labels_and_probabilities(run, tiny_synth):
    from darkaction.evaluation.predict import predict

    videos = sorted((tiny_synth / "videos").rglob("*.mp4"))[:2]
    res = predict(videos, run, views=3)
    classes = json.loads((run / "data.json").read_text())["classes"]
    assert len(res) == 2
    for r in res:
        assert r["label"] in classes and r["views"] == 3
        assert sum(r["probs"].values()) == pytest.approx(1.0, abs=1e-4)
        assert r["prob"] == pytest.approx(max(r["probs"].values()))


def test_predict_matches_evaluation_of_the_same_cached_video(run, tiny_synth):
    """Same decode/resize/enhance/sampling path as the cache: the probabilities equal evaluate's for that video."""
    from darkaction.config import load_config
    from darkaction.data.index import DatasetIndex
    from darkaction.evaluation.evaluate import evaluate
    from darkaction.evaluation.predict import predict

    res = evaluate(run, views=2, progress=False)
    cfg = load_config(run / "config.yaml")
    test = DatasetIndex.load(Path(cfg.data.prepared) / "index.json").split("test")
    # evaluate samples view seeds by position in the test split; predict treats each video as position 0
    first = test[0]
    p = predict([first.path], run, views=2)[0]
    assert p["label"] == res["predictions"][0]["pred"]
    assert p["prob"] == pytest.approx(res["predictions"][0]["prob"], abs=2e-2)


def test_cli_predict_text_and_json(run, tiny_synth, capsys):
    from darkaction.cli import main

    video = str(sorted((tiny_synth / "videos").rglob("*.mp4"))[0])
    assert main(["predict", video, "--run", str(run), "--views", "2"]) == 0
    out = capsys.readouterr().out
    assert video in out and "%" in out
    assert main(["predict", video, "--run", str(run), "--views", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["video"] == video and "probs" in data[0]


def test_predict_errors_name_the_file(run, tmp_path, capsys):
    from darkaction.cli import main
    from darkaction.evaluation.predict import predict

    with pytest.raises(DataError, match="nothere.mp4"):
        predict([tmp_path / "nothere.mp4"], run)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    assert main(["predict", str(bad), "--run", str(run)]) == 2
    assert "bad.mp4" in capsys.readouterr().err

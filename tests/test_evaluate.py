"""Evaluation: metrics, k-view averaging, results.json, plots and report, on a tiny run trained on `tiny_synth`."""

from __future__ import annotations

import json

import pytest
import torch

from darkaction.config import load_config
from darkaction.errors import ConfigError, DataError
from darkaction.evaluation.metrics import accuracy_by_brightness, average_views, classification_metrics, clip_top1


def tiny_run_config(tiny_synth, tmp, name="tiny", **extra):
    over = [
        f"name={name}",
        f"run_dir={tmp / name}",
        "data.source.format=synth",
        f"data.source.root={tiny_synth}",
        f"data.prepared={tmp / 'prepared'}",
        "cache.height=32",
        "cache.width=32",
        "cache.workers=1",
        "enhance.method=gamma",
        "sampling.T=8",
        "augment.height=32",
        "augment.width=32",
        "model.backbone=r2plus1d_18",
        "model.ig65m_midplanes=false",
        "model.width=0.125",
        "model.bert_hidden=32",
        "model.bert_heads=4",
        "model.bert_ffn=64",
        "train.epochs=2",
        "train.batch_size=4",
        "train.workers=0",
        "train.progress=false",
        "train.lr=0.003",
        "train.precision=32",
        "eval.views=3",
    ] + [f"{k}={v}" for k, v in extra.items()]
    return load_config(None, over)


def make_tiny_run(tiny_synth, tmp, **extra):
    from darkaction.data.prepare import prepare
    from darkaction.enhancement.run import enhance
    from darkaction.training.run import train

    cfg = tiny_run_config(tiny_synth, tmp, **extra)
    prepare(cfg, progress=False)
    enhance(cfg, progress=False)
    return cfg, train(cfg)


@pytest.fixture(scope="module")
def tiny_run(tiny_synth, tmp_path_factory):
    return make_tiny_run(tiny_synth, tmp_path_factory.mktemp("eval"))


def test_metrics_on_known_predictions():
    # 4 videos, 2 views, 3 classes: video-level argmax of the view mean vs clip-level per view
    vp = torch.tensor(
        [
            [[0.9, 0.05, 0.05], [0.2, 0.7, 0.1]],  # true 0: mean -> 0, views 0 and 1
            [[0.1, 0.8, 0.1], [0.1, 0.6, 0.3]],  # true 1: both right
            [[0.5, 0.1, 0.4], [0.1, 0.1, 0.8]],  # true 2: mean (0.3,0.1,0.6) -> 2; view 0 wrong
            [[0.6, 0.3, 0.1], [0.6, 0.3, 0.1]],  # true 1: wrong
        ]
    )
    y = torch.tensor([0, 1, 2, 1])
    m = classification_metrics(average_views(vp), y, 3)
    assert m["top1"] == pytest.approx(0.75)
    assert m["per_class"] == pytest.approx([1.0, 0.5, 1.0])
    assert m["mean_class_acc"] == pytest.approx(2.5 / 3)
    assert m["confusion"] == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    assert clip_top1(vp, y, 3) == pytest.approx(4 / 8)
    # a class absent from the labels has no accuracy and is left out of the mean
    m2 = classification_metrics(average_views(vp[:2]), y[:2], 3)
    assert m2["per_class"][2] is None and m2["mean_class_acc"] == pytest.approx(1.0)
    assert m["top5"] is None  # three classes: top-5 would always be right


def test_top5_with_more_than_five_classes():
    probs = torch.arange(7.0).flip(0).expand(4, 7)  # every row ranks class 0 > 1 > ... > 6
    y = torch.tensor([0, 4, 5, 6])  # ranked 1st, 5th, 6th and 7th
    m = classification_metrics(probs, y, 7)
    assert m["top1"] == pytest.approx(0.25) and m["top5"] == pytest.approx(0.5)


def test_accuracy_by_brightness_bands():
    bands = accuracy_by_brightness([2.0, 7.9, 8.0, 30.0, 61.0, 255.0], [True, False, True, True, False, False])
    assert [b["band"] for b in bands] == ["0-8", "8-20", "20-60", "60-256"]
    assert [b["n"] for b in bands] == [2, 1, 1, 2]
    assert [b["acc"] for b in bands] == [0.5, 1.0, 1.0, 0.0]
    assert accuracy_by_brightness([50.0], [True])[0] == {"band": "0-8", "n": 0, "acc": None}


def test_evaluate_writes_results_plots_and_report(tiny_run):
    from darkaction.evaluation.evaluate import evaluate

    cfg, run = tiny_run
    res = evaluate(run, progress=False)
    saved = json.loads((run / "results.json").read_text())
    for key in ("top1", "mean_class_acc", "n_test_videos", "per_class", "clip_top1", "confusion"):
        assert key in saved
    assert saved["n_test_videos"] == 12  # tiny_synth: 6 classes x 1 test group x 2 reps
    assert saved["views"] == 3 and res["strategy"] == "delta"
    assert sum(map(sum, saved["confusion"])) == 12
    assert 0.0 <= res["top1"] <= 1.0 and set(saved["per_class"]) == set(saved["classes"])
    # accuracy by the source videos' brightness: every test video in one band, the bands agree with top-1
    assert all(p["brightness"] > 0 for p in saved["predictions"])
    assert sum(b["n"] for b in saved["by_brightness"]) == 12
    hits = sum(b["acc"] * b["n"] for b in saved["by_brightness"] if b["n"])
    assert hits == pytest.approx(12 * saved["top1"])
    assert "source brightness" in (run / "report.md").read_text()
    for f in ("confusion.png", "attention.png", "curves.png", "report.md", "report.html"):
        assert (run / f).is_file() and (run / f).stat().st_size > 0, f
    md = (run / "report.md").read_text()
    assert "confusion.png" in md and "attention.png" in md and "curves.png" in md
    # the run's config records what eval / predict need
    rcfg = load_config(run / "config.yaml")
    assert rcfg.sampling.n_min >= 33 and rcfg.sampling.n_max <= 60


def test_evaluate_from_checkpoint_with_other_views_and_strategy(tiny_run):
    from darkaction.evaluation.evaluate import evaluate

    cfg, run = tiny_run
    res = evaluate(run / "checkpoints" / "last.ckpt", views=2, strategy="uniform", progress=False)
    assert res["views"] == 2 and res["strategy"] == "uniform" and res["n_test_videos"] == 12


def test_evaluate_errors_are_actionable(tiny_run, tmp_path):
    from darkaction.evaluation.evaluate import evaluate

    cfg, run = tiny_run
    with pytest.raises(DataError, match="no such run"):
        evaluate(tmp_path / "nope")
    with pytest.raises(DataError, match="no 'val' videos"):
        evaluate(run, split="val", progress=False)
    with pytest.raises(ConfigError):
        evaluate(run, split="dev")


def test_cli_evaluate(tiny_run, capsys):
    from darkaction.cli import main

    cfg, run = tiny_run
    assert main(["evaluate", str(run), "--views", "1"]) == 0
    out = capsys.readouterr().out
    assert "top-1" in out and "mean class accuracy" in out and "by source brightness" in out


def test_index_normalisation_is_recorded_for_evaluation(tiny_synth, tmp_path):
    """`augment.normalize: index` statistics are computed once in training and written into the run's config, so
    evaluation normalises like training (it used to stop with 'needs statistics from the training cache')."""
    from darkaction.evaluation.evaluate import evaluate

    cfg, run = make_tiny_run(
        tiny_synth, tmp_path, **{"augment.normalize": "index", "train.epochs": 1, "train.limit_train_batches": 2}
    )
    recorded = load_config(run / "config.yaml").augment
    assert len(recorded.mean) == 3 and len(recorded.std) == 3
    assert all(0.0 < m < 1.0 for m in recorded.mean) and all(s > 0 for s in recorded.std)
    res = evaluate(run, views=2, progress=False)
    assert res["n_test_videos"] > 0


def test_batching_videos_changes_no_prediction(tiny_run):
    from darkaction.evaluation.evaluate import evaluate

    _, run = tiny_run
    one = evaluate(run, views=3, progress=False, batch_size=1)
    many = evaluate(run, views=3, progress=False, batch_size=8)
    assert [p["pred"] for p in one["predictions"]] == [p["pred"] for p in many["predictions"]]
    assert max(abs(a["prob"] - b["prob"]) for a, b in zip(one["predictions"], many["predictions"])) < 1e-4


def test_evaluate_on_other_data_reads_it_and_leaves_the_runs_results(tiny_run, tiny_synth, tmp_path):
    import shutil

    from darkaction.data.prepare import prepare
    from darkaction.enhancement.run import enhance
    from darkaction.evaluation.evaluate import evaluate

    cfg, run_dir = tiny_run
    own = evaluate(run_dir, progress=False)
    before = (run_dir / "results.json").read_bytes()
    # another dataset with the same classes: the same videos, only the first two test entries listed
    other = tmp_path / "other"
    shutil.copytree(tiny_synth, other)
    lines = (other / "test.csv").read_text().splitlines()
    (other / "test.csv").write_text("\n".join(lines[:3]) + "\n")
    data = [f"data.source.root={other}", f"data.prepared={tmp_path / 'prep-other'}"]
    from darkaction.config import load_config

    ocfg = load_config(run_dir / "config.yaml", data)
    prepare(ocfg, progress=False)
    enhance(ocfg, progress=False)
    res = evaluate(run_dir, progress=False, data=data)
    assert res["n_test_videos"] == 2 < own["n_test_videos"]
    assert (run_dir / "results_test_prep-other.json").is_file()
    assert (run_dir / "results.json").read_bytes() == before  # the run's own scores stay
    with pytest.raises(ConfigError, match="data"):
        evaluate(run_dir, progress=False, data=["model.head=tgap"])


def test_evaluate_with_mirrored_views(tiny_run, capsys):
    from darkaction.cli import main
    from darkaction.evaluation.evaluate import evaluate

    _, run = tiny_run
    plain = evaluate(run, views=2, progress=False)
    flipped = evaluate(run, views=2, progress=False, flip=True)
    assert plain["flip"] is False and flipped["flip"] is True
    assert plain["n_test_videos"] == flipped["n_test_videos"]
    assert [p["prob"] for p in plain["predictions"]] != [p["prob"] for p in flipped["predictions"]]
    assert main(["evaluate", str(run), "--views", "2", "--flip"]) == 0
    assert "2 views and their mirrors" in capsys.readouterr().out


def test_evaluate_with_test_views_at_the_training_rates(tiny_run, capsys):
    from darkaction.cli import main
    from darkaction.evaluation.evaluate import evaluate

    _, run = tiny_run
    own = evaluate(run, views=3, progress=False)
    train = evaluate(run, views=3, progress=False, test_rates="train")
    assert own["test_rates"] == "own" and train["test_rates"] == "train"
    assert own["n_test_videos"] == train["n_test_videos"]
    # the tiny set's test videos are 33-60 frames like its training ones: some views change, not all
    assert [p["prob"] for p in own["predictions"]] != [p["prob"] for p in train["predictions"]]
    assert main(["evaluate", str(run), "--views", "2", "--test-rates", "train"]) == 0
    assert "top-1" in capsys.readouterr().out

"""The claims verdicts (experiments/claims.py) and the length probe (experiments/length.py) on planted outcomes."""

import json

import numpy as np
import pytest

from darkaction.cli import main
from darkaction.data.index import DatasetIndex, VideoRecord
from darkaction.experiments.claims import CLAIMS, load_tables, write_claims
from darkaction.experiments.compare import outcomes
from darkaction.experiments.length import LengthProbe, length_gap

CLASSES = ["run", "sit", "stand", "turn", "walk", "wave"]
N_GROUPS, TAKES = 15, 4  # 15 test groups x 4 takes x 6 classes = 360 test videos


def _videos():
    rng = np.random.default_rng(0)
    vids = []
    for g in range(N_GROUPS):
        for c in CLASSES:
            for k in range(TAKES):
                vids.append({"video_id": f"{c}_{g}_{k}", "label": c, "group": str(g),
                             "n_frames": int(rng.integers(33, 226))})  # fmt: skip
    return vids


def _runs(acc, seeds=3, confuse_sit_stand=0.0, seed=0, right=None):
    """Runs whose predictions are right with probability `acc` (or where `right(video)` says), wrong ones predicted
    as the next class; `confuse_sit_stand` of the sit/stand videos predicted as the other one."""
    rng = np.random.default_rng(seed)
    runs = []
    for s in range(seeds):
        preds = []
        for v in _videos():
            ok = right(v) if right else rng.random() < acc
            pred = v["label"] if ok else CLASSES[(CLASSES.index(v["label"]) + 1) % 6]
            if v["label"] in ("sit", "stand") and rng.random() < confuse_sit_stand:
                pred = "stand" if v["label"] == "sit" else "sit"
            preds.append({**v, "pred": pred})
        runs.append({"seed": s, "top1": 100.0 * np.mean([p["pred"] == p["label"] for p in preds]),
                     "predictions": preds})  # fmt: skip
    return runs


def _table(out, n, rows, reference):
    rec = {"table": n, "title": f"Table {n}", "reference": reference, "preset": "cpu", "seeds": 3,
           "rows": [{"key": k, "name": k.upper(), "paper": 0.0, "status": "ok", "reason": "", "runs": runs}
                    for k, runs in rows.items()]}  # fmt: skip
    (out / f"table{n}.json").write_text(json.dumps(rec))


def test_claims_are_judged_from_paired_rows(tmp_path):
    same = _runs(0.7, seed=1)
    _table(tmp_path, 2, {
        "delta": same,
        "constant": _runs(0.55, seed=2),  # 15 points below the full method
        "variable": _runs(0.7, seed=3),  # as good
        "length": _runs(0.85, seed=4),  # 15 points above: the claim is contradicted
    }, "delta")  # fmt: skip
    _table(tmp_path, 3, {"delta": same, "tgap": _runs(0.7, confuse_sit_stand=0.6, seed=5)}, "delta")
    paths = write_claims(tmp_path)
    judged = {c["key"]: c for c in json.loads(paths["json"].read_text())["claims"]}
    assert judged["delta-vs-constant"]["verdict"] == "supported" and judged["delta-vs-constant"]["lo"] > 0
    assert judged["delta-vs-variable"]["verdict"] == "inconclusive"
    assert judged["delta-vs-length"]["verdict"] == "contradicted"
    assert judged["bert-sit-stand"]["verdict"] == "supported" and judged["bert-sit-stand"]["n"] == 2 * 60
    assert judged["delta-vs-constant"]["n"] == 360 and judged["delta-vs-constant"]["seeds"] == [0, 1, 2]
    assert judged["dce-vs-none"]["verdict"] == "not measured" and "experiment 1" in judged["dce-vs-none"]["reason"]
    assert judged["delta-vs-slowfast"]["verdict"] == "not measured"
    # Table 4 against the full method of Table 2 (the dark set alone)
    _table(tmp_path, 4, {"supervised": _runs(0.9, seed=6), "mran": _runs(0.9, seed=7)}, "supervised")
    judged = {c["key"]: c for c in json.loads(write_claims(tmp_path)["json"].read_text())["claims"]}
    assert judged["second-domain"]["verdict"] == "supported" and "T2" in judged["second-domain"]["worse"]
    assert judged["supervised-vs-mran"]["verdict"] == "inconclusive"
    md = paths["md"].read_text()
    assert "**contradicted**" in md and "Delta sampling beats the length-adjusted rate" in md
    assert (tmp_path / "claims.png").read_bytes()[:4] == b"\x89PNG"
    assert len(CLAIMS) == 13 and set(load_tables(tmp_path)) == {2, 3, 4}


def test_failed_rows_and_runs_without_predictions_are_not_judged(tmp_path):
    old = [{k: v for k, v in r.items() if k != "predictions"} for r in _runs(0.7)]
    _table(tmp_path, 1, {"zero-dce": _runs(0.7), "none": old}, "zero-dce")
    rec = json.loads((tmp_path / "table1.json").read_text())
    rec["rows"].append({"key": "gamma", "name": "GAMMA", "paper": 0, "status": "failed", "reason": "boom", "runs": []})
    (tmp_path / "table1.json").write_text(json.dumps(rec))
    judged = {c["key"]: c for c in json.loads(write_claims(tmp_path)["json"].read_text())["claims"]}
    assert judged["dce-vs-none"]["verdict"] == "not measured" and "rerun" in judged["dce-vs-none"]["reason"]
    assert judged["dce-vs-gamma"]["reason"] == "failed: boom"


def test_length_probe_reads_length_where_it_gives_the_class_away():
    rng = np.random.default_rng(0)
    centre = {c: 40 + 35 * i for i, c in enumerate(CLASSES)}  # training lengths depend on the class
    train = [(int(rng.normal(centre[c], 6)), c) for c in CLASSES for _ in range(48)]
    probe = LengthProbe.fit([n for n, _ in train], [c for _, c in train])
    assert probe.accuracy([n for n, _ in train], [c for _, c in train])["top1"] > 0.9
    test = [(int(rng.integers(33, 226)), c) for c in CLASSES for _ in range(60)]  # lengths independent of class
    acc = probe.accuracy([n for n, _ in test], [c for _, c in test])
    assert acc["top1"] < 0.3 and acc["lo"] < 1 / 6 < acc["hi"] + 0.05


def test_length_gap_of_a_model_that_leans_on_length(tmp_path):
    vids = _videos()
    probe = LengthProbe.fit([40 + 35 * i for i in range(6)] * 2, CLASSES * 2)
    matched = {v["video_id"] for v, m in zip(vids, probe.matched([v["n_frames"] for v in vids],
                                                                  [v["label"] for v in vids])) if m}  # fmt: skip
    leaning = outcomes(_runs(0, right=lambda v: v["video_id"] in matched))
    gap = length_gap(leaning, probe)
    assert gap["acc_matched"] == 1.0 and gap["acc_mismatched"] == 0.0 and gap["lo"] > 0.9
    fair = length_gap(outcomes(_runs(0.7, seed=9)), probe)
    assert fair["lo"] < 0 < fair["hi"]


def test_claims_section_with_a_prepared_index_and_the_cli(tmp_path, capsys):
    rng = np.random.default_rng(1)
    records = [VideoRecord(f"{c}_{g}_{k}", "x", CLASSES.index(c), "train", str(g), "synth",
                           int(np.clip(rng.normal(40 + 35 * CLASSES.index(c), 8), 33, 225)))
               for g in range(16) for c in CLASSES for k in range(3)]  # fmt: skip
    records += [VideoRecord(v["video_id"], "x", CLASSES.index(v["label"]), "test", v["group"], "synth", v["n_frames"])
                for v in _videos()]  # fmt: skip
    (tmp_path / "prepared" / "main").mkdir(parents=True)
    DatasetIndex(CLASSES, records).save(tmp_path / "prepared" / "main" / "index.json")
    _table(tmp_path, 2, {"delta": _runs(0.7), "constant": _runs(0.6, seed=3)}, "delta")
    assert main(["experiment", "claims", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "The length confound" in text and "on the 288 training clips" in text and "on the 360 test clips" in text
    length = json.loads((tmp_path / "claims.json").read_text())["length"]
    assert length["train"]["top1"] > 0.8 and length["test"]["top1"] < 0.35
    assert {r["key"] for r in length["rows"]} == {"delta", "constant"}


def test_experiment_all_refuses_rows(capsys):
    assert main(["experiment", "all", "--rows", "delta"]) == 2
    assert "--rows" in capsys.readouterr().err


def test_sit_stand_metric_counts_only_sit_and_stand_videos():
    from darkaction.experiments.compare import confusion_between

    o = outcomes(_runs(1.0, seeds=1, confuse_sit_stand=1.0))
    scores, mask = confusion_between("sit", "stand")(o)
    assert mask.sum() == 120 and scores[0, mask].mean() == pytest.approx(1.0) and scores[0, ~mask].sum() == 0


def test_seeds_listing_videos_in_other_orders_are_aligned_by_video():
    runs = _runs(0.7, seed=11)
    shuffled = [dict(r) for r in runs]
    shuffled[1] = {**runs[1], "predictions": list(reversed(runs[1]["predictions"]))[:-10]}  # 10 videos missing
    o, ref = outcomes(shuffled), outcomes(runs)
    assert len(o.videos) == 350 and o.videos == ref.videos[10:]  # the 10 the second seed lacks are left out
    assert (o.correct() == ref.subset(ref.seeds, o.videos).correct()).all()


def test_the_full_method_falls_through_to_the_next_table_when_one_failed(tmp_path):
    _table(tmp_path, 2, {"delta": [], "constant": _runs(0.6, seed=3)}, "delta")
    rec = json.loads((tmp_path / "table2.json").read_text())
    rec["rows"][0].update(status="failed", reason="boom")
    (tmp_path / "table2.json").write_text(json.dumps(rec))
    _table(tmp_path, 3, {"delta": _runs(0.7, seed=1), "tgap": _runs(0.7, seed=2)}, "delta")
    _table(tmp_path, 4, {"supervised": _runs(0.9, seed=6), "mran": _runs(0.9, seed=7)}, "supervised")
    judged = {c["key"]: c for c in json.loads(write_claims(tmp_path)["json"].read_text())["claims"]}
    assert judged["second-domain"]["worse"].startswith("T3") and judged["second-domain"]["verdict"] == "supported"
    assert judged["delta-vs-constant"]["reason"] == "failed: boom"


def test_clips_without_a_group_are_their_own_clusters_in_the_probe_interval(tmp_path):
    records = [VideoRecord(f"t{k}", "x", k % 6, "train", "", "list", 40 + 35 * (k % 6)) for k in range(60)]
    records += [VideoRecord(f"v{k}", "x", k % 6, "test", "", "list", 33 + (k * 7) % 190) for k in range(120)]
    (tmp_path / "prepared" / "main").mkdir(parents=True)
    DatasetIndex(CLASSES, records).save(tmp_path / "prepared" / "main" / "index.json")
    length = json.loads(write_claims(tmp_path)["json"].read_text())["length"]
    assert length["test"]["hi"] - length["test"]["lo"] > 0.05  # not one cluster of zero width


def test_the_table_cell_and_its_interval_come_from_the_same_predictions(tmp_path):
    from darkaction.experiments.results import row_stats
    from darkaction.experiments.runner import RowResult
    from darkaction.experiments.tables import TABLES

    runs = _runs(0.7, seed=12)
    for r in runs:
        r["top1"] = 99.0  # a stale summary must not stand beside an interval computed from the predictions
    st = row_stats(TABLES[2], [RowResult(2, "delta", "Delta", 90.46, runs=runs)])["delta"]
    assert st["ci"][0] <= st["mean"] <= st["ci"][1] and st["mean"] != 99.0

"""The paper's tables: row definitions, the runner (with injected stages), the written table, every row's model."""

import csv
import json
from pathlib import Path

import pytest
import torch

from darkaction.errors import ConfigError
from darkaction.experiments.runner import Plan, Stages, experiment
from darkaction.experiments.tables import TABLES, get_table, select_rows

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

PAPER = {
    1: {"none": 87.48, "gamma": 84.62, "enlightengan": 87.50, "zero-dce": 90.46},
    2: {"slowfast": 44.40, "se": 70.78, "constant": 80.93, "length": 85.29, "variable": 88.28, "delta": 90.46},
    3: {"tgap": 82.74, "efficientnet": 64.12, "flow": 67.89, "delta": 90.46},
    4: {"supervised": 93.73, "mran": 90.37},
}

# Tiny models so a test builds every row in seconds.
TINY = [
    "model.pretrained=",  # the preset's pretrained backbone is quarter width; these models are eighth width
    "sampling.T=8",
    "model.width=0.125",
    "model.bert_hidden=32",
    "model.bert_heads=4",
    "model.bert_ffn=64",
    "model.slowfast_alpha=4",
]


def test_tables_hold_the_papers_rows_and_numbers():
    for n, rows in PAPER.items():
        t = get_table(n)
        assert {r.key: r.paper for r in t.rows} == rows
    assert get_table("table3").number == 3
    with pytest.raises(ConfigError, match="tables 1, 2, 3 and 4"):
        get_table(5)
    with pytest.raises(ConfigError, match="its rows are"):
        select_rows(TABLES[2], ["delta", "bogus"])
    assert [r.key for r in select_rows(TABLES[2], ["delta", "slowfast"])] == ["slowfast", "delta"]


class FakeStages(Stages):
    """Records every call; 'trains' by writing a marker, 'evaluates' with a number derived from the config."""

    def __init__(self, fail_rows=()):
        super().__init__()
        self.calls: list[tuple] = []
        self.fail_rows = set(fail_rows)
        self.prepare = lambda cfg: self.calls.append(("prepare", cfg.data.prepared))
        self.enhance = lambda cfg: self.calls.append(("enhance", cfg.enhance.method))
        self.flow = lambda cfg: self.calls.append(("flow", cfg.model.in_channels))
        self.synth = self._synth
        self.train = self._train
        self.evaluate = self._evaluate

    def _synth(self, cfg):
        self.calls.append(("synth", tuple(cfg.brightness)))
        (Path(cfg.out) / "videos").mkdir(parents=True, exist_ok=True)
        (Path(cfg.out) / "metadata.json").write_text("{}")
        return Path(cfg.out)

    def _train(self, cfg, resume):
        row = cfg.name.split("-seed")[0]
        if row in self.fail_rows:
            raise RuntimeError(f"boom in {row}")
        self.calls.append(("train", cfg.name, resume))
        run = Path(cfg.run_dir)
        run.mkdir(parents=True, exist_ok=True)
        (run / "cfg.json").write_text(json.dumps({"seed": cfg.seed, "strategy": cfg.sampling.strategy,
                                                  "backbone": cfg.model.backbone}))  # fmt: skip
        return run

    def _evaluate(self, run_dir, split="test"):
        self.calls.append(("evaluate", split))
        c = json.loads((Path(run_dir) / "cfg.json").read_text())
        base = {"delta": 0.8, "constant": 0.6, "length": 0.7, "variable": 0.75, "consecutive": 0.5}[c["strategy"]]
        base -= 0.2 if c["backbone"] == "slowfast" else 0.0
        n_right = round(base * 12) + c["seed"]  # seed s gets s more of the 12 test videos right
        return {"top1": n_right / 12, "mean_class_acc": base, "n_test_videos": 12,
                "predictions": _predictions(n_right)}  # fmt: skip


def _predictions(n_right: int, n: int = 12) -> list[dict]:
    """12 test videos of 4 groups, the first `n_right` predicted correctly."""
    return [{"video_id": f"Walk_{k % 4}_{k}", "label": "walk", "pred": "walk" if k < n_right else "run",
             "group": str(k % 4), "n_frames": 40 + k} for k in range(n)]  # fmt: skip


def _data(tmp_path) -> Path:
    d = tmp_path / "synthdata"
    d.mkdir()
    return d


def test_runner_writes_table_with_mean_std_and_resumes(tmp_path):
    stages = FakeStages()
    out = tmp_path / "exp"
    res = experiment(2, data=_data(tmp_path), seeds=2, out=out, overrides=TINY, stages=stages, progress=False)
    rows = {r.key: r for r in res["rows"]}
    assert rows["delta"].mean() == pytest.approx(87.5)  # 10 and 11 of 12
    assert rows["delta"].std() == pytest.approx(5.8926, abs=1e-3)
    assert rows["slowfast"].mean() == pytest.approx(37.5)  # consecutive sampling, SlowFast backbone
    trains = [c for c in stages.calls if c[0] == "train"]
    assert len(trains) == 12 and not any(c[2] for c in trains)
    assert [c for c in stages.calls if c[0] == "prepare"] == [("prepare", str(out / "prepared" / "main"))]

    md = (out / "table2.md").read_text()
    # mean of the seeds' top-1 with a bootstrap interval of the per-video outcomes (10 of 12 right in each seed)
    assert (
        "| Delta Sampling Strategy (Ours) | 87.5 [" in md and "| 83.3, 91.7 | (reference) | 80.00 | 2 | 90.46 |" in md
    )
    # constant sampling: 7 and 8 of 12 right vs 10 and 11 of 12 on the same videos, paired: -25 points
    assert "| Constant Sampling Rate |" in md and "| -25.0 [" in md
    assert "reported" in md and "(12 videos)" in md
    with open(out / "table2.csv") as f:
        by_row = {r["row"]: r for r in csv.DictReader(f)}
    assert by_row["constant"]["measured_top1_mean"] == "62.5000"
    assert by_row["constant"]["paper_top1_reported"] == "80.93"
    assert float(by_row["constant"]["diff_vs_full_method"]) == pytest.approx(-25.0)
    assert float(by_row["constant"]["diff_ci_lo"]) < -25.0 < float(by_row["constant"]["diff_ci_hi"]) < 0
    assert by_row["constant"]["n_test_videos"] == "12" and by_row["delta"]["diff_vs_full_method"] == ""
    saved = json.loads((out / "table2.json").read_text())
    assert saved["reference"] == "delta" and len(saved["rows"][0]["runs"][0]["predictions"]) == 12
    assert (out / "table2.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Resume: nothing is trained again; Table 3's delta row is Table 2's delta run (same config, same folder).
    again = FakeStages()
    experiment(2, data=tmp_path / "synthdata", seeds=2, out=out, overrides=TINY, stages=again, progress=False)
    assert not [c for c in again.calls if c[0] == "train"]
    t3 = FakeStages()
    experiment(3, data=tmp_path / "synthdata", seeds=2, out=out, overrides=TINY, stages=t3, progress=False,
               rows=["delta", "flow"])  # fmt: skip
    assert [c[1] for c in t3.calls if c[0] == "train"] == ["flow-seed0", "flow-seed1"]
    assert ("flow", 5) in t3.calls


def test_rows_that_cannot_run_are_reported_not_faked(tmp_path):
    out = tmp_path / "exp"
    stages = FakeStages(fail_rows={"gamma"})
    res = experiment(1, data=_data(tmp_path), out=out, overrides=TINY, stages=stages, progress=False)
    rows = {r.key: r for r in res["rows"]}
    assert rows["enlightengan"].status == "not run" and "enhance.external=FILE" in rows["enlightengan"].reason
    assert rows["enlightengan"].runs == [] and rows["enlightengan"].mean() is None
    assert rows["gamma"].status == "failed" and "boom in gamma" in rows["gamma"].reason
    assert rows["zero-dce"].status == "ok" and rows["none"].status == "ok"
    assert ("enhance", "identity") not in stages.calls  # identity needs no enhanced cache
    md = (out / "table1.md").read_text()
    assert "| Enlighten GAN | not run: EnlightenGAN needs a local model file" in md
    assert "| 87.50 |" in md
    assert list((out / "runs").glob("*/seed0/error.txt"))


def test_table4_cpu_renders_a_brighter_extra_domain(tmp_path):
    out = tmp_path / "exp"
    stages = FakeStages()
    res = experiment(4, data=_data(tmp_path), out=out, overrides=TINY, stages=stages, progress=False)
    assert [c for c in stages.calls if c[0] == "synth"] == [("synth", (90.0, 160.0))]
    assert all(r.status == "ok" for r in res["rows"])
    md = (out / "table4.md").read_text()
    assert "brighter" in md and "HMDB51" in md
    plan = Plan("cpu", out, tmp_path / "synthdata", out / "data" / "synth-bright" / "videos", None, TINY)
    cfg = plan.config_for(TABLES[4].row("mran"), 0)
    assert cfg.model.head == "mran"
    assert cfg.data.extra_train[0].format == "folders"
    assert cfg.data.prepared.endswith("with-extra")


def test_paper_preset_without_hmdb51_says_what_to_pass(tmp_path):
    res = experiment(4, data=_data(tmp_path), preset="paper", out=tmp_path / "e", stages=FakeStages(), progress=False)
    assert all(r.status == "not run" and "--extra" in r.reason for r in res["rows"])


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_every_rows_model_builds_and_trains_one_step(tmp_path, n):
    from darkaction.models.build import build_model

    plan = Plan("cpu", tmp_path, tmp_path, tmp_path / "extra", None, TINY)
    for row in TABLES[n].rows:
        cfg = plan.config_for(row, 0)
        T = cfg.sampling.T
        model = build_model(cfg.model, 6, T)
        x = torch.randn(2, cfg.model.in_channels, T, 32, 32)
        y = torch.tensor([0, 3])
        if cfg.model.head == "mran":
            src_logits, _, da = model.adaptation_step(x, torch.randn_like(x), y)
            loss = torch.nn.functional.cross_entropy(src_logits, y) + da
        else:
            loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), row.key
        assert model(x[:1]).shape == (1, 6), row.key


def test_rows_without_a_warm_up_train_from_scratch_for_the_same_epochs(tmp_path):
    plan = Plan("cpu", tmp_path, tmp_path, None, None, ["train.pretrain_epochs=50", "train.epochs=25"])
    budget = {}
    for n in (2, 3, 4):
        for row in TABLES[n].rows:
            cfg = plan.config_for(row, 0)
            budget[row.key] = (cfg.train.pretrain_epochs, cfg.train.epochs)
    assert budget["delta"] == budget["se"] == budget["tgap"] == budget["flow"] == (50, 25)
    assert budget["slowfast"] == budget["efficientnet"] == budget["mran"] == (0, 75)


def test_rows_whose_backbone_is_not_r2plus1d_drop_the_presets_pretrained_file(tmp_path):
    plan = Plan("cpu", tmp_path, tmp_path, None, None, [])
    pretrained = {}
    for n in (2, 3, 4):
        for row in TABLES[n].rows:
            pretrained[row.key] = plan.config_for(row, 0).model.pretrained
    assert pretrained["delta"] and pretrained["mran"] == pretrained["delta"] == pretrained["flow"]
    assert pretrained["slowfast"] == pretrained["efficientnet"] == ""


def test_cpu_tables_keep_the_settings_they_were_measured_with():
    """configs/cpu.yaml moved on (40-epoch backbone, mirrored test views); the cpu tables stay pinned to the 24-epoch
    backbone and unmirrored views, so their runs (keyed by config) stay valid."""
    from darkaction.config import load_config
    from darkaction.utils import packaged_path

    plan = Plan("cpu", Path("."), Path("."), None, None, [])
    cfg = plan.config_for(next(r for r in TABLES[2].rows if r.key == "delta"), 0)
    shipped = load_config(packaged_path("configs/cpu.yaml"))
    assert shipped.eval.flip and "pretrain-e40" in shipped.model.pretrained
    assert cfg.eval.flip is False and cfg.model.pretrained.endswith("r2plus1d_18_w0.25_pretrain.pth")


REAL_TINY = [
    *TINY,
    "cache.height=32",
    "cache.width=32",
    "augment.height=32",
    "augment.width=32",
    "cache.workers=1",
    "train.pretrain_epochs=1",
    "train.epochs=1",
    "train.limit_train_batches=2",
    "train.batch_size=4",
    "train.workers=0",
    "train.progress=false",
    "train.precision=32",  # bf16 autocast gave NaN losses for some tiny-width rows
    "eval.views=1",
    "sampling.test_views=1",
    "enhance.train.epochs=1",
    "enhance.train.n_frames=16",
    "enhance.train.image_size=32",
]


@pytest.mark.slow
def test_real_rows_train_a_few_steps_on_tiny_synthetic_data(tiny_synth, tmp_path):
    """The real pipeline (prepare, Zero-DCE training, enhance, train, evaluate) for one row of each kind."""
    out = tmp_path / "exp"
    trained = []

    class Counting(Stages):
        def __init__(self):
            super().__init__()
            real_train = self.train
            self.train = lambda cfg, resume: trained.append(cfg.name) or real_train(cfg, resume)

    for n, rows in ((2, ["delta", "slowfast"]), (3, ["efficientnet"]), (4, ["mran"])):
        res = experiment(n, data=tiny_synth, out=out, rows=rows, seeds=1, overrides=REAL_TINY, stages=Counting(),
                         progress=False)  # fmt: skip
        for r in res["rows"]:
            assert r.status == "ok", (r.key, r.reason)
            assert 0.0 <= r.mean() <= 100.0 and r.runs[0]["n_test_videos"] == 12
        assert (out / f"table{n}.md").is_file()
    assert trained == ["slowfast-seed0", "delta-seed0", "efficientnet-seed0", "mran-seed0"]  # table order
    experiment(2, data=tiny_synth, out=out, rows=["delta"], seeds=1, overrides=REAL_TINY, stages=Counting(),
               progress=False)  # fmt: skip
    assert len(trained) == 4  # finished rows are not trained again


def test_cli_reports_a_bad_table_or_row_with_status_2(capsys):
    from darkaction.cli import main

    assert main(["experiment", "7"]) == 2
    assert "tables 1, 2, 3 and 4" in capsys.readouterr().err
    assert main(["experiment", "2", "--rows", "delta,nope", "--data", "."]) == 2
    assert "its rows are" in capsys.readouterr().err


def test_paper_preset_refuses_to_train_without_pretrained_weights(tmp_path):
    from darkaction.config import load_config
    from darkaction.models.build import build_model

    data = _data(tmp_path)
    with pytest.raises(ConfigError, match=r"(?s)r2plus1d_34_clip32_ig65m_from_scratch.*model.pretrained=none"):
        experiment(2, data=data, preset="paper", out=tmp_path / "e", stages=FakeStages(), progress=False)
    # =none trains from scratch on purpose: the rows run, scored on the paper's validation split (val_fraction 0.2
    # of the training clips) with the labelled test CSV beside it
    stages = FakeStages()
    res = experiment(2, data=data, preset="paper", out=tmp_path / "n", stages=stages,
                     overrides=["model.pretrained=none"], rows=["delta"], progress=False)  # fmt: skip
    assert [r.status for r in res["rows"]] == ["ok"]
    assert [c for c in stages.calls if c[0] == "evaluate"] == [("evaluate", "val"), ("evaluate", "test")]
    run = res["rows"][0].runs[0]
    assert run["split"] == "val" and run["test_top1"] is not None
    md = (tmp_path / "n" / "table2.md").read_text()
    assert "1,470 / 367" in md and "Measured top-1 on the test CSV (%)" in md
    cfg = load_config(CONFIGS / "paper.yaml", ["model.width=0.125", "model.ig65m_midplanes=false"])
    with pytest.raises(ConfigError, match="model.pretrained=FILE"):
        build_model(cfg.model, 6, 8)
    cfg.model.pretrained = "none"
    assert build_model(cfg.model, 6, 8) is not None


def test_run_keys_ignore_fields_left_at_their_defaults():
    from darkaction.config import load_config
    from darkaction.experiments.runner import run_key

    base = load_config(CONFIGS / "cpu.yaml")
    same = load_config(CONFIGS / "cpu.yaml", ["enhance.train.frames_from=cache", "model.se_kind=temporal"])
    other = load_config(CONFIGS / "cpu.yaml", ["enhance.train.frames_from=source"])
    assert run_key(base) == run_key(same) != run_key(other)


def test_csv_carries_the_split_and_the_test_csv_column(tmp_path):
    import csv as csv_mod

    from darkaction.experiments.results import csv_text
    from darkaction.experiments.runner import RowResult

    row = RowResult(2, "delta", "Delta sampling", 90.46, runs=[
        {"top1": 80.0, "mean_class_acc": 79.0, "split": "val", "test_top1": 70.0},
        {"top1": 82.0, "mean_class_acc": 81.0, "split": "val", "test_top1": 72.0}])  # fmt: skip
    rows = list(csv_mod.DictReader(csv_text(TABLES[2], [row]).splitlines()))
    assert rows[0]["split"] == "val" and float(rows[0]["measured_test_csv_top1_mean"]) == 71.0


def _noop(cfg):
    return None


def _train_recording_process(cfg, resume):
    """A picklable training stage for the process pool: records which process trained and its torch threads."""
    import os

    run = Path(cfg.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    (run / "who.json").write_text(json.dumps({"pid": os.getpid(), "threads": torch.get_num_threads(),
                                              "strategy": cfg.sampling.strategy, "seed": cfg.seed}))  # fmt: skip
    return run


def _evaluate_from_record(run_dir, split="test"):
    c = json.loads((Path(run_dir) / "who.json").read_text())
    base = {"delta": 0.75, "constant": 0.5}[c["strategy"]]
    return {"top1": base, "mean_class_acc": base, "n_test_videos": 12, "predictions": _predictions(round(base * 12))}


def test_parallel_jobs_train_in_one_thread_processes_and_match_the_serial_table(tmp_path):
    import os

    stages = Stages(prepare=_noop, enhance=_noop, flow=_noop, train=_train_recording_process,
                    evaluate=_evaluate_from_record)  # fmt: skip
    kw = dict(data=_data(tmp_path), seeds=2, overrides=TINY, stages=stages, progress=False, rows=["delta", "constant"])
    par = experiment(2, out=tmp_path / "par", jobs=2, **kw)
    who = [json.loads(p.read_text()) for p in (tmp_path / "par" / "runs").glob("*/seed*/run/who.json")]
    assert len(who) == 4 and all(w["threads"] == 1 and w["pid"] != os.getpid() for w in who)
    ser = experiment(2, out=tmp_path / "ser", jobs=1, **kw)
    strip = lambda rows: [(r.key, r.status, [(x["seed"], x["top1"], x["predictions"]) for x in r.runs]) for r in rows]  # noqa: E731
    assert strip(par["rows"]) == strip(ser["rows"])
    assert [x["seed"] for x in par["rows"][0].runs] == [0, 1]
    with pytest.raises(ConfigError, match="--jobs"):
        experiment(2, out=tmp_path / "bad", jobs=0, **kw)


def test_figure1_rows_build_train_one_step_and_write_their_own_files(tmp_path):
    from darkaction.experiments.tables import FIGURE1
    from darkaction.models.build import build_model

    assert get_table("fig1") is FIGURE1 and FIGURE1.stem == "fig1" and FIGURE1.label == "Figure 1"
    assert {r.key: r.paper for r in FIGURE1.rows} == {"c3d": 40.34, "resnext101": None, "squeezenet": None,
                                                      "delta": 90.46}  # fmt: skip
    plan = Plan("cpu", tmp_path, tmp_path, None, None, [*TINY, "sampling.T=16"])
    for row in FIGURE1.rows:
        cfg = plan.config_for(row, 0)
        if row.key != "delta":
            assert cfg.model.pretrained == ""  # the R(2+1)D file fits none of them: from scratch
        model = build_model(cfg.model, 6, cfg.sampling.T)
        x = torch.randn(2, 3, cfg.sampling.T, 32, 32)
        torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 3])).backward()
        assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters()), row.key
    res = experiment("fig1", data=_data(tmp_path), seeds=1, out=tmp_path / "exp", overrides=[*TINY, "sampling.T=16"],
                     stages=FakeStages(), progress=False)  # fmt: skip
    md = (tmp_path / "exp" / "fig1.md").read_text()
    assert md.startswith("# Figure 1:") and "| 3D-SqueezeNet |" in md and "arid.html" in md
    resnext_line = next(line for line in md.splitlines() if line.startswith("| 3D-ResNeXt-101 |"))
    assert resnext_line.endswith("| - |")  # no reported number in the paper column
    assert (tmp_path / "exp" / "fig1.png").is_file() and len(res["rows"]) == 4


def test_time_norm_ablation_is_run_like_a_table_and_shares_the_full_methods_run(tmp_path):
    from darkaction.experiments.tables import ABLATIONS, FULL

    tab = get_table("timenorm")
    assert tab is ABLATIONS["timenorm"] and tab.stem == "timenorm" and tab.label == "Ablation timenorm"
    assert [r.key for r in tab.rows] == ["none", "l2", "rms"] and tab.reference == "none"
    plan = Plan("cpu", tmp_path, tmp_path, None, None, list(TINY))
    full = plan.config_for(TABLES[2].row("delta"), 0)
    assert plan.config_for(tab.row("none"), 0) == full  # the cpu preset's default: the same run as the full method
    assert {r.key: plan.config_for(r, 0).model.time_norm for r in tab.rows} == {"none": "none", "l2": "l2",
                                                                              "rms": "rms"}  # fmt: skip
    assert all(r.overrides[: len(FULL)] == FULL for r in tab.rows)
    res = experiment("timenorm", data=_data(tmp_path), seeds=2, out=tmp_path / "exp", overrides=list(TINY),
                     stages=FakeStages(), progress=False)  # fmt: skip
    md = (tmp_path / "exp" / "timenorm.md").read_text()
    assert md.startswith("# Ablation timenorm: Time-domain normalisation") and "| rms per channel over time |" in md
    assert "Difference from the reference row (none (what" in md
    assert json.loads((tmp_path / "exp" / "timenorm.json").read_text())["stem"] == "timenorm"
    assert not list((tmp_path / "exp").glob("table*.json"))  # the claims read tables 1-4 only
    assert len(res["rows"]) == 3 and all(len(r.runs) == 2 for r in res["rows"])
    with pytest.raises(ConfigError, match="ablations: timenorm"):
        get_table("bogus")
    with pytest.raises(ValueError, match="needs a slug"):
        type(tab)(0, "untitled", tab.rows, kind="ablation")

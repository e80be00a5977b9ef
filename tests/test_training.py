"""Training: overfitting a small set, exact resume, NaN stop, MRAN hook, checkpoints loadable with weights_only."""

from __future__ import annotations

import csv
import json
import math
import shutil
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from darkaction.config import load_config
from darkaction.errors import ConfigError
from darkaction.training.datamodule import EpochShuffle
from darkaction.training.module import NonFiniteLossError, VideoClassifierModule, cxx_compiler, mran_lambda
from darkaction.training.profile import GROUPS, time_shares
from darkaction.training.run import load_checkpoint, train
from darkaction.utils import read_json, training_rng


class TinyHead(nn.Module):
    def __init__(self, c: int, k: int):
        super().__init__()
        self.fc = nn.Linear(c, k)
        self.attention = None

    def forward(self, f: torch.Tensor) -> torch.Tensor:  # f: B,C,T,h,w
        tokens = f.mean(dim=(3, 4)).transpose(1, 2)  # B,T,C
        att = tokens.sum(-1).softmax(-1)  # B,T
        self.attention = att.detach()
        return self.fc((tokens * att.unsqueeze(-1)).sum(1))


class TinyNet(nn.Module):
    """Stand-in VideoClassifier: clip B,3,T,H,W -> logits B,K (with dropout, so the torch RNG matters)."""

    def __init__(self, k: int = 3, width: int = 8):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv3d(3, width, 3, padding=1), nn.BatchNorm3d(width), nn.ReLU(), nn.Dropout(0.1)
        )
        self.head = TinyHead(width, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


class TinyMRAN(TinyNet):
    def __init__(self, k: int = 3):
        super().__init__(k)
        self.calls = 0

    def adaptation_step(self, src, tgt, src_y=None):
        self.calls += 1
        fs, ft = self.backbone(src), self.backbone(tgt)
        da = (fs.mean() - ft.mean()) ** 2
        return self.head(fs), self.head(ft), da


class PatternClips(Dataset):
    """Class c = colour channel c raised plus noise; the noise is drawn from `training_rng(seed, epoch, i)` like
    ClipDataset's per-item draws, so resume must reproduce that stream."""

    def __init__(self, n: int, k: int = 3, T: int = 4, size: int = 8, mran: bool = False, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, k, (n,), generator=g)
        self.k, self.T, self.size, self.mran, self.epoch = k, T, size, mran, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self):
        return len(self.labels)

    def _clip(self, y: int, rng) -> torch.Tensor:
        x = torch.from_numpy(rng.standard_normal((3, self.T, self.size, self.size)).astype("float32")) * 0.5
        x[y] += 1.0
        return x

    def __getitem__(self, i):
        y = int(self.labels[i])
        rng = training_rng(0, self.epoch, i)
        item = {"clip": self._clip(y, rng), "label": y, "index": i}
        if self.mran:
            item["target_clip"] = self._clip(y, rng)
            item["target_label"] = y
        return item


class StandInData(L.LightningDataModule):
    def __init__(self, n=12, batch_size=4, mran=False, nan=False, val=False):
        super().__init__()
        self.ds = PatternClips(n, mran=mran)
        self.batch_size, self.nan, self.has_val = batch_size, nan, val
        self.classes = ["a", "b", "c"]
        self.n_min, self.n_max = 10, 20

    def train_dataloader(self):
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        return DataLoader(self.ds, batch_size=self.batch_size, sampler=EpochShuffle(self.ds, 0, epoch))

    def val_dataloader(self):
        return DataLoader(self.ds, batch_size=self.batch_size) if self.has_val else []


def _cfg(tmp_path, name="run", **train):
    over = [
        f"run_dir={tmp_path / name}",
        "sampling.T=4",
        "train.progress=false",
        "train.workers=0",
        "train.precision=32",
        "train.batch_size=4",
        "enhance.method=identity",
    ]
    over += [f"train.{k}={v}" for k, v in train.items()]
    return load_config(None, over)


def _same_start_classifiers():
    """A factory of VideoClassifiers that all start from the same TinyNet weights (seed 1)."""
    from darkaction.models.build import VideoClassifier

    torch.manual_seed(1)
    init = TinyNet().state_dict()

    def fresh():
        tiny = TinyNet()
        tiny.load_state_dict(init)
        return VideoClassifier(tiny.backbone, tiny.head)

    return fresh


def test_tiny_model_overfits_to_full_train_accuracy(tmp_path):
    torch.manual_seed(0)
    cfg = _cfg(tmp_path, epochs=25, lr=0.01)
    dm = StandInData(n=12)
    run = train(cfg, model=TinyNet(), datamodule=dm)
    net = TinyNet()
    state = load_checkpoint(run / "checkpoints" / "last.ckpt")["state_dict"]
    net.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
    net.eval()
    batch = next(iter(DataLoader(dm.ds, batch_size=12)))
    acc = (net(batch["clip"]).argmax(1) == batch["label"]).float().mean().item()
    assert acc == 1.0
    assert (run / "checkpoints" / "best.ckpt").is_file()
    assert (run / "config.yaml").is_file() and (run / "metrics.csv").is_file()
    assert (run / "curves.png").is_file() and (run / "report.md").is_file()
    assert any(p.name.startswith("events") for p in (run / "tb").iterdir())
    assert load_config(run / "config.yaml").sampling.n_min == 10  # N_min/N_max recorded for eval/predict


class KillAt(L.Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("simulated kill")


def test_resume_after_interruption_gives_identical_weights(tmp_path):
    def weights(run):
        return load_checkpoint(run / "checkpoints" / "last.ckpt")["state_dict"]

    torch.manual_seed(1)
    init = TinyNet().state_dict()

    def fresh():
        net = TinyNet()
        net.load_state_dict(init)
        return net

    full = train(_cfg(tmp_path, "full", epochs=4, lr=0.01), model=fresh(), datamodule=StandInData())
    cfg = _cfg(tmp_path, "killed", epochs=4, lr=0.01)
    with pytest.raises(RuntimeError, match="simulated kill"):
        train(cfg, model=fresh(), datamodule=StandInData(), callbacks=[KillAt(2)])
    assert load_checkpoint(tmp_path / "killed" / "checkpoints" / "last.ckpt")["epoch"] == 1
    with pytest.raises(ConfigError, match="--resume"):
        train(cfg, model=fresh(), datamodule=StandInData())
    torch.manual_seed(123)  # a different process state must not matter
    resumed = train(cfg, resume=True, model=TinyNet(), datamodule=StandInData())
    a, b = weights(full), weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    opt = load_checkpoint(resumed / "checkpoints" / "last.ckpt")["optimizer_states"][0]
    assert any("slow" in s for s in opt["state"].values())
    from darkaction.report import read_epoch_metrics

    assert sorted(read_epoch_metrics(resumed / "metrics.csv")["train/loss"]) == [0, 1, 2, 3]  # history kept

    def lr_steps(run):  # the learning-rate rows (no epoch), one per epoch, none lost or doubled by the resume
        with open(run / "metrics.csv") as f:
            return [r["step"] for r in csv.DictReader(f) if not r["epoch"]]

    assert lr_steps(resumed) == lr_steps(full) and len(lr_steps(full)) == 4


class SlowEpochs(L.Callback):
    """Each epoch takes at least `seconds` more, so training times are large against timer noise."""

    def __init__(self, seconds):
        self.seconds = seconds

    def on_train_epoch_end(self, trainer, pl_module):
        time.sleep(self.seconds)


def test_training_time_adds_up_over_a_resume_and_is_unknown_for_untimed_checkpoints(tmp_path):
    from darkaction.training.run import train_seconds

    cfg = _cfg(tmp_path, "killed", epochs=4, lr=0.01)
    with pytest.raises(RuntimeError, match="simulated kill"):
        train(cfg, model=TinyNet(), datamodule=StandInData(), callbacks=[KillAt(2), SlowEpochs(0.3)])
    last = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    ckpt = load_checkpoint(last)
    before = next(v for k, v in ckpt["callbacks"].items() if k.startswith("Timer"))["time_elapsed"]["train"]
    assert before >= 0.6  # two slow epochs were saved with the checkpoint
    shutil.copytree(tmp_path / "killed", tmp_path / "untimed")
    run = train(cfg, resume=True, model=TinyNet(), datamodule=StandInData(), callbacks=[SlowEpochs(0.3)])
    total = train_seconds(run)
    assert total >= before + 0.6  # the resumed part's two epochs are added to the saved time, not counted alone
    assert read_json(run / "fit.json")["epochs"] == 4

    # a run resumed from a checkpoint without the timer's state (written before runs were timed): unknown, not wrong
    ckpt["callbacks"] = {k: v for k, v in ckpt["callbacks"].items() if not k.startswith("Timer")}
    torch.save(ckpt, tmp_path / "untimed" / "checkpoints" / "last.ckpt")
    untimed = train(_cfg(tmp_path, "untimed", epochs=4, lr=0.01), resume=True, model=TinyNet(),
                    datamodule=StandInData())  # fmt: skip
    assert train_seconds(untimed) is None


def test_nan_loss_stops_with_clear_message(tmp_path):
    class NaNNet(TinyNet):
        def forward(self, x):
            return super().forward(x) * float("nan")

    with pytest.raises(NonFiniteLossError, match="training loss is nan.*train.lr"):
        train(_cfg(tmp_path, epochs=2), model=NaNNet(), datamodule=StandInData())


def test_mran_hook_calls_adaptation_step_with_lambda_schedule(tmp_path):
    assert mran_lambda(0, 10) == 0.0
    assert mran_lambda(10, 10) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert 0 < mran_lambda(3, 10) < mran_lambda(6, 10) < 1
    cfg = _cfg(tmp_path, epochs=2)
    cfg.model.head = "mran"
    net = TinyMRAN()
    run = train(cfg, model=net, datamodule=StandInData(mran=True))
    assert net.calls == 2 * 3  # 12 items / batch 4 x 2 epochs
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert "train/da_loss" in header and "train/mran_lambda" in header


def test_module_view_probs_are_per_view_softmax():
    cfg = _cfg(__import__("pathlib").Path("/tmp"))
    lit = VideoClassifierModule(cfg, 3, model=TinyNet())
    lit.eval()
    clip = torch.randn(2, 5, 3, 4, 8, 8)
    probs = lit.view_probs(clip)
    assert probs.shape == (2, 5, 3)
    assert torch.allclose(probs.sum(-1), torch.ones(2, 5))


def test_loggers_are_configurable_and_metrics_csv_is_always_written(tmp_path):
    run = train(_cfg(tmp_path, "plain", epochs=1, loggers="[]"), model=TinyNet(), datamodule=StandInData())
    assert (run / "metrics.csv").is_file() and not (run / "tb").exists()
    with pytest.raises(ConfigError, match="train.loggers"):
        _cfg(tmp_path, "bad", loggers="[comet]")
    import importlib.util

    if importlib.util.find_spec("wandb") is None:
        with pytest.raises(ConfigError, match="pip install wandb"):
            train(_cfg(tmp_path, "wb", epochs=1, loggers="[wandb]"), model=TinyNet(), datamodule=StandInData())
        assert not (tmp_path / "wb" / "checkpoints").exists()  # refused before any training


def test_simple_profiler_writes_where_the_fit_spent_its_time(tmp_path):
    grab = GrabProfiler()
    run = train(_cfg(tmp_path, "prof", epochs=2, profiler="simple"), model=TinyNet(), datamodule=StandInData(),
                callbacks=[grab])  # fmt: skip
    report = (run / "fit-profile.txt").read_text()
    assert "run_training_batch" in report and "backward" in report
    shares = json.loads((run / "fit-shares.json").read_text())
    assert shares["train_steps"] == 6  # 12 clips / 4 a batch x 2 epochs
    assert all(v is not None and v >= 0 for v in shares["seconds"].values())
    assert shares["seconds"]["backward"] > 0 and shares["seconds"]["precise BN"] > 0
    assert sum(shares["share"].values()) == pytest.approx(1.0, abs=1e-6)  # the groups add up to the fit
    # no Lightning action falls in two groups
    for action in grab.profiler.recorded_durations:
        assert sum(match(action) for match in GROUPS.values()) <= 1, action
    plain = train(_cfg(tmp_path, "plain", epochs=1), model=TinyNet(), datamodule=StandInData())
    assert not (plain / "fit-profile.txt").exists() and not (plain / "fit-shares.json").exists()
    with pytest.raises(ConfigError, match="train.profiler"):
        _cfg(tmp_path, "bad", profiler="nvtx")


def test_time_shares_subtract_the_closure_from_the_optimizer_step():
    durations = {
        "[_TrainingEpochLoop].train_dataloader_next": [0.5, 0.5],
        "[LightningModule]M.optimizer_step": [3.0, 3.0],  # wraps training_step and backward
        "[Strategy]SingleDeviceStrategy.training_step": [1.0, 1.0],
        "[Strategy]SingleDeviceStrategy.backward": [1.5, 1.5],
        "[Callback]PreciseBN.on_train_epoch_end": [2.0],
        "[Callback]ModelCheckpoint{'monitor': None}.on_train_epoch_end": [0.25],
        "save_checkpoint": [0.2],  # inside ModelCheckpoint's hook: not counted again
    }
    s = time_shares(durations, fit_seconds=10.0)
    assert s["forward + loss"] == 2.0 and s["backward"] == 3.0 and s["optimizer"] == pytest.approx(1.0)
    assert s["data"] == 1.0 and s["precise BN"] == 2.0 and s["checkpoints"] == 0.25
    assert s["rest (Lightning, logging)"] == pytest.approx(0.75)
    assert time_shares(durations, 10.0, accumulate=2)["optimizer"] is None  # the closure ran outside optimizer_step


class GrabProfiler(L.Callback):
    def on_fit_start(self, trainer, pl_module):
        self.profiler = trainer.profiler


def test_train_is_a_short_composition_of_named_steps():
    import inspect

    from darkaction.training import run

    body = inspect.getsource(run.train).split('"""')[-1]
    assert len([line for line in body.splitlines() if line.strip()]) <= 15
    for step in ("check_run", "pretrain_backbone", "build_datamodule", "record_run_config", "build_trainer", "fit"):
        assert f"{step}(" in body


@pytest.mark.slow  # compiling forward and backward takes 1-2 min on 2 cores
@pytest.mark.skipif(cxx_compiler() is None, reason="torch.compile's CPU backend (inductor) needs a C++ compiler")
@pytest.mark.parametrize("channels_last", [False, True])  # the cpu preset compiles channels-last where bf16
def test_compiled_model_matches_eager_within_bf16_tolerance(one_torch_thread, channels_last):
    tiny = [("model.pretrained", ""), ("model.width", 0.125), ("sampling.T", 8), ("model.bert_hidden", 32),
            ("model.bert_heads", 4), ("model.bert_ffn", 64)]  # fmt: skip
    torch.manual_seed(0)
    on = [("train.compile", True), ("train.channels_last", channels_last)]
    compiled = VideoClassifierModule(load_config(None, [*tiny, *on]), 4)
    compiled.configure_model()  # what the Trainer calls in each training process
    assert compiled.model._compiled_call_impl is not None
    eager = VideoClassifierModule(load_config(None, tiny), 4)
    eager.load_state_dict(compiled.state_dict())  # compiling in place keeps every parameter's name
    clip, label = torch.randn(2, 3, 8, 32, 32), torch.tensor([1, 3])
    grads = []
    for m in (compiled, eager):
        m.eval()  # no dropout or token masking: inductor draws its own random numbers
        logits = m(clip)
        nn.functional.cross_entropy(logits, label).backward()
        grads.append((logits.detach(), [p.grad.clone() for p in m.parameters() if p.grad is not None]))
    (lc, gc), (le, ge) = grads
    torch.testing.assert_close(lc, le, rtol=1.6e-2, atol=1e-3)  # bf16's resolution
    assert len(gc) == len(ge) > 0
    for a, b in zip(gc, ge):
        torch.testing.assert_close(a, b, rtol=1.6e-2, atol=1e-3 * b.abs().max().item() + 1e-6)


@pytest.mark.slow  # three compiled fits of a tiny model: about a minute on 2 cores
@pytest.mark.skipif(cxx_compiler() is None, reason="torch.compile's CPU backend (inductor) needs a C++ compiler")
def test_compiled_training_resumes_exactly(tmp_path, one_torch_thread):
    fresh = _same_start_classifiers()

    def weights(run):
        return load_checkpoint(run / "checkpoints" / "last.ckpt")["state_dict"]

    full = train(_cfg(tmp_path, "full", epochs=3, lr=0.01, compile=True), model=fresh(), datamodule=StandInData())
    cfg = _cfg(tmp_path, "killed", epochs=3, lr=0.01, compile=True)
    with pytest.raises(RuntimeError, match="simulated kill"):
        train(cfg, model=fresh(), datamodule=StandInData(), callbacks=[KillAt(1)])
    resumed = train(cfg, resume=True, model=fresh(), datamodule=StandInData())
    a, b = weights(full), weights(resumed)
    assert a.keys() == b.keys() == {f"model.{k}" for k in fresh().state_dict()}  # compiling keeps every name
    for k in a:
        assert torch.equal(a[k], b[k]), k  # inductor's dropout draws from the restored torch RNG too


def test_backbone_lr_scales_only_the_backbone_groups():
    tiny = [("model.pretrained", ""), ("model.width", 0.125), ("sampling.T", 8), ("model.bert_hidden", 32),
            ("model.bert_heads", 4), ("model.bert_ffn", 64), ("train.lr", 2e-3),
            ("train.weight_decay", 0.01)]  # fmt: skip
    same = VideoClassifierModule(load_config(None, tiny), 4).configure_optimizers()
    assert [g["weight_decay"] for g in same["optimizer"].param_groups] == [0.01, 0.0]  # the layout of before
    lit = VideoClassifierModule(load_config(None, [*tiny, ("train.backbone_lr", 0.1)]), 4)
    out = lit.configure_optimizers()
    opt, sched = out["optimizer"], out["lr_scheduler"]["scheduler"]
    backbone = {id(p) for p in lit.model.backbone.parameters()}
    seen = set()
    for g in opt.param_groups:
        ids = {id(p) for p in g["params"]}
        inside = ids <= backbone
        assert inside or not ids & backbone  # a group is all backbone or all head
        assert g["max_lr"] == pytest.approx(2e-4 if inside else 2e-3)  # one-cycle's peak, per group
        assert g["weight_decay"] == (0.01 if all(p.dim() > 1 for p in g["params"]) else 0.0)
        seen |= ids
    assert seen == {id(p) for p in lit.model.parameters()}
    assert len(opt.param_groups) == 4 and sched.get_last_lr()[0] < 2e-4
    with pytest.raises(ConfigError, match="backbone_lr"):
        VideoClassifierModule(load_config(None, [*tiny, ("train.backbone_lr", 0.0)]), 4).configure_optimizers()


def test_wants_channels_last_only_for_bf16_on_cpu_unless_told():
    from darkaction.training.module import wants_channels_last

    assert wants_channels_last("auto", "bf16-mixed", "cpu")
    assert not wants_channels_last("auto", "32-true", "cpu") and not wants_channels_last("auto", "bf16-mixed", "cuda")
    assert wants_channels_last(True, "32-true", "cuda") and not wants_channels_last(False, "bf16-mixed", "cpu")
    assert _cfg(Path("x"), channels_last="on").train.channels_last is True  # YAML's on / off / yes / no are booleans
    assert _cfg(Path("x")).train.channels_last is False
    assert _cfg(Path("x"), channels_last="auto").train.channels_last == "auto"
    with pytest.raises(ConfigError, match="channels_last"):
        _cfg(Path("x"), channels_last="sometimes")


def test_wants_compile_only_for_bf16_on_cpu_with_a_compiler_unless_told(monkeypatch, tmp_path):
    from darkaction.training.module import wants_compile

    fake = tmp_path / "my-c++"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CXX", str(fake))
    assert cxx_compiler() == str(fake)
    assert wants_compile("auto", "bf16-mixed", "cpu")
    assert not wants_compile("auto", "32-true", "cpu") and not wants_compile("auto", "bf16-mixed", "cuda")
    assert wants_compile(True, "32-true", "cpu") and not wants_compile(False, "bf16-mixed", "cpu")
    monkeypatch.setenv("CXX", str(tmp_path / "missing"))  # no compiler: auto trains eagerly, true says why it cannot
    monkeypatch.setenv("PATH", str(tmp_path))
    assert cxx_compiler() is None
    assert not wants_compile("auto", "bf16-mixed", "cpu")
    with pytest.raises(ConfigError, match="C\\+\\+ compiler"):
        wants_compile(True, "bf16-mixed", "cpu")
    assert wants_compile(True, "bf16-mixed", "cuda")  # on a GPU the checks are inductor's own
    assert load_config(None, [("train.compile", "auto")]).train.compile == "auto"


class SeesLayout(L.Callback):
    """Records whether the model's conv weights and the clips reaching the backbone are channels_last_3d."""

    def __init__(self):
        self.weights, self.inputs = [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        conv = pl_module.model.backbone[0]
        self.weights.append(conv.weight.is_contiguous(memory_format=torch.channels_last_3d))
        if not self.inputs:
            conv.register_forward_pre_hook(
                lambda m, args: self.inputs.append(args[0].is_contiguous(memory_format=torch.channels_last_3d))
            )


def test_channels_last_training_stores_channels_last_and_resumes_exactly(tmp_path):
    fresh = _same_start_classifiers()

    seen = SeesLayout()
    full = train(_cfg(tmp_path, "full", epochs=3, lr=0.01, channels_last=True), model=fresh(),
                 datamodule=StandInData(), callbacks=[seen])  # fmt: skip
    assert all(seen.weights) and seen.inputs and all(seen.inputs)
    cfg = _cfg(tmp_path, "killed", epochs=3, lr=0.01, channels_last=True)
    with pytest.raises(RuntimeError, match="simulated kill"):
        train(cfg, model=fresh(), datamodule=StandInData(), callbacks=[KillAt(1)])
    resumed = train(cfg, resume=True, model=fresh(), datamodule=StandInData())
    a = load_checkpoint(full / "checkpoints" / "last.ckpt")["state_dict"]
    b = load_checkpoint(resumed / "checkpoints" / "last.ckpt")["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the checkpoint loads into a plain (contiguous) model, which computes what the channels-last one does
    plain, cl = fresh(), fresh().use_channels_last()
    plain.load_state_dict({k.removeprefix("model."): v for k, v in a.items()})
    cl.load_state_dict({k.removeprefix("model."): v for k, v in a.items()})
    x = torch.randn(2, 3, 4, 8, 8)
    torch.testing.assert_close(plain.eval()(x), cl.eval()(x), rtol=1e-5, atol=1e-6)
    # off (the default) leaves the layout alone
    seen_off = SeesLayout()
    train(_cfg(tmp_path, "off", epochs=1, lr=0.01), model=fresh(), datamodule=StandInData(), callbacks=[seen_off])
    assert not any(seen_off.weights) and not any(seen_off.inputs)

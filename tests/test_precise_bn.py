"""PreciseBN replaces BatchNorm's lagging running statistics with exact averages over training clips."""

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from darkaction.config import load_config
from darkaction.training.module import VideoClassifierModule
from darkaction.training.precise_bn import PreciseBN


class Clips(Dataset):
    def __init__(self, n=16):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 2, 2, 4, 4, generator=g) * 3 + 5  # far from BN's initial stats (0, 1)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"clip": self.x[i], "label": i % 2, "index": i}


def _model():
    return nn.Sequential(nn.BatchNorm3d(2), nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(2, 2))


def _fit(callbacks, data):
    cfg = load_config(None, ["train.optimizer=adamw", "train.scheduler=none", "train.loss=ce"])
    lit = VideoClassifierModule(cfg, 2, model=_model())
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )
    trainer.fit(lit, DataLoader(data, batch_size=4))
    return lit.model[0]


def test_running_stats_become_the_exact_training_average():
    data = Clips()
    exact_mean = data.x.mean(dim=(0, 2, 3, 4))
    lagging = _fit([], data)
    assert not torch.allclose(lagging.running_mean, exact_mean, atol=0.5)  # momentum 0.1 over 4 batches lags
    precise = _fit([PreciseBN(max_clips=16)], data)
    torch.testing.assert_close(precise.running_mean, exact_mean, rtol=1e-4, atol=1e-4)


def test_zero_clips_turns_it_off():
    data = Clips()
    bn = _fit([PreciseBN(max_clips=0)], data)
    assert not torch.allclose(bn.running_mean, data.x.mean(dim=(0, 2, 3, 4)), atol=0.5)


# ---------------------------------------------------------------- in a run: once, at the end, for each checkpoint

import copy  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402
from torch.optim.swa_utils import update_bn  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from test_training import StandInData, TinyNet, _cfg  # noqa: E402

from darkaction.training.precise_bn import CHECKPOINT_KEY, pending  # noqa: E402
from darkaction.training.run import load_checkpoint, train, train_state  # noqa: E402


class EpochData(StandInData):
    """A datamodule that builds any epoch's loader (as VideoDataModule does), the path PreciseBN prefers."""

    def train_dataloader(self, epoch=None):
        from darkaction.training.datamodule import EpochShuffle

        epoch = self.trainer.current_epoch if epoch is None else epoch
        return DataLoader(self.ds, batch_size=self.batch_size, sampler=EpochShuffle(self.ds, 0, epoch))


class EndOfEpochPass(L.Callback):
    """The reference: what a pass at the end of every epoch (the old schedule) gives, on a copy of the model."""

    def __init__(self, clips):
        self.clips, self.stats = clips, {}

    def on_train_epoch_end(self, trainer, pl_module):
        model = copy.deepcopy(pl_module.model)
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            batches = (b["clip"] for _, b in zip(range(self.clips // 4), trainer.train_dataloader))
            update_bn(batches, model)
        bn = model.backbone[1]
        self.stats[trainer.current_epoch] = (bn.running_mean.clone(), bn.running_var.clone())


def _bn_stats(ckpt_path):
    sd = load_checkpoint(ckpt_path)["state_dict"]
    return sd["model.backbone.1.running_mean"], sd["model.backbone.1.running_var"]


@pytest.mark.parametrize("data", [StandInData, EpochData])
def test_each_checkpoint_gets_the_statistics_of_a_pass_at_the_end_of_its_epoch(tmp_path, data, monkeypatch):
    passes = []
    recompute = PreciseBN._recompute
    monkeypatch.setattr(PreciseBN, "_recompute", lambda self, *a, **k: passes.append(a[2]) or recompute(self, *a, **k))
    ref = EndOfEpochPass(clips=8)
    # a checkpoint of epoch 0 besides best / last: finished with epoch 0's clips after the fit
    first = ModelCheckpoint(dirpath=tmp_path / "first", filename="first", monitor="epoch", mode="min")
    run = train(_cfg(tmp_path, "run", epochs=3, lr=0.01, precise_bn=8), model=TinyNet(), datamodule=data(),
                callbacks=[ref, first])  # fmt: skip
    paths = [run / "checkpoints" / "best.ckpt", run / "checkpoints" / "last.ckpt", Path(first.best_model_path)]
    epochs = [load_checkpoint(p)["epoch"] for p in paths]
    assert epochs[1] == 2 and epochs[2] == 0
    for path, epoch in zip(paths, epochs):
        assert load_checkpoint(path)[CHECKPOINT_KEY] == "done"
        for got, want in zip(_bn_stats(path), ref.stats[epoch]):
            assert torch.equal(got, want), (path.name, epoch)
    assert sorted(passes) == sorted(set(epochs))  # none during training; one per epoch checkpointed
    lagging = train(_cfg(tmp_path, "off", epochs=3, lr=0.01, precise_bn=0), model=TinyNet(), datamodule=data())
    assert CHECKPOINT_KEY not in load_checkpoint(lagging / "checkpoints" / "last.ckpt")
    assert not torch.allclose(_bn_stats(lagging / "checkpoints" / "last.ckpt")[0], ref.stats[2][0], atol=1e-3)


def test_validation_reads_statistics_recomputed_before_it_and_its_checkpoints_are_done(tmp_path, monkeypatch):
    passes = []
    recompute = PreciseBN._recompute
    monkeypatch.setattr(PreciseBN, "_recompute", lambda self, *a, **k: passes.append(a[2]) or recompute(self, *a, **k))
    ref = EndOfEpochPass(clips=8)
    run = train(_cfg(tmp_path, "val", epochs=3, lr=0.01, precise_bn=8), model=TinyNet(), datamodule=EpochData(val=True),
                callbacks=[ref])  # fmt: skip
    assert passes == [0, 1, 2]  # one before each validation, none left for the end
    for name in ("best.ckpt", "last.ckpt"):
        ckpt = load_checkpoint(run / "checkpoints" / name)
        assert ckpt[CHECKPOINT_KEY] == "done"
        for got, want in zip(_bn_stats(run / "checkpoints" / name), ref.stats[ckpt["epoch"]]):
            assert torch.equal(got, want), name


class DropNet(TinyNet):
    """Dropout before the BN layer: the statistics depend on the RNG the pass draws from."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Dropout(0.5), nn.BatchNorm3d(3), nn.Conv3d(3, 8, 3, padding=1), nn.ReLU())


def test_a_run_stopped_before_its_statistics_were_computed_resumes_to_compute_them(tmp_path):
    """Also when the run folder moved since (restored checkpoint paths point to the old place), and whatever the
    global RNG holds when the pass runs (it draws from a seed of its own: dropout before BN)."""
    cfg = _cfg(tmp_path, "run", epochs=2, lr=0.01, precise_bn=8)
    torch.manual_seed(0)
    run = train(cfg, model=DropNet(), datamodule=EpochData())
    assert train_state(run, 2) == "done"
    final = {}
    for name in ("best.ckpt", "last.ckpt"):  # as a kill before the end of the fit leaves them
        path = run / "checkpoints" / name
        ckpt = torch.load(path, weights_only=False)
        final[name] = _bn_stats(path)
        ckpt["state_dict"]["model.backbone.1.running_mean"].zero_()
        ckpt[CHECKPOINT_KEY] = "pending"
        torch.save(ckpt, path)
        assert pending(load_checkpoint(path))
    assert train_state(run, 2) == "resume"
    shutil.copytree(run, tmp_path / "copy")
    run.rename(tmp_path / "moved")
    for seed, where in ((1, "moved"), (2, "copy")):
        torch.manual_seed(seed)
        moved = train(_cfg(tmp_path, where, epochs=2, lr=0.01, precise_bn=8), resume=True, model=DropNet(),
                      datamodule=EpochData())  # fmt: skip
        assert train_state(moved, 2) == "done" and not run.exists()
        for name, want in final.items():
            for got, w in zip(_bn_stats(moved / "checkpoints" / name), want):
                assert torch.equal(got, w), (where, name)


def test_a_pending_run_resumed_with_precise_bn_off_is_done_with_running_averages(tmp_path):
    run = train(_cfg(tmp_path, "run", epochs=1, precise_bn=8), model=TinyNet(), datamodule=EpochData())
    path = run / "checkpoints" / "last.ckpt"
    ckpt = torch.load(path, weights_only=False)
    ckpt[CHECKPOINT_KEY] = "pending"
    torch.save(ckpt, path)
    train(_cfg(tmp_path, "run", epochs=1, precise_bn=0), resume=True, model=TinyNet(), datamodule=EpochData())
    assert CHECKPOINT_KEY not in load_checkpoint(path) and train_state(run, 1) == "done"

"""2-process DDP on CPU (gloo): trains, and logged metrics are reduced across ranks (sync_dist=True)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys
    import lightning as L
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, Dataset

    from darkaction.config import load_config
    from darkaction.training.datamodule import EpochShuffle
    from darkaction.training.run import train


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = nn.Conv3d(3, 4, 1)
            self.head = nn.Linear(4, 2)

        def forward(self, x):
            return self.head(self.backbone(x).mean(dim=(2, 3, 4)))


    class Clips(Dataset):
        def __len__(self):
            return 16

        def __getitem__(self, i):
            g = torch.Generator().manual_seed(i)
            y = i % 2
            return {"clip": torch.randn(3, 2, 4, 4, generator=g) + y, "label": y, "index": i}


    class Data(L.LightningDataModule):
        classes = ["a", "b"]
        n_min, n_max, has_val = 4, 4, False

        def train_dataloader(self):
            ds = Clips()
            return DataLoader(ds, batch_size=2, sampler=EpochShuffle(ds, 0))


    class LogRank(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            # rank 0 logs 0, rank 1 logs 1: the reduced (mean) value must be 0.5
            pl_module.log("debug/rank", float(trainer.global_rank), on_step=False, on_epoch=True, sync_dist=True)
            pl_module.log("debug/world", float(trainer.world_size), on_step=False, on_epoch=True, sync_dist=True)


    run_dir = sys.argv[1]
    cfg = load_config(None, [f"run_dir={run_dir}", "train.epochs=2", "train.devices=2", "train.strategy=ddp",
                             "train.accelerator=cpu", "train.precision=32", "train.progress=false",
                             "train.workers=0", "sampling.T=2", "enhance.method=identity"])
    train(cfg, model=Net(), datamodule=Data(), callbacks=[LogRank()])
    """
)


@pytest.mark.slow
def test_two_process_ddp_trains_and_reduces_metrics(tmp_path):
    script = tmp_path / "ddp_run.py"
    script.write_text(SCRIPT)
    run = tmp_path / "run"
    env = dict(os.environ, PL_DISABLE_FORK="1", OMP_NUM_THREADS="1")
    r = subprocess.run(
        [sys.executable, str(script), str(run)], capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "distributed_backend=gloo" in r.stderr + r.stdout or "gloo" in (r.stderr + r.stdout)
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    ranks = [float(x["debug/rank"]) for x in rows if x.get("debug/rank")]
    worlds = [float(x["debug/world"]) for x in rows if x.get("debug/world")]
    assert ranks and all(v == pytest.approx(0.5) for v in ranks)
    assert worlds and all(v == 2.0 for v in worlds)
    losses = [float(x["train/loss_epoch"]) for x in rows if x.get("train/loss_epoch")]
    assert len(losses) == 2 and all(v == v for v in losses)  # 2 epochs, finite
    assert (run / "checkpoints" / "last.ckpt").is_file()

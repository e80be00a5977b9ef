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

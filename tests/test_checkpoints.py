"""best.ckpt follows the monitored metric, last.ckpt follows every epoch (what --resume and train_state read)."""

from __future__ import annotations

import lightning as L
import torch

from darkaction.training.run import checkpoint_callbacks, load_checkpoint, train_state


class Worsening(L.LightningModule):
    """Logs a train/loss_epoch that grows every epoch, so the best epoch is the first."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        self.log("train/loss_epoch", float(self.current_epoch), on_epoch=True, on_step=False)
        return (self.w * batch).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.zeros(2, 1), batch_size=1)


def test_last_checkpoint_is_the_last_epoch_even_when_it_is_not_the_best(tmp_path):
    ckpt = tmp_path / "checkpoints"
    trainer = L.Trainer(
        default_root_dir=tmp_path,
        max_epochs=3,
        callbacks=checkpoint_callbacks(ckpt, "train/loss_epoch", "min"),
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(Worsening())
    assert load_checkpoint(ckpt / "best.ckpt")["epoch"] == 0
    assert load_checkpoint(ckpt / "last.ckpt")["epoch"] == 2
    assert train_state(tmp_path, 3) == "done"

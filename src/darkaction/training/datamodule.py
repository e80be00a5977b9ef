"""The LightningDataModule over the prepared (enhanced) frame cache.

    dm = VideoDataModule(cfg)            # reads <prepared>/index.json and the cache `training_cache(cfg)` names
    dm.setup("fit"); dm.classes, dm.n_min, dm.n_max, dm.has_val

- train: `ClipDataset(train=True)` (one sampled, augmented clip per video), shuffled by `EpochShuffle`; every draw
  comes from `utils.training_rng(train.seed, epoch, index)`, so an epoch draws the same clips however the run got
  there (resume). The loader is rebuilt every epoch, so no worker keeps a stale epoch.
- val (when the index has a val split): one deterministic test view per video.
- test: `ClipDataset(train=False, views=k)` -> clip (k,C,T,H,W) per video; the module averages the k softmaxes.
- MRAN (`model.head == "mran"`): train items come from the `data.extra_train` sources (records whose `source` differs
  from `data.source.format`) and each is paired at random with a main-source train video as "target_clip" /
  "target_label".
N_min / N_max for the samplers come from the training index (or `sampling.n_min/n_max` when set).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

from darkaction.errors import DataError
from darkaction.utils import training_rng


class EpochShuffle(RandomSampler):
    """A shuffling sampler whose order is a pure function of (seed, epoch): Lightning calls `set_epoch` at the start
    of every epoch, which also tells the dataset which epoch it draws for, so a resumed run sees the same order and
    the same clips as an uninterrupted one however its loaders were built. (Under DDP Lightning swaps it for a
    `DistributedSampler(shuffle=True)`, which is seeded per epoch the same way.)"""

    def __init__(self, data_source: Dataset, seed: int, epoch: int = 0):
        super().__init__(data_source)
        self.seed = int(seed)
        self.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.data_source, "set_epoch"):
            self.data_source.set_epoch(epoch)

    def __iter__(self):
        yield from training_rng(self.seed, self.epoch, -1, "shuffle").permutation(len(self.data_source)).tolist()


class PairedTargetDataset(Dataset):
    """Source items with a randomly paired target item: adds "target_clip" (C,T,H,W) and "target_label" (int).

    The pairing for item i of an epoch comes from `training_rng(seed, epoch, i, "pair")`: reproducible and
    worker-independent.
    """

    def __init__(self, source: Dataset, target: Dataset, seed: int, epoch: int):
        if len(target) == 0:
            raise DataError("MRAN needs main-source training videos as targets, but the train split has none")
        self.source, self.target, self.seed, self.epoch = source, target, int(seed), int(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        for ds in (self.source, self.target):
            if hasattr(ds, "set_epoch"):
                ds.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> dict:
        item = dict(self.source[i])
        j = int(training_rng(self.seed, self.epoch, i, "pair").integers(len(self.target)))
        tgt = self.target[j]
        item["target_clip"] = tgt["clip"]
        item["target_label"] = tgt["label"]
        return item


def lengths_of(records: list, cache: Any) -> list[int]:
    """Frame counts of the records (the index's n_frames, else the cache's)."""
    out = []
    for r in records:
        n = int(getattr(r, "n_frames", 0) or 0)
        out.append(n if n > 0 else len(cache.frames(r.video_id)))
    return out


class VideoDataModule(L.LightningDataModule):
    """Args:
    cfg: the full Config.
    index, cache: optional ready `DatasetIndex` / `FrameCache` (default: `open_prepared(cfg)` + `training_cache(cfg)`).
    """

    def __init__(self, cfg, index: Any = None, cache: Any = None):
        super().__init__()
        self.cfg = cfg
        self.index = index
        self.cache = cache
        self.flow_cache: Any = None  # optical flow for the RGB + flow model (model.in_channels == 5)
        self.train_records: list = []
        self.target_records: list = []
        self.val_records: list = []
        self.test_records: list = []
        self.n_min = self.n_max = 0

    # ------------------------------------------------------------------------------------------ setup

    def _load(self) -> None:
        if self.index is None:
            from darkaction.data.prepare import open_prepared

            self.index, _ = open_prepared(self.cfg)
        if self.cache is None:
            from darkaction.enhancement.run import training_cache

            self.cache = training_cache(self.cfg)
        if self.cfg.model.in_channels == 5 and self.flow_cache is None:
            from darkaction.training.flow_cache import open_flow_cache

            self.flow_cache = open_flow_cache(self.cfg)

    @property
    def classes(self) -> list[str]:
        self._load()
        return list(self.index.classes)

    @property
    def has_val(self) -> bool:
        self._load()
        return len(self.index.split("val")) > 0

    def setup(self, stage: str | None = None) -> None:
        self._load()
        cfg = self.cfg
        train = self.index.split("train")
        missing = [r.video_id for r in self.index.records if r.video_id not in self.cache]
        if missing:
            raise DataError(
                f"{len(missing)} indexed videos are missing from the frame cache {getattr(self.cache, 'root', '')} "
                f"(e.g. {missing[:3]}); run `darkaction prepare` and `darkaction enhance` with this config"
            )
        if cfg.model.head == "mran":
            main = cfg.data.source.format
            self.train_records = [r for r in train if r.source != main]
            self.target_records = [r for r in train if r.source == main]
            if not self.train_records:
                raise DataError(
                    "model.head=mran trains on the data.extra_train sources (e.g. HMDB51) adapted to the main "
                    f"source, but every train video comes from '{main}'; add a data.extra_train source"
                )
        else:
            self.train_records, self.target_records = train, []
        self.val_records = self.index.split("val")
        self.test_records = self.index.split("test")
        if stage in (None, "fit") and not train:
            raise DataError(f"the index in {cfg.data.prepared} has no train videos; check data.source and re-prepare")
        if train:
            lens = lengths_of(train, self.cache)
            self.n_min = cfg.sampling.n_min or min(lens)
            self.n_max = cfg.sampling.n_max or max(lens)
        else:
            self.n_min, self.n_max = cfg.sampling.n_min, cfg.sampling.n_max

    # ------------------------------------------------------------------------------------------ loaders

    def _dataset(self, records: list, train: bool, views: int = 1, seed: int | None = None) -> Dataset:
        from darkaction.data.dataset import ClipDataset

        return ClipDataset(
            records,
            self.cache,
            self.cfg,
            train=train,
            views=views,
            n_min=self.n_min or None,
            n_max=self.n_max or None,
            seed=self.cfg.train.seed if seed is None else seed,
            flow_cache=self.flow_cache,
        )

    def _epoch(self) -> int:
        trainer = self._trainer if hasattr(self, "_trainer") else getattr(self, "trainer", None)
        return int(trainer.current_epoch) if trainer is not None else 0

    def _loader(self, ds: Dataset, shuffle: bool, epoch: int = 0) -> DataLoader:
        workers = int(self.cfg.train.workers)
        return DataLoader(
            ds,
            batch_size=self.cfg.train.batch_size,
            sampler=EpochShuffle(ds, self.cfg.train.seed, epoch) if shuffle else None,
            num_workers=workers,
            drop_last=False,
            persistent_workers=False,
            pin_memory=False,
            # fork is cheap and keeps the memmapped cache shared; Lightning's ddp_spawn pickles us anyway
            multiprocessing_context="fork"
            if workers > 0 and torch.multiprocessing.get_start_method() == "fork"
            else None,
        )

    def train_dataloader(self, epoch: int | None = None) -> DataLoader:
        """The loader of the trainer's current epoch, or of `epoch` (precise BN recomputes a checkpoint's own)."""
        epoch, seed = self._epoch() if epoch is None else int(epoch), self.cfg.train.seed
        ds: Dataset = self._dataset(self.train_records, train=True)
        if self.target_records:
            tgt = self._dataset(self.target_records, train=True, seed=seed + 1)
            ds = PairedTargetDataset(ds, tgt, seed, epoch)
        return self._loader(ds, shuffle=True, epoch=epoch)

    def val_dataloader(self) -> DataLoader | list:
        if not self.val_records:
            return []
        return self._loader(self._dataset(self.val_records, train=False, views=1), shuffle=False)

    def test_dataloader(self, views: int | None = None) -> DataLoader:
        k = views or self.cfg.eval.views or self.cfg.sampling.test_views
        return self._loader(self._dataset(self.test_records, train=False, views=k), shuffle=False)

"""Shared fixtures. `tiny_synth` is the small synthetic dataset other modules' tests read
(`DataSource(format="synth", root=str(tiny_synth))`); its name and behaviour are kept stable."""

from __future__ import annotations

from pathlib import Path

import pytest

from darkaction.config import SynthConfig


def tiny_synth_config(out: str | Path = "", seed: int = 0) -> SynthConfig:
    """6 classes x (2 train + 1 test groups) x 2 reps = 36 clips of 33-60 frames at 64x48: a few seconds."""
    return SynthConfig(
        out=str(out),
        seed=seed,
        width=64,
        height=48,
        fps=30,
        train_groups=2,
        test_groups=1,
        reps=2,
        min_frames=33,
        max_frames=60,
        workers=1,
    )


@pytest.fixture(scope="session")
def tiny_synth_cfg(tmp_path_factory: pytest.TempPathFactory) -> SynthConfig:
    """The SynthConfig `tiny_synth` was generated with (its `out` is the dataset folder)."""
    return tiny_synth_config(tmp_path_factory.mktemp("tiny_synth") / "data")


@pytest.fixture(scope="session")
def tiny_synth(tiny_synth_cfg: SynthConfig) -> Path:
    """Folder of a tiny synthetic dataset in the ARID 1.1 track-1 layout (train.csv, test.csv, videos/, metadata.json).

    Session-scoped and shared: treat it as read-only."""
    from darkaction.data.synthetic import synth

    return synth(tiny_synth_cfg)


@pytest.fixture
def one_torch_thread():
    """Tiny models on a shared 2-core CPU: one torch thread avoids OpenMP barrier stalls; restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

"""External (TorchScript / ONNX) enhancer: loading, fingerprint, output, and the errors a user sees."""

import hashlib
import sys

import numpy as np
import pytest
import torch
from torch import nn

from darkaction.enhancement.external import ExternalEnhancer
from darkaction.errors import DataError


class _Sqrt(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp_min(0).sqrt()


class _Halve(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, ::2]


def _save(module: nn.Module, path):
    torch.jit.save(torch.jit.script(module), str(path))
    return path


def test_torchscript_model_enhances_and_fingerprints(tmp_path):
    path = _save(_Sqrt(), tmp_path / "enlightengan.pt")
    enh = ExternalEnhancer(path, batch_size=2)
    frames = np.random.default_rng(0).integers(0, 256, (5, 8, 6, 3), dtype=np.uint8)
    out = enh(frames)
    assert out.shape == frames.shape and out.dtype == np.uint8
    expected = np.rint(np.sqrt(frames / 255.0) * 255.0).astype(np.uint8)
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    assert enh.fingerprint == f"external-{digest}"
    assert enh.name == "external"


def test_missing_file_says_enlightengan_cannot_be_downloaded(tmp_path):
    with pytest.raises(DataError, match=r"cannot be downloaded.*enhance\.external=FILE") as e:
        ExternalEnhancer(tmp_path / "nope.pt")
    assert "nope.pt" in str(e.value)


def test_state_dict_is_not_torchscript(tmp_path):
    p = tmp_path / "weights.pth"
    torch.save(nn.Linear(2, 2).state_dict(), p)
    with pytest.raises(DataError, match="torch.jit.save"):
        ExternalEnhancer(p)


def test_onnx_needs_onnxruntime(tmp_path, monkeypatch):
    p = tmp_path / "enlightengan.onnx"
    p.write_bytes(b"\x08\x07fake-onnx")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # behave as if it is not installed
    with pytest.raises(DataError, match="pip install onnxruntime"):
        ExternalEnhancer(p)


def test_unknown_format_and_shape_mismatch(tmp_path):
    p = tmp_path / "model.bin"
    p.write_bytes(b"not a model")
    with pytest.raises(DataError, match="neither a TorchScript"):
        ExternalEnhancer(p)
    enh = ExternalEnhancer(_save(_Halve(), tmp_path / "halve.pt"))
    with pytest.raises(DataError, match="same shape"):
        enh(np.zeros((1, 8, 8, 3), np.uint8))

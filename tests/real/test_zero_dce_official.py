"""The project's DCE-Net with the official Zero-DCE weights reproduces the official outputs on real low-light crops."""

import json

import cv2
import numpy as np
import pytest
import torch

from darkaction.enhancement.base import build_curve_enhancer, load_weights
from darkaction.enhancement.dce import DCENet, count_parameters


@pytest.fixture(scope="module")
def zdir(fixtures_dir):
    d = fixtures_dir / "zero_dce"
    if not (d / "official_Epoch99.pth").is_file():
        pytest.skip(f"official Zero-DCE weights not found in {d}")
    return d


@pytest.fixture(scope="module")
def official(zdir):
    net = DCENet()
    state = torch.load(zdir / "official_Epoch99.pth", weights_only=True, map_location="cpu")
    net.load_state_dict(state)  # strict: the official keys and shapes, unchanged
    return net.eval()


def _crops(zdir):
    for item in json.loads((zdir / "crops.json").read_text()):
        rgb = cv2.cvtColor(cv2.imread(str(zdir / item["input"])), cv2.COLOR_BGR2RGB)
        yield item, rgb, np.load(zdir / item["enhanced"])


def test_parameter_count(official):
    assert count_parameters(official) == 79_416


def test_official_outputs_fp32(zdir, official):
    n = 0
    for item, rgb, ref in _crops(zdir):
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
        with torch.no_grad():
            y, r = official(x)
        out = y[0].permute(1, 2, 0).numpy()
        assert out.shape == ref.shape
        assert np.abs(out - ref).max() < 1e-4, item["input"]
        # the fast inference path (fused in-place curve steps) gives the same numbers
        fast = official.enhance(x.contiguous(memory_format=torch.channels_last))[0].permute(1, 2, 0).numpy()
        assert np.abs(fast - ref).max() < 1e-4, item["input"]
        # mean brightness as recorded with the fixture (8-bit scale, clamped output)
        assert abs(np.clip(out, 0, 1).mean() * 255 - item["mean_out"]) < 0.5
        n += 1
    assert n == 4


def test_official_outputs_bf16_within_1e2(zdir, official):
    for item, rgb, ref in _crops(zdir):
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
        out = official.enhance(x, "bf16")[0].permute(1, 2, 0).numpy()
        assert np.abs(out - ref).max() < 1e-2, item["input"]


def test_enhancer_uint8_and_load_weights(zdir):
    enh = build_curve_enhancer("zero-dce", zdir / "official_Epoch99.pth", precision="fp32", batch_size=3)
    crops = list(_crops(zdir))
    frames = np.stack([rgb for _, rgb, _ in crops])
    out = enh(frames)
    ref = np.stack([np.round(np.clip(r, 0, 1) * 255) for _, _, r in crops])
    assert out.dtype == np.uint8 and out.shape == frames.shape
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1
    assert len(load_weights(DCENet(), zdir / "official_Epoch99.pth")) == 12


def test_enhance_image_cli_raw(zdir, tmp_path):
    from darkaction.cli import main

    src = zdir / "crop0_input.png"
    w = zdir / "official_Epoch99.pth"
    assert main(["enhance", "image", str(src), "--weights", str(w), "--out", str(tmp_path), "--raw"]) == 0
    raw = np.load(tmp_path / "crop0_input.npy")
    assert np.abs(raw - np.load(zdir / "crop0_enhanced.npy")).max() < 1e-4
    png = cv2.imread(str(tmp_path / "crop0_input.png"))
    assert png.shape == (128, 160, 3)

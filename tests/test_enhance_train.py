"""Zero-DCE training: a few steps on dark synthetic frames lower the loss and brighten; checkpoints resume."""

import numpy as np
import torch

from darkaction.config import DCETrainConfig
from darkaction.enhancement.dce import DCENet
from darkaction.enhancement.train import train_dce, uniform_frame_positions
from darkaction.utils import read_json


def _dark_images(n=16, size=40, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        base = rng.uniform(5, 40)  # mean 8-bit brightness of a dark frame
        img = base * (0.6 + 0.8 * rng.random((size, size, 1))) * rng.uniform(0.8, 1.2, (1, 1, 3))
        out.append(np.clip(img + rng.normal(0, 2, (size, size, 3)), 0, 255).astype(np.uint8))
    return out


def test_uniform_frame_positions():
    pos = uniform_frame_positions([10, 0, 5, 5], 5)  # 20 frames, 5 picks at 0, 5, 9/10, 14, 19
    assert pos[0] == (0, 0) and pos[-1] == (3, 4)
    assert len(pos) == 5 and all(v != 1 for v, _ in pos)  # the empty video is never picked
    assert len(uniform_frame_positions([3, 2], 100)) == 5  # never more than all frames
    assert uniform_frame_positions([], 4) == []


def test_few_steps_lower_loss_and_brighten(tmp_path):
    images = _dark_images(12, 32)
    tc = DCETrainConfig(image_size=32, epochs=4, batch_size=4, lr=1e-3, seed=0)
    path = train_dce(images, tc, tmp_path, progress=False)
    h = read_json(tmp_path / "history.json")
    assert len(h["total"]) == 4
    assert h["total"][-1] < h["total"][0]
    inp = float(np.mean([im.mean() for im in images])) / 255
    # mean output brightness moves from about the input's toward the exposure target 0.6
    assert h["brightness"][-1] > h["brightness"][0] > inp - 0.02
    assert abs(h["brightness"][-1] - 0.6) < abs(inp - 0.6)
    state = torch.load(path, weights_only=True, map_location="cpu")
    DCENet().load_state_dict(state)  # plain state dict with the official key names
    assert (tmp_path / "loss_curves.png").stat().st_size > 1000


def test_resume_continues_from_checkpoint(tmp_path):
    images = _dark_images(8)
    tc = DCETrainConfig(image_size=16, epochs=2, batch_size=4, lr=1e-3, seed=1, exposure_patch=8)
    train_dce(images, tc, tmp_path / "a", progress=False)
    tc1 = DCETrainConfig(image_size=16, epochs=1, batch_size=4, lr=1e-3, seed=1, exposure_patch=8)
    train_dce(images, tc1, tmp_path / "b", progress=False)
    train_dce(images, tc, tmp_path / "b", progress=False)  # resumes at epoch 2
    ha, hb = read_json(tmp_path / "a" / "history.json"), read_json(tmp_path / "b" / "history.json")
    assert hb["epoch"] == [1, 2]
    np.testing.assert_allclose(ha["total"], hb["total"], rtol=1e-4)
    wa = torch.load(tmp_path / "a" / "weights.pth", weights_only=True)
    wb = torch.load(tmp_path / "b" / "weights.pth", weights_only=True)
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)


def test_zero_dce_pp_trains(tmp_path):
    tc = DCETrainConfig(image_size=16, epochs=1, batch_size=4, seed=0, exposure_patch=8, loss_form="paper")
    path = train_dce(_dark_images(8, 24), tc, tmp_path, method="zero-dce++", progress=False)
    assert "e_conv1.depth_conv.weight" in torch.load(path, weights_only=True)


def test_changed_settings_train_again_instead_of_resuming(tmp_path):
    from darkaction.enhancement.train import is_trained

    images = _dark_images(8)
    tc = DCETrainConfig(image_size=16, epochs=1, batch_size=4, lr=1e-3, seed=1, exposure_patch=8)
    train_dce(images, tc, tmp_path, progress=False)
    assert is_trained(tmp_path, tc, "zero-dce")
    assert not is_trained(tmp_path, DCETrainConfig(**{**tc.__dict__, "epochs": 2}), "zero-dce")  # to be extended
    darker = DCETrainConfig(**{**tc.__dict__, "exposure": 0.4})
    assert not is_trained(tmp_path, darker, "zero-dce")  # other settings: the weights do not count as trained
    first = torch.load(tmp_path / "weights.pth", weights_only=True)
    train_dce(images, darker, tmp_path, progress=False)
    fresh = DCETrainConfig(**{**darker.__dict__})
    train_dce(images, fresh, tmp_path / "fresh", progress=False)
    again = torch.load(tmp_path / "weights.pth", weights_only=True)
    ref = torch.load(tmp_path / "fresh" / "weights.pth", weights_only=True)
    # trained from scratch with the new settings (same as a fresh run), not continued from the old weights
    assert all(torch.allclose(again[k], ref[k], atol=1e-6) for k in ref)
    assert not all(torch.allclose(again[k], first[k]) for k in first)
    assert read_json(tmp_path / "history.json")["epoch"] == [1]
    assert is_trained(tmp_path, darker, "zero-dce") and not is_trained(tmp_path, tc, "zero-dce")


def test_a_setting_added_later_counts_as_its_default_in_old_checkpoints(tmp_path):
    from darkaction.enhancement.train import CHECKPOINT_NAME, is_trained

    tc = DCETrainConfig(image_size=16, epochs=1, batch_size=4, lr=1e-3, seed=1, exposure_patch=8)
    train_dce(_dark_images(8), tc, tmp_path, progress=False)
    ckpt = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    del ckpt["settings"]["frames_from"]  # as written before the option existed
    torch.save(ckpt, tmp_path / CHECKPOINT_NAME)
    assert is_trained(tmp_path, tc, "zero-dce")  # trained with the default: not retrained
    assert not is_trained(tmp_path, DCETrainConfig(**{**tc.__dict__, "frames_from": "source"}), "zero-dce")

"""DCE-Net / Zero-DCE++ structure, the fused curve steps, weights loading errors and enhancer fingerprints."""

import numpy as np
import pytest
import torch

from darkaction.config import Config
from darkaction.enhancement.base import build_curve_enhancer, build_enhancer, load_weights, state_dict_hash
from darkaction.enhancement.classic import GammaEnhancer, IdentityEnhancer, gamma_lut
from darkaction.enhancement.dce import DCENet, DCENetPP, apply_curves, apply_curves_, count_parameters
from darkaction.errors import ConfigError, DataError


def _plain_official(net: DCENet, x: torch.Tensor) -> torch.Tensor:
    """The official forward's curve part: 8 separate slices, 8 sequential updates with torch.pow."""
    r = net.curves(x)
    for ri in torch.split(r, 3, dim=1):
        x = x + ri * (torch.pow(x, 2) - x)
    return x


@pytest.fixture
def net():
    torch.manual_seed(0)
    n = DCENet()
    n.init_weights(0.05)
    return n.eval()


def test_parameter_counts_and_keys():
    assert count_parameters(DCENet()) == 79_416
    assert count_parameters(DCENetPP()) == 10_561
    keys = list(DCENet().state_dict())
    assert keys[0] == "e_conv1.weight" and keys[-1] == "e_conv7.bias" and len(keys) == 14
    assert "e_conv7.point_conv.weight" in DCENetPP().state_dict()


def test_forward_shapes(net):
    x = torch.rand(2, 3, 20, 28)
    y, r = net(x)
    assert y.shape == x.shape and r.shape == (2, 24, 20, 28)
    assert r.abs().max() <= 1
    ypp, rpp = DCENetPP(scale_factor=4)(torch.rand(2, 3, 30, 42))  # not divisible by 4: upsampled to exact size
    assert ypp.shape == (2, 3, 30, 42) and rpp.shape == (2, 3, 30, 42)


def test_fused_curves_match_plain(net):
    x = torch.rand(3, 3, 16, 16)
    ref = _plain_official(net, x)
    with torch.no_grad():
        y, _ = net(x)
    assert torch.allclose(y, ref, atol=1e-6)
    fast = net.enhance(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(fast, ref, atol=1e-5)
    assert torch.allclose(net.enhance(x, "bf16"), ref, atol=1e-2)


@pytest.mark.parametrize("channels_last", [False, True])
def test_fp32_inference_in_chunks_without_concatenation_matches_the_forward(net, monkeypatch, channels_last):
    import darkaction.enhancement.dce as dce

    monkeypatch.setattr(dce, "INFERENCE_PIXELS", 2 * 12 * 10)  # chunks of 2 frames: 5 frames -> 2, 2, 1
    x = torch.rand(5, 3, 12, 10)
    ref = _plain_official(net, x)
    calls, real = [], dce.apply_curves_
    monkeypatch.setattr(dce, "apply_curves_", lambda x, r, n: calls.append(len(x)) or real(x, r, n))
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = net.to(memory_format=fmt)
    with torch.no_grad():
        y = model.enhance(x.contiguous(memory_format=fmt))
    assert calls == [2, 2, 1] and y.shape == x.shape
    torch.testing.assert_close(y, ref, atol=1e-5, rtol=0)
    with torch.no_grad():
        torch.testing.assert_close(model._inference_curves(x), model.curves(x), atol=1e-6, rtol=0)


def test_curve_math_by_hand():
    x = torch.full((1, 3, 1, 1), 0.5)
    r = torch.full((1, 3, 1, 1), -1.0)  # LE(0.5) = 0.5 - (0.25 - 0.5) = 0.75 for one step
    assert torch.allclose(apply_curves(x, r, 1), torch.full_like(x, 0.75))
    two = apply_curves(x, r, 2)  # 0.75 - (0.5625 - 0.75) = 0.9375
    assert torch.allclose(two, torch.full_like(x, 0.9375))
    assert torch.allclose(apply_curves_(x.clone(), r, 2), two)
    assert torch.equal(apply_curves(x, torch.zeros(1, 24, 1, 1)), x)  # r = 0 is the identity


def test_dcepp_scale_factor_applies_curve_at_full_resolution():
    torch.manual_seed(1)
    net = DCENetPP(scale_factor=4)
    net.init_weights(0.1)
    x = torch.rand(1, 3, 32, 32)
    y, r = net(x)
    assert torch.allclose(y, apply_curves(x, r), atol=1e-6)
    # the curve is smooth (upsampled) but the output keeps full-resolution detail from x
    assert (y - x).abs().max() > 0
    assert torch.allclose(net.enhance(x), y, atol=1e-5)


def test_load_weights_mismatch_names_file_and_keys(tmp_path):
    p = tmp_path / "pp.pth"
    torch.save(DCENetPP().state_dict(), p)
    with pytest.raises(DataError) as e:
        load_weights(DCENet(), p)
    msg = str(e.value)
    assert str(p) in msg and "e_conv1.weight" in msg and "zero-dce++" in msg
    bad = DCENet().state_dict()
    bad["e_conv7.weight"] = torch.zeros(12, 64, 3, 3)
    torch.save(bad, p)
    with pytest.raises(DataError, match="shape mismatch e_conv7.weight"):
        load_weights(DCENet(), p)
    p.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="cannot read"):
        load_weights(DCENet(), p)
    with pytest.raises(DataError, match="not found"):
        load_weights(DCENet(), tmp_path / "missing.pth")


def test_fingerprint_changes_with_weights_and_settings(tmp_path, net):
    a, b = tmp_path / "a.pth", tmp_path / "b.pth"
    torch.save(net.state_dict(), a)
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, tmp_path / "a2.pth")
    other = DCENet()
    other.init_weights(0.05)
    torch.save(other.state_dict(), b)
    fa = build_curve_enhancer("zero-dce", a, precision="fp32").fingerprint
    assert fa == build_curve_enhancer("zero-dce", a, precision="fp32").fingerprint  # stable
    assert fa == build_curve_enhancer("zero-dce", tmp_path / "a2.pth", precision="fp32").fingerprint  # same tensors
    assert fa.startswith("zero-dce-" + state_dict_hash(net.state_dict()))
    assert fa != build_curve_enhancer("zero-dce", b, precision="fp32").fingerprint
    assert fa != build_curve_enhancer("zero-dce", a, precision="fp32", at="source").fingerprint
    assert fa != build_curve_enhancer("zero-dce", a, precision="bf16").fingerprint
    pp = tmp_path / "pp.pth"
    torch.save(DCENetPP().state_dict(), pp)
    fp1, fp4 = (build_curve_enhancer("zero-dce++", pp, s).fingerprint for s in (1, 4))
    assert fp1 != fp4 and "-s4-" in fp4
    assert GammaEnhancer(0.5).fingerprint != GammaEnhancer(0.4).fingerprint
    assert GammaEnhancer(0.5).fingerprint == "gamma-g0.5-at_cache"
    assert IdentityEnhancer().fingerprint == "identity"


def test_gamma_and_identity():
    lut = gamma_lut(0.5)
    assert lut[0] == 0 and lut[255] == 255 and lut[64] == round(255 * (64 / 255) ** 0.5)
    frames = np.random.default_rng(0).integers(0, 256, (2, 5, 6, 3), dtype=np.uint8)
    out = GammaEnhancer(0.5)(frames)
    assert out.dtype == np.uint8 and np.array_equal(out, lut[frames])
    assert (out >= frames).all()
    assert np.array_equal(IdentityEnhancer()(frames), frames)


def test_curve_enhancer_uint8_batches(tmp_path, net):
    p = tmp_path / "w.pth"
    torch.save(net.state_dict(), p)
    frames = np.random.default_rng(0).integers(0, 60, (5, 12, 10, 3), dtype=np.uint8)
    enh = build_curve_enhancer("zero-dce", p, precision="fp32", batch_size=2)
    out = enh(frames)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    ref = (_plain_official(net, x).clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    assert out.shape == frames.shape and np.abs(out.astype(int) - ref).max() <= 1


def test_build_enhancer_errors(tmp_path):
    cfg = Config()
    cfg.data.prepared = str(tmp_path / "prep")
    with pytest.raises(DataError, match="enhance train"):
        build_enhancer(cfg)  # zero-dce without weights
    cfg.enhance.method = "nope"
    with pytest.raises(ConfigError, match="zero-dce"):
        build_enhancer(cfg)
    cfg.enhance.method = "gamma"
    assert build_enhancer(cfg).name == "gamma"
    cfg.enhance.method = "identity"
    assert build_enhancer(cfg).fingerprint == "identity"


def test_denormal_weights_are_flushed_on_load_and_the_fingerprint_is_the_files(tmp_path):
    state = DCENet().state_dict()
    state["e_conv1.weight"].view(-1)[:3] = torch.tensor([1e-40, -3e-39, 2e-45])  # denormal float32 values
    path = tmp_path / "dce.pth"
    torch.save(state, path)
    enh = build_curve_enhancer("zero-dce", path, precision="fp32")
    w = enh.net.e_conv1.weight.detach().reshape(-1)[:3]
    assert torch.equal(w, torch.zeros(3))  # flushed: fp32 convolutions with denormals ran 35x slower
    assert enh.weights_hash == state_dict_hash(torch.load(path, weights_only=True))  # caches keyed as before

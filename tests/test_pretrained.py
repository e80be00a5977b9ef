"""Pretrained weights: torchvision/IG65M key layout, load report, classifier replacement, RGB->flow inflation."""

import pytest
import torch

from darkaction.config import ModelConfig
from darkaction.errors import DataError
from darkaction.models.build import build_model
from darkaction.models.pretrained import load_pretrained, read_state_dict
from darkaction.models.r2plus1d import r2plus1d


@pytest.fixture(autouse=True)
def _one_thread():
    # These models are tiny: with several threads on a shared CPU, every small op waits at an OpenMP barrier for a
    # sibling thread that another process has descheduled (measured 20-50x slower). Restored after each test.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _bn(prefix: str, c: int) -> dict:
    return {
        f"{prefix}.weight": (c,),
        f"{prefix}.bias": (c,),
        f"{prefix}.running_mean": (c,),
        f"{prefix}.running_var": (c,),
        f"{prefix}.num_batches_tracked": (),
    }


def torchvision_layout(depth: int, ig65m: bool, num_classes: int | None = 400, in_ch: int = 3) -> dict:
    """Key -> shape of a torchvision / IG65M R(2+1)D state dict, written from REFERENCE.md's description alone."""
    blocks = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3]}[depth]
    keys = {"stem.0.weight": (45, in_ch, 1, 7, 7), **_bn("stem.1", 45), "stem.3.weight": (64, 45, 3, 1, 1)}
    keys.update(_bn("stem.4", 64))
    cin = 64
    for L, (cout, n) in enumerate(zip([64, 128, 256, 512], blocks), start=1):
        for b in range(n):
            i = cin if b == 0 else cout
            mid = (i * cout * 27) // (i * 9 + 3 * cout)
            mid2 = (cout * cout * 27) // (cout * 9 + 3 * cout) if ig65m else mid
            p = f"layer{L}.{b}"
            for conv, ci, m in (("conv1", i, mid), ("conv2", cout, mid2)):
                keys[f"{p}.{conv}.0.0.weight"] = (m, ci, 1, 3, 3)
                keys.update(_bn(f"{p}.{conv}.0.1", m))
                keys[f"{p}.{conv}.0.3.weight"] = (cout, m, 3, 1, 1)
                keys.update(_bn(f"{p}.{conv}.1", cout))
            if b == 0 and (L > 1 or i != cout):
                keys[f"{p}.downsample.0.weight"] = (cout, i, 1, 1, 1)
                keys.update(_bn(f"{p}.downsample.1", cout))
        cin = cout
    if num_classes:
        keys["fc.weight"] = (num_classes, 512)
        keys["fc.bias"] = (num_classes,)
    return keys


def _random_state(layout: dict, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in layout.items():
        if k.endswith("num_batches_tracked"):
            out[k] = torch.tensor(7)
        elif k.endswith("running_var"):
            out[k] = torch.rand(shape, generator=g) + 0.5
        else:
            out[k] = torch.randn(shape, generator=g)
    return out


@pytest.mark.parametrize("depth,ig65m,fc", [(34, True, None), (34, False, None), (18, False, 400)])
def test_state_dict_keys_and_shapes_equal_torchvision_layout(depth, ig65m, fc):
    with torch.device("meta"):
        model = r2plus1d(depth, ig65m_midplanes=ig65m, num_classes=fc)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == torchvision_layout(depth, ig65m, fc)


def _small_cfg(**kw) -> ModelConfig:
    cfg = ModelConfig(backbone="r2plus1d_18", head="tgap", ig65m_midplanes=False, width=1.0)
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def test_torchvision_r2plus1d_18_file_loads_with_nothing_missing(tmp_path, caplog):
    caplog.set_level("INFO", logger="darkaction")
    state = _random_state(torchvision_layout(18, ig65m=False, num_classes=400))
    path = tmp_path / "r2plus1d_18.pth"
    torch.save(state, path)
    model = build_model(_small_cfg(), num_classes=6, T=8)
    fc_before = model.head.fc.weight.clone()
    report = load_pretrained(model, path)
    assert report.ok and not report.missing and not report.unexpected and not report.mismatched
    assert sorted(report.skipped) == ["fc.bias", "fc.weight"]
    assert len(report.loaded) == len(state) - 2
    got = model.backbone.state_dict()
    for k, v in state.items():
        if not k.startswith("fc."):
            assert torch.equal(got[k], v), k
    assert torch.equal(model.head.fc.weight, fc_before)  # the 6-class classifier is kept
    assert "loaded" in caplog.text


def test_wrapped_and_prefixed_state_dict(tmp_path):
    small = r2plus1d(18, width=0.25, ig65m_midplanes=False)
    state = {f"module.{k}": v.clone() + 1 for k, v in small.state_dict().items() if v.dtype.is_floating_point}
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": state, "epoch": 3}, path)
    target = r2plus1d(18, width=0.25, ig65m_midplanes=False)
    report = load_pretrained(target, path, verbose=False)
    assert report.ok and not report.unexpected
    assert torch.equal(target.stem[0].weight, small.stem[0].weight + 1)


def test_rgb_stem_is_inflated_for_the_flow_model(tmp_path):
    rgb = r2plus1d(18, width=0.25, ig65m_midplanes=False)
    path = tmp_path / "rgb.pth"
    torch.save(rgb.state_dict(), path)
    flow = r2plus1d(18, width=0.25, ig65m_midplanes=False, in_channels=5)
    report = load_pretrained(flow, path, verbose=False)
    assert report.inflated == ["stem.0.weight"] and report.ok
    w, w_rgb = flow.stem[0].weight, rgb.stem[0].weight
    assert w.shape[1] == 5
    assert torch.equal(w[:, :3], w_rgb)
    mean = w_rgb.mean(dim=1)
    assert torch.allclose(w[:, 3], mean) and torch.allclose(w[:, 4], mean)


def test_mismatch_unexpected_and_missing_are_reported(tmp_path, caplog):
    caplog.set_level("INFO", logger="darkaction")
    model = r2plus1d(18, width=0.25, ig65m_midplanes=False, se=True)
    state = {k: v.clone() for k, v in r2plus1d(18, width=0.25, ig65m_midplanes=False).state_dict().items()}
    state["layer1.0.conv1.1.weight"] = torch.ones(99)
    state["extra.weight"] = torch.ones(3)
    path = tmp_path / "w.pth"
    torch.save(state, path)
    before = model.layer1[0].conv1[1].weight.clone()
    report = load_pretrained(model, path)
    assert report.mismatched == [("layer1.0.conv1.1.weight", (99,), (16,))]
    assert report.unexpected == ["extra.weight"]
    assert "layer1.0.se.fc1.weight" in report.missing and not report.ok
    assert torch.equal(model.layer1[0].conv1[1].weight, before)
    out = caplog.text
    assert "shape mismatch" in out and "unexpected" in out and "missing" in out


def test_build_model_loads_cfg_pretrained(tmp_path):
    src = build_model(_small_cfg(width=0.25, head="bert", bert_hidden=32, bert_heads=4, bert_ffn=64), 6, 16)
    path = tmp_path / "own.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in src.state_dict().items()}}, path)
    cfg = _small_cfg(width=0.25, head="bert", bert_hidden=32, bert_heads=4, bert_ffn=64, pretrained=str(path))
    model = build_model(cfg, 3, 16)
    assert torch.equal(model.backbone.layer4[0].conv2[0][3].weight, src.backbone.layer4[0].conv2[0][3].weight)
    assert model.head.fc.out_features == 3


def test_unusable_files_are_clear_errors(tmp_path):
    model = r2plus1d(18, width=0.125)
    with pytest.raises(DataError, match="not found.*local"):
        load_pretrained(model, tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(DataError, match="junk.pth: not a readable PyTorch weights file"):
        read_state_dict(junk)
    empty = tmp_path / "list.pth"
    torch.save([1, 2, 3], empty)
    with pytest.raises(DataError, match="no state dict"):
        read_state_dict(empty)


@pytest.mark.slow
def test_ig65m_r2plus1d_34_file_loads_into_the_paper_model(tmp_path):
    state = _random_state(torchvision_layout(34, ig65m=True, num_classes=359))  # IG65M: 359 classes
    path = tmp_path / "r2plus1d_34_clip32_ig65m.pth"
    torch.save(state, path)
    cfg = ModelConfig()  # paper defaults: r2plus1d_34, IG65M mid-channels, BERT head
    model = build_model(cfg, num_classes=6, T=64)
    report = load_pretrained(model, path, verbose=False)
    assert report.ok and not report.unexpected and sorted(report.skipped) == ["fc.bias", "fc.weight"]
    assert len(report.loaded) == len(state) - 2

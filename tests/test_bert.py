"""BERT temporal head: shapes, reference parameter count, keep-mask, attention, time normalisation."""

import pytest
import torch

from darkaction.models.bert import BertHead, time_normalize


@pytest.fixture(autouse=True)
def _one_thread():
    # These models are tiny: with several threads on a shared CPU, every small op waits at an OpenMP barrier for a
    # sibling thread that another process has descheduled (measured 20-50x slower). Restored after each test.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _head(**kwargs) -> BertHead:
    torch.manual_seed(0)
    args = dict(in_features=32, num_classes=5, hidden=32, layers=1, heads=4, ffn=64, max_len=8)
    args.update(kwargs)
    return BertHead(**args)


def test_reference_size_parameter_count():
    head = BertHead(512, 6, hidden=512, layers=1, heads=8, ffn=2048, max_len=8)
    h = 512
    expected = (
        h  # CLS token
        + 9 * h  # positional embedding, T' + 1 rows
        + 2 * 2 * h  # two LayerNorms
        + (h * 3 * h + 3 * h)
        + (h * h + h)  # q, k, v and output projections
        + (h * 2048 + 2048)
        + (2048 * h + h)  # FFN
        + (h * 6 + 6)  # classifier
    )
    assert sum(p.numel() for p in head.parameters()) == expected
    assert isinstance(head.proj, torch.nn.Identity)


def test_shapes_from_map_and_from_tokens_agree():
    head = _head().eval()
    tokens = torch.randn(3, 8, 32)
    fmap = tokens.transpose(1, 2)[..., None, None].expand(3, 32, 8, 2, 2)  # spatially constant map
    with torch.no_grad():
        a, b = head(tokens), head(fmap)
    assert a.shape == (3, 5)
    assert torch.allclose(a, b, atol=1e-6)
    assert head.attention.shape == (3, 8)


def test_fewer_steps_than_max_len_and_too_many():
    head = _head().eval()
    with torch.no_grad():
        assert head(torch.randn(2, 3, 32)).shape == (2, 5)
    with pytest.raises(ValueError, match="at most 8 time steps"):
        head(torch.randn(2, 9, 32))
    with pytest.raises(ValueError, match="32 features"):
        head(torch.randn(2, 8, 16))


def test_projection_when_backbone_width_differs():
    head = _head(in_features=24).eval()
    assert isinstance(head.proj, torch.nn.Linear) and head.proj.in_features == 24
    with torch.no_grad():
        assert head(torch.randn(2, 8, 24)).shape == (2, 5)


def test_attention_is_over_time_steps_from_cls():
    head = _head().eval()
    with torch.no_grad():
        head(torch.randn(4, 8, 32))
    att = head.attention
    assert att.shape == (4, 8) and att.dtype == torch.float32
    assert (att > 0).all() and (att.sum(dim=1) < 1).all()  # the CLS token's share of itself is left out
    assert not att.requires_grad


def test_keep_mask_only_in_training():
    head = _head(keep=0.5, dropout=0.0, cls_dropout=0.0)
    x = torch.randn(64, 8, 32)
    head.eval()
    assert head.key_mask(64, 8, x.device) is None
    with torch.no_grad():
        e1, e2 = head(x), head(x)
        assert (head.attention > 0).all()  # nothing masked in eval
    assert torch.equal(e1, e2)
    head.train()
    torch.manual_seed(1)
    mask = head.key_mask(1000, 8, x.device)
    assert mask[:, 0].all()  # CLS always kept
    assert abs(mask[:, 1:].float().mean().item() - 0.5) < 0.03
    with torch.no_grad():
        t = head(x)
    zeros = head.attention == 0
    assert zeros.any() and not zeros.all(dim=1).any()  # masked keys get no attention, some steps survive
    assert not torch.allclose(t, e1)


def test_keep_one_and_no_dropout_make_training_equal_eval():
    head = _head(keep=1.0, dropout=0.0, cls_dropout=0.0)
    x = torch.randn(2, 8, 32)
    with torch.no_grad():
        train_out = head.train()(x)
        eval_out = head.eval()(x)
    assert torch.allclose(train_out, eval_out)


def test_time_norm_makes_output_invariant_to_channel_scale():
    x = torch.randn(2, 8, 32)
    scale = torch.rand(1, 1, 32) * 10 + 0.1
    normed = _head(time_norm="rms").eval()
    raw = _head(time_norm="none").eval()
    with torch.no_grad():
        # Outputs are ~1e-3 at N(0, 0.02) init: compare with a tolerance well below that.
        assert torch.allclose(normed(x), normed(x * scale), rtol=1e-4, atol=1e-7)
        assert not torch.allclose(raw(x), raw(x * scale), rtol=1e-2, atol=1e-6)
    y = time_normalize(x)
    assert torch.allclose(y.pow(2).mean(dim=1), torch.ones(2, 32), atol=1e-4)
    # The temporal mean survives (static appearance is kept): signs are unchanged.
    assert torch.equal(torch.sign(y), torch.sign(x))


def test_gradients_reach_every_parameter_and_bf16_autocast_runs():
    head = _head(keep=0.8).train()
    x = torch.randn(4, 8, 32, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = head(x)
    out.float().sum().backward()
    assert torch.isfinite(out.float()).all()
    missing = [n for n, p in head.named_parameters() if p.grad is None]
    assert not missing


def test_invalid_settings():
    with pytest.raises(ValueError, match="divisible"):
        _head(hidden=30, heads=4)
    with pytest.raises(ValueError, match="keep"):
        _head(keep=0.0)


def test_init_is_berts_at_the_reference_width_and_scaled_for_narrow_heads():
    torch.manual_seed(0)
    ref = BertHead(512, 6, hidden=512, heads=8, ffn=2048)
    assert ref.blocks[0].attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert ref.blocks[0].ffn[-1].weight.std().item() == pytest.approx(0.02, rel=0.05)
    narrow = BertHead(64, 6, hidden=32, heads=2, ffn=128)
    # 0.02 * sqrt(512 / fan_in): keeps a narrow head's signal from shrinking layer by layer
    assert narrow.blocks[0].attn.qkv.weight.std().item() == pytest.approx(0.08, rel=0.1)
    assert narrow.proj.weight.std().item() == pytest.approx(0.02 * (512 / 64) ** 0.5, rel=0.1)
    assert narrow.blocks[0].ffn[-1].weight.std().item() == pytest.approx(0.08, rel=0.1)


def test_time_norm_choices_compute_their_formulas():
    from darkaction.models.bert import time_norm_choice

    x = torch.tensor([[[3.0, 0.0], [4.0, 2.0]]])  # (B=1, T'=2, D=2)
    torch.testing.assert_close(time_normalize(x, "none"), x)
    # l2: each time step's vector to unit length
    torch.testing.assert_close(
        time_normalize(x, "l2"), torch.tensor([[[1.0, 0.0], [0.8945, 0.4472]]]), atol=1e-3, rtol=0
    )
    # rms: each channel over time: channel 0 rms = sqrt((9 + 16) / 2), channel 1 rms = sqrt(4 / 2)
    want = torch.tensor([[[3 / 12.5**0.5, 0.0], [4 / 12.5**0.5, 2 / 2**0.5]]])
    torch.testing.assert_close(time_normalize(x, "rms"), want, atol=1e-4, rtol=0)
    assert [time_norm_choice(v) for v in (True, False, "L2", "none")] == ["rms", "none", "l2", "none"]
    with pytest.raises(ValueError, match="none, l2, rms"):
        time_norm_choice("zscore")

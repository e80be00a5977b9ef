"""Focal loss (paper eq. 13): equals cross-entropy at gamma=0, down-weights easy examples at gamma=2."""

import math

import pytest
import torch
import torch.nn.functional as F

from darkaction.errors import ConfigError
from darkaction.training.losses import CrossEntropy, FocalLoss, build_loss


def test_gamma_zero_equals_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 6, generator=g) * 3
    target = torch.randint(0, 6, (16,), generator=g)
    assert torch.allclose(FocalLoss(gamma=0.0)(logits, target), F.cross_entropy(logits, target), atol=1e-6)
    assert torch.allclose(CrossEntropy()(logits, target), F.cross_entropy(logits, target), atol=1e-6)


def test_matches_formula_with_alpha():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.1, 0.2, 0.3]])
    target = torch.tensor([0, 2])
    alpha = [0.25, 1.0, 2.0]
    p = logits.softmax(-1)
    expected = 0.0
    for i, t in enumerate(target.tolist()):
        pt = p[i, t].item()
        expected += -alpha[t] * (1 - pt) ** 2 * math.log(pt)
    got = FocalLoss(gamma=2.0, alpha=alpha)(logits, target)
    assert got.item() == pytest.approx(expected / 2, rel=1e-5)


def test_gamma_two_downweights_easy_examples_more_than_hard():
    easy = torch.tensor([[6.0, 0.0, 0.0]])  # p_t ~ 0.995
    hard = torch.tensor([[0.0, 1.0, 1.0]])  # p_t ~ 0.16
    t = torch.tensor([0])
    ratio_easy = FocalLoss(2.0)(easy, t) / F.cross_entropy(easy, t)
    ratio_hard = FocalLoss(2.0)(hard, t) / F.cross_entropy(hard, t)
    assert ratio_easy < 1e-3  # (1 - 0.995)^2
    assert ratio_hard > 0.5
    assert FocalLoss(2.0)(easy, t) < F.cross_entropy(easy, t)


def test_stable_for_extreme_logits_and_has_finite_gradients():
    logits = torch.tensor([[1000.0, -1000.0], [-1000.0, 1000.0]], requires_grad=True)
    target = torch.tensor([0, 0])
    loss = FocalLoss(2.0)(logits, target)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() == pytest.approx(1000.0)
    assert torch.isfinite(logits.grad).all()


def test_bad_settings_raise_config_error():
    with pytest.raises(ConfigError):
        FocalLoss(gamma=-1)
    with pytest.raises(ConfigError):
        build_loss("hinge")
    with pytest.raises(ConfigError, match="focal_alpha"):
        FocalLoss(2.0, alpha=[1.0, 1.0])(torch.zeros(1, 3), torch.tensor([0]))

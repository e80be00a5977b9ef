"""MRAN: CMMD, the lambda schedule, the Inception adaptation module and the fused classifier."""

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from darkaction.models.mran import (
    MRAN_FEATURES,
    AvgPool3x3,
    InceptionAdaptation,
    MRANClassifier,
    cmmd,
    gaussian_multi_kernel,
    mran_lambda,
)


def _onehot(labels, k=3):
    return F.one_hot(torch.as_tensor(labels), k)


def test_kernel_is_sum_of_five_gaussians_on_the_diagonal():
    x = torch.randn(6, 4)
    k = gaussian_multi_kernel(x)
    assert k.shape == (6, 6)
    assert torch.allclose(torch.diagonal(k), torch.full((6,), 5.0))
    assert torch.allclose(k, k.T, atol=1e-6)
    assert (k > 0).all() and (k <= 5.0 + 1e-6).all()


def test_cmmd_is_zero_for_identical_source_and_target():
    torch.manual_seed(0)
    f = torch.randn(8, 16)
    y = _onehot([0, 1, 2, 0, 1, 2, 0, 1])
    assert abs(cmmd(f, f.clone(), y, y.clone()).item()) < 1e-5


def test_cmmd_positive_under_class_conditional_shift_and_grows_with_it():
    torch.manual_seed(0)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2])
    centers = torch.randn(3, 16) * 3
    src = centers[labels] + 0.1 * torch.randn(12, 16)
    tgt_same = centers[labels] + 0.1 * torch.randn(12, 16)
    y = _onehot(labels)
    small = cmmd(src, tgt_same, y, y).item()
    # Shift each class by its own offset: the marginal stays similar in spread but classes move.
    shift = torch.randn(3, 16) * 2
    big = cmmd(src, tgt_same + shift[labels], y, y).item()
    assert big > 0.05
    assert big > 5 * abs(small)


def test_cmmd_sees_swapped_labels_that_plain_mmd_would_miss():
    # Same feature clouds in both domains, but the target's class labels are swapped: a marginal MMD is ~0,
    # the conditional one is clearly positive.
    torch.manual_seed(1)
    a = torch.randn(6, 8) + 4
    b = torch.randn(6, 8) - 4
    src = torch.cat([a, b])
    tgt = torch.cat([a, b]) + 0.01 * torch.randn(12, 8)
    ys = _onehot([0] * 6 + [1] * 6, 2)
    yt_swapped = _onehot([1] * 6 + [0] * 6, 2)
    assert abs(cmmd(src, tgt, ys, ys).item()) < 1e-2
    assert cmmd(src, tgt, ys, yt_swapped).item() > 0.5


def test_lambda_schedule_values():
    assert mran_lambda(0, 10) == 0.0
    assert mran_lambda(10, 10) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert mran_lambda(5, 10) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert mran_lambda(1, 10) == pytest.approx(0.46211715726)
    values = [mran_lambda(e, 20) for e in range(21)]
    assert all(b > a for a, b in zip(values, values[1:]))
    assert values[-1] < 1.0


def test_avg_pool_matches_torch_and_handles_tiny_maps():
    x = torch.randn(2, 3, 2, 5, 6)
    ref = torch.nn.AvgPool3d((1, 3, 3), stride=1, padding=(0, 1, 1), count_include_pad=False)(x)
    assert torch.allclose(AvgPool3x3()(x), ref, atol=1e-6)
    tiny = torch.randn(1, 2, 1, 2, 2)
    assert torch.allclose(AvgPool3x3()(tiny), tiny.mean(dim=(3, 4), keepdim=True).expand_as(tiny), atol=1e-6)


def test_inception_branch_shapes():
    m = InceptionAdaptation(32)
    out = m(torch.randn(2, 32, 2, 4, 4))
    assert [o.shape for o in out] == [(2, 64), (2, 64), (2, 96), (2, 64)]
    assert sum(o.shape[1] for o in out) == MRAN_FEATURES


class _TinyBackbone(nn.Module):
    out_channels = 16

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 16, 3, stride=(2, 2, 2), padding=1)

    def forward(self, x):
        return torch.relu(self.conv(x))


class _PoolHead(nn.Module):
    def __init__(self, c, k):
        super().__init__()
        self.fc = nn.Linear(c, k)

    def forward(self, feat):
        return self.fc(feat.mean(dim=(2, 3, 4)))


def test_mran_classifier_forward_and_adaptation_step_backward():
    torch.manual_seed(0)
    model = MRANClassifier(_TinyBackbone(), _PoolHead(16, 4), 16, 4)
    x = torch.randn(3, 3, 4, 16, 16)
    assert model(x).shape == (3, 4)
    src_logits, tgt_logits, da = model.adaptation_step(x, torch.randn(3, 3, 4, 16, 16), torch.tensor([0, 1, 3]))
    assert src_logits.shape == (3, 4) and tgt_logits.shape == (3, 4)
    assert da.ndim == 0 and torch.isfinite(da)
    loss = F.cross_entropy(src_logits, torch.tensor([0, 1, 3])) + 0.5 * da
    loss.backward()
    assert model.inception.branch1x1[0].weight.grad is not None
    assert model.fuse.weight.grad is not None
    with pytest.raises(ValueError, match="source labels"):
        model.adaptation_step(x, x)

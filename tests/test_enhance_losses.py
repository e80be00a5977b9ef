"""Zero-DCE losses on inputs with known values (official code forms and the paper's forms)."""

import pytest
import torch

from darkaction.enhancement.losses import (
    LossWeights,
    color_constancy_loss,
    exposure_loss,
    illumination_smoothness_loss,
    spatial_consistency_loss,
    zero_dce_loss,
)


def approx(value):
    """float32 arithmetic: relative 1e-5, absolute 1e-6."""
    return pytest.approx(value, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("form", ["code", "paper"])
def test_zero_cases(form):
    assert exposure_loss(torch.full((2, 3, 32, 32), 0.6), form=form) == approx(0)
    grey = torch.rand(2, 1, 16, 16).expand(2, 3, 16, 16)
    assert color_constancy_loss(grey, form=form) == approx(0)
    assert illumination_smoothness_loss(torch.full((2, 24, 8, 8), 0.3), form=form) == 0
    x = torch.rand(2, 3, 16, 16)
    assert spatial_consistency_loss(x, x, form=form) == approx(0)


def test_exposure_by_hand():
    # left half 0.2, right half 1.0 with 16x16 patches on 16x32: patch means 0.2 and 1.0
    y = torch.cat([torch.full((1, 3, 16, 16), 0.2), torch.full((1, 3, 16, 16), 1.0)], dim=3)
    assert exposure_loss(y) == approx((0.4**2 + 0.4**2) / 2)
    assert exposure_loss(y, form="paper") == approx(0.4)
    assert exposure_loss(y, level=0.2, patch=16) == approx(0.8**2 / 2)


def test_color_by_hand():
    y = torch.zeros(1, 3, 4, 4)
    y[:, 0] = 0.5  # means r=0.5, g=0, b=0
    # code: sqrt(0.25^2 + 0.25^2 + 0) ; paper: 0.25 + 0.25 + 0
    assert color_constancy_loss(y) == approx((2 * 0.25**2) ** 0.5)
    assert color_constancy_loss(y, form="paper") == approx(0.5)
    grey = torch.full((1, 3, 4, 4), 0.5, requires_grad=True)
    color_constancy_loss(grey).backward()
    assert torch.isfinite(grey.grad).all()  # no NaN at the sqrt's zero


def test_tv_by_hand():
    a = torch.zeros(1, 3, 2, 2)
    a[:, :, :, 1] = 1.0  # horizontal step of 1 in every row, no vertical change
    # code: 2 * (0 / ((H-1)W) + (3 ch * 2 rows * 1^2) / (H(W-1))) / B = 2 * 6 / 2 = 6
    assert illumination_smoothness_loss(a) == approx(6.0)
    # paper: (|dx|+|dy|)^2 on the 1x1 grid summed over 3 channels = 3, / (steps=1 * 1 * 1)
    assert illumination_smoothness_loss(a, form="paper") == approx(3.0)
    assert illumination_smoothness_loss(torch.cat([a, a], 0)) == approx(6.0)  # per-image average


def test_spatial_by_hand():
    # One 4x4 region per image (4x4 pooling of a 4x4 input): the neighbours are the zero padding,
    # so each direction's difference is the region mean itself. Input mean 0.2, output 0.5:
    # 4 directions * (0.5 - 0.2)^2 = 0.36.
    i = torch.full((1, 3, 4, 4), 0.2)
    y = torch.full((1, 3, 4, 4), 0.5)
    assert spatial_consistency_loss(i, y) == approx(0.36)
    # Two regions side by side: input flat 0.2, output 0.2 | 0.6 -> inner contrasts appear.
    i2 = torch.full((1, 3, 4, 8), 0.2)
    y2 = torch.cat([torch.full((1, 3, 4, 4), 0.2), torch.full((1, 3, 4, 4), 0.6)], dim=3)
    # left region: left 0.2-0.2=0 (pad: 0.2 vs 0.2), right (0.2-0.6)-(0)= -0.4, up/down 0 -> 0.16
    # right region: left (0.6-0.2)-0=0.4, right 0.6-0.2=0.4, up 0.4, down 0.4 -> 4 * 0.16 = 0.64
    assert spatial_consistency_loss(i2, y2) == approx((0.16 + 0.64) / 2)
    # Contrast reversal: input 0.2 | 0.6, output 0.6 | 0.2. Per region the code form pays (0.4 - -0.4)^2 = 0.64 on the
    # inner side, the paper's absolute form 0; the 3 padded sides pay (0.6 - 0.2)^2 = 0.16 each in both forms.
    i3, y3 = 0.8 - y2, y2
    assert spatial_consistency_loss(i3, y3) == approx(0.64 + 3 * 0.16)
    assert spatial_consistency_loss(i3, y3, form="paper") == approx(3 * 0.16)


def test_total_weights():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32) * 0.2
    y = x * 2
    r = torch.rand(2, 24, 32, 32)
    w = LossWeights()
    total, parts = zero_dce_loss(x, y, r, w)
    expect = 200 * parts["tv"] + parts["spa"] + 5 * parts["col"] + 10 * parts["exp"]
    assert float(total) == approx(expect)
    only_exp = LossWeights(tv=0, spa=0, col=0, exp=1)
    assert float(zero_dce_loss(x, y, r, only_exp)[0]) == approx(parts["exp"])
    with pytest.raises(ValueError):
        zero_dce_loss(x, y, r, LossWeights(form="nope"))

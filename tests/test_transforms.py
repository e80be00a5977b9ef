import numpy as np
import pytest
import torch

from darkaction.config import AugmentConfig
from darkaction.data.flow import encode_flow
from darkaction.data.transforms import (
    FLOW_DIVISOR,
    NORM_STATS,
    ClipTransform,
    channel_stats,
    clip_affine,
    nearest_real,
)
from darkaction.errors import ConfigError, DataError

NONE = AugmentConfig(normalize="none")


def _frame(h=112, w=112, seed=0):
    rng = np.random.default_rng(seed)
    # smooth structure so warps are visible but bilinear interpolation stays well behaved
    base = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    return np.kron(base, np.ones((8, 8, 1), dtype=np.uint8))


def _clip(T=8, **kw):
    return np.repeat(_frame(**kw)[None], T, axis=0)


def test_identical_frames_stay_identical_after_augmentation():
    tf = ClipTransform(AugmentConfig(hflip=0.5, rotation=30, translation=0.2), train=True, blank="black")
    frames = _clip(8)
    changed = 0
    for seed in range(10):
        out = tf(frames, np.zeros(8, bool), np.random.default_rng(seed))
        assert out.shape == (3, 8, 112, 112) and out.dtype == torch.float32
        assert torch.equal(out, out[:, :1].expand_as(out))  # one transform for every frame
        ref = ClipTransform(AugmentConfig(), train=False, blank="black")(frames, None, None)
        changed += int(not torch.allclose(out, ref))
    assert changed >= 9  # and the augmentation really does something


def test_eval_does_no_augmentation_and_is_exact_normalisation():
    frames = _clip(4)
    tf = ClipTransform(AugmentConfig(hflip=1.0, rotation=30, translation=0.2), train=False, blank="black")
    out = tf(frames, np.zeros(4, bool), np.random.default_rng(0))
    mean, std = (torch.tensor(v).view(3, 1, 1, 1) for v in NORM_STATS["kinetics"])
    expected = (torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 255 - mean) / std
    assert torch.allclose(out, expected, atol=1e-6)


def test_flip_only_mirrors_every_frame():
    frames = np.stack([_frame(seed=s) for s in range(3)])
    tf = ClipTransform(AugmentConfig(hflip=1.0, rotation=0, translation=0, normalize="none"), True, "black")
    out = tf(frames, None, np.random.default_rng(0))
    expected = torch.from_numpy(frames[:, :, ::-1].copy()).permute(3, 0, 1, 2).float() / 255
    assert torch.allclose(out, expected, atol=1e-6)


def test_normalisation_choices_and_overrides():
    frames = np.full((2, 112, 112, 3), 51, np.uint8)  # 0.2
    for name in ("kinetics", "arid", "none"):
        out = ClipTransform(AugmentConfig(normalize=name), False, "black")(frames)
        mean, std = NORM_STATS[name]
        for c in range(3):
            assert torch.allclose(out[c], torch.tensor((0.2 - mean[c]) / std[c]), atol=1e-5)
    out = ClipTransform(AugmentConfig(mean=[0.1, 0.2, 0.3], std=[0.5, 0.5, 0.5]), False, "black")(frames)
    assert torch.allclose(out[2], torch.tensor((0.2 - 0.3) / 0.5), atol=1e-5)
    out = ClipTransform(AugmentConfig(normalize="index"), False, "black", stats=([0.2] * 3, [0.1] * 3))(frames)
    assert torch.allclose(out, torch.zeros_like(out), atol=1e-5)
    with pytest.raises(ConfigError, match="channel_stats"):
        ClipTransform(AugmentConfig(normalize="index"), False, "black")
    with pytest.raises(ConfigError, match="choose one of"):
        ClipTransform(AugmentConfig(normalize="imagenet"), False, "black")


def test_blank_modes():
    frames = _clip(4)
    mask = np.array([True, False, False, True])
    black = ClipTransform(AugmentConfig(), False, "black")(frames, mask)
    mean, std = NORM_STATS["kinetics"]
    for c in range(3):
        assert torch.allclose(black[c, 0], torch.tensor(-mean[c] / std[c]))
    assert torch.equal(black[:, 1], black[:, 2]) and not torch.allclose(black[:, 1], black[:, 0])
    zero = ClipTransform(AugmentConfig(), False, "zero")(frames, mask)
    assert torch.count_nonzero(zero[:, [0, 3]]) == 0 and torch.equal(zero[:, 1:3], black[:, 1:3])
    with pytest.raises(ConfigError):
        ClipTransform(AugmentConfig(), False, "grey")


def test_hold_blanks_repeat_the_nearest_sampled_frame_still():
    assert nearest_real(np.array([1, 1, 0, 0, 1, 1, 1, 0, 1, 1], bool)).tolist() == [2, 2, 2, 3, 3, 3, 7, 7, 7, 7]
    frames = np.stack([_frame(seed=s) for s in range(5)])
    mask = np.array([True, False, True, False, True])  # pads before, between (a tie: the earlier) and after
    hold = ClipTransform(AugmentConfig(normalize="clip"), False, "hold")
    out = hold(frames, mask)
    reference = ClipTransform(AugmentConfig(normalize="clip"), False, "black")(frames, mask)
    for slot, source in enumerate([1, 1, 1, 3, 3]):
        assert torch.equal(out[:, slot], reference[:, source])  # held images; statistics of the real frames only
    flow = np.zeros((5, 112, 112, 2), np.float32)
    flow[..., 0] = 2.0
    moving = hold(frames, mask, None, flow=encode_flow(flow))
    assert torch.count_nonzero(moving[3:, [0, 2, 4]]) == 0  # a held frame does not move
    assert torch.allclose(moving[3, [1, 3], 40:70, 40:70], torch.tensor(2.0 / FLOW_DIVISOR))
    black = ClipTransform(AugmentConfig(normalize="clip"), False, "black")
    assert torch.equal(hold(frames, np.ones(5, bool)), black(frames, np.ones(5, bool)))  # nothing to hold: black


def test_larger_cache_frames_random_crop_in_train_centre_crop_in_eval():
    big = np.stack([np.arange(170, dtype=np.uint8)[None, :, None].repeat(128, 0).repeat(3, 2)] * 2)  # x-ramp
    aug = AugmentConfig(hflip=0, rotation=0, translation=0, normalize="none")
    ev = ClipTransform(aug, False, "black")(big)
    assert ev.shape == (3, 2, 112, 112)
    assert round(float(ev[0, 0, 0, 0]) * 255) == (170 - 112) // 2
    starts = {
        round(float(ClipTransform(aug, True, "black")(big, None, np.random.default_rng(s))[0, 0, 0, 0]) * 255)
        for s in range(20)
    }
    assert len(starts) > 3 and max(starts) <= 170 - 112
    small = _clip(2, h=64, w=80)
    assert ClipTransform(aug, False, "black")(small).shape == (3, 2, 112, 112)  # scaled up to cover


def test_flow_channels_follow_flip_and_rotation():
    T = 3
    flow = np.zeros((T, 112, 112, 2), np.float32)
    flow[..., 0], flow[..., 1] = 2.0, 1.0  # every pixel moves right 2, down 1
    enc = encode_flow(flow)
    frames = _clip(T)
    ev = ClipTransform(AugmentConfig(), False, "black")(frames, None, None, flow=enc)
    assert ev.shape == (5, T, 112, 112)
    assert torch.allclose(ev[3, :, 40:70, 40:70], torch.tensor(2.0 / FLOW_DIVISOR))
    flip = ClipTransform(AugmentConfig(hflip=1.0, rotation=0, translation=0), True, "black")
    out = flip(frames, None, np.random.default_rng(0), flow=enc)
    assert torch.allclose(out[3, :, 40:70, 40:70], torch.tensor(-2.0 / FLOW_DIVISOR))  # dx negated
    assert torch.allclose(out[4, :, 40:70, 40:70], torch.tensor(1.0 / FLOW_DIVISOR))  # dy kept
    rot = ClipTransform(AugmentConfig(hflip=0, rotation=45, translation=0), True, "black")
    rng = np.random.default_rng(3)
    out = rot(frames, None, rng, flow=enc)
    m = rot.matrix((112, 112), np.random.default_rng(3))
    v = m[:, :2] @ np.array([2.0, 1.0]) / FLOW_DIVISOR
    assert abs(np.degrees(np.arctan2(m[1, 0], m[0, 0]))) > 1  # the draw really rotated
    assert torch.allclose(out[3:, 0, 56, 56], torch.tensor(v, dtype=torch.float32), atol=1e-4)
    blank = ClipTransform(AugmentConfig(), False, "black")(frames, np.array([True, False, False]), None, flow=enc)
    assert torch.count_nonzero(blank[3:, 0]) == 0
    with pytest.raises(DataError):
        ClipTransform(AugmentConfig(), False, "black")(frames, None, None, flow=enc[:2])


def test_affine_is_identity_in_eval_at_cache_size():
    m = clip_affine((112, 112), (112, 112), None, False)
    assert np.allclose(m, [[1, 0, 0], [0, 1, 0]])


def test_channel_stats_matches_numpy():
    class Cache:
        def __init__(self):
            rng = np.random.default_rng(0)
            self.v = {f"v{i}": rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8) for i in range(3)}

        def frames(self, vid):
            return self.v[vid]

    c = Cache()
    mean, std = channel_stats(c, list(c.v), frames_per_video=16)
    allpx = np.concatenate([x.reshape(-1, 3) for x in c.v.values()]) / 255.0
    assert np.allclose(mean, allpx.mean(0)) and np.allclose(std, allpx.std(0))
    with pytest.raises(DataError):
        channel_stats(c, [])


def test_bad_frames_raise_data_error():
    with pytest.raises(DataError, match="uint8"):
        ClipTransform(AugmentConfig(), False, "black")(np.zeros((2, 8, 8, 3), np.float32))


def test_clip_normalisation_removes_brightness_and_contrast_of_the_recording():
    frames = np.stack([_frame(seed=s) for s in range(4)])
    tf = ClipTransform(AugmentConfig(normalize="clip"), False, "black")
    out = tf(frames)
    flat = out.reshape(3, -1)
    assert torch.allclose(flat.mean(1), torch.zeros(3), atol=1e-5)
    assert torch.allclose(flat.std(1, correction=0), torch.ones(3), atol=1e-4)
    # the same scene recorded darker and with less contrast (x * 0.25 + 3) gives (almost) the same input
    dark = (frames.astype(np.float64) * 0.25 + 3).round().astype(np.uint8)
    assert (out - tf(dark)).abs().max() < 0.05
    # padding blanks do not enter the statistics: the real frames are standardised exactly as without padding
    padded = np.concatenate([frames, np.zeros_like(frames[:2])])
    with_blanks = tf(padded, np.array([False] * 4 + [True] * 2))
    assert torch.allclose(with_blanks[:, :4], out, atol=1e-5)
    # a flat (black) clip is not blown up: std is floored
    black = tf(np.zeros((2, 112, 112, 3), np.uint8))
    assert torch.count_nonzero(black) == 0


def test_clip_normalisation_statistics_come_from_the_recording_not_the_augmented_borders():
    frames = np.stack([_frame(seed=s) for s in range(3)]).clip(40, 255).astype(np.uint8)  # no black pixels
    src = torch.from_numpy(frames).reshape(-1, 3).float() / 255
    mean, std = src.mean(0), src.std(0, correction=0)
    tf = ClipTransform(AugmentConfig(normalize="clip", rotation=30, translation=0.2), True, "black")
    out = tf(frames, None, np.random.default_rng(0))
    for c in range(3):
        # the black border the rotation leaves is exactly (0 - mean) / std of the un-augmented clip
        assert out[c].min() == pytest.approx(float(-mean[c] / std[c]), abs=1e-4)


def test_multiscale_crop_window_and_range():
    # the whole 64x64 frame at s = 1 (resized to 56), a centred window of side 0.5 x 64 = 32 at s = 0.5
    img = np.zeros((1, 64, 64, 3), np.uint8)
    img[0, 16:48, 16:48] = 200  # a square covering the centre half
    whole = clip_affine((64, 64), (56, 56), np.random.default_rng(0), True, crop_scale=(1.0, 1.0))
    corners = whole @ np.array([[-0.5, -0.5, 1.0], [63.5, 63.5, 1.0]]).T
    assert np.allclose(corners.T, [[-0.5, -0.5], [55.5, 55.5]])  # frame edges -> output edges
    tf = ClipTransform(AugmentConfig(height=56, width=56, hflip=0, rotation=0, translation=0, scale=[0.5, 0.5]),
                       True, "black")  # fmt: skip
    for seed in range(10):
        out = tf(img, None, np.random.default_rng(seed))
        m = tf.matrix((64, 64), np.random.default_rng(seed))
        assert np.isclose(m[0, 0], 56 / 32) and np.isclose(m[1, 1], 56 / 32)
        x0, y0 = (0.5 - (m[:, 2] + 0.5) / m[0, 0]).tolist()  # the window's corner in the frame
        assert 0 <= x0 <= 32 and 0 <= y0 <= 32
        # the lit share of the output is the square's share of the 32-pixel window
        overlap = (min(x0 + 32, 48) - max(x0, 16)) * (min(y0 + 32, 48) - max(y0, 16)) / 32**2
        lit = (out[0, 0] > out[0, 0].mean()).float().mean().item()
        assert abs(lit - overlap) < 0.06
    # off ([]) leaves the plain crop and its random stream untouched
    a = clip_affine((64, 64), (56, 56), np.random.default_rng(5), True, 0.5, 5.0, 0.05)
    b = ClipTransform(AugmentConfig(height=56, width=56, hflip=0.5, rotation=5.0, translation=0.05), True, "black")
    assert np.allclose(a, b.matrix((64, 64), np.random.default_rng(5)))
    # scales within [0.66, 1]: the window's side, 1 / the matrix's zoom x 56, spans 42-64 pixels
    tf = ClipTransform(AugmentConfig(height=56, width=56, hflip=0, rotation=0, translation=0, scale=[0.66, 1.0]),
                       True, "black")  # fmt: skip
    wins = [56 / tf.matrix((64, 64), np.random.default_rng(s))[0, 0] for s in range(200)]
    assert 42 <= min(wins) < 46 and 60 < max(wins) <= 64
    for bad in ([0.0, 1.0], [0.8, 0.7], [0.5, 1.2], [0.5]):
        with pytest.raises(ConfigError):
            ClipTransform(AugmentConfig(scale=bad), True, "black")


def _bar_clip(T=8, h=32, w=64, x=28):
    """A still clip of a bright vertical bar at column x on black."""
    frames = np.zeros((T, h, w, 3), dtype=np.uint8)
    frames[:, :, x : x + 4] = 200
    return frames


def _bar_columns(clip: torch.Tensor) -> np.ndarray:
    """The bar's mean column in each frame of a (3,T,h,w) clip."""
    weight = clip[0].sum(dim=1).numpy()  # (T, w)
    return (weight * np.arange(weight.shape[1])).sum(axis=1) / weight.sum(axis=1)


def test_pan_slides_the_picture_at_a_constant_speed_within_the_drawn_range():
    aug = AugmentConfig(height=32, width=64, hflip=0, rotation=0, translation=0, pan=0.25, normalize="none")
    tf = ClipTransform(aug, train=True, blank="black")
    totals = []
    for seed in range(20):
        cols = _bar_columns(tf(_bar_clip(), None, np.random.default_rng(seed)))
        steps = np.diff(cols)
        assert np.allclose(steps, steps[0], atol=0.05)  # constant speed
        assert cols[len(cols) // 2 - 1 : len(cols) // 2 + 1].mean() == pytest.approx(29.5, abs=0.1)  # centred
        totals.append(cols[-1] - cols[0])
    totals = np.array(totals)
    assert np.all(np.abs(totals) <= 0.25 * 64 + 1e-6)
    assert totals.min() < -4 and totals.max() > 4  # both directions, and really moving


def test_pan_is_drawn_after_the_clips_matrix_and_eval_never_pans():
    still = dict(height=32, width=64, hflip=0.5, rotation=5, translation=0.1)
    for seed in range(5):
        a = ClipTransform(AugmentConfig(**still), True, "black")(_bar_clip(T=9), None, np.random.default_rng(seed))
        b = ClipTransform(AugmentConfig(**still, pan=0.3), True, "black")(_bar_clip(T=9), None,
                                                                           np.random.default_rng(seed))  # fmt: skip
        assert torch.equal(a[:, 4], b[:, 4])  # the middle frame is unshifted: same flip, rotation, translation
        assert not torch.equal(a, b)
    ev = ClipTransform(AugmentConfig(height=32, width=64, pan=0.5), train=False, blank="black")
    cols = _bar_columns(ev(_bar_clip(), None, None))
    assert np.allclose(cols, cols[0])


def test_pan_with_blank_slots_and_its_refusals():
    aug = AugmentConfig(height=32, width=64, hflip=0, rotation=0, translation=0, pan=0.25, normalize="none")
    tf = ClipTransform(aug, train=True, blank="black")
    blank = np.array([True, False, False, False, False, False, False, True])
    out = tf(_bar_clip(), blank, np.random.default_rng(0))
    assert out[:, 0].abs().sum() == 0 and out[:, -1].abs().sum() == 0
    cols = _bar_columns(out[:, 1:-1])
    assert np.allclose(np.diff(cols), np.diff(cols)[0], atol=0.05)  # the real slots keep the pan's constant speed
    with pytest.raises(ConfigError, match="pan"):
        ClipTransform(AugmentConfig(pan=-0.1), train=True, blank="black")
    flow = np.zeros((8, 32, 64, 3), dtype=np.uint8)
    with pytest.raises(ConfigError, match="optical-flow"):
        tf(_bar_clip(), None, np.random.default_rng(0), flow=flow)

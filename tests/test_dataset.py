from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from darkaction.config import Config
from darkaction.data.dataset import ClipDataset
from darkaction.data.flow import encode_flow
from darkaction.errors import ConfigError, DataError

H = W = 32


@dataclass
class Rec:
    video_id: str
    label: int
    n_frames: int = 0


class MemCache:
    """The two methods of FrameCache the dataset uses, over in-memory arrays."""

    def __init__(self, videos):
        self.videos = videos

    def frames(self, video_id):
        return self.videos[video_id]

    def meta(self, video_id):
        return {"n_frames": len(self.videos[video_id])}


def _video(n, seed):
    # frame t is filled with value t (mod 256) in every pixel: clip values reveal which frames were sampled
    v = np.empty((n, H, W, 3), np.uint8)
    v[:] = (np.arange(n) % 256)[:, None, None, None]
    return v


def _cfg(**sampling):
    cfg = Config()
    cfg.sampling.T = 16
    cfg.sampling.alpha = 4.0  # evaluation datasets take the training run's number (tests of auto: test_sampling)
    cfg.augment.height = cfg.augment.width = H
    cfg.augment.normalize = "none"
    for k, v in sampling.items():
        setattr(cfg.sampling, k, v)
    return cfg


@pytest.fixture
def data():
    lengths = [20, 40, 90, 7]
    videos = {f"v{i}": _video(n, i) for i, n in enumerate(lengths)}
    return [Rec(f"v{i}", i % 3) for i in range(len(lengths))], MemCache(videos)


def _frame_ids(clip):
    """(3,T,H,W) clip of constant frames -> the sampled frame index per slot (-1 for black blanks)."""
    vals = np.rint(clip[0, :, H // 2, W // 2].numpy() * 255).astype(int)
    return vals


def test_train_item_shape_label_and_sampled_frames(data):
    records, cache = data
    cfg = _cfg(strategy="delta")
    cfg.augment.rotation = 0.0
    cfg.augment.translation = 0.0
    ds = ClipDataset(records, cache, cfg, train=True)
    torch.manual_seed(0)
    item = ds[1]
    assert item["clip"].shape == (3, 16, H, W) and item["clip"].dtype == torch.float32
    assert item["label"] == 1 and item["index"] == 1
    ids = _frame_ids(item["clip"])
    real = ids[ids > 0]
    assert np.all(np.diff(real) > 0) and real.max() < 40  # real frames from the video, in order


def test_eval_views_are_deterministic_and_batched(data):
    records, cache = data
    cfg = _cfg(strategy="delta")
    ds = ClipDataset(records, cache, cfg, train=False, views=5, seed=3)
    a, b = ds[2]["clip"], ds[2]["clip"]
    assert a.shape == (5, 3, 16, H, W) and torch.equal(a, b)
    assert not torch.equal(a[0], a[1])  # distinct (delta, P1, P2) views
    other = ClipDataset(records, cache, cfg, train=False, views=5, seed=4)[2]["clip"]
    assert not torch.equal(a, other)
    one = ClipDataset(records, cache, cfg, train=False, views=1)[0]["clip"]
    assert one.shape == (1, 3, 16, H, W)


def test_train_draws_are_a_pure_function_of_seed_epoch_and_index(data):
    records, cache = data
    cfg = _cfg(strategy="delta")

    def epoch(seed, e, workers):
        ds = ClipDataset(records * 4, cache, cfg, train=True, seed=seed)
        ds.set_epoch(e)
        torch.manual_seed(123 + workers)  # torch's global generator plays no part any more
        loader = DataLoader(ds, batch_size=4, num_workers=workers, shuffle=False)
        return torch.cat([b["clip"] for b in loader])

    a = epoch(0, 0, 0)
    assert torch.equal(a, epoch(0, 0, 0)) and torch.equal(a, epoch(0, 0, 2))  # workers change nothing
    assert not torch.equal(a, epoch(1, 0, 0)) and not torch.equal(a, epoch(0, 1, 0))  # seed and epoch do
    # the same video at another index gets other draws
    assert not torch.equal(a[0], a[4])


def test_constant_sampling_uses_training_lengths(data):
    records, cache = data
    cfg = _cfg(strategy="constant")
    ds = ClipDataset(records, cache, cfg, train=True)
    assert (ds.n_min, ds.n_max) == (7, 90)
    test = ClipDataset(records, cache, cfg, train=False, n_min=ds.n_min, n_max=ds.n_max)
    ids = _frame_ids(test[0]["clip"][0])
    assert (ids[ids > 0]).size == 3  # 20 frames at rate 90/16 -> ceil(20 / 5.625) = 4 frames (frame 0 looks blank)
    with pytest.raises(ConfigError, match="n_max"):
        ClipDataset(records, cache, cfg, train=False)[0]


def test_test_strategy_and_blank_zero(data):
    records, cache = data
    cfg = _cfg(strategy="delta", test_strategy="uniform", blank="zero")
    ds = ClipDataset(records, cache, cfg, train=False, views=2)
    clip = ds[3]["clip"]
    assert torch.equal(clip[0], clip[1])  # uniform is deterministic
    assert np.array_equal(_frame_ids(clip[0]), np.rint(np.linspace(0, 6, 16)).astype(int))


def test_flow_cache_gives_five_channels(data):
    records, cache = data
    flows = {}
    for vid, v in cache.videos.items():
        f = np.zeros(v.shape[:3] + (2,), np.float32)
        f[..., 0] = 1.0
        flows[vid] = encode_flow(f)
    cfg = _cfg(strategy="delta")
    cfg.augment.hflip = 1.0
    ds = ClipDataset(records, cache, cfg, train=True, flow_cache=MemCache(flows))
    clip = ds[0]["clip"]
    assert clip.shape == (5, 16, H, W)
    bad = MemCache({k: v[:-1] for k, v in flows.items()})
    with pytest.raises(DataError, match="flow cache"):
        ClipDataset(records, cache, cfg, train=True, flow_cache=bad)[0]


def test_index_normalisation_computes_train_stats_and_needs_them_in_eval(data):
    records, cache = data
    cfg = _cfg()
    cfg.augment.normalize = "index"
    ds = ClipDataset(records, cache, cfg, train=True)
    assert len(ds.stats[0]) == 3
    with pytest.raises(ConfigError, match="channel_stats"):
        ClipDataset(records, cache, cfg, train=False)
    ClipDataset(records, cache, cfg, train=False, stats=ds.stats)


def test_with_real_frame_cache(tmp_path):
    from darkaction.data.cache import FrameCache

    cache = FrameCache(tmp_path / "frames", settings={"resize": "fixed", "height": H, "width": W})
    for i, n in enumerate([30, 70]):
        cache.put(f"vid{i}", _video(n, i), {"fps": 30})
    records = [Rec("vid0", 0, 30), Rec("vid1", 1, 70)]
    cfg = _cfg(strategy="delta")
    loader = DataLoader(ClipDataset(records, FrameCache(tmp_path / "frames"), cfg, train=True), batch_size=2)
    batch = next(iter(loader))
    assert batch["clip"].shape == (2, 3, 16, H, W) and batch["label"].tolist() == [0, 1]
    test = ClipDataset(records, cache, cfg, train=False, views=5)
    assert test[1]["clip"].shape == (5, 3, 16, H, W)


def test_train_dataset_resolves_alpha_auto_from_its_own_lengths(data):
    records, cache = data
    cfg = _cfg(strategy="delta", alpha="auto")
    ds = ClipDataset(records, cache, cfg, train=True)
    longest = max(len(cache.frames(r.video_id)) for r in records)
    assert ds.params["alpha"] == np.ceil(10 * longest / 16) / 10 and ds.n_max == longest
    with pytest.raises(ConfigError, match="alpha: auto needs"):
        ClipDataset(records, cache, cfg, train=False)  # evaluation must be given the training split's N_max
    uniform = ClipDataset(records, cache, _cfg(strategy="uniform", alpha="auto"), train=False)
    assert uniform.params["alpha"] is None  # not used by this sampler: no error


def test_rate_scale_speeds_up_training_clips_only(data):
    records, cache = data
    plain = _cfg(strategy="length")
    fast = _cfg(strategy="length")
    fast.augment.rate_scale = [2.0, 2.0]
    # the 90-frame video: length sampling fills all 16 slots; at twice the rate only 8 are real frames
    real = (_frame_ids(ClipDataset(records, cache, fast, train=True)[2]["clip"]) > 0).sum()
    assert real <= 8 + 1  # frame 0 reads as value 0, like a blank: allow it either way
    assert (_frame_ids(ClipDataset(records, cache, plain, train=True)[2]["clip"]) > 0).sum() >= 15
    test = ClipDataset(records, cache, fast, train=False, views=1)
    assert (_frame_ids(test[2]["clip"][0]) > 0).sum() >= 15  # evaluation never scales the rate
    fast.augment.rate_scale = [3.0, 1.0]
    with pytest.raises(ConfigError, match="augment.rate_scale"):
        ClipDataset(records, cache, fast, train=True)


def test_length_mix_samples_some_training_clips_at_other_lengths_rates(data):
    records, cache = data
    cfg = _cfg(strategy="length")
    cfg.augment.length_mix = 1.0
    ds = ClipDataset(records, cache, cfg, train=True)
    # the 90-frame video: length sampling fills all 16 slots; at the rates of the 20-, 40- and 7-frame videos it is
    # cropped (all 16 real), at its own rate it fills them; never padded beyond one slot
    real = []
    for epoch in range(12):
        ds.set_epoch(epoch)
        real.append(int((_frame_ids(ds[2]["clip"]) > 0).sum()))
    assert min(real) >= 15
    # the 7-frame video at the 90-frame video's rate covers 16 * 7 / 90 ~ 1-2 slots: padding appears
    short = []
    for epoch in range(12):
        ds.set_epoch(epoch)
        short.append(int((_frame_ids(ds[3]["clip"]) > 0).sum()))
    assert min(short) <= 2 and max(short) >= 12  # (frame 0 reads as 0, like a blank: 16 slots of 7 frames -> 13)
    plain = ClipDataset(records, cache, _cfg(strategy="length"), train=True)
    assert (_frame_ids(plain[3]["clip"]) > 0).sum() >= 12
    test = ClipDataset(records, cache, cfg, train=False, views=1)
    assert test.length_mix == 0.0  # evaluation samples every video at its own length's rate
    cfg.augment.length_mix = 1.5
    with pytest.raises(DataError, match="length_mix"):
        ClipDataset(records, cache, cfg, train=True)


def test_loop_plays_short_training_clips_again_up_to_a_longer_videos_length(data):
    records, cache = data
    # delta 0 and no cap below 90 / 16: a video of L frames is sampled at exactly L / T
    cfg = _cfg(strategy="delta", gamma=0.0, alpha=6.0)
    cfg.augment.loop = 1.0
    ds = ClipDataset(records, cache, cfg, train=True)
    looped, longest = [], []
    for epoch in range(16):
        ds.set_epoch(epoch)
        ids = _frame_ids(ds[1]["clip"])  # the 40-frame video: looped when the drawn length is the 90-frame one's
        if np.any(np.diff(ids) < 0):
            looped.append(ids)
        longest.append(_frame_ids(ds[2]["clip"]))
    assert looped, "the 40-frame clip was never looped in 16 epochs"
    for ids in looped:
        # sampled as a 90-frame video (every 5.6 frames, its own rate 2.5): all 16 slots real (frame 0 reads as 0,
        # like a blank: allow one), the frame ids wrap at the clip's end, twice
        steps = np.diff(ids) % 40
        assert (ids > 0).sum() >= 15 and (np.diff(ids) < 0).sum() == 2 and ids.max() < 40
        assert steps.min() >= 5 and steps.max() <= 6
    # the longest video has no longer length to loop to: always sampled as itself
    assert all(np.all(np.diff(ids[ids > 0]) >= 0) for ids in longest)
    assert ClipDataset(records, cache, cfg, train=False, views=1).loop == 0.0  # evaluation never loops
    cfg.augment.loop = 1.5
    with pytest.raises(DataError, match="augment.loop"):
        ClipDataset(records, cache, cfg, train=True)
    cfg.augment.loop = 0.5
    cfg.sampling.slot = "span"
    with pytest.raises(DataError, match="slot"):
        ClipDataset(records, cache, cfg, train=True)


# ---------------------------------------------------------------------------------------------- sampling.slot


def _ramp(n):
    v = np.empty((n, 2, 2, 3), np.uint8)
    v[:] = (2 * np.arange(n))[:, None, None, None]  # frame t holds 2t: slot means stay integers
    return v


def test_read_slots_frame_is_indexing_and_span_averages_up_to_the_next_slot():
    from darkaction.data.dataset import read_slots

    v = _ramp(16)
    idx = np.array([0, 4, 8, 12])
    np.testing.assert_array_equal(read_slots(v, idx, "frame"), v[idx])
    # spans 0-3, 4-7, 8-11 and the last as long as the gap before it: 12-15
    assert read_slots(v, idx, "span")[:, 0, 0, 0].tolist() == [3, 11, 19, 27]
    # blanks keep frame 0 (the transform blanks them); the last span stops at the video's end
    got = read_slots(_ramp(12), np.array([-1, -1, 0, 5, 10]), "span")[:, 0, 0, 0]
    assert got.tolist() == [0, 0, 4, 14, 21]  # means of 0-4, 5-9, 10-11, doubled
    # a rate below one repeats indices: each slot is its own frame, as with slot=frame
    rep = np.array([0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(read_slots(_ramp(3), rep, "span"), _ramp(3)[rep])
    with pytest.raises(ConfigError, match="sampling.slot"):
        read_slots(v, idx, "blur")


def test_span_slots_in_training_evaluation_and_the_recognizer(data):
    records, cache = data
    frame_cfg, span_cfg = _cfg(strategy="delta"), _cfg(strategy="delta", slot="span")
    for cfg in (frame_cfg, span_cfg):
        cfg.augment.rotation = cfg.augment.translation = 0.0
    # evaluation: 90 frames at T=16 are sampled every few frames, so every span slot is a mean of several frames
    a = ClipDataset(records, cache, frame_cfg, train=False, views=2)[2]["clip"]
    b = ClipDataset(records, cache, span_cfg, train=False, views=2)[2]["clip"]
    fa, fb = _frame_ids(a[0]), _frame_ids(b[0])
    assert np.all(fb >= fa) and np.any(fb > fa)  # means of frames at or after each sampled one
    assert np.all(fb[:-1] <= fa[1:])  # and before the next
    torch.manual_seed(0)
    t = ClipDataset(records, cache, span_cfg, train=True)[2]["clip"]
    torch.manual_seed(0)
    u = ClipDataset(records, cache, frame_cfg, train=True)[2]["clip"]
    assert not torch.equal(t, u)
    # the Recognizer's views are evaluation's
    from darkaction.data.dataset import test_views
    from darkaction.data.sampling import sampler_params
    from darkaction.data.transforms import ClipTransform

    params = sampler_params(span_cfg.sampling, None, None)
    tf = ClipTransform(span_cfg.augment, train=False, blank=span_cfg.sampling.blank)
    views = test_views(cache.frames("v2"), 16, 2, (0, 0, 2), "delta", params, tf, slot="span")
    assert torch.equal(views, b)


def test_span_slots_refuse_optical_flow(data):
    records, cache = data
    flow = MemCache({k: np.zeros((len(v), H, W, 2), np.uint8) for k, v in cache.videos.items()})
    with pytest.raises(ConfigError, match="slot=frame"):
        ClipDataset(records, cache, _cfg(strategy="delta", slot="span"), train=True, flow_cache=flow)

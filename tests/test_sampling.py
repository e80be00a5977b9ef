import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from darkaction.config import SamplingConfig
from darkaction.data.sampling import STRATEGIES, delta_plan, sample, sample_views, sampler_params, view_lengths
from darkaction.errors import ConfigError

PARAMS = {"beta": 0.0, "gamma": 1.5, "alpha": 4.0, "n_min": 33, "n_max": 225}
N = st.integers(1, 1000)
TT = st.integers(1, 128)
SEED = st.integers(0, 2**32 - 1)
PROPS = settings(max_examples=150, deadline=None)


def _real(idx):
    return idx[idx >= 0]


def _blanks_only_at_ends(idx):
    real = np.flatnonzero(idx >= 0)
    # the real entries form one contiguous run; everything outside it is blank
    return real.size > 0 and real[-1] - real[0] + 1 == real.size


@pytest.mark.parametrize("strategy", STRATEGIES)
@PROPS
@given(n=N, T=TT, seed=SEED)
def test_every_sampler_shape_range_order_blanks(strategy, n, T, seed):
    idx = sample(strategy, n, T, np.random.default_rng(seed), **PARAMS)
    assert idx.shape == (T,) and idx.dtype == np.int64
    assert np.all((idx == -1) | ((idx >= 0) & (idx < n)))
    assert _blanks_only_at_ends(idx)
    real = _real(idx)
    if strategy == "consecutive":
        # the reference's window loops short clips: consecutive frames modulo N instead of non-decreasing
        assert np.array_equal(real, (real[0] + np.arange(T)) % n)
    else:
        assert np.all(np.diff(real) >= 0)
    again = sample(strategy, n, T, np.random.default_rng(seed), **PARAMS)
    assert np.array_equal(idx, again)


@PROPS
@given(
    n=N,
    T=TT,
    seed=SEED,
    beta=st.floats(-2.0, 3.0),
    width=st.floats(0.0, 3.0),
    alpha=st.floats(0.25, 8.0),
)
def test_delta_rate_never_exceeds_alpha(n, T, seed, beta, width, alpha):
    plan = delta_plan(n, T, np.random.default_rng(seed), beta=beta, gamma=beta + width, alpha=alpha)
    assert plan.rate <= alpha
    assert plan.n_real + plan.pad_before + plan.pad_after == T
    real = _real(plan.indices())
    assert real.size == plan.n_real
    if real.size > 1:
        # never skips more than one stride between neighbours, and spans at most (M-1)*S frames (+1 for flooring)
        assert np.diff(real).max() <= math.ceil(alpha)
        assert real[-1] - real[0] < (real.size - 1) * plan.rate + 1 + 1e-9


@PROPS
@given(n=N, T=TT, seed=SEED, gamma=st.floats(0.0, 3.0), alpha=st.floats(0.5, 8.0))
def test_delta_with_nonnegative_beta_never_crops_when_clip_fits(n, T, seed, gamma, alpha):
    if n > alpha * T:
        return  # the capped rate cannot fit this clip; cropping is the documented behaviour
    plan = delta_plan(n, T, np.random.default_rng(seed), beta=0.0, gamma=gamma, alpha=alpha)
    real = _real(plan.indices())
    assert not plan.cropped
    assert real[0] == 0
    # the window [0, M*S) covers the clip: the last frame is within one stride of the last sampled index
    assert n - 1 - real[-1] < max(plan.rate, 1.0)
    assert plan.n_real * plan.rate >= n - 1e-6
    if plan.rate <= 1.0:
        assert real[-1] == n - 1 and set(real.tolist()) == set(range(n))


def test_delta_crops_only_beyond_the_cap_and_still_returns_T():
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(50):
        plan = delta_plan(1000, 64, rng, beta=0.0, gamma=1.5, alpha=4.0)
        idx = plan.indices()
        assert plan.cropped and plan.rate == 4.0 and idx.shape == (64,) and (idx >= 0).all()
        assert idx[-1] - idx[0] == 63 * 4 or idx[-1] - idx[0] == 63 * 4 - 1 or idx[-1] - idx[0] == 63 * 4 + 1
        starts.add(int(idx[0]))
    assert len(starts) > 10  # the window starts at a random offset


def test_delta_paper_example_pads_short_clip():
    # N=80, T=64: S in [1.25, 2.75] -> 30..64 real frames, blanks around them
    rng = np.random.default_rng(1)
    for _ in range(100):
        plan = delta_plan(80, 64, rng)
        assert 1.25 - 1e-9 <= plan.rate <= 2.75 + 1e-9
        assert plan.n_real == math.ceil(80 / plan.rate - 1e-9)
        assert 0 <= plan.pad_before <= 64 - plan.n_real


def test_delta_and_p1_follow_their_uniform_distributions():
    rng = np.random.default_rng(123)
    n, T, beta, gamma, alpha = 100, 64, 0.0, 1.5, 4.0
    plans = [delta_plan(n, T, rng, beta=beta, gamma=gamma, alpha=alpha) for _ in range(2000)]
    deltas = np.array([p.delta for p in plans])
    assert stats.kstest(deltas, "uniform", args=(beta, gamma - beta)).pvalue > 1e-3
    # P1 ~ U[0, T - N/S] given the drawn rate: scaled to [0, 1] it must be U[0, 1]
    u = np.array([p.p1 / (T - n / p.rate) for p in plans])
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    # and the integer padding is its floor
    assert all(p.pad_before == math.floor(p.p1) for p in plans)
    # a wrong distribution must be detected (the test can fail)
    assert stats.kstest(deltas**2 / gamma, "uniform", args=(beta, gamma - beta)).pvalue < 1e-3


def test_constant_variable_length_rates():
    rng = np.random.default_rng(0)
    T = 64
    c = sample("constant", 100, T, rng, n_max=256)
    real = _real(c)
    assert real.size == math.ceil(100 / 4) and np.all(np.diff(real) == 4)
    length = sample("length", 100, T, rng)
    assert (length >= 0).all() and length[0] == 0
    v = [sample("variable", 50, T, rng, n_min=32, n_max=128) for _ in range(50)]
    sizes = {int((x >= 0).sum()) for x in v}
    assert len(sizes) > 3  # the rate is random
    assert min(sizes) >= math.ceil(50 / 2)  # S <= n_max/T = 2


def test_uniform_hits_both_ends_and_consecutive_loops():
    u = sample("uniform", 200, 64, np.random.default_rng(0))
    assert u[0] == 0 and u[-1] == 199
    c = sample("consecutive", 10, 25, np.random.default_rng(0))
    assert c.tolist() == [i % 10 for i in range(25)]


def test_sample_views_deterministic_and_distinct():
    a = sample_views("delta", 80, 64, 5, seed=(0, 7), **PARAMS)
    b = sample_views("delta", 80, 64, 5, seed=(0, 7), **PARAMS)
    c = sample_views("delta", 80, 64, 5, seed=(0, 8), **PARAMS)
    assert a.shape == (5, 64) and np.array_equal(a, b) and not np.array_equal(a, c)
    assert len({tuple(r) for r in a}) > 1


def test_errors_are_actionable():
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError, match="n_max"):
        sample("constant", 50, 64, rng)
    with pytest.raises(ConfigError, match="choose one of"):
        sample("random", 50, 64, rng)
    with pytest.raises(ConfigError, match="empty"):
        sample("delta", 0, 64, rng)
    with pytest.raises(ConfigError, match="beta"):
        delta_plan(50, 64, rng, beta=2.0, gamma=1.0)


def test_sampler_params_prefers_explicit_config():
    cfg = SamplingConfig(alpha=4.0)
    assert sampler_params(cfg, 33, 225) == {
        "beta": 0.0, "gamma": 1.5, "alpha": 4.0, "n_min": 33, "n_max": 225, "test_rates": "own"
    }  # fmt: skip
    cfg.n_max = 300
    assert sampler_params(cfg, 33, 225)["n_max"] == 300
    assert sampler_params(SamplingConfig(alpha=4.0))["n_max"] is None
    with pytest.raises(ConfigError):
        sampler_params(SamplingConfig(strategy="nope"))


def test_cli_sample_writes_film_strip(tmp_path):
    import av
    import cv2

    from darkaction.cli import main

    video = tmp_path / "v.mp4"
    with av.open(str(video), "w") as out:
        stream = out.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for t in range(40):
            img = np.full((48, 64, 3), 4 * t, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    png = tmp_path / "strip.png"
    assert main(["sample", "--video", str(video), "--strategy", "delta", "--T", "16", "--out", str(png)]) == 0
    strip = cv2.imread(str(png))
    assert strip is not None and strip.shape[0] > 50 and strip.shape[1] > 16 * 40
    assert main(["sample", "--video", str(video), "--strategy", "constant", "--out", str(png)]) == 2


def test_alpha_auto_is_n_max_over_T_rounded_up_to_a_tenth():
    from darkaction.data.sampling import auto_alpha, resolve_alpha

    # ARID: 225 frames at T=64 -> 3.6 (the paper's 4 also covers it); at T=16 -> 14.1
    assert sampler_params(SamplingConfig(), 33, 225)["alpha"] == 3.6
    assert auto_alpha(225, 16) == 14.1
    assert auto_alpha(64, 16) == 4.0  # exact multiples are not pushed up by float noise
    assert resolve_alpha(" Auto ", 160, 16) == 10.0
    assert resolve_alpha(2.5, None, 16) == 2.5
    with pytest.raises(ConfigError, match="number or 'auto'"):
        resolve_alpha("max", 225, 16)
    with pytest.raises(ConfigError, match="longest training video"):
        sampler_params(SamplingConfig())


@pytest.mark.parametrize("T", [8, 16, 64])
def test_alpha_auto_never_crops_a_training_clip(T):
    from darkaction.data.sampling import auto_alpha, cropped

    rng = np.random.default_rng(T)
    lengths = rng.integers(16, 400, size=200).tolist()
    alpha = auto_alpha(max(lengths), T)
    assert cropped(lengths, T, alpha) == 0
    for n in lengths:
        for _ in range(5):
            plan = delta_plan(n, T, rng, beta=0.0, gamma=1.5, alpha=alpha)
            assert not plan.cropped
            idx = plan.indices()
            real = idx[idx >= 0]
            # the whole clip is covered: from its first frame to within one step (rate S) of its last
            assert real[0] == 0 and real[-1] >= n - 1 - plan.rate
    # a fixed cap below N_max / T crops exactly the clips longer than alpha * T
    assert cropped(lengths, T, 4.0) == sum(n > 4 * T for n in lengths)


def test_config_reads_alpha_as_number_or_auto():
    from darkaction.config import load_config

    assert load_config(overrides=["sampling.alpha=4"]).sampling.alpha == 4.0
    assert load_config(overrides=["sampling.alpha=auto"]).sampling.alpha == "auto"
    assert load_config().sampling.alpha == "auto"


def test_stats_count_the_clips_delta_sampling_would_crop():
    from darkaction.data.stats import cropping

    lengths = {"train": {"run": [40, 100], "wave": [225]}, "test": {"run": [300, 60]}}
    auto = cropping(lengths, SamplingConfig(T=16))
    assert auto["alpha"] == 14.1 and auto["cropped"] == {"train": 0, "test": 1}  # only the longer-than-train clip
    fixed = cropping(lengths, SamplingConfig(T=16, alpha=4.0))
    assert fixed["cropped"] == {"train": 2, "test": 1} and fixed["alpha_setting"] == "4.0"
    assert cropping({"test": {"run": [50]}}, SamplingConfig(T=16)) == {}  # auto without a training split


def test_rate_scale_multiplies_the_rate_below_the_cap():
    # same draws with and without the factor: only the rate differs (and alpha still caps it)
    base = delta_plan(60, 16, np.random.default_rng(3), alpha=14.0)
    fast = delta_plan(60, 16, np.random.default_rng(3), alpha=14.0, rate_scale=2.0)
    assert fast.delta == base.delta and fast.rate == pytest.approx(2.0 * base.rate)
    assert fast.n_real < base.n_real and not fast.cropped  # a faster clip fills fewer slots, padded
    capped = delta_plan(200, 16, np.random.default_rng(3), alpha=14.0, rate_scale=2.0)
    assert capped.rate == 14.0
    slow = delta_plan(200, 16, np.random.default_rng(3), alpha=14.0, rate_scale=0.5)
    assert slow.cropped and slow.n_real == 16  # a slower clip no longer fits: a window is taken
    idx = sample("length", 64, 16, np.random.default_rng(0), rate_scale=2.0)
    assert (idx >= 0).sum() == 8  # length sampling at twice N/T covers the clip in half the slots
    with pytest.raises(ConfigError, match="rate scale must be positive"):
        sample("delta", 64, 16, np.random.default_rng(0), rate_scale=0.0)


def test_rate_scale_range_checks_and_draws_log_uniform():
    from darkaction.data.sampling import draw_rate_scale, rate_scale_range

    assert rate_scale_range([0.7, 2.5]) == (0.7, 2.5)
    for bad in ([2.0, 1.0], [0.0, 1.0], [1.0], "fast"):
        with pytest.raises(ConfigError, match="augment.rate_scale"):
            rate_scale_range(bad)
    rng = np.random.default_rng(0)
    draws = np.array([draw_rate_scale(rng, 0.5, 2.0) for _ in range(4000)])
    assert draws.min() >= 0.5 and draws.max() <= 2.0
    assert abs(np.mean(draws < 1.0) - 0.5) < 0.03  # log-uniform: as often slower as faster around 1
    untouched = np.random.default_rng(1)
    assert draw_rate_scale(untouched, 1.0, 1.0) == 1.0
    assert untouched.random() == np.random.default_rng(1).random()  # no draw when the range is a point


def test_as_length_takes_the_rate_of_another_length():
    base = delta_plan(200, 16, np.random.default_rng(3), alpha=14.1)
    as_short = delta_plan(200, 16, np.random.default_rng(3), alpha=14.1, as_length=40)
    assert as_short.delta == base.delta and as_short.rate == pytest.approx((40 + 16 * base.delta) / 16)
    assert as_short.cropped and as_short.n_real == 16  # a 200-frame clip at a 40-frame rate: a window of it
    as_long = delta_plan(40, 16, np.random.default_rng(3), alpha=14.1, as_length=200)
    assert not as_long.cropped and as_long.n_real <= 4  # a 40-frame clip at a 200-frame rate: mostly padding
    assert (sample("length", 64, 16, np.random.default_rng(0), as_length=128) >= 0).sum() == 8
    with pytest.raises(ConfigError, match="as_length"):
        sample("delta", 64, 16, np.random.default_rng(0), as_length=0)


def test_view_lengths_span_the_training_range_geometrically():
    lengths = view_lengths(5, 34, 222)
    assert lengths == sorted(lengths) and 34 < lengths[0] and lengths[-1] < 222
    ratios = np.diff(np.log(lengths))
    assert np.allclose(ratios, ratios[0], atol=0.03)  # equal steps in log length
    assert view_lengths(1, 50, 200) == [100]  # the geometric mean
    with pytest.raises(ConfigError, match="n_min <= n_max"):
        view_lengths(3, 90, 40)


def test_test_rates_train_views_long_videos_at_training_rates():
    """A test video longer than the training ones is seen at the rates the training lengths had (windows of it);
    one shorter than a view's length keeps its own rate (no extra padding); own = the paper's views, unchanged."""
    params = {**PARAMS, "alpha": 14.1, "n_min": 34, "n_max": 222}
    own = sample_views("delta", 400, 16, 5, seed=(0, 3), **params)
    assert np.array_equal(own, sample_views("delta", 400, 16, 5, seed=(0, 3), **params, test_rates="own"))
    train = sample_views("delta", 400, 16, 5, seed=(0, 3), **params, test_rates="train")
    assert train.shape == (5, 16) and (train >= 0).all()  # every view is a window of real frames
    spans = train[:, -1] - train[:, 0]
    rng = np.random.default_rng(np.random.SeedSequence([0, 3]))
    for span, length in zip(spans, view_lengths(5, 34, 222)):
        plan = delta_plan(400, 16, rng, gamma=1.5, alpha=14.1, as_length=length)
        assert plan.cropped and abs(span - 15 * plan.rate) <= 1.0  # T frames at that length's rate
    assert spans[0] < spans[-1] < (400 - 1)  # the shortest length's view covers the least
    short = sample_views("delta", 40, 16, 5, seed=(0, 3), **params, test_rates="train")
    own_short = sample_views("delta", 40, 16, 5, seed=(0, 3), **params)
    assert np.array_equal(short, own_short)  # every length here (41 and up) is capped at the video's own 40
    with pytest.raises(ConfigError, match="test_rates"):
        sample_views("delta", 40, 16, 5, seed=0, **params, test_rates="mine")
    with pytest.raises(ConfigError, match="n_min"):
        sample_views("delta", 40, 16, 5, seed=0, **{**params, "n_min": None}, test_rates="train")

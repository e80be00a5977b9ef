"""Bootstrap intervals and paired tests (evaluation/stats.py) on simulated classifiers whose truth is known."""

import numpy as np
import pytest

from darkaction.evaluation.stats import bootstrap_interval, paired_difference, subset_gap, verdict


def _clustered(rng, acc, groups=20, per_group=18, seeds=3, spread=0.08):
    """Outcomes of a classifier of true mean accuracy `acc`: each test group has its own accuracy around it (spread),
    each seed shifts it a little."""
    g_acc = np.clip(acc + rng.normal(0, spread, groups), 0, 1)
    s_shift = rng.normal(0, 0.02, seeds)
    p = np.clip(np.repeat(g_acc, per_group)[None, :] + s_shift[:, None], 0, 1)
    return (rng.random(p.shape) < p).astype(float), np.repeat(np.arange(groups), per_group)


def test_interval_covers_true_accuracy_at_nominal_rate():
    rng = np.random.default_rng(0)
    hits = []
    for i in range(200):
        correct, groups = _clustered(rng, 0.7)
        lo, hi = bootstrap_interval(correct, groups, boot=1000, seed=i)
        hits.append(lo <= 0.7 <= hi)
    # nominal 95 %; the percentile bootstrap with 20 clusters runs a little short
    assert 0.88 <= np.mean(hits) <= 0.99


def test_interval_ignoring_groups_is_too_narrow_for_clustered_data():
    rng = np.random.default_rng(1)
    wide = narrow = 0.0
    for i in range(20):
        correct, groups = _clustered(rng, 0.6, spread=0.15)
        lo, hi = bootstrap_interval(correct, groups, boot=500, seed=i)
        lo2, hi2 = bootstrap_interval(correct, None, boot=500, seed=i)
        wide += hi - lo
        narrow += hi2 - lo2
    assert narrow < 0.8 * wide


def test_paired_test_finds_a_planted_difference_and_not_a_null_one():
    rng = np.random.default_rng(2)
    n, seeds = 360, 3
    groups = np.repeat(np.arange(15), n // 15)
    base = rng.random((seeds, n))
    a = (base < 0.75).astype(float)  # 75 % vs 65 %, on the same draws: a planted 10-point difference
    b = (base < 0.65).astype(float)
    d = paired_difference(a, b, groups, boot=4000, seed=0)
    assert d["diff"] == pytest.approx(a.mean() - b.mean())
    assert d["lo"] > 0 and d["p"] < 0.01 and verdict(d) == "supported"
    assert verdict(paired_difference(b, a, groups, boot=4000, seed=0)) == "contradicted"
    c = (rng.random((seeds, n)) < 0.7).astype(float)  # two classifiers of equal accuracy, independent errors
    e = (rng.random((seeds, n)) < 0.7).astype(float)
    null = paired_difference(c, e, groups, boot=4000, seed=0)
    assert null["lo"] < 0 < null["hi"] and null["p"] > 0.05 and verdict(null) == "inconclusive"


def test_null_p_values_are_roughly_uniform():
    rng = np.random.default_rng(3)
    ps = []
    for i in range(100):
        a = (rng.random((3, 120)) < 0.6).astype(float)
        b = (rng.random((3, 120)) < 0.6).astype(float)
        ps.append(paired_difference(a, b, np.repeat(np.arange(10), 12), boot=1024, seed=i)["p"])
    assert 0.01 <= np.mean(np.array(ps) < 0.05) <= 0.12


def test_exact_sign_flips_with_few_groups():
    a = np.ones((1, 5))
    b = np.zeros((1, 5))
    d = paired_difference(a, b, np.arange(5), boot=5000)
    assert d["p"] == pytest.approx(2 / 32)  # all +1 or all -1 of the 32 patterns reach the observed sum


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="same seeds and videos"):
        paired_difference(np.ones((3, 10)), np.ones((2, 10)))
    with pytest.raises(ValueError, match="groups"):
        bootstrap_interval(np.ones((3, 10)), groups=np.arange(9))


def test_subset_gap_finds_a_planted_gap_between_video_subsets():
    rng = np.random.default_rng(4)
    n = 300
    mask = np.arange(n) < 100  # e.g. test clips whose length matches their class's training lengths
    p = np.where(mask, 0.9, 0.6)
    correct = (rng.random((3, n)) < p[None, :]).astype(float)
    groups = np.arange(n) % 15
    g = subset_gap(correct, mask, groups, boot=2000)
    assert g["gap"] == pytest.approx(correct[:, mask].mean() - correct[:, ~mask].mean())
    assert 0.2 < g["lo"] < g["gap"] < g["hi"] < 0.4 and (g["in"], g["out"]) == (100, 200)
    flat = subset_gap((rng.random((3, n)) < 0.7).astype(float), mask, groups, boot=2000)
    assert flat["lo"] < 0 < flat["hi"]
    with pytest.raises(ValueError, match="some, but not all"):
        subset_gap(correct, np.ones(n, dtype=bool))

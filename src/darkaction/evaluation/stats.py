"""Intervals and paired tests for accuracies measured over several seeds on the same test videos.

    correct = np.array([[1, 0, 1, ...], ...])          # (seeds, videos): 1 where a seed's model got the video right
    e = estimate(correct, groups)                       # mean, 95 % interval, standard error, degrees of freedom
    d = paired_difference(correct_a, correct_b, groups) # a - b on the same videos and seeds: diff, lo, hi, p
    verdict(d)                                          # supported | contradicted | inconclusive (a > b claimed)

Two sources of uncertainty are added: the test sample and the training randomness.
- The test sample: the seed-averaged per-video outcome is a mean over *groups* of videos when groups are given
  (ARID's recording groups: takes of one group share person, scene and light, so they are not independent evidence),
  else over videos; its variance is the cluster-robust (CR1) variance of a ratio mean, with G - 1 degrees of freedom.
- The training randomness: the variance of the per-seed values over S seeds, divided by S (S - 1 degrees of freedom).
  With one seed it cannot be estimated; the result then says `seeds_covered: False`.
The interval is mean +- t * SE with Welch-Satterthwaite degrees of freedom, and the paired p-value is the two-sided t
test of the same statistic. With 3 seeds whose values spread widely, the interval is wide: that is the honest answer.
`sign_flip_p` is also given: an exact / Monte Carlo permutation test over groups that holds the trained models fixed
(it answers "do these particular models differ", not "does the method").
"""

from __future__ import annotations

import math

import numpy as np

LEVEL = 0.95
MIN_CLUSTERS = 10  # fewer test groups than this make any interval coarse: results say so


def _as_matrix(correct) -> np.ndarray:
    m = np.asarray(correct, dtype=float)
    if m.ndim == 1:
        m = m[None, :]
    if m.ndim != 2 or m.shape[1] == 0:
        raise ValueError(f"expected a (seeds, videos) matrix of 0/1 outcomes, got shape {m.shape}")
    return m


def _clusters(groups, n: int) -> tuple[np.ndarray, int]:
    """Cluster index per video (0..G-1) and G; every video its own cluster when `groups` is None."""
    if groups is None:
        return np.arange(n), n
    g = np.asarray(groups)
    if g.shape != (n,):
        raise ValueError(f"groups has {g.shape[0] if g.ndim else 0} entries for {n} videos")
    _, idx = np.unique(g, return_inverse=True)
    return idx, int(idx.max()) + 1


def _cluster_variance(y: np.ndarray, idx: np.ndarray, g: int) -> float:
    """CR1 variance of the mean of per-video values y clustered by idx:
    G / (G - 1) * sum over clusters of (sum over its videos of (y_i - mean))^2 / N^2."""
    if g < 2:
        return 0.0
    resid = np.bincount(idx, weights=y - y.mean(), minlength=g)
    return float(g / (g - 1) * np.sum(resid**2) / len(y) ** 2)


def _combine(mean: float, parts: list[tuple[float, float]], level: float) -> dict:
    """Mean +- t * SE from independent variance parts [(variance, degrees of freedom)], Welch-Satterthwaite df."""
    from scipy.stats import t

    var = sum(v for v, _ in parts)
    se = math.sqrt(max(var, 0.0))
    denom = sum(v * v / d for v, d in parts if v > 0 and d > 0)
    df = var * var / denom if denom > 0 else math.inf
    if se == 0.0:
        return {"mean": mean, "se": 0.0, "df": df, "lo": mean, "hi": mean, "p": 1.0 if mean == 0 else 0.0}
    crit = float(t.ppf(0.5 + level / 2.0, df))  # df = inf gives the normal quantile
    p = float(2.0 * t.sf(abs(mean) / se, df))
    return {"mean": mean, "se": se, "df": df, "lo": mean - crit * se, "hi": mean + crit * se, "p": p}


def estimate(correct, groups=None, level: float = LEVEL) -> dict:
    """Mean of `correct` (seeds x videos of 0/1, or any per-video scores) with its interval:
    {"mean", "lo", "hi", "se", "df", "p", "clusters", "seeds", "seeds_covered", "coarse"}."""
    m = _as_matrix(correct)
    seeds = m.shape[0]
    idx, g = _clusters(groups, m.shape[1])
    parts = [(_cluster_variance(m.mean(axis=0), idx, g), g - 1)]
    if seeds > 1:
        parts.append((float(m.mean(axis=1).var(ddof=1)) / seeds, seeds - 1))
    out = _combine(float(m.mean()), parts, level)
    return {**out, "clusters": g, "seeds": seeds, "seeds_covered": seeds > 1, "coarse": g < MIN_CLUSTERS}


def bootstrap_interval(correct, groups=None, level: float = LEVEL, bounds=(0.0, 1.0)) -> tuple[float, float]:
    """The interval of `estimate`, clipped to `bounds` (accuracies stay in [0, 1])."""
    e = estimate(correct, groups, level)
    return max(bounds[0], e["lo"]), min(bounds[1], e["hi"])


def sign_flip_p(d: np.ndarray, idx: np.ndarray, g: int, boot: int = 5000, seed: int = 0) -> float:
    """Two-sided permutation p-value of a paired difference matrix d (seeds x videos) over clusters: each cluster's
    summed difference keeps or flips its sign. Exact when 2^clusters <= boot. Conditional on the trained models."""
    per_cluster = np.bincount(idx, weights=d.sum(axis=0), minlength=g)
    observed = abs(per_cluster.sum())
    if 2**g <= boot:  # every sign pattern once (the identity included)
        signs = 1.0 - 2.0 * ((np.arange(2**g)[:, None] >> np.arange(g)) & 1)
        return float(np.mean(np.abs(signs @ per_cluster) >= observed - 1e-9))
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(boot, g))
    return float((np.sum(np.abs(signs @ per_cluster) >= observed - 1e-9) + 1) / (boot + 1))


def paired_difference(a, b, groups=None, level: float = LEVEL) -> dict:
    """a - b measured on the same seeds and videos (both seeds x videos): {"diff", "lo", "hi", "p", "se", "df",
    "clusters", "seeds_covered", "coarse", "sign_flip_p"} (fractions: 0.1 = 10 points). p is the two-sided t test of
    the difference over test groups and seeds; sign_flip_p holds the trained models fixed."""
    ma, mb = _as_matrix(a), _as_matrix(b)
    if ma.shape != mb.shape:
        raise ValueError(f"a paired comparison needs the same seeds and videos: shapes {ma.shape} and {mb.shape}")
    d = ma - mb
    e = estimate(d, groups, level)
    idx, g = _clusters(groups, d.shape[1])
    return {
        "diff": e["mean"],
        **{k: e[k] for k in ("lo", "hi", "p", "se", "df", "clusters", "seeds_covered", "coarse")},
        "sign_flip_p": sign_flip_p(d, idx, g),
    }


def verdict(diff: dict) -> str:
    """The claim "a > b" judged by the interval of a - b: supported when it lies above 0, contradicted when below,
    else inconclusive."""
    if diff["lo"] > 0:
        return "supported"
    if diff["hi"] < 0:
        return "contradicted"
    return "inconclusive"


def subset_gap(
    correct, mask, groups=None, strata=None, boot: int = 2000, seed: int = 0, level: float = LEVEL
) -> dict | None:
    """Mean of `correct` over the videos in `mask` minus over the others, within each stratum (e.g. class) and
    averaged with the strata's video counts as weights, so a side that holds more of an easy stratum does not make
    a gap: {"gap", "lo", "hi", "se", "in", "out", "clusters_in", "clusters_out", "dropped"}.

    The test-sample variance comes from a bootstrap of whole clusters (a replicate where a stratum lacks one side
    leaves that stratum out; `dropped` is the share of replicates left out entirely), the training part from the
    per-seed gaps. None when a side has videos in fewer than 5 clusters (no interval would mean anything)."""
    m = _as_matrix(correct)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (m.shape[1],) or mask.all() or not mask.any():
        raise ValueError("mask must mark some, but not all, of the videos")
    idx, g = _clusters(groups, m.shape[1])
    cin, cout = len(np.unique(idx[mask])), len(np.unique(idx[~mask]))
    if min(cin, cout) < 5:
        return None
    strata = (
        np.zeros(m.shape[1], dtype=int) if strata is None else np.unique(np.asarray(strata), return_inverse=True)[1]
    )
    k = int(strata.max()) + 1

    def gap_of(values: np.ndarray, weights: np.ndarray) -> float:
        """Stratified gap of per-video `values` with per-video `weights` (bootstrap counts of their clusters)."""
        total, wsum = 0.0, 0.0
        for c in range(k):
            sin, sout = (strata == c) & mask, (strata == c) & ~mask
            win, wout = weights[sin].sum(), weights[sout].sum()
            if win > 0 and wout > 0:
                wc = win + wout
                total += wc * ((weights[sin] * values[sin]).sum() / win - (weights[sout] * values[sout]).sum() / wout)
                wsum += wc
        return total / wsum if wsum > 0 else math.nan

    ones = np.ones(m.shape[1])
    point = gap_of(m.mean(axis=0), ones)
    if not math.isfinite(point):
        return None
    rng = np.random.default_rng(seed)
    reps = np.array([gap_of(m.mean(axis=0), rng.multinomial(g, np.full(g, 1.0 / g))[idx].astype(float))
                     for _ in range(boot)])  # fmt: skip
    ok = np.isfinite(reps)
    parts = [(float(reps[ok].var(ddof=1)) if ok.sum() > 1 else 0.0, g - 1)]
    if m.shape[0] > 1:
        per_seed = np.array([gap_of(row, ones) for row in m])
        parts.append((float(per_seed.var(ddof=1)) / m.shape[0], m.shape[0] - 1))
    e = _combine(point, parts, level)
    return {"gap": point, "lo": e["lo"], "hi": e["hi"], "se": e["se"], "in": int(mask.sum()), "out": int((~mask).sum()),
            "clusters_in": cin, "clusters_out": cout, "dropped": float(1.0 - ok.mean())}  # fmt: skip

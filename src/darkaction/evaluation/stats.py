"""Intervals and paired tests for accuracies measured over several seeds on the same test videos.

    correct = np.array([[1, 0, 1, ...], ...])          # (seeds, videos): 1 where a seed's model got the video right
    lo, hi = bootstrap_interval(correct, groups)        # 95 % interval of the mean accuracy
    d = paired_difference(correct_a, correct_b, groups) # a - b on the same videos and seeds: diff, lo, hi, p
    verdict(d)                                          # supported | contradicted | inconclusive (a > b claimed)

The unit of resampling is the test *group* when groups are given (ARID's recording groups: takes of one group share
person, scene and light, so they are not independent evidence) and the video otherwise; seeds are resampled too, so
the interval covers both the test sample and training randomness. The paired p-value is a sign-flip permutation test
over groups: under "no difference" each group's summed difference (over seeds and its videos) is as likely negative as
positive. Percentiles of the bootstrap give the interval; with few groups (5) it is coarse and p >= 2 / 2^groups.
"""

from __future__ import annotations

import numpy as np

LEVEL = 0.95


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


def _weights(seeds: int, g: int, boot: int, rng: np.random.Generator):
    """Bootstrap replicates as multinomial counts, in chunks: (seed weights (b, seeds), cluster weights (b, g)). The
    same clusters serve every seed, since all seeds saw the same videos."""
    chunk = max(1, 2_000_000 // max(1, seeds * g))
    for start in range(0, boot, chunk):
        b = min(chunk, boot - start)
        sw = rng.multinomial(seeds, np.full(seeds, 1.0 / seeds), size=b).astype(float)
        cw = rng.multinomial(g, np.full(g, 1.0 / g), size=b).astype(float)
        yield sw, cw


def _cluster_sums(m: np.ndarray, idx: np.ndarray, g: int) -> np.ndarray:
    sums = np.zeros((m.shape[0], g))
    np.add.at(sums, (slice(None), idx), m)
    return sums


def _replicates(m: np.ndarray, groups, boot: int, rng: np.random.Generator) -> np.ndarray:
    """`boot` bootstrap means of matrix `m` (seeds x videos): seeds and whole clusters of videos resampled."""
    seeds, n = m.shape
    idx, g = _clusters(groups, n)
    sums, sizes = _cluster_sums(m, idx, g), np.bincount(idx, minlength=g).astype(float)
    out = [np.einsum("bs,sg,bg->b", sw, sums, cw) / (seeds * (cw @ sizes)) for sw, cw in _weights(seeds, g, boot, rng)]
    return np.concatenate(out)


def bootstrap_interval(
    correct, groups=None, boot: int = 5000, seed: int = 0, level: float = LEVEL
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `correct` (seeds x videos of 0/1, or any per-video scores)."""
    m = _as_matrix(correct)
    reps = _replicates(m, groups, boot, np.random.default_rng(seed))
    a = (1.0 - level) / 2.0
    return float(np.quantile(reps, a)), float(np.quantile(reps, 1.0 - a))


def paired_difference(a, b, groups=None, boot: int = 5000, seed: int = 0, level: float = LEVEL) -> dict:
    """a - b measured on the same seeds and videos (both seeds x videos): {"diff", "lo", "hi", "p", "clusters"}.

    diff is the mean difference (a fraction: 0.1 = 10 points), [lo, hi] its percentile bootstrap interval, p the
    two-sided sign-flip permutation p-value over clusters (exact when 2^clusters <= boot, else Monte Carlo)."""
    ma, mb = _as_matrix(a), _as_matrix(b)
    if ma.shape != mb.shape:
        raise ValueError(f"a paired comparison needs the same seeds and videos: shapes {ma.shape} and {mb.shape}")
    d = ma - mb
    rng = np.random.default_rng(seed)
    reps = _replicates(d, groups, boot, rng)
    idx, g = _clusters(groups, d.shape[1])
    per_cluster = np.bincount(idx, weights=d.sum(axis=0), minlength=g)
    observed = abs(per_cluster.sum())
    if 2**g <= boot:  # every sign pattern once
        signs = 1.0 - 2.0 * ((np.arange(2**g)[:, None] >> np.arange(g)) & 1)
        p = float(np.mean(np.abs(signs @ per_cluster) >= observed - 1e-9))
    else:
        signs = rng.choice([-1.0, 1.0], size=(boot, g))
        p = float((np.sum(np.abs(signs @ per_cluster) >= observed - 1e-9) + 1) / (boot + 1))
    alpha = (1.0 - level) / 2.0
    return {
        "diff": float(d.mean()),
        "lo": float(np.quantile(reps, alpha)),
        "hi": float(np.quantile(reps, 1.0 - alpha)),
        "p": p,
        "clusters": g,
    }


def verdict(diff: dict) -> str:
    """The claim "a > b" judged by the interval of a - b: supported when it lies above 0, contradicted when below,
    else inconclusive."""
    if diff["lo"] > 0:
        return "supported"
    if diff["hi"] < 0:
        return "contradicted"
    return "inconclusive"


def subset_gap(correct, mask, groups=None, boot: int = 5000, seed: int = 0, level: float = LEVEL) -> dict:
    """Mean of `correct` over the videos in `mask` minus its mean over the others (same seeds): {"gap", "lo", "hi",
    "in", "out"} with a percentile bootstrap interval (seeds and clusters resampled; a replicate that draws no video of
    one side is left out)."""
    m = _as_matrix(correct)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (m.shape[1],) or mask.all() or not mask.any():
        raise ValueError("mask must mark some, but not all, of the videos")
    seeds = m.shape[0]
    idx, g = _clusters(groups, m.shape[1])
    parts = []
    for side in (mask, ~mask):
        parts.append((_cluster_sums(m * side, idx, g), np.bincount(idx, weights=side.astype(float), minlength=g)))
    reps = []
    for sw, cw in _weights(seeds, g, boot, np.random.default_rng(seed)):
        (s_in, n_in), (s_out, n_out) = parts
        den_in, den_out = seeds * (cw @ n_in), seeds * (cw @ n_out)
        ok = (den_in > 0) & (den_out > 0)
        a = np.einsum("bs,sg,bg->b", sw, s_in, cw)[ok] / den_in[ok]
        b = np.einsum("bs,sg,bg->b", sw, s_out, cw)[ok] / den_out[ok]
        reps.append(a - b)
    r = np.concatenate(reps)
    alpha = (1.0 - level) / 2.0
    return {
        "gap": float(m[:, mask].mean() - m[:, ~mask].mean()),
        "lo": float(np.quantile(r, alpha)),
        "hi": float(np.quantile(r, 1.0 - alpha)),
        "in": int(mask.sum()),
        "out": int((~mask).sum()),
    }

"""The length confound made measurable (the paper's Figure 4 argument).

In ARID's training split a clip's length says much about its class; in its test split it does not. A model can learn
"short clip -> run" and lose on test. Two measurements:

    probe = LengthProbe.fit(train_lengths, train_labels)   # predicts the class from the clip length alone
    probe.accuracy(lengths, labels)                         # on train (high when lengths give the class away) and test
    length_gap(outcomes, probe)                             # a row's top-1 on length-matched minus length-mismatched
                                                            # test clips of the same class, with a 95 % interval

A test clip is *length-matched* when its length points to its own class (the probe predicts it correctly), and
mismatched otherwise: a model that leans on length does well on the first kind and badly on the second. The gap is
taken within each class and averaged over classes (weighted by their clips), so a class that is easy anyway and
happens to hold many matched clips does not make a gap by itself.

The probe is a Gaussian class-conditional model of log length with the training class frequencies as priors: the
simplest classifier that can use every difference between the classes' length distributions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from darkaction.evaluation.stats import bootstrap_interval, subset_gap
from darkaction.experiments.compare import Outcomes


@dataclass
class LengthProbe:
    classes: list[str]
    mean: np.ndarray  # per class, of log length
    std: np.ndarray
    log_prior: np.ndarray

    @classmethod
    def fit(cls, lengths, labels) -> LengthProbe:
        x = np.log(np.maximum(np.asarray(lengths, dtype=float), 1.0))
        y = np.asarray([str(v).lower() for v in labels])
        classes = sorted(set(y))
        if len(x) == 0 or len(classes) < 2:
            raise ValueError("the length probe needs training clips of at least two classes")
        spread = max(float(x.std()), 1e-3)
        mean = np.array([x[y == c].mean() for c in classes])
        # a class with one clip (or equal lengths) still gets a usable width: a tenth of the overall spread
        std = np.array([max(float(x[y == c].std()), 0.1 * spread) for c in classes])
        prior = np.array([np.mean(y == c) for c in classes])
        return cls(classes, mean, std, np.log(prior))

    def predict(self, lengths) -> list[str]:
        x = np.log(np.maximum(np.asarray(lengths, dtype=float), 1.0))[:, None]
        loglik = -0.5 * ((x - self.mean) / self.std) ** 2 - np.log(self.std) + self.log_prior
        return [self.classes[i] for i in loglik.argmax(axis=1)]

    def matched(self, lengths, labels) -> np.ndarray:
        """True where a clip's length points to its own class."""
        return np.array([p == str(t).lower() for p, t in zip(self.predict(lengths), labels)])

    def accuracy(self, lengths, labels, groups=None) -> dict:
        """{"top1", "lo", "hi", "n"}: the probe's accuracy with a 95 % bootstrap interval (over groups if given)."""
        hit = self.matched(lengths, labels).astype(float)
        lo, hi = bootstrap_interval(hit, groups)
        return {"top1": float(hit.mean()), "lo": lo, "hi": hi, "n": int(hit.size)}


def length_gap(o: Outcomes, probe: LengthProbe) -> dict | None:
    """A row's top-1 on length-matched test clips minus on mismatched ones of the same class ({"gap", "lo", "hi",
    "in", "out", ...}, fractions), or None when lengths were not recorded or a side has clips in fewer than 5 test
    groups."""
    if not all(o.n_frames):
        return None
    mask = probe.matched(o.n_frames, o.labels)
    if mask.all() or not mask.any():
        return None
    correct = o.correct()
    g = subset_gap(correct, mask, o.cluster_ids(), strata=o.labels)
    if g is None:
        return None
    return {**g, "acc_matched": float(correct[:, mask].mean()), "acc_mismatched": float(correct[:, ~mask].mean())}

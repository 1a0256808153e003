"""TC4TL decision metrics (exposure.md §5, §7.1) and threshold tuning helpers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Decision:
    """Contact-level TC4TL scores: nDCF = P_miss + P_fa, with a bootstrap 95 % interval of nDCF."""

    n: int
    prevalence: float
    p_miss: float
    p_fa: float
    ndcf: float
    precision: float
    recall: float
    f1: float
    ndcf_ci: tuple[float, float]
    p_miss_ci: tuple[float, float] = (0.0, 0.0)
    p_fa_ci: tuple[float, float] = (0.0, 0.0)


BOOTSTRAP_RESAMPLES = 300


def bootstrap_indices(n: int, *, seed: int = 0, n_boot: int = BOOTSTRAP_RESAMPLES) -> np.ndarray:
    """``n_boot`` resamples (rows) of ``n`` items with replacement; the same seed, the same rows,
    so that two methods scored on one item set are compared on identical resamples (paired)."""
    return np.random.default_rng(seed).integers(0, max(n, 1), size=(n_boot, n))


def _interval(values: list[float] | np.ndarray) -> tuple[float, float]:
    lo, hi = np.quantile(np.asarray(values, dtype=np.float64), [0.025, 0.975])
    return float(lo), float(hi)


def mean_ci(values: FloatArray, *, seed: int = 0) -> tuple[float, float]:
    """Bootstrap 95 % interval of the mean of ``values`` over items (e.g. absolute duration errors)."""
    if values.size == 0:
        return (0.0, 0.0)
    return _interval(values[bootstrap_indices(values.size, seed=seed)].mean(axis=1))


def cluster_bootstrap_indices(
    groups: npt.NDArray[np.int64], *, seed: int = 0, n_boot: int = BOOTSTRAP_RESAMPLES
) -> list[npt.NDArray[np.int64]]:
    """``n_boot`` resamples of whole groups with replacement (every item of a drawn group, once
    per draw): the bootstrap for items that are not independent, such as the two directions of
    one contact."""
    labels, inverse = np.unique(groups, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.searchsorted(inverse[order], np.arange(labels.size + 1))
    members = [order[starts[g] : starts[g + 1]] for g in range(labels.size)]
    rng = np.random.default_rng(seed)
    return [
        np.concatenate([members[g] for g in rng.integers(0, labels.size, size=labels.size)])
        for _ in range(n_boot)
    ]


@dataclass(frozen=True, slots=True)
class PairedDifference:
    """Method A minus method B on the same items, with the paired bootstrap 95 % interval: an
    interval that excludes 0 says A and B differ beyond the resampling noise of these items."""

    difference: float
    ci: tuple[float, float]


def paired_ndcf_difference(
    pred_a: BoolArray,
    pred_b: BoolArray,
    truth: BoolArray,
    *,
    groups: npt.NDArray[np.int64] | None = None,
    seed: int = 0,
) -> PairedDifference:
    """nDCF(A) − nDCF(B), each resample scoring both methods on the same items; with ``groups``
    whole groups are resampled (:func:`cluster_bootstrap_indices`)."""
    diffs = [
        ndcf(pred_a[i], truth[i]) - ndcf(pred_b[i], truth[i])
        for i in _resamples(truth.size, groups, seed)
    ]
    return PairedDifference(ndcf(pred_a, truth) - ndcf(pred_b, truth), _interval(diffs))


def paired_mean_difference(
    a: FloatArray,
    b: FloatArray,
    *,
    groups: npt.NDArray[np.int64] | None = None,
    seed: int = 0,
) -> PairedDifference:
    """mean(A) − mean(B) of per-item values (e.g. absolute errors), paired bootstrap."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if diff.size == 0:
        return PairedDifference(0.0, (0.0, 0.0))
    means = [float(diff[i].mean()) for i in _resamples(diff.size, groups, seed)]
    return PairedDifference(float(diff.mean()), _interval(means))


def _resamples(
    n: int, groups: npt.NDArray[np.int64] | None, seed: int
) -> list[npt.NDArray[np.int64]] | np.ndarray:
    if groups is None:
        return bootstrap_indices(n, seed=seed)
    return cluster_bootstrap_indices(groups, seed=seed)


def ndcf(pred: BoolArray, truth: BoolArray) -> float:
    """P_miss + P_fa; a class with no member contributes 0."""
    p_miss, p_fa = _rates(pred, truth)
    return p_miss + p_fa


def decision(
    pred: BoolArray, truth: BoolArray, *, seed: int = 0, n_boot: int = BOOTSTRAP_RESAMPLES
) -> Decision:
    """All decision metrics of ``pred`` against ``truth``; 95 % intervals of nDCF, P_miss and
    P_fa by bootstrap over items (pairs)."""
    p_miss, p_fa = _rates(pred, truth)
    tp = float((pred & truth).sum())
    precision = tp / float(pred.sum()) if pred.any() else 0.0
    recall = 1.0 - p_miss
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    if pred.size:
        rates = np.array(
            [
                _rates(pred[i], truth[i])
                for i in bootstrap_indices(pred.size, seed=seed, n_boot=n_boot)
            ]
        )
    else:
        rates = np.zeros((1, 2))
    return Decision(
        int(pred.size),
        float(truth.mean()) if truth.size else 0.0,
        p_miss,
        p_fa,
        p_miss + p_fa,
        precision,
        recall,
        f1,
        _interval(rates.sum(axis=1)),
        _interval(rates[:, 0]),
        _interval(rates[:, 1]),
    )


def _rates(pred: BoolArray, truth: BoolArray) -> tuple[float, float]:
    """(P_miss, P_fa); a class with no member contributes 0."""
    pos, neg = truth, ~truth
    return (
        float((~pred[pos]).mean()) if pos.any() else 0.0,
        float(pred[neg].mean()) if neg.any() else 0.0,
    )


def best_threshold(score: FloatArray, truth: BoolArray, grid: FloatArray) -> float:
    """The grid value t minimising nDCF of ``score >= t`` (the smallest on ties)."""
    costs = [ndcf(score >= t, truth) for t in grid]
    return float(grid[int(np.argmin(costs))])


def auc(score: FloatArray, truth: BoolArray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties averaged)."""
    n_pos = int(truth.sum())
    n_neg = int(truth.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(score.size, dtype=np.float64)
    sorted_scores = score[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[truth].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def fit_platt(margin: FloatArray, truth: BoolArray, l2: float = 1e-3) -> tuple[float, float]:
    """(a, b) of ``P(truth) = σ(a + b·margin)`` by Newton's method on the log-likelihood (Platt
    scaling); a small ridge keeps separable data finite."""
    x = np.column_stack((np.ones(margin.size), np.asarray(margin, dtype=np.float64)))
    y = np.asarray(truth, dtype=np.float64)
    coef = np.zeros(2)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ coef, -40.0, 40.0)))
        grad = x.T @ (p - y) + l2 * coef
        hess = (x * (p * (1.0 - p))[:, None]).T @ x + l2 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        coef -= step
        if float(np.abs(step).max()) < 1e-10:
            break
    return float(coef[0]), float(coef[1])


def brier(prob: FloatArray, truth: BoolArray) -> float:
    """Mean squared error of probabilities against 0/1 outcomes (0 is perfect)."""
    return float(np.mean((np.asarray(prob, dtype=np.float64) - truth) ** 2)) if prob.size else 0.0


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    """Items whose predicted probability fell in [lo, hi): how many, mean prediction, outcome rate."""

    lo: float
    hi: float
    n: int
    predicted: float
    observed: float


def reliability(prob: FloatArray, truth: BoolArray, bins: int = 5) -> list[ReliabilityBin]:
    """The reliability table of ``prob`` over ``bins`` equal-width bins (empty bins left out)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, prob, side="right") - 1, 0, bins - 1)
    out = []
    for k in range(bins):
        sel = which == k
        if sel.any():
            out.append(
                ReliabilityBin(
                    float(edges[k]),
                    float(edges[k + 1]),
                    int(sel.sum()),
                    float(prob[sel].mean()),
                    float(truth[sel].mean()),
                )
            )
    return out

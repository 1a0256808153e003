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


def ndcf(pred: BoolArray, truth: BoolArray) -> float:
    """P_miss + P_fa; a class with no member contributes 0."""
    pos, neg = truth, ~truth
    p_miss = float((~pred[pos]).mean()) if pos.any() else 0.0
    p_fa = float(pred[neg].mean()) if neg.any() else 0.0
    return p_miss + p_fa


def decision(pred: BoolArray, truth: BoolArray, *, seed: int = 0, n_boot: int = 300) -> Decision:
    """All decision metrics of ``pred`` against ``truth``, bootstrap over items (pairs)."""
    pos, neg = truth, ~truth
    p_miss = float((~pred[pos]).mean()) if pos.any() else 0.0
    p_fa = float(pred[neg].mean()) if neg.any() else 0.0
    tp = float((pred & truth).sum())
    precision = tp / float(pred.sum()) if pred.any() else 0.0
    recall = 1.0 - p_miss
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, pred.size, size=(n_boot, pred.size)) if pred.size else None
    boots = [ndcf(pred[i], truth[i]) for i in idx] if idx is not None else [0.0]
    lo, hi = np.quantile(boots, [0.025, 0.975])
    return Decision(
        int(pred.size),
        float(truth.mean()) if truth.size else 0.0,
        p_miss,
        p_fa,
        p_miss + p_fa,
        precision,
        recall,
        f1,
        (float(lo), float(hi)),
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

"""Classification metrics over answer positions, computed once here and reused everywhere."""

from __future__ import annotations

import warnings

from sklearn.metrics import accuracy_score, precision_recall_fscore_support


def mcq_metrics(labels: list[int], predictions: list[int]) -> dict[str, float]:
    """Accuracy and macro precision/recall/F1, treating each answer position (A, B, ...) as a class."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # classes never predicted: zero_division handles them
        p, r, f, _ = precision_recall_fscore_support(labels, predictions, average="macro", zero_division=0)
    return {
        "accuracy": float(accuracy_score(labels, predictions)),
        "macro_precision": float(p),
        "macro_recall": float(r),
        "macro_f1": float(f),
    }


def chance(option_counts: list[int]) -> float:
    """Expected accuracy of uniform guessing, averaged over questions."""
    return sum(1.0 / k for k in option_counts) / len(option_counts)


# ---- continual learning: metrics of an accuracy matrix -------------------------------------------
#
# R[k][i] is the accuracy on task i after training on tasks 0..k of the sequence (None where not
# evaluated). T tasks. Each function returns None when its cells are missing or the sequence too short.

Matrix = list[list[float | None]]


def _mean(values: list[float | None]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)


def average_accuracy(R: Matrix) -> float | None:
    """A_T = 1/T * sum_i R[T-1][i]: mean accuracy over every task after the last one."""
    return _mean(R[-1]) if R else None


def average_incremental_accuracy(R: Matrix) -> float | None:
    """1/T * sum_k A_k, with A_k = 1/(k+1) * sum_{i<=k} R[k][i]: the average accuracy after each task, averaged."""
    return _mean([_mean(R[k][: k + 1]) for k in range(len(R))]) if R else None


def backward_transfer(R: Matrix) -> float | None:
    """BWT = 1/(T-1) * sum_{i<T-1} (R[T-1][i] - R[i][i]): how later training changed earlier tasks
    (negative: forgetting). Lopez-Paz & Ranzato (2017)."""
    T = len(R)
    if T < 2:
        return None
    diffs = [None if R[-1][i] is None or R[i][i] is None else R[-1][i] - R[i][i] for i in range(T - 1)]
    return _mean(diffs)


def forward_transfer(R: Matrix, reference: list[float]) -> float | None:
    """FWT = 1/(T-1) * sum_{i>=1} (R[i-1][i] - b_i): accuracy on task i before it was trained, above the
    reference b_i (here: chance, the expected accuracy of a model that has learned nothing of task i)."""
    T = len(R)
    if T < 2:
        return None
    diffs = [None if R[i - 1][i] is None else R[i - 1][i] - reference[i] for i in range(1, T)]
    return _mean(diffs)


def forgetting(R: Matrix) -> float | None:
    """F = 1/(T-1) * sum_{i<T-1} max_{i<=k<T-1} (R[k][i] - R[T-1][i]): the largest earlier accuracy of each
    task minus its final one, averaged over all but the last task (Chaudhry et al., 2018)."""
    T = len(R)
    if T < 2:
        return None
    drops = []
    for i in range(T - 1):
        earlier = [R[k][i] for k in range(i, T - 1)]
        if R[-1][i] is None or any(v is None for v in earlier):
            return None
        drops.append(max(earlier) - R[-1][i])
    return _mean(drops)


def continual_metrics(R: Matrix, reference: list[float]) -> dict[str, float | None]:
    return dict(average_accuracy=average_accuracy(R), average_incremental_accuracy=average_incremental_accuracy(R),
                bwt=backward_transfer(R), fwt=forward_transfer(R, reference), forgetting=forgetting(R))

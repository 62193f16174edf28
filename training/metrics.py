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

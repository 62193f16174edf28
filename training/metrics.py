"""Classification metrics over answer positions, computed once here and reused everywhere."""

from __future__ import annotations

import math
import warnings
import zlib
from functools import reduce

import numpy as np
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
# The cells may also be arrays of the same shape (one value per bootstrap resample): every function
# then works elementwise and returns an array.

Matrix = list[list[float | None]]


def _mean(values: list[float | None]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)


def _largest(values: list) -> float | np.ndarray:
    return reduce(np.maximum, values) if isinstance(values[0], np.ndarray) else max(values)


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
        drops.append(_largest(earlier) - R[-1][i])
    return _mean(drops)


def continual_metrics(R: Matrix, reference: list[float]) -> dict[str, float | None]:
    return dict(average_accuracy=average_accuracy(R), average_incremental_accuracy=average_incremental_accuracy(R),
                bwt=backward_transfer(R), fwt=forward_transfer(R, reference), forgetting=forgetting(R))


# ---- uncertainty: intervals over the evaluation questions ----------------------------------------
#
# A cell's interval is Wilson's score interval for a binomial proportion. Everything computed from
# several cells (average accuracy, BWT, forgetting, a difference between two methods) gets a percentile
# bootstrap over questions: each task's questions are resampled with replacement (within the task, so
# every task keeps its size and its weight in the average), the same resample for every cell of that
# task (every row of the matrix and every method: the comparisons are paired), and the metric is
# recomputed from the resampled matrix.

CONFIDENCE = 0.95
RESAMPLES = 2000
Interval = list[float]  # [low, high]


def _z(confidence: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> Interval | None:
    """Wilson's score interval for `successes` out of `n` (None when n is 0)."""
    if n <= 0:
        return None
    z, p = _z(confidence), successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return [max(0.0, centre - half), min(1.0, centre + half)]


def resample_counts(n: int, resamples: int = RESAMPLES, seed=0) -> np.ndarray:
    """[resamples, n] how often each of n questions is drawn in each bootstrap resample (n draws with
    replacement). `seed`: anything `numpy.random.default_rng` takes; the same seed gives the same counts."""
    return np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float32)


def resampled_accuracy(correct, counts: np.ndarray | None) -> np.ndarray | None:
    """[resamples] the accuracy of one cell (its questions' 0/1 correctness) in each resample; None when the
    cell has no per-question results or they are not the task's questions (another count)."""
    if correct is None or counts is None or len(correct) != counts.shape[1]:
        return None
    return (counts @ np.asarray(correct, dtype=np.float32)).astype(np.float64) / counts.shape[1]


def resampled_cells(cells: dict, resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """{key: [resamples] accuracy} of cells given as {key: (task, correctness)}: every cell of one task is
    read through the same resamples of that task's questions, so differences between cells (rows of a
    matrix, methods) are paired. A task's resamples depend only on its name, size and `seed` (not on the
    other tasks, nor on the order of the cells). A cell whose count differs from the task's first is left out."""
    by_task: dict[str, list] = {}
    for key, (task, correct) in cells.items():
        if correct is not None:
            by_task.setdefault(task, []).append((key, correct))
    out = {}
    for task, items in sorted(by_task.items()):  # one task's counts in memory at a time
        counts = resample_counts(len(items[0][1]), resamples, [seed, zlib.crc32(task.encode())])
        for key, correct in items:
            samples = resampled_accuracy(correct, counts)
            if samples is not None:
                out[key] = samples
    return out


def mean_of(samples: list) -> np.ndarray | float | None:
    """The mean of values or arrays (e.g. one per order); None if any is None."""
    return None if not samples or any(s is None for s in samples) else sum(samples) / len(samples)


def percentile_interval(samples, confidence: float = CONFIDENCE) -> Interval | None:
    """The central `confidence` share of bootstrap samples (None when there are none)."""
    if samples is None:
        return None
    low, high = np.quantile(np.asarray(samples, dtype=np.float64), [(1 - confidence) / 2, (1 + confidence) / 2])
    return [float(low), float(high)]


def verdict(difference: Interval | None) -> str | None:
    """How the first of two methods compares with the second, from the interval of their difference:
    "ahead" (entirely above zero), "behind" (entirely below) or "level" (it holds zero)."""
    if difference is None:
        return None
    return "ahead" if difference[0] > 0 else "behind" if difference[1] < 0 else "level"


def accuracy_interval(accuracy: float | None, n: int | None, confidence: float = CONFIDENCE) -> Interval | None:
    """Wilson's interval of an accuracy over `n` questions, its successes recovered as accuracy x n (rounded:
    an accuracy is a count over n); None without an accuracy or a count."""
    if accuracy is None or not n:
        return None
    return wilson_interval(round(accuracy * n), n, confidence)


def mean_accuracy_interval(correct: dict[str, list], resamples: int = RESAMPLES, seed: int = 0,
                           confidence: float = CONFIDENCE) -> Interval | None:
    """The percentile bootstrap interval of a mean accuracy over tasks (each task weighs alike), from each task's
    0/1 correctness per question (`{task: correct}`): the questions resampled within each task as eval-forgetting
    does (`resampled_cells`); None when a task has no per-question results."""
    if not correct or any(c is None or not len(c) for c in correct.values()):
        return None
    samples = resampled_cells({task: (task, c) for task, c in correct.items()}, resamples, seed)
    return percentile_interval(mean_of([samples[task] for task in correct]), confidence)


FEW = 100  # fewer questions than this (per task, per cell): a comparison resting on them says so


def few(n: int | None, what: str = "per task") -> str:
    """What a comparison on `n` questions says when they are fewer than FEW, `on only 24 questions per task: too few
    to rely on` (else nothing)."""
    return f"on only {n} questions {what}: too few to rely on" if n is not None and n < FEW else ""


def final_counts(methods: dict) -> list[int]:
    """The question count of each cell in the final row of every method's matrix (a report object's `methods`):
    what the report's goals and comparisons rest on."""
    return [n for m in methods.values() for n in ((m.get("n_matrix") or [[]])[-1] or []) if n]


def few_on_average(counts: list[int]) -> str:
    """`few` for a mean over tasks with `counts` questions each: what a mean rests on is their average (one small
    task among large ones does not make every comparison thin)."""
    return few(round(sum(counts) / len(counts)), "per task on average") if counts else ""

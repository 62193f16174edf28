"""Every accuracy a command prints or saves carries its question count and a 95% interval (issue 25 §5): the one
formatting helper, the results' `accuracy_interval` fields, the bootstrap of a mean over tasks, and tables that
keep an interval whole at 80 columns."""

import numpy as np
import pytest

from baas.cli.render import Table, acc, fit, span, wrap
from baas.training.api.results import EvalResult, PredictResult, SeedsResult, TrainResult
from baas.training.metrics import (RESAMPLES, accuracy_interval, few_on_average, mean_accuracy_interval, mean_of, percentile_interval,
                                   few, resampled_cells, wilson_interval)


def test_one_helper_prints_an_accuracy_with_its_interval_and_count():
    assert acc(0.45, 200) == "0.450 [0.383, 0.519] n=200"  # Wilson's for 90 of 200
    assert acc(1 / 3, 24, where="test") == "0.333 [0.180, 0.533] n=24 test"
    assert acc(0.25, 32, [0.125, 0.40625]) == "0.250 [0.125, 0.406] n=32"  # a given interval (a bootstrap) is kept
    assert acc(0.5) == "0.500" and acc(None, 24) == "–"
    assert span(None) == "–" and span([0.1, 0.2]) == "[0.100, 0.200]"
    assert few(24) == "on only 24 questions per task: too few to rely on" and few(100) == "" and few(None) == ""
    # a mean over tasks rests on their average count: one small task among large ones does not make it thin
    assert few_on_average([78, 200, 200]) == "" and few_on_average([]) == ""
    assert few_on_average([24, 30]) == "on only 27 questions per task on average: too few to rely on"


def test_results_carry_the_interval_next_to_the_count():
    evaluated = EvalResult(task="t", accuracy=1 / 3, n_eval=24)
    assert evaluated.accuracy_interval == wilson_interval(8, 24) == accuracy_interval(1 / 3, 24)
    assert evaluated.to_dict()["accuracy_interval"] == wilson_interval(8, 24)
    assert EvalResult(task="t").accuracy_interval is None  # no accuracy, no interval
    trained = TrainResult.of({"task": "t", "accuracy": 0.5, "n_eval": 10, "rank": 0})
    assert trained.to_dict()["accuracy_interval"] == wilson_interval(5, 10)
    seeds = SeedsResult(task="t", seeds=[0, 1], runs=[TrainResult(task="t", accuracy=a, n_eval=20) for a in (0.5, 0.6)],
                        mean_accuracy=0.55, sd_accuracy=0.07)
    assert seeds.n_eval == 20 and seeds.to_dict()["accuracy_interval"] == wilson_interval(11, 20)
    unequal = SeedsResult(task="t", seeds=[0, 1], runs=[TrainResult(task="t", accuracy=0.5, n_eval=n) for n in (10, 20)],
                          mean_accuracy=0.5)
    assert unequal.n_eval is None and unequal.accuracy_interval is None  # not the same questions: no interval
    labelled = PredictResult(router="hard", strategy="hard", rule="lda", space="prompt", predictions=[], accuracy=0.5,
                             n_labelled=2).to_dict()
    assert labelled["accuracy_interval"] == wilson_interval(1, 2)
    assert "accuracy_interval" not in PredictResult(router="hard", strategy="hard", rule="lda", space="prompt",
                                                    predictions=[]).to_dict()


def test_a_mean_over_tasks_has_eval_forgettings_bootstrap():
    rng = np.random.default_rng(1)
    correct = {"a": rng.integers(0, 2, 40).tolist(), "b": rng.integers(0, 2, 25).tolist()}
    samples = resampled_cells({t: (t, c) for t, c in correct.items()}, RESAMPLES, 0)
    assert mean_accuracy_interval(correct) == percentile_interval(mean_of([samples["a"], samples["b"]]))
    low, high = mean_accuracy_interval(correct)
    mean = (np.mean(correct["a"]) + np.mean(correct["b"])) / 2  # tasks weigh alike
    assert low < mean < high
    assert mean_accuracy_interval({"a": [1] * 30, "b": [0] * 30}) == pytest.approx([0.5, 0.5])
    assert mean_accuracy_interval({"a": [1, 0], "b": None}) is None and mean_accuracy_interval({}) is None


def test_an_interval_never_breaks_inside_its_brackets():
    assert wrap("0.333 [0.180, 0.533] n=24 test", 16).split("\n") == ["0.333", "[0.180, 0.533]", "n=24 test"]
    assert wrap("a line with [0.180, 0.533] in it", 20, words=True).split("\n") == ["a line with", "[0.180, 0.533] in it"]
    table = Table("runs", ["run", "task", "settings", "accuracy"])
    table.add_row("1", "demo_categories", "backbone, epochs=1, max_length=48", acc(1 / 3, 24, where="test"))
    from rich.console import Console

    console = Console(width=40, record=True)
    for part in fit(table, 40):
        console.print(part)
    text = console.export_text()
    assert "[0.180, 0.533]" in text and max(map(len, text.splitlines())) <= 40, text

"""The continual protocol: each metric against hand-computed matrices, the results file, and
`baas eval-forgetting` end to end on a tiny model, including a run killed with SIGKILL and resumed."""

import json
import random
import signal
import sqlite3
import subprocess
import time

import pytest
from test_cli import BAAS, baas, error_line, last_json

from baas.prompts_bank.errors import BaasError
from baas.training.continual import Results, findings
from baas.training.metrics import (average_accuracy, average_incremental_accuracy, backward_transfer, continual_metrics,
                                   forgetting, forward_transfer, percentile_interval, resample_counts, resampled_accuracy,
                                   resampled_cells, verdict, wilson_interval)

R = [[0.60, 0.30, None],
     [0.65, 0.70, 0.20],
     [0.30, 0.50, 0.80]]
CHANCE = [0.25, 0.20, 0.50]


def test_metrics_against_hand_computed_values():
    assert average_accuracy(R) == pytest.approx((0.30 + 0.50 + 0.80) / 3)
    # A_1 = 0.6, A_2 = (0.65 + 0.70) / 2, A_3 = (0.3 + 0.5 + 0.8) / 3
    assert average_incremental_accuracy(R) == pytest.approx((0.6 + 0.675 + 1.6 / 3) / 3)
    assert backward_transfer(R) == pytest.approx(((0.30 - 0.60) + (0.50 - 0.70)) / 2)
    assert forward_transfer(R, CHANCE) == pytest.approx(((0.30 - 0.20) + (0.20 - 0.50)) / 2)
    # task 0 peaked after task 1 (0.65), not on its diagonal: forgetting uses the largest earlier value
    assert forgetting(R) == pytest.approx(((0.65 - 0.30) + (0.70 - 0.50)) / 2)


def test_metrics_that_cannot_be_computed_are_none():
    only_last = [[None, None], [0.4, 0.6]]  # multitask: no sequence
    m = continual_metrics(only_last, [0.25, 0.25])
    assert m["average_accuracy"] == pytest.approx(0.5)
    assert m["bwt"] is None and m["forgetting"] is None and m["fwt"] is None and m["average_incremental_accuracy"] is None
    single = continual_metrics([[0.7]], [0.25])
    assert single["average_accuracy"] == 0.7 and single["bwt"] is None and single["forgetting"] is None
    no_forgetting = [[0.5, 0.25], [0.5, 0.6]]
    assert forgetting(no_forgetting) == 0 and backward_transfer(no_forgetting) == 0


def test_goals_count_a_one_point_forgetting_as_met_and_say_by_how_much_one_is_missed():
    """Forgetting of exactly one question in a hundred is within 1 point, though its float is 0.010000000000000009."""
    def method(acc, forgetting):
        return {"average_accuracy": acc, "forgetting": forgetting}

    edge = 0.27 - 0.26
    assert edge > 0.01
    met = findings({"baas": method(0.30, edge), "oracle": method(0.31, 0.0), "multitask": method(0.40, None)})
    assert met["goals"]["forgetting_within_1_point"]["met"] and met["goals"]["within_1_point_of_oracle"]["met"]
    assert not met["goals"]["at_least_95pct_of_multitask"]["met"] and met["goals"]["at_least_95pct_of_multitask"]["target"] == pytest.approx(0.38)
    # ahead, level or behind come from the paired interval alone: a higher point value with no interval is no verdict
    versus = lambda interval, verdict: {"difference": -0.05, "interval": interval, "verdict": verdict}  # noqa: E731
    missed = findings({"baas": method(0.30, 0.02), "naive": method(0.35, 0.2) | {"versus_baas": versus([-0.08, -0.02], "behind")},
                       "ewc": method(0.35, 0.2) | {"versus_baas": versus([-0.09, 0.01], "level")},
                       "lora": method(0.35, 0.2) | {"versus_baas": versus(None, None)}})
    assert not missed["goals"]["forgetting_within_1_point"]["met"] and missed["baselines_above_baas"] == ["naive"]
    assert missed["baas_versus"] == {"ahead": [], "level": ["ewc"], "behind": ["naive"], "no_interval": ["lora"]}


def test_results_file_refuses_other_settings_and_skips_a_torn_last_line(tmp_path):
    results = Results(tmp_path, {"tasks": ["a", "b"]})
    results.add_cell(0, "naive", 0, 0, {"accuracy": 0.5, "macro_f1": 0.4, "n": 10})
    with open(tmp_path / "cells.jsonl", "a") as f:
        f.write('{"type": "cell", "order": 0, "matr')  # a kill in the middle of a write
    again = Results(tmp_path, {"tasks": ["a", "b"]})
    assert again.has(0, "naive", 0, 0) and again.matrix(0, "naive", 2) == [[0.5, None], [None, None]]
    with pytest.raises(BaasError, match="other settings"):
        Results(tmp_path, {"tasks": ["b", "a"]})


def test_wilson_interval_against_known_values():
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(0.40383, abs=1e-5) and high == pytest.approx(0.59617, abs=1e-5)
    # no success: the lower end is 0, the upper z^2 / (n + z^2)
    assert wilson_interval(0, 10) == pytest.approx([0.0, 1.959964 ** 2 / (10 + 1.959964 ** 2)], abs=1e-6)
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0) and wilson_interval(0, 0) is None
    assert wilson_interval(50, 100, 0.99)[0] < low  # a wider confidence, a wider interval


def test_bootstrap_helpers_are_seeded_paired_and_near_the_normal_interval():
    counts = resample_counts(200, 2000, seed=3)
    assert counts.shape == (2000, 200) and (counts.sum(1) == 200).all()
    assert (resample_counts(200, 2000, seed=3) == counts).all() and not (resample_counts(200, 2000, seed=4) == counts).all()
    half = [1, 0] * 100
    interval = percentile_interval(resampled_accuracy(half, counts))
    se = (0.25 / 200) ** 0.5  # 100 of 200: the normal interval is 0.5 +- 1.96 * se
    assert interval == pytest.approx([0.5 - 1.96 * se, 0.5 + 1.96 * se], abs=0.01)
    assert resampled_accuracy(half[:-1], counts) is None and resampled_accuracy(None, counts) is None  # not the task's questions
    # every cell of a task reads the same resamples: identical results give identical samples
    cells = resampled_cells({"a": ("t", half), "b": ("t", list(half)), "c": ("u", half), "right": ("t", [1] * 200),
                             "wrong": ("t", [0] * 200)}, 500, seed=0)
    assert (cells["a"] == cells["b"]).all() and not (cells["a"] == cells["c"]).all()
    assert percentile_interval(cells["a"] - cells["b"]) == [0.0, 0.0]  # identical methods: the paired interval holds 0
    assert percentile_interval(cells["right"] - cells["wrong"]) == [1.0, 1.0]  # better on every question: all above 0
    assert percentile_interval(cells["right"] - cells["a"])[0] > 0
    assert verdict([0.0, 0.0]) == "level" and verdict([0.01, 0.2]) == "ahead" and verdict([-0.2, -0.01]) == "behind"
    assert verdict(None) is None


def hand_results(tmp_path, tasks=("a", "b"), n=40):
    """Results of two tasks of n questions: baas forgets a little of task a; `twin` answers exactly as baas;
    `worse` misses every question, `better` gets every one; `old` was recorded before cells kept their questions."""
    rng = random.Random(0)
    a1 = [int(rng.random() < 0.7) for _ in range(n)]  # baas on a, after a
    a2 = [c if q % 5 else 0 for q, c in enumerate(a1)]  # after b: every fifth question of a lost
    b2 = [int(rng.random() < 0.6) for _ in range(n)]
    b1 = [int(rng.random() < 0.3) for _ in range(n)]  # b before it was trained
    results = Results(tmp_path, {"tasks": list(tasks)})
    cell = lambda correct: {"accuracy": sum(correct) / n, "macro_f1": 0.0, "n": n, "correct": correct}  # noqa: E731
    for name in ("baas", "twin"):
        for (k, i), correct in {(0, 0): a1, (0, 1): b1, (1, 0): a2, (1, 1): b2}.items():
            results.add_cell(0, name, k, i, cell(list(correct)))
    for (k, i) in ((0, 0), (0, 1), (1, 0), (1, 1)):
        results.add_cell(0, "worse", k, i, cell([0] * n))
        results.add_cell(0, "better", k, i, cell([1] * n))
        results.add_cell(0, "old", k, i, {"accuracy": 0.5, "macro_f1": 0.0, "n": n})
    return results, (a1, a2, b1, b2)


def test_report_intervals_and_paired_verdicts_on_hand_built_results(tmp_path):
    from baas.training.continual import Budget, Settings, build_report, markdown

    results, (a1, a2, b1, b2) = hand_results(tmp_path)
    settings = Settings(tasks=["a", "b"], budget=Budget(10, 40, 1, 0))
    out = build_report(settings, ["baas", "twin", "worse", "better", "old"], ["hard"], results, "bb", {"a": 0.25, "b": 0.25})
    m = out["methods"]
    baas = m["baas"]
    assert baas["average_accuracy"] == pytest.approx((sum(a2) + sum(b2)) / 80)
    for key in ("average_accuracy", "bwt", "forgetting", "average_incremental_accuracy", "fwt"):
        low, high = baas["intervals"][key]
        assert low <= baas[key] <= high and low < high
    assert baas["forgetting"] == pytest.approx(sum(a1[::5]) / 40) and baas["intervals"]["forgetting"][0] > 0
    assert baas["n_matrix"] == [[40, 40], [40, 40]]
    assert baas["accuracy_interval_matrix"][1][0] == pytest.approx(wilson_interval(sum(a2), 40))
    assert baas["final_accuracy_interval"]["b"] == pytest.approx(wilson_interval(sum(b2), 40))
    # identical answers: the paired interval is exactly zero, level; one right where the other is wrong on every
    # question: entirely above (or below) zero
    assert m["twin"]["versus_baas"] == {"difference": 0.0, "interval": [0.0, 0.0], "verdict": "level"}
    assert m["worse"]["versus_baas"]["interval"][0] > 0 and m["worse"]["versus_baas"]["verdict"] == "ahead"
    assert m["better"]["versus_baas"]["interval"][1] < 0 and m["better"]["versus_baas"]["verdict"] == "behind"
    # the paired interval is narrower than the two methods' own intervals side by side would suggest
    width = lambda i: i[1] - i[0]  # noqa: E731
    assert width(m["twin"]["versus_baas"]["interval"]) < width(baas["intervals"]["average_accuracy"])
    # cells from before per-question results: the report still builds, with Wilson intervals but no bootstrap
    old = m["old"]
    assert old["average_accuracy"] == 0.5 and old["intervals"]["average_accuracy"] is None
    assert old["versus_baas"]["interval"] is None and old["versus_baas"]["verdict"] is None
    assert old["accuracy_interval_matrix"][1][1] == pytest.approx(wilson_interval(20, 40))
    f = out["findings"]
    assert f["baas_versus"] == {"ahead": ["worse"], "level": ["twin"], "behind": ["better"], "no_interval": ["old"]}
    assert f["baselines_above_baas"] == ["better"]
    assert out["uncertainty"]["resamples"] == 2000 and out["uncertainty"]["cell"] == "wilson"
    # seeded: the same report twice; json as written to report.json
    again = build_report(settings, ["baas", "twin", "worse", "better", "old"], ["hard"], results, "bb", {"a": 0.25, "b": 0.25})
    assert json.loads(json.dumps(again)) == json.loads(json.dumps(out))
    text = markdown(out)
    assert "[+0.0, +0.0] level" in text and "baas is behind better (-47.5 [" in text and "no interval" in text
    assert "**Every finding below rests on only 40 questions per task on average: too few to rely on.**" in text
    assert f"{baas['average_accuracy']:.3f} [{baas['intervals']['average_accuracy'][0]:.3f}," in text


TINY = ["--tasks", "demo_animal_sounds,demo_categories,demo_opposites", "--max-train", 40, "--max-eval", 24,
        "--epochs", 1]


def forgetting_args(backbone, tmp_path, name, methods="baas,naive,ewc,multitask"):
    return ["eval-forgetting", "--backbone", backbone, "--store", tmp_path / f"{name}-store", "--out", tmp_path / name,
            "--methods", methods, *TINY, "--json"]


def figures(report: dict) -> dict:
    keep = ("accuracy_matrix", "macro_f1_matrix", "average_accuracy", "average_incremental_accuracy", "bwt", "fwt",
            "forgetting", "parameters")
    return {name: {k: m[k] for k in keep} for name, m in report["methods"].items()}


def test_the_learnable_tasks_are_those_some_method_beats_chance_on_by_5_points_on_validation(tmp_path, capsys):
    from baas.training.continual import Budget, Settings, build_report, markdown

    results, (a1, a2, b1, b2) = hand_results(tmp_path)
    step = dict(learn_seconds=1.0, eval_seconds=1.0, reused=False, peak_rss_mb=1.0)
    settings = Settings(tasks=["a", "b"], budget=Budget(10, 40, 1, 0))
    names = ["baas", "twin", "worse", "better", "old"]
    args = (settings, names, ["hard"], results, "bb", {"a": 0.25, "b": 0.25})
    assert build_report(*args)["learnable"]["tasks"] is None  # no step recorded a validation accuracy: no view
    # a: baas 0.60 on validation against chance 0.25; b: the best is twin at 0.29, 4 points above chance 0.25
    results.add_step(0, "baas", 0, **step, validation_accuracy=0.60)
    results.add_step(0, "baas", 1, **step, validation_accuracy=0.27)
    results.add_step(0, "twin", 1, **step, validation_accuracy=0.29)
    results.add_step(0, "ignored", 1, **step, validation_accuracy=0.99)  # not a method of this report
    out = build_report(*args, {"a": 0.25, "b": 0.25})
    view = out["learnable"]
    assert view["tasks"] == ["a"] and view["best"]["b"] == {"method": "twin", "validation_accuracy": 0.29, "chance": 0.25}
    m = out["methods"]
    assert m["baas"]["learnable_average_accuracy"] == pytest.approx(sum(a2) / 40)  # the final row, on task a only
    assert m["better"]["learnable_average_accuracy"] == 1.0 and m["old"]["learnable_average_accuracy"] == 0.5
    low, high = m["baas"]["intervals"]["learnable_average_accuracy"]
    assert low < sum(a2) / 40 < high and (low, high) != tuple(m["baas"]["intervals"]["average_accuracy"])
    assert m["twin"]["versus_baas_learnable"]["interval"] == [0.0, 0.0] and m["better"]["versus_baas_learnable"]["verdict"] == "behind"
    assert out["findings"]["baas_versus_on_learnable_tasks"]["no_interval"] == ["old"]
    # exactly 5 points above chance counts (validation chance is the validation split's own)
    assert build_report(*args, {"a": 0.25, "b": 0.24})["learnable"]["tasks"] == ["a", "b"]
    text = markdown(out)
    assert "## The learnable tasks" in text and "(1 of 2): a (baas 0.600 against chance 0.250)" in text
    assert "Left out, every method within 5 points of chance: b (best twin 0.290, chance 0.250)" in text
    # the command's line: a task no method has reached yet (a run still going) is not "left out"
    from types import SimpleNamespace

    from baas.cli.commands.forgetting import _show

    for learnable, said in ((view, "left out: b"), (dict(view, unknown=["b"]), "left out: none; not measured yet: b")):
        _show(SimpleNamespace(report=dict(out, learnable=learnable), folder=tmp_path))
        assert said in " ".join(capsys.readouterr().out.split())


def test_eval_forgetting_json_and_report_folder(tiny_backbone_dir, cli_env, tmp_path):
    args = forgetting_args(tiny_backbone_dir("bert"), tmp_path, "run", "baas,naive,multitask")
    report = last_json(baas(*args, env=cli_env))
    assert set(report["methods"]) == {"baas", "baas:hard", "baas:topk2", "oracle", "naive", "multitask"}
    for name, m in report["methods"].items():
        assert len(m["accuracy_matrix"]) == 3 and all(len(row) == 3 for row in m["accuracy_matrix"])
        for key in ("average_accuracy", "bwt", "fwt", "forgetting"):
            assert key in m
    naive = report["methods"]["naive"]["accuracy_matrix"]
    assert naive[0][2] is None and all(v is not None for v in naive[0][:2])  # only what a metric reads
    assert report["methods"]["multitask"]["accuracy_matrix"][0] == [None] * 3
    assert report["methods"]["multitask"]["bwt"] is None
    assert report["methods"]["oracle"]["accuracy_matrix"][0][1] is None  # no entry of its own yet
    assert report["methods"]["baas"]["parameters"]["stored_per_task"] > report["methods"]["baas"]["parameters"]["trainable"]
    # CPU time beside the wall time: this run trained and evaluated, so both are positive
    assert all(report["methods"][name]["cpu_seconds"] > 0 and report["methods"][name]["seconds"] > 0
               for name in ("baas", "naive", "multitask"))
    folder = tmp_path / "run"
    # every cell keeps each question's correctness, in one order per task, so the report has intervals
    cells = [json.loads(line) for line in (folder / "cells.jsonl").read_text().splitlines()[1:]]
    cells = [c for c in cells if c["type"] == "cell" and c["value"] is not None]
    assert {c["matrix"] for c in cells} == set(report["methods"])
    for c in cells:
        v = c["value"]
        assert len(v["correct"]) == v["n"] == 24 and sum(v["correct"]) == round(v["accuracy"] * 24)
    for name in ("baas", "naive", "multitask", "oracle"):
        m = report["methods"][name]
        low, high = m["intervals"]["average_accuracy"]
        assert low <= m["average_accuracy"] <= high and m["n_matrix"][-1] == [24] * 3
        assert all(i[0] <= m["final_accuracy"][t] <= i[1] for t, i in m["final_accuracy_interval"].items())
        assert (m["versus_baas"] is None) == (name == "baas")
    assert report["methods"]["naive"]["intervals"]["forgetting"] is not None and report["methods"]["multitask"]["intervals"]["bwt"] is None
    assert report["methods"]["naive"]["versus_baas"]["verdict"] in ("ahead", "level", "behind")
    view = report["learnable"]  # baas and naive record each task's validation accuracy; multitask has none per task
    assert set(view["best"]) == {"demo_animal_sounds", "demo_categories", "demo_opposites"} and not view["unknown"]
    assert all(b["method"] in ("baas", "naive") for b in view["best"].values())
    assert set(view["tasks"]) <= set(view["best"])
    verdicts = report["findings"]["baas_versus"]
    assert sorted(n for names in verdicts.values() for n in names) == sorted(set(report["methods"]) - {"baas"})
    assert json.loads((folder / "report.json").read_text()) == report
    for name in ("report.md", "accuracy_matrix.png", "forgetting_curves.png"):
        assert (folder / name).stat().st_size > 0
    assert "baas" in (folder / "report.md").read_text() and "Not finished" not in (folder / "report.md").read_text()
    import csv
    rows = list(csv.DictReader((folder / "report.csv").open()))  # every measured cell, with its n and interval
    naive = [r for r in rows if r["method"] == "naive"]
    assert len(naive) == sum(v is not None for row in report["methods"]["naive"]["accuracy_matrix"] for v in row)
    last = next(r for r in naive if r["k"] == "3" and r["i"] == "1")
    assert float(last["accuracy"]) == report["methods"]["naive"]["accuracy_matrix"][2][0] and last["n"] == "24"
    assert float(last["accuracy_low"]) <= float(last["accuracy"]) <= float(last["accuracy_high"])
    assert figures(last_json(baas(*args, "--report-only", env=cli_env))) == figures(report)  # from the cells alone
    cells = folder / "cells.jsonl"
    cells.write_text("\n".join(line for line in cells.read_text().splitlines() if '"k": 2' not in line) + "\n")
    partial = last_json(baas(*args, "--report-only", env=cli_env))
    assert partial["methods"]["naive"]["steps_done"] == 2 and partial["methods"]["naive"]["average_accuracy"] is None
    assert partial["methods"]["naive"]["latest"]["tasks"] == 2
    assert "Not finished yet:** baas (2 of 3 tasks)" in (folder / "report.md").read_text()

    line = error_line(baas(*forgetting_args(tiny_backbone_dir("bert"), tmp_path, "run", "baas,lora2"), env=cli_env, check=False))
    assert "unknown method 'lora2'" in line and "olora" in line


def test_a_killed_run_resumes_to_the_figures_of_an_unstopped_one(tiny_backbone_dir, cli_env, tmp_path):
    bb = tiny_backbone_dir("bert")
    unstopped = last_json(baas(*forgetting_args(bb, tmp_path, "whole"), env=cli_env))
    args = [str(a) for a in forgetting_args(bb, tmp_path, "killed")]
    cells = tmp_path / "killed" / "cells.jsonl"
    kills = 0
    for lines in (4, 14, 26):  # kill once the results file has this many lines: in baas, naive, then ewc
        proc = subprocess.Popen(BAAS + args, env=cli_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None and (not cells.is_file() or len(cells.read_text().splitlines()) < lines):
            time.sleep(0.05)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
    assert kills >= 2
    resumed = last_json(baas(*args, env=cli_env))
    assert figures(resumed) == figures(unstopped)


BASELINES = "prompt_tuning,prefix_tuning,p_tuning,lora,adalora,dora,olora,full_ft"


def test_peft_baselines_run_the_protocol_and_resume_from_their_saved_states(tiny_backbone_dir, cli_env, tmp_path):
    args = ["eval-forgetting", "--backbone", tiny_backbone_dir("bert"), "--store", tmp_path / "store", "--out", tmp_path / "run",
            "--methods", BASELINES, "--tasks", "demo_animal_sounds,demo_categories", "--max-train", 24, "--max-eval", 16,
            "--epochs", 1, "--json"]
    whole = last_json(baas(*args, env=cli_env))
    for name in BASELINES.split(","):
        m = whole["methods"][name]
        assert len(m["accuracy_matrix"]) == 2 and m["accuracy_matrix"][0][0] is not None
        assert m["lr"] in m["lr_scores"] or float(m["lr"]) in [float(x) for x in m["lr_scores"]]  # chosen on validation
        assert m["parameters"]["trainable"] > 0
    full, lora = whole["methods"]["full_ft"]["parameters"], whole["methods"]["lora"]["parameters"]
    # every backbone weight against a low-rank adapter (each beside the same scoring head: on the tiny model the
    # default head, both, is about a third of what LoRA trains)
    assert lora["trainable"] < full["trainable"] / 5
    # Stopped after the first task: only that task's cells are kept; the rerun reads each method's saved state
    # after task 1 from the store, trains task 2, and ends with the same figures.
    cells = tmp_path / "run" / "cells.jsonl"
    kept = [line for line in cells.read_text().splitlines() if '"k": 1' not in line]
    cells.write_text("\n".join(kept) + "\n")
    with sqlite3.connect(tmp_path / "store" / "catalog.sqlite") as db:  # and no state after task 2 was saved
        assert db.execute("DELETE FROM artifacts WHERE kind = 'state' AND name LIKE '%-k1'").rowcount == 8
    resumed = last_json(baas(*args, env=cli_env))
    assert figures(resumed) == figures(whole)


def test_prefix_tuning_on_a_model_without_a_cache_is_refused_before_anything_trains(tiny_backbone, tmp_path):
    from baas.store import Store
    from baas.training.continual import Budget, Settings, run_protocol

    settings = Settings(tasks=["demo_animal_sounds", "demo_categories"], budget=Budget(24, 16, 1, 0))
    with pytest.raises(BaasError, match="PEFT prefix tuning cannot run on .*MPNetModel.*use prompt_tuning"):
        run_protocol(settings, ["naive", "prefix_tuning"], ["hard"], tiny_backbone("mpnet"), Store(tmp_path / "store"), tmp_path / "run")
    assert not (tmp_path / "run" / "cells.jsonl").exists()  # refused up front, not after naive's hours
    report = run_protocol(settings, ["prompt_tuning"], ["hard"], tiny_backbone("mpnet"), Store(tmp_path / "store"), tmp_path / "run2")
    assert report["failed"] == {} and report["methods"]["prompt_tuning"]["average_accuracy"] is not None


def test_a_failing_method_is_reported_and_the_others_go_on(tiny_backbone, tmp_path, monkeypatch):
    from baas.store import Store
    from baas.training import continual
    from baas.training.continual import Budget, Naive, Settings, run_protocol

    class Broken(Naive):
        key = "broken"
        fail = True

        def learn(self, k):
            if k == 1 and Broken.fail:
                raise RuntimeError("out of coffee")
            super().learn(k)

    monkeypatch.setitem(continual.METHODS, "broken", Broken)
    settings = Settings(tasks=["demo_animal_sounds", "demo_categories"], budget=Budget(24, 16, 1, 0))
    bb, store, out = tiny_backbone("bert"), Store(tmp_path / "store"), tmp_path / "run"
    report = run_protocol(settings, ["broken", "naive"], ["hard"], bb, store, out)
    assert report["failed"] == {"broken": {"task": 2, "error": "RuntimeError: out of coffee"}}
    assert report["methods"]["naive"]["steps_done"] == 2 and report["methods"]["naive"]["average_accuracy"] is not None
    assert report["methods"]["broken"]["steps_done"] == 1
    assert run_protocol(settings, ["broken", "naive"], ["hard"], bb, store, out, report_only=True)["failed"] == report["failed"]
    Broken.fail = False  # the cause is gone: the same command retries the method from its saved task-1 state
    again = run_protocol(settings, ["broken", "naive"], ["hard"], bb, store, out)
    assert again["failed"] == {} and again["methods"]["broken"]["steps_done"] == 2
    assert again["methods"]["broken"]["accuracy_matrix"] == again["methods"]["naive"]["accuracy_matrix"]


def test_a_protocol_run_never_removes_or_changes_an_entry_it_did_not_make(tiny_backbone, tmp_path, monkeypatch):
    """A user's entry that the protocol reuses as one of its first-task learning-rate tries, and that loses,
    stays in the bank as it was: same version, same file checksum (it used to be removed as a losing try)."""
    from dataclasses import replace

    from baas.store import Store
    from baas.training.config import TrainConfig
    from baas.training.continual import Baas, Budget, Settings, run_protocol
    from baas.training.data import load_task_data
    from baas.training.trainer import train_pair

    bb, store, task = tiny_backbone("bert"), Store(tmp_path / "store"), "demo_animal_sounds"
    settings = Settings(tasks=[task, "demo_categories"], budget=Budget(24, 16, 1, 0), lr_grid=(1e-2, 3e-2))
    # The user's own entry, trained with the data and settings of the protocol's 1e-2 try (so it is reused).
    mine = train_pair(task, load_task_data(task, max_train=24, max_eval=16), bb, store,
                      replace(TrainConfig(), epochs=1, seed=0, lr=1e-2))
    before = store.describe(task, mine["version"])

    found = []
    entry = Baas.entry

    def reused_loses(self, task, lr):  # whatever the scores, the entry found in the store is the losing try
        version, accuracy, reused = entry(self, task, lr)
        found.append(reused)
        return version, (-1.0 if reused else accuracy), reused

    monkeypatch.setattr(Baas, "entry", reused_loses)
    report = run_protocol(settings, ["baas"], ["hard"], bb, store, tmp_path / "run")
    assert report["failed"] == {} and any(found)  # the user's entry was one of the tries, and it lost
    after = store.describe(task, mine["version"])
    assert (after["version"], after["sha256"], after["path"]) == (before["version"], before["sha256"], before["path"])
    assert store.load_entry(task, mine["version"]).version == mine["version"]
    versions = [v["version"] for v in store.versions(task)]
    assert versions == [mine["version"] + 1, mine["version"]]  # the winning try was added beside it, no loser left


def test_eval_forgetting_keeps_its_bank_in_its_own_store_unless_told(tiny_backbone_dir, cli_env, tmp_path):
    """Without --store the protocol's entries go to OUT/store: the user's default store is left as it was."""
    bb = tiny_backbone_dir("bert")
    trained = last_json(baas("train-task", "demo_animal_sounds", "--backbone", bb, "--max-train", 24, "--max-eval", 16,
                             "--epochs", 1, "--json", env=cli_env))
    home = [dict(task=r["task"], version=r["version"], versions=r["versions"], sha256=r["sha256"])
            for r in last_json(baas("bank", "list", "--json", env=cli_env))["entries"]]
    assert [(r["task"], r["version"]) for r in home] == [("demo_animal_sounds", trained["version"])]
    report = last_json(baas("eval-forgetting", "--backbone", bb, "--out", tmp_path / "run", "--methods", "baas",
                            "--tasks", "demo_animal_sounds,demo_categories", "--max-train", 24, "--max-eval", 16,
                            "--epochs", 1, "--json", env=cli_env))
    assert report["failed"] == {}
    again = [dict(task=r["task"], version=r["version"], versions=r["versions"], sha256=r["sha256"])
             for r in last_json(baas("bank", "list", "--json", env=cli_env))["entries"]]
    assert again == home  # nothing added to, removed from or changed in the user's bank
    own = last_json(baas("bank", "list", "--store", tmp_path / "run" / "store", "--json", env=cli_env))["entries"]
    assert {r["task"] for r in own} == {"demo_animal_sounds", "demo_categories"}


def test_ewc_chooses_its_lambda_on_the_first_two_tasks_validation(tiny_backbone, tmp_path):
    """Task 2 is trained once per lambda from the state after task 1; the lambda with the best mean validation
    accuracy over tasks 1 and 2 is kept and recorded, and a resumed run keeps it."""
    from baas.store import Store
    from baas.training.config import TrainConfig
    from baas.training.continual import EWC, Budget, Settings, run_protocol

    def run():
        settings = Settings(tasks=["demo_animal_sounds", "demo_categories"], budget=Budget(16, 8, 1, 0),
                            config=TrainConfig(batch_size=4), lr_grid=(1e-2,))
        return run_protocol(settings, ["ewc"], ["hard"], tiny_backbone("bert"), Store(tmp_path / "store"), tmp_path / "out")

    original = EWC.lambda_grid
    EWC.lambda_grid = (0.0, 1e9)  # no penalty, against one that pins task 1's parameters
    try:
        out = run()
        assert not out["failed"], out["failed"]
        ewc = out["methods"]["ewc"]
        scores = {float(k): v for k, v in ewc["ewc_lambda_scores"].items()}
        assert set(scores) == {0.0, 1e9} and ewc["ewc_lambda"] == max(scores, key=scores.get)
        again = run()["methods"]["ewc"]
        assert again["ewc_lambda"] == ewc["ewc_lambda"] and again["accuracy_matrix"] == ewc["accuracy_matrix"]
        assert again["reused_steps"] == 0  # every step was recorded before: nothing was run again
    finally:
        EWC.lambda_grid = original


def test_the_strategy_shown_as_baas_is_the_one_its_cells_were_made_with(tiny_backbone, tmp_path):
    """`baas` cells are those of the first --strategies of the run that made them. Resuming with another first
    is refused (it would mix two strategies in one matrix); --report-only may show another first, relabelled.
    A folder from before the strategies were recorded with the steps is read from the names its cells have."""
    import json

    from baas.store import Store
    from baas.training.continual import Budget, Settings, run_protocol

    settings = Settings(tasks=["demo_animal_sounds", "demo_categories"], budget=Budget(24, 16, 1, 0))
    bb, store, out = tiny_backbone("bert"), Store(tmp_path / "store"), tmp_path / "run"
    with pytest.raises(BaasError, match="holds no results yet"):
        run_protocol(settings, ["baas"], ["hard"], bb, store, out, report_only=True)
    assert not (out / "cells.jsonl").exists()  # (it used to leave a header-only results file behind)
    made = run_protocol(settings, ["baas"], ["hard", "soft"], bb, store, out)["methods"]
    hard, soft = made["baas"]["accuracy_matrix"], made["baas:soft"]["accuracy_matrix"]
    with pytest.raises(BaasError, match="name `baas` the strategy 'hard'.*resume with 'hard' first"):
        run_protocol(settings, ["baas"], ["soft", "hard"], bb, store, out)
    shown = run_protocol(settings, ["baas"], ["soft", "hard"], bb, store, out, report_only=True)["methods"]
    assert shown["baas"]["accuracy_matrix"] == soft and shown["baas:hard"]["accuracy_matrix"] == hard
    with pytest.raises(BaasError, match="no cells of the strategy 'topk2'"):
        run_protocol(settings, ["baas"], ["topk2", "hard", "soft"], bb, store, out, report_only=True)
    lines = [json.loads(line) for line in (out / "cells.jsonl").read_text().splitlines()]
    assert all(r["strategies"] == ["hard", "soft"] for r in lines if r["type"] == "step")
    for r in lines:  # the same folder as an older run wrote it: no strategies with its steps
        r.pop("strategies", None)
    (out / "cells.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    shown = run_protocol(settings, ["baas"], ["soft", "hard"], bb, store, out, report_only=True)["methods"]
    assert shown["baas"]["accuracy_matrix"] == soft and shown["baas:hard"]["accuracy_matrix"] == hard
    with pytest.raises(BaasError, match="cannot tell which strategy.*topk2, hard"):
        run_protocol(settings, ["baas"], ["topk2", "hard", "soft"], bb, store, out, report_only=True)


"""`baas eval-forgetting` for a user about to start hours of work: the plan and a rough time shown (and confirmed
on a terminal) first, a `--config run.toml` kept beside the results, and plots fit for a paper."""

import tomllib

import pytest
import torch
from test_cli import baas, error_line, last_json

from baas.cli.main import app
from baas.training.backbone.device import resolve_precision

TASKS = "demo_animal_sounds,demo_categories"


def test_plan_counts_methods_tasks_and_budget_without_a_probe():
    from baas.training.api.protocol import plan_forgetting

    plan = plan_forgetting("a,b,c", "naive,zero_shot", max_train=40, max_eval=24, epochs=2, probe=False)
    assert plan["methods"] == ["naive", "zero_shot"] and plan["tasks"] == ["a", "b", "c"]
    assert plan["budget"] == dict(max_train=40, max_eval=24, epochs=2)
    # naive: 10 steps an epoch, 2 epochs, 3 tasks plus the first task again for each further learning rate
    from baas.training.continual import METHODS

    grid = len(METHODS["naive"].lr_grid or (1, 2, 3))
    assert plan["train_steps"] == 20 * (3 + grid - 1)  # zero_shot trains nothing
    assert plan["eval_questions"] == 2 * 6 * 24  # two methods, the 6 cells of a 3-task triangle
    assert "estimated_seconds" not in plan


def test_a_terminal_is_shown_the_plan_with_a_rough_time_and_asked_before_anything_runs(tiny_backbone_dir, tmp_path,
                                                                                          monkeypatch):
    from typer.testing import CliRunner

    from baas.cli.commands import forgetting

    monkeypatch.setattr(forgetting, "_on_terminal", lambda: True)
    args = ["eval-forgetting", "--backbone", str(tiny_backbone_dir("bert")), "--tasks", TASKS, "--methods", "naive",
            "--max-train", "8", "--max-eval", "8", "--epochs", "1", "--out", str(tmp_path / "run")]
    ran = CliRunner().invoke(app, args, input="n\n")
    assert ran.exit_code == 1, ran.output
    assert "1 method x 2 tasks" in ran.stderr and "roughly" in ran.stderr and "rough guide" in ran.stderr
    assert "Start?" in ran.stderr
    assert not (tmp_path / "run" / "cells.jsonl").exists()  # nothing ran


def test_config_file_fills_in_options_the_command_line_wins_and_the_run_keeps_its_config(tiny_backbone_dir, cli_env,
                                                                                          tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(f'tasks = ["demo_animal_sounds", "demo_categories"]\nmethods = "zero_shot"\nmax_train = 8\n'
                      f'max-eval = 24\nepochs = 1\nbackbone = "{tiny_backbone_dir("bert")}"\n')
    out = tmp_path / "run"
    ran = baas("eval-forgetting", "--config", config, "--max-eval", 12, "--out", out, "--json", env=cli_env)
    report = last_json(ran)  # not a terminal: no question asked, the plan on stderr, stdout one JSON line
    assert "plan: 1 method x 2 tasks" in ran.stderr and "roughly" in ran.stderr and "Start?" not in ran.stderr
    assert report["tasks"] == ["demo_animal_sounds", "demo_categories"] and set(report["methods"]) == {"zero_shot"}
    assert report["budget"]["max_eval"] == 12 and report["budget"]["max_train"] == 8  # the flag won, the file filled in
    kept = tomllib.loads((out / "run.toml").read_text())
    assert kept["max-eval"] == 12 and kept["tasks"] == TASKS and kept["methods"] == "zero_shot" and kept["out"] == str(out)
    assert "json" not in kept and "yes" not in kept
    # what auto resolved to on this CPU, written down: a folder resumes on its own precision
    assert kept["precision"] == resolve_precision("auto", torch.device("cpu"))
    again = last_json(baas("eval-forgetting", "--config", out / "run.toml", "--report-only", "--json", env=cli_env))
    assert again["methods"]["zero_shot"]["accuracy_matrix"] == report["methods"]["zero_shot"]["accuracy_matrix"]


def test_yes_starts_at_once_on_a_terminal_after_the_plan(tiny_backbone_dir, cli_env, tmp_path, monkeypatch):
    from baas.cli.commands import forgetting

    monkeypatch.setattr(forgetting, "_on_terminal", lambda: True)
    ran = baas("eval-forgetting", "--backbone", tiny_backbone_dir("bert"), "--tasks", TASKS, "--methods", "zero_shot",
               "--max-eval", 8, "--out", tmp_path / "run", "--yes", "--json", env=cli_env)
    assert "plan: 1 method x 2 tasks" in ran.stderr and "Start?" not in ran.stderr
    assert set(last_json(ran)["methods"]) == {"zero_shot"}


@pytest.mark.parametrize("text, message", [
    ("epochs = 1\nmax_trian = 8\n", "unknown key 'max_trian'; valid keys: backbone, data-dir,"),
    ("epochs = 0\n", "key 'epochs': Invalid value for '--epochs'"),
    ("epochs = [\n", "not valid TOML"),
])
def test_a_wrong_config_file_is_one_error_line_naming_the_file_and_key(cli_env, tmp_path, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    line = error_line(baas("eval-forgetting", "--config", config, "--out", tmp_path / "run", env=cli_env, check=False))
    assert line.startswith(f"--config {config}: ") and message in line
    assert not (tmp_path / "run").exists()


def hand_built_report() -> dict:
    """Three tasks; baas and baas:cluster identical (one panel), naive with its forward-transfer cells, multitask
    with only its last row, the oracle without cells before a task's entry exists."""
    tasks = ["alpha", "beta", "gamma"]
    baas = [[0.62, 0.30, None], [0.60, 0.55, 0.28], [0.58, 0.52, 0.70]]
    naive = [[0.62, 0.31, None], [0.35, 0.57, 0.27], [0.30, 0.33, 0.71]]
    n = [[50 if v is not None else None for v in row] for row in naive]
    methods = {"baas": dict(accuracy_matrix=baas, n_matrix=n), "baas:cluster": dict(accuracy_matrix=baas, n_matrix=n),
               "oracle": dict(accuracy_matrix=[[0.62, None, None], [0.62, 0.57, None], [0.62, 0.57, 0.71]]),
               "naive": dict(accuracy_matrix=naive, n_matrix=n),
               "multitask": dict(accuracy_matrix=[[None] * 3, [None] * 3, [0.5, 0.45, 0.66]])}
    return dict(tasks=tasks, orders=[tasks], chance={"alpha": 0.25, "beta": 0.2, "gamma": 0.5}, methods=methods)


def test_the_plots_are_drawn_from_a_report_with_undefined_cells(tmp_path):
    from baas.training.continual.plots import plots

    paths = plots(hand_built_report(), tmp_path)
    assert [p.name for p in paths] == ["accuracy_matrix.png", "forgetting_curves.png"]
    assert all(p.stat().st_size > 10_000 for p in paths)


def test_the_heatmaps_span_the_data_mark_undefined_cells_and_share_identical_panels():
    import matplotlib

    matplotlib.use("Agg")
    from baas.training.continual.plots import accuracy_matrix_figure

    fig = accuracy_matrix_figure(hand_built_report())
    shown = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in shown] == ["baas = baas:cluster", "oracle", "naive", "multitask"]
    image = shown[0].images[0]
    assert image.get_clim() == (0.27, 0.71)  # the data's range, not 0-1
    for ax in shown:
        assert [t.get_text() for t in ax.get_xticklabels()] == ["alpha", "beta", "gamma"]
        assert [t.get_text() for t in ax.get_yticklabels()] == ["alpha", "beta", "gamma"]
        assert min(t.get_fontsize() for t in ax.texts) >= 8
    marks = [t.get_text() for t in shown[3].texts]
    assert marks.count("–") == 6 and "0.66" in marks  # multitask: only its last row


def test_the_curves_have_task_names_as_ticks_a_chance_line_bars_and_no_forward_transfer_in_the_curve():
    import matplotlib

    matplotlib.use("Agg")
    from baas.training.continual.plots import forgetting_curves_figure

    fig = forgetting_curves_figure(hand_built_report())
    naive = next(ax for ax in fig.axes if ax.get_title() == "naive")
    assert [t.get_text() for t in naive.get_xticklabels()] == ["alpha", "beta", "gamma"]
    assert min(t.get_fontsize() for t in naive.get_xticklabels()) >= 8
    chance = sorted(round(seg[0][1], 3) for c in naive.collections if c.get_linestyle()[0][1] for seg in c.get_segments()
                    if seg[0][1] == seg[1][1])
    assert chance == [0.2, 0.25, 0.5]  # one dotted chance line per task
    curves = {c.get_label(): c.lines[0] for c in naive.containers}  # each task's errorbar: its line and bars
    # beta's curve starts where beta is trained (after task 2): its forward-transfer cell (0.31) is apart
    assert list(curves["beta"].get_ydata()) == [0.57, 0.33]
    assert 0.31 in [y for line in naive.lines if line.get_linestyle() == "None" for y in line.get_ydata()]
    bars = [c for c in naive.collections if c.get_segments() and c.get_segments()[0][0][0] == c.get_segments()[0][1][0]]
    assert bars  # vertical interval bars (n = 50 per cell)

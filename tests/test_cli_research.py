"""What researchers look for (issue 25 §5), as a user runs it: `baas runs` (the runs log), `baas bank routers`,
`eval-task --split / --on / --predictions`, `train-task --seeds` with the mean ± sd of the accuracy, and a run's
options kept in a file (`--config run.toml`)."""

import json
import statistics

import pytest
import torch

import baas
from baas.training.backbone import resolve_precision
from baas.training.metrics import wilson_interval
from test_cli import TINY_TRAIN, baas as run_baas, error_line, last_json


def test_seeds_runs_and_eval_options(tiny_backbone_dir, cli_env, tmp_path):
    bb, store = tiny_backbone_dir("bert"), tmp_path / "store"
    seeded = last_json(run_baas("train-task", "demo_categories", "--backbone", bb, "--store", store, *TINY_TRAIN,
                                "--seeds", 2, "--json", env=cli_env))
    # one version of the entry per seed (seeds from --seed, 0), and the mean ± sd of their accuracies
    assert seeded["seeds"] == [0, 1] and [r["version"] for r in seeded["runs"]] == [1, 2]
    assert [r["config"]["seed"] for r in seeded["runs"]] == [0, 1]
    accuracies = [r["accuracy"] for r in seeded["runs"]]
    assert seeded["mean_accuracy"] == statistics.fmean(accuracies) and seeded["sd_accuracy"] == statistics.stdev(accuracies)
    # each seed's accuracy with its Wilson interval; the mean's over the 24 questions every seed answered
    assert [r["accuracy_interval"] for r in seeded["runs"]] == [wilson_interval(round(24 * a), 24) for a in accuracies]
    assert seeded["n_eval"] == 24 and seeded["accuracy_interval"] == wilson_interval(24 * seeded["mean_accuracy"], 24)
    again = run_baas("train-task", "demo_categories", "--backbone", bb, "--store", store, *TINY_TRAIN, "--seeds", "1,0",
                     env=dict(cli_env, COLUMNS="200"))
    assert "demo_categories@v2 (reused)" in again.stdout and "accuracy over 2 seeds" in again.stdout  # nothing trained
    assert "± " in again.stdout
    low, high = seeded["accuracy_interval"]
    assert f"95% interval [{low:.3f}, {high:.3f}] over the 24 questions every seed answered" in again.stdout
    narrow = run_baas("train-task", "demo_categories", "--backbone", bb, "--store", store, *TINY_TRAIN, "--seeds", 2,
                      env=dict(cli_env, COLUMNS="80")).stdout
    low, high = seeded["runs"][0]["accuracy_interval"]
    assert max(map(len, narrow.splitlines())) <= 80 and f"[{low:.3f}, {high:.3f}]" in narrow and "n=24" in narrow, narrow
    assert "--seeds" in run_baas("train-task", "demo_categories", "--store", store, "--seeds", "x", env=cli_env, check=False).stderr

    # baas runs: the train runs of the log (the reruns were reused: no run), the API gives the same
    listed = last_json(run_baas("runs", "--store", store, "--json", env=cli_env))
    assert listed == json.loads(json.dumps(baas.runs(store).to_dict()))
    runs = listed["runs"]
    assert [(r["task"], r["kind"], r["status"]) for r in runs] == [("demo_categories", "train", "done")] * 2
    assert [r["accuracy"] for r in runs] == accuracies and all(r["n_eval"] == 24 and r["eval_split"] == "test" for r in runs)
    assert [r["accuracy_interval"] for r in runs] == [r["accuracy_interval"] for r in seeded["runs"]]
    assert runs[0]["settings"]["epochs"] == 1 and runs[1]["settings"]["seed"] == 1
    assert not {"seed", "device"} & set(runs[0]["settings"])  # defaults, and where it ran, are no settings
    # the precision auto resolved to is one where it is not fp32 (bf16 on a CPU with native bf16)
    assert runs[0]["settings"].get("precision", "fp32") == resolve_precision("auto", torch.device("cpu"))
    assert runs[0]["seconds"] > 0 and runs[0]["settings"]["backbone"] == runs[0]["config"]["backbone"]
    table = run_baas("runs", "--store", store, env=dict(cli_env, COLUMNS="200")).stdout
    assert "demo_categories" in table and "done" in table and "n=24 test" in table
    low, high = runs[0]["accuracy_interval"]
    narrow = run_baas("runs", "--store", store, env=dict(cli_env, COLUMNS="80")).stdout
    assert max(map(len, narrow.splitlines())) <= 80 and f"[{low:.3f}, {high:.3f}]" in narrow, narrow

    # eval-task --split validation: the validation questions; the default stays the evaluation split
    val = last_json(run_baas("eval-task", "demo_categories@v1", "--store", store, "--max-eval", 24, "--split", "validation",
                             "--json", env=cli_env))
    assert val["eval_split"] == "validation" and val["n_eval"] == 24 and val["dataset"] == val["entry_dataset"] == "demo_categories"
    assert "expected one of eval, validation" in error_line(run_baas("eval-task", "demo_categories", "--store", store, "--split", "train",
                                                    env=cli_env, check=False))
    # --on another dataset's questions, --predictions: each question's answer and option scores
    out = tmp_path / "opposites.jsonl"
    on = last_json(run_baas("eval-task", "demo_categories@v1", "--store", store, "--max-eval", 16, "--on", "demo_opposites",
                            "--predictions", out, "--json", env=cli_env))
    assert (on["task"], on["dataset"], on["entry_dataset"], on["n_eval"]) == ("demo_categories", "demo_opposites",
                                                                             "demo_categories", 16)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert on["predictions_file"] == str(out) and len(rows) == 16 and [r["answer"] for r in rows] == on["predictions"]
    for r in rows:
        assert len(r["scores"]) == len(r["options"]) and r["scores"].index(max(r["scores"])) == r["answer"]
        assert r["correct"] == (r["answer"] == r["label"])
    assert on["accuracy"] == sum(r["correct"] for r in rows) / 16
    evals = last_json(run_baas("runs", "--store", store, "--evals", "--json", env=cli_env))["runs"]
    assert [(r["kind"], r["eval_split"], r["n_eval"], r["accuracy"]) for r in evals] == [("eval", "validation", 24, val["accuracy"]),
                                                                                       ("eval", "test", 16, on["accuracy"])]
    assert evals[1]["dataset"] == "demo_opposites" and evals[1]["settings"]["version"] == 1
    assert "demo_categories on demo_opposites" in run_baas("runs", "--evals", "--store", store, env=dict(cli_env, COLUMNS="200")).stdout


def test_bank_routers_lists_the_saved_routers(tiny_backbone, cli_env, tmp_path):
    bb, store = tiny_backbone("bert"), tmp_path / "store"
    baas.train_task("demo_opposites", store=store, backbone=bb, progress=False, max_train=40, max_eval=16, epochs=1,
                    prefix_len=2, suffix_len=2, batch_size=4, max_length=48)
    assert last_json(run_baas("bank", "routers", "--store", store, "--json", env=cli_env))["routers"] == []
    assert "no saved routers" in run_baas("bank", "routers", "--store", store, env=cli_env).stdout
    baas.Bank(store, bb).fuse("hard")
    listed = last_json(run_baas("bank", "routers", "--store", store, "--json", env=cli_env))["routers"]
    assert [(r["name"], r["strategy"], r["entries"], r["problems"]) for r in listed] == [("hard", "hard", ["demo_opposites@v1"], [])]
    table = run_baas("bank", "routers", "--store", store, env=dict(cli_env, COLUMNS="200")).stdout
    assert "hard" in table and "demo_opposites@v1" in table


def test_seeds_are_a_count_or_distinct_seeds(tmp_path):
    for seeds in (0, [], [1, 1]):
        with pytest.raises(baas.BaasError, match="seeds"):
            baas.train_seeds("demo_categories", seeds, store=tmp_path)
    assert not (tmp_path / "catalog.sqlite").exists()  # refused before anything was opened or trained


def test_train_eval_and_fuse_read_a_config_file_and_the_command_line_wins(tiny_backbone_dir, cli_env, tmp_path):
    bb, store = tiny_backbone_dir("bert"), tmp_path / "store"
    config = tmp_path / "run.toml"
    config.write_text(f'backbone = "{bb}"\nstore = "{store}"\nmax_train = 20\nmax-eval = 16\nepochs = 1\nprefix-len = 2\n'
                      'suffix_len = 2\nbatch_size = 4\nmax_length = 48\nseeds = 1\n')
    trained = last_json(run_baas("train-task", "demo_categories", "--config", config, "--max-eval", 24, "--json", env=cli_env))
    run = trained["runs"][0]  # seeds = 1 in the file: a SeedsResult of one seed
    assert (run["n_train"], run["n_eval"]) == (20, 24)  # the file filled in, the command line won
    assert (run["config"]["epochs"], run["config"]["prefix_len"], run["config"]["batch_size"]) == (1, 2, 4)
    # eval-task and fuse read their options from a file too
    (tmp_path / "eval.toml").write_text(f'store = "{store}"\nmax_eval = 8\nsplit = "validation"\n')
    evaluated = last_json(run_baas("eval-task", "demo_categories", "--config", tmp_path / "eval.toml", "--json", env=cli_env))
    assert (evaluated["n_eval"], evaluated["eval_split"]) == (8, "validation")
    (tmp_path / "fuse.toml").write_text(f'store = "{store}"\nmax-eval = 8\nstrategy = "soft"\n')
    fused = last_json(run_baas("fuse", "--config", tmp_path / "fuse.toml", "--max-eval", 12, "--json", env=cli_env))
    assert fused["strategy"] == "soft" and fused["per_task"][0]["n"] == 12
    line = error_line(run_baas("train-task", "demo_categories", "--config", tmp_path / "eval.toml", env=cli_env, check=False))
    assert line.startswith(f"--config {tmp_path / 'eval.toml'}: unknown key 'split'")

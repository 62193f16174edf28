"""The `baas` command as a user runs it: real files, one JSON line, one error line. Commands run in this process
through click's test runner; the entry point itself, a kill and `--help` run as real subprocesses."""

import json
import re
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import NamedTuple

from safetensors.torch import load_file
from typer.testing import CliRunner

from baas.cli.main import app
from baas.store import Store
from baas.training.metrics import wilson_interval

BAAS = [sys.executable, "-m", "baas.cli.main"]
TINY_TRAIN = ["--max-train", "40", "--max-eval", "24", "--epochs", "1", "--prefix-len", "2", "--suffix-len", "2",
              "--batch-size", "4", "--max-length", "48"]


class Ran(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def baas(*args, env, check=True, real_process=False):
    """Run `baas ARGS` with environment `env`. In this process by default (through click's test runner, which swaps
    stdin, stdout, stderr and the environment for the call, so torch and transformers are imported once for the
    whole file); `real_process=True` starts `python -m baas.cli.main` as a user's shell does."""
    args = [str(a) for a in args]
    if real_process:
        ran = subprocess.run(BAAS + args, capture_output=True, text=True, env=env, timeout=300)
    else:
        changes = {k: v for k, v in env.items() if os.environ.get(k) != v} | {k: None for k in os.environ if k not in env}
        result = CliRunner().invoke(app, args, env=changes)
        stderr = result.stderr
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            stderr += "".join(traceback.format_exception(result.exception))
        ran = Ran(result.exit_code, result.stdout, stderr)
    if check and ran.returncode != 0:
        raise AssertionError(f"baas {' '.join(args)} failed ({ran.returncode}):\n{ran.stderr}")
    return ran


def last_json(proc):
    return json.loads(proc.stdout.strip().splitlines()[-1])


def error_line(proc) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    return lines[0][len("error: "):]


def test_train_eval_and_bank(tiny_backbone_dir, cli_env, tmp_path):
    bb = tiny_backbone_dir("bert")
    store = tmp_path / "store"
    proc = baas("train-task", "demo_categories", "--backbone", bb, "--store", store, *TINY_TRAIN, "--json", env=cli_env)
    result = last_json(proc)
    # No terminal here: progress comes as plain lines, one per finished stage, with its time and last loss,
    # and while a stage runs, one every 10% (or 30 s): 10 steps, so one per step but the last.
    assert re.search(r"^demo_categories epoch 1/1: 10 done in [0-9.]+ s, last loss [0-9.]+$", proc.stderr, re.M), proc.stderr
    said = re.findall(r"^demo_categories epoch 1/1: (\d+)/10 \((\d+)%\), [0-9.]+ s, loss [0-9.]+$", proc.stderr, re.M)
    assert said == [(str(i), str(10 * i)) for i in range(1, 10)], proc.stderr
    for key in ("task", "accuracy", "macro_precision", "macro_recall", "macro_f1", "chance", "n_train", "n_eval",
                "eval_split", "seconds", "bank_file"):
        assert key in result
    assert result["n_train"] == 40 and result["n_eval"] == 24
    # every accuracy comes with its count and its 95% (Wilson) interval, in the JSON and in the table
    interval = wilson_interval(round(result["accuracy"] * 24), 24)
    assert result["accuracy_interval"] == interval
    shown = f"[{interval[0]:.3f}, {interval[1]:.3f}]"  # printed whole: a table never breaks it
    # the default scoring, both: the joint head (weight, bias) and dual's scale and low-rank projection
    assert set(load_file(result["bank_file"])) == {"prefix", "suffix", "head_weight", "head_bias", "head_scale",
                                                   "head_proj_in", "head_proj_out", "key", "gate"}

    evaluated = last_json(baas("eval-task", "demo_categories", "--store", store, "--max-eval", 24, "--json", env=cli_env))
    assert evaluated["accuracy"] == result["accuracy"] and evaluated["eval_split"] == "test"
    assert evaluated["accuracy_interval"] == interval

    listed = last_json(baas("bank", "list", "--store", store, "--json", env=cli_env))
    assert [e["task"] for e in listed["entries"]] == ["demo_categories"]
    assert listed["entries"][0]["metrics"]["accuracy_interval"] == interval
    described = last_json(baas("bank", "show", "demo_categories", "--store", store, "--json", env=cli_env))
    assert described["tensors"]["prefix"] == [2, 2, 32]  # depth: every layer of the tiny model (the default), 2 vectors, hidden 32
    assert described["metrics"]["accuracy_interval"] == interval
    for columns in ("80", "200"):  # every table fits the terminal and splits no word (nor an interval)
        for args in (["bank", "list"], ["bank", "show", "demo_categories"], ["eval-task", "demo_categories", "--max-eval", 24]):
            human = baas(*args, "--store", store, env=dict(cli_env, COLUMNS=columns)).stdout
            assert max(len(line) for line in human.splitlines()) <= int(columns), human
            assert "demo_categories" in human and f"{result['accuracy']:.3f}" in human, human
            assert shown in human and "n=24 test" in human, human
    refused = error_line(baas("bank", "rm", "demo_categories", "--store", store, env=cli_env, check=False))
    assert "without confirmation: rerun with --yes" in refused  # no terminal to ask on, and no --yes
    assert last_json(baas("bank", "rm", "demo_categories", "--store", store, "--yes", "--json", env=cli_env))["removed_versions"] == 1
    assert last_json(baas("bank", "list", "--store", store, "--json", env=cli_env))["entries"] == []


def test_store_from_environment(tiny_backbone_dir, cli_env, tmp_path):
    env = dict(cli_env, BAAS_HOME=str(tmp_path / "elsewhere"))
    baas("train-task", "demo_opposites", "--backbone", tiny_backbone_dir("bert"), *TINY_TRAIN, env=env)
    assert (tmp_path / "elsewhere" / "bank" / "demo_opposites" / "v1.safetensors").is_file()


def test_malformed_row_error(tmp_path, cli_env):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "train.jsonl").write_text('{"question": "q?", "options": ["a", "b"], "label": 0}\n'
                                                    '{"question": "q?", "options": ["a", "b"], "label": "x"}\n')
    line = error_line(baas("train-task", "mine", "--data-dir", tmp_path, env=cli_env, check=False))
    assert line.startswith(f"{tmp_path / 'mine' / 'train.jsonl'}:2: field 'label': expected an integer")


def test_a_file_that_is_not_utf8_is_one_line_with_status_2(tmp_path, cli_env):
    """A latin-1 file gave a 48-line UnicodeDecodeError traceback and status 1, also with --skip-invalid and in
    `predict --file`."""
    rows = [{"id": str(i), "question": f"Which is hot {i}?", "options": ["ice", "fire"], "label": 1} for i in range(3)]
    rows[1]["question"] = "Où est le café?"
    train = tmp_path / "mine" / "train.jsonl"
    train.parent.mkdir()
    train.write_bytes("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("latin-1"))
    column = json.dumps(rows[1], ensure_ascii=False).index("ù") + 1  # (Où: the first byte that is not UTF-8 is ù's 0xf9)
    expected = f"{train}:2: not UTF-8 (byte 0xf9 at character {column} of the line; save the file as UTF-8)"
    for extra in ([], ["--skip-invalid"]):
        assert error_line(baas("train-task", "mine", "--data-dir", tmp_path, *extra, env=cli_env, check=False)) == expected
    questions = tmp_path / "questions.jsonl"
    questions.write_bytes(train.read_bytes())
    line = error_line(baas("predict", "--file", questions, "--store", tmp_path / "none", env=cli_env, check=False))
    assert line == expected.replace(str(train), str(questions))


def test_small_train_without_validation_is_refused_in_one_line_before_anything_runs(tiny_backbone_dir, tmp_path, cli_env):
    from baas.training.data.loading import _hash_fraction

    kept = [i for i in map(str, range(100)) if _hash_fraction(i) >= 10][:6]  # ids the 10% hold-out (by id hash) leaves
    rows = [{"id": i, "question": f"Which is hot {i}?", "options": ["ice", "fire"], "label": 1} for i in kept]
    (tmp_path / "data" / "few").mkdir(parents=True)
    (tmp_path / "data" / "few" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    line = error_line(baas("train-task", "few", "--data-dir", tmp_path / "data", "--backbone", tiny_backbone_dir("bert"),
                           "--store", tmp_path / "s", env=cli_env, check=False))
    assert "no validation split, and holding out 10% of the 6 training questions leaves no validation question" in line
    assert f"give {tmp_path / 'data' / 'few' / 'validation.jsonl'}" in line
    assert not any((tmp_path / "s").glob("checkpoints/*")) and not any((tmp_path / "s").glob("bank/*"))


def test_unknown_dataset_and_bad_name(cli_env, tmp_path):
    assert "unknown dataset 'nope'" in error_line(baas("train-task", "nope", "--store", tmp_path, env=cli_env, check=False,
                                                                    real_process=True))
    assert "invalid task name '../evil'" in error_line(baas("train-task", "../evil", env=cli_env, check=False))
    assert "no bank entry for task 'ghost'" in error_line(baas("eval-task", "ghost", "--store", tmp_path, env=cli_env, check=False))


def test_corrupt_bank_file_and_wrong_backbone(tiny_backbone_dir, cli_env, tmp_path):
    store = tmp_path / "store"
    result = last_json(baas("train-task", "demo_categories", "--backbone", tiny_backbone_dir("bert"), "--store", store,
                            *TINY_TRAIN, "--json", env=cli_env))
    line = error_line(baas("eval-task", "demo_categories", "--store", store, "--backbone", tiny_backbone_dir("roberta"),
                           env=cli_env, check=False))
    assert "was trained on backbone" in line
    path = Path(result["bank_file"])
    path.write_bytes(path.read_bytes()[:100])
    line = error_line(baas("eval-task", "demo_categories", "--store", store, env=cli_env, check=False))
    assert line.startswith(f"{path}: bank file is corrupt or truncated")


def test_killed_train_task_resumes(tiny_backbone_dir, cli_env, tmp_path):
    store = tmp_path / "store"
    args = ["train-task", "demo_categories", "--backbone", tiny_backbone_dir("bert"), "--store", store, "--max-train", 300,
            "--max-eval", 24, "--epochs", 3, "--batch-size", 1, "--prefix-len", 2, "--suffix-len", 2,
            "--max-length", 48, "--checkpoint-every", 5, "--json"]
    proc = subprocess.Popen(BAAS + [str(a) for a in args], env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    checkpoints = store / "checkpoints" / "demo_categories"
    deadline = time.time() + 120
    while time.time() < deadline and not list(checkpoints.glob("*.pt")) and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)
    assert proc.poll() is None, "training finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not list((store / "bank").glob("**/*.safetensors"))
    resumed = baas(*args, env=cli_env)
    assert "resuming 'demo_categories' from step" in resumed.stderr
    result = last_json(resumed)
    assert result["resumed"] is True and Path(result["bank_file"]).is_file()


def test_datasets_and_help(cli_env, tmp_path):
    names = {r["name"] for r in last_json(baas("datasets", "--json", env=cli_env, real_process=True))["datasets"]}
    assert {"arc_easy", "medqa", "race", "sciq", "demo_categories"} <= names
    for cmd in (["--help"], ["train-task", "--help"], ["eval-task", "--help"], ["bank", "--help"], ["demo", "--help"],
                ["fuse", "--help"], ["predict", "--help"]):
        assert baas(*cmd, env=cli_env).returncode == 0
    assert "--skip-invalid" in baas("train-task", "--help", env=cli_env).stdout
    listed = baas("--help", env=dict(cli_env, COLUMNS="200"), real_process=True).stdout
    assert " fuse " in listed and " predict " in listed


def test_named_entries_versions_and_copied_hub_folders(tiny_backbone_dir, cli_env, tmp_path, shared_mcq):
    bb, store, data = tiny_backbone_dir("bert"), tmp_path / "store", tmp_path / "data"
    copy = data / "arc_small"  # a copy of a hub-layout dataset under another name
    copy.mkdir(parents=True)
    for split in ("train", "validation", "test"):
        (copy / f"{split}.jsonl").write_text("".join((shared_mcq / "arc_easy" / f"{split}.jsonl").read_text().splitlines(True)[:60]))
    plain = error_line(baas("train-task", "arc_small", "--data-dir", data, "--backbone", bb, "--store", store, *TINY_TRAIN,
                            env=cli_env, check=False))
    assert "field 'options'" in plain  # read as baas jsonl unless told otherwise
    common = ["--data-dir", data, "--backbone", bb, "--store", store, *TINY_TRAIN, "--json"]
    deep = last_json(baas("train-task", "arc_small", "--format", "arc_easy", *common, env=cli_env))
    (copy / "baas.json").write_text('{"format": "arc_easy"}')  # or the folder says it once
    head = last_json(baas("train-task", "arc_small", "--name", "arc_small_head", "--prefix-len", 0, "--suffix-len", 0, *common,
                          env=cli_env))
    same = baas("train-task", "arc_small", "--format", "arc_easy", *common, env=cli_env)  # nothing new to train
    assert (last_json(same)["version"], last_json(same)["reused"], last_json(same)["accuracy"]) == (1, True, deep["accuracy"])
    assert "already trained" in same.stderr and "--force" in same.stderr
    again = last_json(baas("train-task", "arc_small", "--format", "arc_easy", *common, "--force", env=cli_env))
    assert (deep["task"], head["task"], again["version"], again["reused"]) == ("arc_small", "arc_small_head", 2, False)
    listed = last_json(baas("bank", "list", "--store", store, "--json", env=cli_env))["entries"]
    assert [(e["task"], e["versions"]) for e in listed] == [("arc_small", 2), ("arc_small_head", 1)]
    assert listed[0]["metrics"]["n_eval"] == 24 and listed[0]["metrics"]["eval_split"] == "test"
    assert listed[0]["metrics"]["max_eval"] == 24
    v1 = last_json(baas("eval-task", "arc_small@v1", "--data-dir", data, "--store", store, "--max-eval", 24, "--json", env=cli_env))
    assert v1["version"] == 1 and v1["accuracy"] == deep["accuracy"]
    assert last_json(baas("eval-task", "arc_small", "--version", 2, "--data-dir", data, "--store", store, "--max-eval", 24,
                          "--json", env=cli_env))["accuracy"] == again["accuracy"]
    shown = last_json(baas("bank", "show", "arc_small@v1", "--store", store, "--json", env=cli_env))
    assert shown["version"] == 1 and shown["meta"]["format"] == "arc_easy"
    assert last_json(baas("bank", "rm", "arc_small@v1", "--store", store, "--yes", "--json", env=cli_env))["removed_versions"] == 1
    listed = last_json(baas("bank", "list", "--store", store, "--json", env=cli_env))["entries"]
    assert [(e["task"], e["version"], e["versions"]) for e in listed] == [("arc_small", 2, 1), ("arc_small_head", 1, 1)]
    bad = error_line(baas("bank", "show", "arc_small@x", "--store", store, env=cli_env, check=False))
    assert "expected NAME or NAME@vN" in bad


def test_export_then_import_scores_identically(tiny_backbone_dir, cli_env, tmp_path):
    bb, store, fresh = tiny_backbone_dir("bert"), tmp_path / "store", tmp_path / "fresh"
    trained = last_json(baas("train-task", "demo_categories", "--backbone", bb, "--store", store, *TINY_TRAIN, "--json", env=cli_env))
    files = last_json(baas("bank", "export", "demo_categories", tmp_path / "shared", "--store", store, "--json", env=cli_env))["files"]
    assert {"entry.safetensors", "baas_entry.json", "README.md"} <= set(files) and any(f.startswith("summaries/") for f in files)
    config = json.loads((tmp_path / "shared" / "baas_entry.json").read_text())
    assert config["backbone"] == str(bb) and config["metrics"]["accuracy"] == trained["accuracy"]
    imported = last_json(baas("bank", "import", tmp_path / "shared", "--name", "cats", "--store", fresh, "--json", env=cli_env))
    assert imported == {"task": "cats", "version": 1}
    again = last_json(baas("eval-task", "cats", "--store", fresh, "--max-eval", 24, "--json", env=cli_env))
    assert again["accuracy"] == trained["accuracy"] and again["macro_f1"] == trained["macro_f1"]
    (tmp_path / "shared" / "entry.safetensors").write_bytes(b"\0" * 64)  # damaged on the way
    line = error_line(baas("bank", "import", tmp_path / "shared", "--store", fresh, env=cli_env, check=False))
    assert "sha256 does not match" in line


def test_datasets_table_fits_80_columns_without_splitting_a_word(cli_env, shared_mcq):
    human = baas("datasets", "--data-dir", shared_mcq, env=dict(cli_env, COLUMNS="80")).stdout
    assert max(len(line) for line in human.splitlines()) <= 80
    for word in ("commonsense_qa", "tau/commonsense_qa", "GBaker/MedQA-USMLE-4-options", "demo_animal_sounds", "local folder"):
        assert word in human, (word, human)


def test_read_only_commands_do_not_create_a_store(cli_env, tmp_path):
    missing = tmp_path / "nowhere"
    for args in (["bank", "list"], ["bank", "show", "arc_easy"], ["bank", "rm", "arc_easy"], ["eval-task", "arc_easy"],
                 ["fuse"], ["predict", "--question", "q?", "--option", "a", "--option", "b"]):
        line = error_line(baas(*args, "--store", missing, env=cli_env, check=False))
        assert line.startswith(f"no store at {missing}"), (args, line)
    assert not missing.exists()


def test_max_length_too_short_for_an_option_is_one_line(tiny_backbone_dir, cli_env, tmp_path):
    row = {"question": "Which is longest?", "options": ["a", " ".join(["big red piano"] * 10)], "label": 1}
    (tmp_path / "data" / "long").mkdir(parents=True)
    for split in ("train", "validation"):  # (distinct rows: a repeated row is refused)
        (tmp_path / "data" / "long" / f"{split}.jsonl").write_text(
            "".join(json.dumps(dict(row, question=f"Which is longest {i}?")) + "\n" for i in range(8)))
    line = error_line(baas("train-task", "long", "--data-dir", tmp_path / "data", "--backbone", tiny_backbone_dir("bert"),
                           "--store", tmp_path / "s", "--max-length", 8, env=cli_env, check=False))
    assert "more than --max-length 8" in line and "raise --max-length to at least" in line


def test_demo_learns_the_generated_tasks_in_turn_and_reports_forgetting(tiny_backbone_dir, cli_env, tmp_path):
    args = ["demo", "--backbone", tiny_backbone_dir("bert"), "--epochs", 1, "--store", tmp_path / "demo", "--json"]
    out = last_json(baas(*args, env=cli_env))
    assert [r["task"] for r in out["tasks"]] == ["demo_animal_sounds", "demo_categories", "demo_opposites"]
    for r in out["tasks"]:
        assert 0 <= r["accuracy"] <= 1 and r["chance"] == 0.25
        assert r["n"] == 100 and r["accuracy_interval"] == wilson_interval(round(100 * r["accuracy"]), 100)
        assert r["naive_accuracy_interval"] == wilson_interval(round(100 * r["naive_accuracy"]), 100)
    assert out["forgetting"]["baas"]["intervals"]["average_accuracy"] is not None
    assert set(out["forgetting"]) == {"baas", "oracle", "naive"}
    assert out["forgetting"]["baas"]["forgetting"] is not None
    # one entry per task, each trained once: the demo uses the default prompt rate, no learning-rate tries
    assert sorted(p.parent.name for p in (tmp_path / "demo" / "bank").glob("*/v*.safetensors")) == [
        "demo_animal_sounds", "demo_categories", "demo_opposites"]
    assert len([r for r in Store(tmp_path / "demo").runs() if r["kind"] == "train"]) == 3
    assert (Path(out["report"]) / "report.md").is_file()
    again = last_json(baas(*args, env=cli_env))  # a rerun reuses every entry, state and cell
    assert again == out and len(list((tmp_path / "demo" / "bank").glob("*/v*.safetensors"))) == 3
    human = baas(*args[:-1], env=dict(cli_env, COLUMNS="80")).stdout  # the tables, each accuracy with its interval
    assert max(map(len, human.splitlines())) <= 80 and "(continued)" not in human, human
    low, high = out["tasks"][0]["naive_accuracy_interval"]
    assert "100 test questions" in " ".join(human.split()) and f"[{low:.3f}, {high:.3f}]" in human, human


CHAIN = "1. Read what the question asks.\n2. Recall the category each option belongs to.\n3. The answer is (A)."


def test_init_prompts_uses_a_configured_llm_then_the_store(tiny_backbone_dir, cli_env, tmp_path, llm_server):
    """`init-prompts` with --llm-base-url asks that server (K local chains + one merge) through the openai
    client; the initialisation is kept, so a second run and a training run make no request at all."""
    server = llm_server(("ok", CHAIN))
    bb, store = tiny_backbone_dir("bert"), tmp_path / "store"
    common = ["--backbone", bb, "--store", store, "--max-train", "40", "--clusters", "3",
              "--llm-base-url", server.base_url, "--llm-model", "test-model"]
    info = last_json(baas("init-prompts", "demo_categories", *common, "--json", env=cli_env))
    assert info["chain"]["source"] == "llm:test-model"
    assert len(info["chain"]["clusters"]) == 3 and len(server.requests) == 4  # 3 local chains + 1 merge
    assert all(c["local_chain"] == CHAIN for c in info["chain"]["clusters"])
    assert "Let's think step by step" in json.dumps(server.requests[0]["messages"])
    assert info["topics"]["labels"] and info["prefix_shape"] == [5, info["prefix_shape"][1]]

    again = last_json(baas("init-prompts", "demo_categories", *common, "--json", env=cli_env))
    assert again["from_store"] is True and again["chain"] == info["chain"] and len(server.requests) == 4

    result = last_json(baas("train-task", "demo_categories", *common, "--prefix-init", "topic", "--suffix-init", "autocot",
                            "--reparam", "bap", "--max-eval", "16", "--epochs", "1", "--max-length", "48", "--json",
                            env=cli_env))
    assert len(server.requests) == 4
    meta = last_json(baas("bank", "show", "demo_categories", "--store", store, "--json", env=cli_env))["meta"]
    assert meta["reparam"] == "bap" and meta["init"]["chain"]["source"] == "llm:test-model"
    assert meta["init"]["topics"]["labels"] == info["topics"]["labels"] and result["accuracy"] >= 0


def test_init_prompts_falls_back_offline_when_the_llm_fails(tiny_backbone_dir, cli_env, tmp_path, llm_server):
    server = llm_server(("status", 500))
    key = "sk-test-d0-not-leak-7f3a"
    env = dict(cli_env, BAAS_LLM_BASE_URL=server.base_url, BAAS_LLM_BACKOFF="0.01", BAAS_LLM_API_KEY=key)  # from the environment
    proc = baas("init-prompts", "demo_categories", "--backbone", tiny_backbone_dir("bert"), "--store", tmp_path / "s",
                "--max-train", "40", "--clusters", "2", "--json", env=env)
    info = last_json(proc)
    assert info["chain"]["source"] == "offline" and len(server.requests) >= 1
    assert "HTTP 500" in proc.stderr and "warning" in proc.stderr
    # The key went to the server, and nowhere else: not the output, the errors, or any file of the store.
    assert server.authorizations[0] == f"Bearer {key}"
    assert key not in proc.stdout + proc.stderr
    assert not [p for p in (tmp_path / "s").rglob("*") if p.is_file() and key.encode() in p.read_bytes()]


def test_fuse_and_predict_answer_without_task_ids(tiny_backbone_dir, cli_env, tmp_path):
    store = tmp_path / "store"
    bb = tiny_backbone_dir("bert")
    store.mkdir()
    (store / "catalog.sqlite").write_bytes(b"")  # an existing store whose bank is empty
    empty = error_line(baas("fuse", "--store", store, env=cli_env, check=False))
    assert "empty" in empty and "train-task" in empty
    assert "run `baas fuse` first" in error_line(baas("predict", "--store", store, "--question", "q", "--option", "a",
                                                      "--option", "b", env=cli_env, check=False))
    for task in ("demo_categories", "demo_opposites"):
        baas("train-task", task, "--backbone", bb, "--store", store, *TINY_TRAIN, env=cli_env)
    missing = error_line(baas("fuse", "--store", store, "--tasks", "demo_categories,arc_easy", env=cli_env, check=False))
    assert "'arc_easy'" in missing and "demo_categories, demo_opposites" in missing

    fused = baas("fuse", "--store", store, "--strategy", "all", "--space", "both", "--rule", "cosine", "--max-eval", 16,
                 "--json", env=cli_env)
    result = last_json(fused)
    # The counter says what it counts (it read "64 done" for 32 questions): each question runs through every entry
    # some strategy weighs (soft weighs all), so there are 2 x 32 entry passes; every other stage counts questions.
    done = {label: int(n) for label, n in re.findall(r"^(.*): (\d+) done in", fused.stderr, re.M)}
    assert done.pop("entry passes over 32 questions") == 64 and done and all(n <= 32 for n in done.values()), fused.stderr
    by_name = {(r["strategy"], r["space"]): r for r in result["strategies"]}
    # one-entry strategies are one computation in both spaces; mixing ones are reported in each
    assert {("oracle", "both"), ("hard", "both"), ("soft", "prompt"), ("soft", "output")} <= set(by_name)
    assert not any(name.startswith("topk") for name, _ in by_name)  # on two entries, topk2 and topk3 are soft
    table = baas("fuse", "--store", store, "--strategy", "all", "--space", "both", "--rule", "cosine", "--max-eval", 16,
                 env=dict(cli_env, COLUMNS="80")).stdout
    assert max(map(len, table.splitlines())) <= 80 and "(continued)" not in table, table
    assert "n=32" in table and "n=16" in table and "%.3f]" % by_name[("hard", "both")]["mean_accuracy_interval"][1] in table
    # the best strategy, chosen on 16 questions a task, says how few those are
    assert re.search(r"the best of \d+ on accuracy, on only 16 questions per task: too few to rely on", " ".join(table.split())), table
    wide = error_line(baas("fuse", "--store", store, "--strategy", "topk3", env=cli_env, check=False))
    assert "topk3 on a bank of 2 entries weighs every entry, as soft does" in wide
    for r in result["strategies"]:
        assert [t["task"] for t in r["per_task"]] == ["demo_categories", "demo_opposites"]
        assert all(t["n"] == 16 for t in r["per_task"])
        # each task's accuracy with its Wilson interval; the mean over tasks with a bootstrap one over the questions
        assert all(t["accuracy_interval"] == wilson_interval(round(16 * t["accuracy"]), 16) for t in r["per_task"])
        low, high = r["mean_accuracy_interval"]
        assert r["n"] == 32 and low <= r["mean_accuracy"] <= high and "correct" not in r["per_task"][0]
        assert sum(map(sum, r["confusion"]["counts"])) == 32
        assert r["mean_oracle_accuracy"] == by_name[("oracle", "both")]["mean_accuracy"]
    oracle = by_name[("oracle", "both")]
    assert oracle["routing_accuracy"] == 1.0
    # the oracle is each entry alone on its own task: what eval-task reports for the same questions
    alone = last_json(baas("eval-task", "demo_opposites", "--store", store, "--max-eval", 16, "--json", env=cli_env))
    assert oracle["per_task"][1]["accuracy"] == alone["accuracy"]

    # one per (entry, task) for fuse's 16 questions a task, and one per entry that train-task's final evaluation kept
    # (its own 24 test questions, another set)
    cached = {f: f.stat().st_mtime_ns for f in (store / "logits").glob("*.safetensors")}
    assert len(cached) == 2 * 2 + 2
    one = last_json(baas("fuse", "--store", store, "--max-eval", 16, "--json", env=cli_env))  # the default strategy
    assert {f: f.stat().st_mtime_ns for f in (store / "logits").glob("*.safetensors")} == cached  # nothing rerun
    assert {"strategy", "per_task", "mean_accuracy", "mean_oracle_accuracy", "routing_accuracy", "confusion"} <= set(one)
    assert one["strategy"] == "cluster" and one["routing_accuracy"] == by_name[("hard", "both")]["routing_accuracy"]

    answer = last_json(baas("predict", "--store", store, "--question", "what is the opposite of hot", "--option", "cold",
                            "--option", "big", "--json", env=cli_env))
    assert answer["router"] == "cluster" and answer["predictions"][0]["answer_text"] in ("cold", "big")
    assert abs(sum(e["weight"] for e in answer["predictions"][0]["entries"]) - 1) < 1e-4
    long = "what is the opposite of hot, " + "and of cold " * 20
    narrow = baas("predict", "--store", store, "--question", long, "--option", "cold", "--option", "big",
                  env=dict(cli_env, COLUMNS="80")).stdout
    assert max(map(len, narrow.splitlines())) <= 80 and "what is the opposite" in narrow
    assert "…" in narrow and long.strip() not in narrow  # cut with an ellipsis, on one line
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": "what is the opposite of hot", "options": ["cold", "big"], "answer": "cold"}) + "\n"
                         + json.dumps({"question": "what is a cow", "options": ["animal", "tool"], "label": 0}) + "\n")
    from_file = last_json(baas("predict", "--store", store, "--file", questions, "--router", "soft", "--json", env=cli_env))
    assert len(from_file["predictions"]) == 2 and 0 <= from_file["accuracy"] <= 1
    assert from_file["accuracy_interval"] == wilson_interval(round(2 * from_file["accuracy"]), 2)
    said = baas("predict", "--store", store, "--file", questions, "--router", "soft", env=dict(cli_env, COLUMNS="200")).stdout
    interval = from_file["accuracy_interval"]
    assert f"accuracy on the labelled questions: {from_file['accuracy']:.3f} [{interval[0]:.3f}, {interval[1]:.3f}] n=2" in said
    assert len(from_file["predictions"][0]["entries"]) == 2  # soft weighs every entry
    bad = error_line(baas("predict", "--store", store, "--question", "q", "--option", "only one", env=cli_env, check=False))
    assert "two" in bad


def test_predict_uses_the_router_fuse_reports_and_stale_routers_say_so(tiny_backbone_dir, cli_env, tmp_path):
    """fuse --strategy all saves the router it reports as best last, and predict uses it; both say which. After
    `bank import --name X` predict warns that the router does not know X; `bank rm` names the routers fitted on
    what it removes, and predict then refuses in one line: which router, which entry, rerun `baas fuse`."""
    store, bb, wide = tmp_path / "store", tiny_backbone_dir("bert"), dict(cli_env, COLUMNS="250")
    for task in ("demo_categories", "demo_opposites"):
        baas("train-task", task, "--backbone", bb, "--store", store, *TINY_TRAIN, env=cli_env)
    fused = last_json(baas("fuse", "--store", store, "--strategy", "all", "--max-eval", 16, "--json", env=cli_env))
    best = fused["best"]["strategy"]
    assert fused["router"] == best
    ask = ["predict", "--store", store, "--question", "what is the opposite of hot", "--option", "cold", "--option", "big"]
    answer = last_json(baas(*ask, "--json", env=cli_env))
    assert answer["router"] == answer["strategy"] == best and answer["space"] in ("prompt", "output")
    assert "warnings" not in answer
    human = baas("fuse", "--store", store, "--strategy", "all", "--max-eval", 16, env=wide).stdout  # from the caches
    narrow = baas("fuse", "--store", store, "--strategy", "all", "--max-eval", 16, env=dict(cli_env, COLUMNS="80")).stdout
    assert max(map(len, narrow.splitlines())) <= 80, narrow
    for word in ("strategy", "accuracy", "macro", "oracle", "routing", "entries/", "(passes)", "demo_categories",
                 "demo_opposites"):
        assert word in narrow, (word, narrow)  # no header or name split mid-word (entries/q may break after its /)
    assert f"router '{best}' saved ({best}, rule lda, " in human and "`baas predict` uses it" in human
    assert f"router '{best}': {best}, rule lda, " in baas(*ask, env=wide).stdout

    baas("bank", "export", "demo_categories", tmp_path / "shared", "--store", store, env=cli_env)
    imported = baas("bank", "import", tmp_path / "shared", "--name", "cats", "--store", store, env=cli_env)
    assert f"'{best}'" in imported.stderr and "not know cats@v1" in imported.stderr and len(imported.stderr.splitlines()) == 1
    warned = baas(*ask, "--json", env=cli_env)
    [line] = [x[len("warning: "):] for x in warned.stderr.splitlines() if x.startswith("warning: ")]
    assert line.startswith(f"router '{best}' does not know entry cats@v1 (added after it was fitted)") and "rerun `baas fuse`" in line
    assert last_json(warned)["warnings"] == [line]

    removed = baas("bank", "rm", "demo_opposites", "--yes", "--store", store, "--json", env=cli_env)
    assert f"'{best}'" in removed.stderr.splitlines()[0] and "rerun `baas fuse`" in removed.stderr
    assert best in last_json(removed)["routers"] and last_json(removed)["removed_versions"] == 1
    stale = error_line(baas(*ask, env=cli_env, check=False))
    assert stale.startswith(f"router '{best}' is stale: it was fitted on demo_opposites@v1, which is no longer in the bank")
    assert "rerun `baas fuse`" in stale
    baas("fuse", "--store", store, "--max-eval", 16, env=cli_env)
    again = baas(*ask, "--json", env=cli_env)
    assert "warning" not in again.stderr and last_json(again)["router"] == "cluster"  # the default strategy


def test_version_and_json_errors_for_scripts(cli_env, tmp_path):
    """`baas --version` prints the installed version; with --json an error is also one JSON line on stdout,
    with the same exit status 2 and the same line on stderr."""
    from importlib.metadata import version

    assert baas("--version", env=cli_env).stdout.strip() == f"baas {version('baas')}"
    proc = baas("eval-task", "ghost", "--store", tmp_path / "none", "--json", env=cli_env, check=False)
    assert proc.returncode == 2
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"error": error_line(proc).removeprefix("error: ")}
    plain = baas("eval-task", "ghost", "--store", tmp_path / "none", env=cli_env, check=False)
    assert plain.returncode == 2 and plain.stdout.strip() == ""


def test_tables_fit_the_terminal_and_split_no_word():
    """At 80 columns a wide table (eval-forgetting's) broke headers mid-word ("accurac|y", "forget|ting"); now
    columns narrow to their longest word, long names break after - / _ only if they must, and a table still too
    wide is printed as several, each repeating the first column."""
    from io import StringIO

    from rich.console import Console

    from baas.cli.render import Table, fit, wrap

    table = Table("eval-forgetting: 3 tasks in turn, no task ids for baas (95% intervals, bootstrap over questions)",
                  ["method", "avg acc", "avg incr", "BWT", "FWT", "forgetting", "baas − method (points)", "avg acc, learnable",
                   "trainable/task", "seconds"])
    table.add_row("prompt_tuning", "0.412 [0.38, 0.45]", "0.433", "-0.051 [-0.08, -0.02]", "0.010", "0.062 [0.03, 0.09]",
                  "+3.1 [+0.4, +5.9] ahead", "0.455 [0.41, 0.50]", "1,234,567", "1234")
    table.add_row("baas:topk2", "0.450 [0.42, 0.48]", "0.470", "0.000 [0.00, 0.00]", "–", "0.000 [0.00, 0.00]", "", "–", "24,640", "88")
    for width in (60, 80, 120, 250):
        console = Console(width=width, file=StringIO(), color_system=None)
        parts = fit(table, width)
        for part in parts:
            console.print(part)
        text = console.file.getvalue()
        assert max(map(len, text.splitlines())) <= width, text
        for cell in [*table.columns, *table.rows[0], *table.rows[1]]:
            for word in cell.split():
                assert word in text, (width, word, text)
        assert (len(parts) > 1) == (width <= 80)
    assert wrap("GBaker/MedQA-USMLE-4-options", 12) == "GBaker/\nMedQA-USMLE-\n4-options"  # only when it must
    assert wrap("a question much longer than its column", 20, cut=True) == "a question much lon…"


def test_without_a_terminal_a_long_stage_says_how_far_it_is_every_30_seconds(capsys):
    from baas.cli.progress import CliProgress

    now = [0.0]
    progress = CliProgress(lines=True, clock=lambda: now[0])
    progress.start("slow stage", 1000)
    for _ in range(3):
        now[0] += 31
        progress.advance(1, loss=0.5)
    progress.advance(1)  # no new tenth, and not 30 s since the last line: nothing
    progress.stop()
    assert capsys.readouterr().err.splitlines() == [
        "slow stage: 1/1000 (0%), 31.0 s, loss 0.500", "slow stage: 2/1000 (0%), 62.0 s, loss 0.500",
        "slow stage: 3/1000 (0%), 93.0 s, loss 0.500", "slow stage: 4 done in 93.0 s, last loss 0.500"]

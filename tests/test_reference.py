"""The reference rows of `baas eval-forgetting` (issue 24 §2): zero_shot is the frozen encoder's cosine answer
and never changes; st_ft is the sentence encoder fine-tuned with sentence-transformers' own trainer, task after
task, its state kept and resumed, scored on the very questions every other method is scored on."""

import sqlite3

import pytest
import torch
import torch.nn.functional as F
from test_cli import baas
from test_continual import figures

from baas.store import Store
from baas.training.continual import METHODS, Budget, Settings, run_protocol
from baas.training.data import load_task_data

TASKS = ["demo_animal_sounds", "demo_categories"]
BUDGET = Budget(24, 16, 1, 0)


def cosine_answers(embed, examples) -> list[int]:
    """The option nearest the question (context and question as one text) under `embed(texts) -> [n, d]`."""
    q = F.normalize(embed([f"{e.context} {e.question}".strip() for e in examples]), dim=-1)
    o = F.normalize(embed([o for e in examples for o in e.options]), dim=-1)
    answers, at = [], 0
    for i, e in enumerate(examples):
        answers.append(int((o[at : at + len(e.options)] @ q[i]).argmax()))
        at += len(e.options)
    return answers


def correct(answers, examples) -> list[int]:
    return [int(a == e.label) for a, e in zip(answers, examples)]


def test_zero_shot_is_the_cosine_answer_and_forgets_nothing(tiny_backbone, tmp_path):
    bb = tiny_backbone("bert")

    def mean_pooled(texts):  # the frozen backbone, mean over each text's tokens: nothing baas-specific
        enc = bb.tokenizer(texts, padding=True, return_tensors="pt")
        with torch.no_grad():
            hidden = bb.model(**enc).last_hidden_state
        w = enc["attention_mask"].unsqueeze(-1).float()
        return (hidden * w).sum(1) / w.sum(1)

    report = run_protocol(Settings(tasks=TASKS, budget=BUDGET), ["zero_shot"], ["hard"], bb, Store(tmp_path / "store"),
                          tmp_path / "run")
    m = report["methods"]["zero_shot"]
    assert report["failed"] == {} and m["parameters"] == {"trainable": 0, "stored_per_task": 0, "stored_total": 0}
    cells = _cells(tmp_path / "run", "zero_shot")
    for i, task in enumerate(TASKS):
        examples = load_task_data(task, max_train=24, max_eval=16).eval.examples
        expected = correct(cosine_answers(mean_pooled, examples), examples)
        # every row that measures task i (before it is learned, on it, after the next) holds the cosine's answers
        rows = [k for k in range(len(TASKS)) if (k, i) in cells]
        assert rows == list(range(len(TASKS)))
        assert all(cells[k, i]["correct"] == expected for k in rows)
    R = m["accuracy_matrix"]
    assert R[0] == R[1] and m["forgetting"] == 0 and m["bwt"] == 0


def _cells(folder, matrix) -> dict:
    import json

    lines = [json.loads(line) for line in (folder / "cells.jsonl").read_text().splitlines()[1:]]
    return {(c["k"], c["i"]): c["value"] for c in lines if c["type"] == "cell" and c["matrix"] == matrix}


def test_st_ft_trains_in_turn_with_the_library_resumes_and_is_scored_on_the_same_questions(tiny_backbone, tmp_path):
    pytest.importorskip("sentence_transformers")
    from baas.training.continual import Context
    from baas.training.continual.methods.reference import SentenceLearner, STFineTuning
    from baas.training.progress import Reporter

    bb, store = tiny_backbone("bert"), Store(tmp_path / "store")
    # two rates to choose from on the first task (large enough to move a tiny random model in one epoch)
    settings = Settings(tasks=TASKS, budget=BUDGET, lr_grid=(1e-3, 3e-3))
    whole = run_protocol(settings, ["st_ft", "zero_shot"], ["hard"], bb, store, tmp_path / "run")
    st_ft, zero = whole["methods"]["st_ft"], whole["methods"]["zero_shot"]
    assert whole["failed"] == {} and st_ft["reused_steps"] == 0
    assert st_ft["lr"] in (1e-3, 3e-3) and set(st_ft["lr_scores"]) == {1e-3, 3e-3}  # chosen on validation
    assert st_ft["n_matrix"] == zero["n_matrix"] == [[16, 16], [16, 16]]
    assert st_ft["accuracy_matrix"] != zero["accuracy_matrix"]  # it trained: its answers are not the start's
    assert st_ft["parameters"]["trainable"] == sum(p.numel() for p in bb.model.parameters())  # every weight
    with sqlite3.connect(tmp_path / "store" / "catalog.sqlite") as db:
        states = sorted(name for (name,) in db.execute("SELECT name FROM artifacts WHERE kind = 'state'"))
    assert len(states) == 2 and states[0].startswith("st_ft-") and states[1].endswith("-k1")

    # Its cells are the answers of the state kept after each task, on the evaluation questions in their order:
    # the library's own encode() of the raw texts, from that state, gives the same correctness per question.
    ctx = Context(settings, bb, store, None, Reporter())
    method = STFineTuning(ctx, TASKS, "check")
    cells = _cells(tmp_path / "run", "st_ft")
    for k in range(len(TASKS)):
        learner = SentenceLearner(ctx)
        tensors, _ = store.load_artifact("state", states[k])
        learner.module.load_state_dict({n[len("module."):]: t for n, t in tensors.items()})
        learner.module.eval()
        for i in range(k + 1):
            examples = load_task_data(TASKS[i], max_train=24, max_eval=16).eval.examples
            answers = cosine_answers(lambda texts: learner.module.encode(texts, convert_to_tensor=True), examples)
            assert cells[k, i]["correct"] == correct(answers, examples)
    assert method.parameters()["stored_per_task"] == 0

    # A second run reads every state back from the store and trains nothing.
    again = run_protocol(settings, ["st_ft"], ["hard"], bb, store, tmp_path / "again")
    assert again["methods"]["st_ft"]["reused_steps"] == 2
    assert again["methods"]["st_ft"]["accuracy_matrix"] == st_ft["accuracy_matrix"]
    # Stopped after the first task: the state after task 2 and its cells gone, the rerun trains task 2 from the
    # stored state after task 1 and ends with the same figures.
    lines = (tmp_path / "run" / "cells.jsonl").read_text().splitlines()
    (tmp_path / "run" / "cells.jsonl").write_text("\n".join(line for line in lines if '"k": 1' not in line) + "\n")
    with sqlite3.connect(tmp_path / "store" / "catalog.sqlite") as db:
        assert db.execute("DELETE FROM artifacts WHERE kind = 'state' AND name LIKE 'st_ft-%-k1'").rowcount == 1
    resumed = run_protocol(settings, ["st_ft", "zero_shot"], ["hard"], bb, store, tmp_path / "run")
    with sqlite3.connect(tmp_path / "store" / "catalog.sqlite") as db:  # task 2 trained again, its state kept
        assert db.execute("SELECT count(*) FROM artifacts WHERE kind = 'state' AND name LIKE 'st_ft-%-k1'").fetchone() == (1,)
    assert figures(resumed) == figures(whole)


def test_eval_forgetting_knows_the_reference_rows(cli_env):
    assert {"zero_shot", "st_ft"} <= set(METHODS)
    help_text = " ".join(baas("eval-forgetting", "--help", env=cli_env).stdout.split())
    for key in ("zero_shot", "st_ft", "olora"):
        assert key in help_text

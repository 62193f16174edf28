"""The Python API: the README's example runs as written, and the pieces it stands on."""

import json
import pydoc
import re
import warnings
from pathlib import Path

import pytest

import baas
from baas.store import Store
from baas.training.api import TrainResult

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_api_example_runs_as_written(capsys):
    section = README.read_text().split("### Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, "README.md (Python API)", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == baas.__version__
    assert printed[1].startswith("demo_categories ") and printed[2].startswith("demo_opposites ")
    assert "[('demo_categories', 1), ('demo_opposites', 1)]" in printed[3]
    assert len(printed) == 6  # one line per answer


def test_unlabelled_questions_and_clear_errors(tmp_path):
    from baas.training.api import questions

    qs = questions([{"question": "Which is hot?", "options": ["ice", "fire"]},
                    {"question": "Which is cold?", "options": ["ice", "fire"], "answer": "ice"}])
    assert [q.label for q in qs] == [None, 0]
    with pytest.raises(baas.BaasError, match="has no options"):
        questions(["Which is hot?"], None)
    with pytest.raises(baas.BaasError, match="unknown setting"):
        baas.train_task("demo_categories", store=tmp_path, epoch=1)
    Store(tmp_path / "empty")
    with pytest.raises(baas.BaasError, match="no router"):
        baas.Bank(tmp_path / "empty").predict("Which is hot?", ["ice", "fire"])
    with pytest.raises(AttributeError):
        baas.no_such_name  # noqa: B018


def test_a_bank_where_there_is_no_store_is_refused_and_nothing_is_made(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(baas.BaasError, match=f"^no store at {re.escape(str(missing))} "):
        baas.Bank(missing)
    assert not missing.exists()
    assert baas.Bank(missing, create=True).entries() == [] and (missing / "catalog.sqlite").is_file()


API = ["train_task", "eval_task", "init_prompts", "eval_forgetting", "demo", "list_datasets", "check_store", "Bank", "questions",
       "StaleRouterWarning", "BaasError", "TrainConfig", "load_backbone", "load_task_data"]


def test_dir_and_help_list_the_api():
    assert set(API) <= set(dir(baas))
    text = pydoc.render_doc(baas, renderer=pydoc.plaintext)
    for name in API:
        assert name in baas.__doc__ and name in text, name
    for method in ("entries", "describe", "load", "export", "import_entry", "remove", "fuse", "fuse_and_evaluate", "routers",
                   "predict"):
        assert f"bank.{method}(" in baas.__doc__, method


def test_the_api_and_the_cli_give_a_question_the_same_id(tmp_path):
    from baas.training.api import questions
    from baas.training.data import read_questions

    rows = [{"question": "Which is hot?", "options": ["ice", "fire"]}, {"question": "Which is cold?", "options": ["ice", "fire"],
                                                                        "id": "mine"}]
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    from_file = [q.id for q in read_questions(path)[0]]
    assert [q.id for q in questions(rows)] == from_file
    assert questions("Which is hot?", ["ice", "fire"])[0].id == from_file[0] and from_file[1] == "mine"


TINY = dict(max_train=40, max_eval=24, epochs=1, prefix_len=2, suffix_len=2, batch_size=4, max_length=48)
ASK = (["what is the opposite of hot", "what is a cow"], [["cold", "big"], ["animal", "tool"]])


def test_the_api_has_the_cli_reach_and_a_stale_router_says_so(tiny_backbone, tmp_path, capsys):
    bb, store = tiny_backbone("bert"), tmp_path / "store"
    trained = baas.train_task("demo_categories", store=store, backbone=bb, **TINY)
    shown = capsys.readouterr()
    assert isinstance(trained, TrainResult) and trained.version == 1 and trained.n_train == 40 and not trained.reused
    record = json.loads(trained.to_json())  # what `baas train-task --json` prints
    assert record["accuracy"] == trained.accuracy and record["bank_file"] == trained.bank_file
    assert "demo_categories epoch 1/1" in shown.err and "validation accuracy" in shown.err and shown.out == ""  # progress bars
    baas.train_task("demo_opposites", store=store, backbone=bb, progress=False, **TINY)
    assert capsys.readouterr() == ("", "")  # and silence, on request
    alone = baas.eval_task("demo_opposites@v1", store=store, backbone=bb, max_eval=16)
    bank = baas.Bank(store, bb)
    report = bank.fuse_and_evaluate("all", max_eval=16)
    best = report.best
    assert report.router == best["strategy"] == best["router"] and bank.routers()[0]["name"] == best["strategy"]
    assert report.to_dict() == {"strategies": report.strategies, "best": best, "router": report.router}
    oracle = next(r for r in report.strategies if r["strategy"] == "oracle")
    assert oracle["per_task"][1]["accuracy"] == alone.accuracy
    for r in report.strategies:  # shares of questions are counts over n, not float32 means
        for t in r["per_task"]:
            for key in ("accuracy", "oracle_accuracy", "routing_accuracy"):
                assert t[key] == round(t[key] * t["n"]) / t["n"], (key, t[key])
    fresh = baas.Bank(store, bb)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a router that fits the bank: no warning
        answers = fresh.predict(*ASK)
    assert fresh.router_name == best["strategy"] and len(answers.predictions) == 2 and answers.warnings == []
    assert answers.predictions[0].answer_text in ASK[1][0] and "accuracy" not in answers.to_dict()  # no labels: no accuracy
    partly = fresh.predict([{"question": ASK[0][0], "options": ASK[1][0], "answer": "cold"},
                            {"question": ASK[0][1], "options": ASK[1][1]}])
    assert partly.n_labelled == 1 and partly.accuracy == float(partly.predictions[0].answer_text == "cold")

    shared = bank.export("demo_categories", tmp_path / "shared")
    assert "entry.safetensors" in shared.files
    with pytest.warns(baas.StaleRouterWarning, match=f"'{best['strategy']}'.* not know cats@v1, so predict never routes there"):
        assert bank.import_entry(tmp_path / "shared", "cats").to_dict() == {"task": "cats", "version": 1}
    line = f"router '{best['strategy']}' does not know entry cats@v1 .*rerun `baas fuse`"
    with pytest.warns(baas.StaleRouterWarning, match=line):
        warned = baas.Bank(store, bb).predict(*ASK)
    assert len(warned.warnings) == 1 and re.search(line, warned.warnings[0])
    assert any(re.search(line, p) for p in baas.Bank(store, bb).routers()[0]["problems"])

    using = bank.routers_using("demo_opposites")
    assert best["strategy"] in using and "oracle" not in using
    asked = []
    with pytest.raises(baas.BaasError, match="nothing deleted"):
        bank.remove("demo_opposites", confirm=lambda removal: asked.append(removal) or False)
    assert (asked[0].versions, asked[0].routers) == ([1], using)
    removed = bank.remove("demo_opposites")
    assert removed.to_dict() == {"task": "demo_opposites", "version": None, "removed_versions": 1, "routers": using}
    with pytest.raises(baas.BaasError, match=f"router '{best['strategy']}' is stale: .*demo_opposites@v1, which is no longer in the bank.*"
                                             "rerun `baas fuse`"):
        baas.Bank(store, bb).predict(*ASK)
    with pytest.raises(baas.BaasError, match="strategy 'all' is chosen by evaluation"):
        bank.fuse("all")
    bank.fuse("hard", space="output")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = baas.Bank(store, bb)
        answers = again.predict(*ASK)
    assert again.router_name == "hard" and again.router.space == "output" and again.router.tasks == ["demo_categories", "cats"]
    assert all(abs(sum(a.probabilities) - 1) < 1e-3 for a in answers.predictions)


def test_bank_load_and_evaluate(tiny_backbone, tmp_path):
    """`Bank.load` gives an entry's tensors and metadata; `Bank.evaluate` scores the router fitted (or saved) on
    every task's evaluation questions with no task id, as `fuse_and_evaluate` scored it."""
    import torch

    bb, store = tiny_backbone("bert"), tmp_path / "store"
    for name in ("demo_categories", "demo_opposites"):
        baas.train_task(name, store=store, backbone=bb, progress=False, **TINY)
    bank = baas.Bank(store, bb)
    entry = bank.load("demo_opposites")
    assert (entry.task, entry.version, entry.meta["dataset"]) == ("demo_opposites", 1, "demo_opposites")
    assert {k: list(v.shape) for k, v in entry.tensors().items()} == bank.describe("demo_opposites")["tensors"]
    pinned = bank.load("demo_opposites@v1").tensors()
    assert all(torch.equal(t, pinned[k]) for k, t in entry.tensors().items())
    for missing, said in (("demo_opposites@v2", "version 2 of task 'demo_opposites'"), ("nothing", "task 'nothing'")):
        with pytest.raises(baas.BaasError, match=f"^no bank entry for {said} in store "):
            bank.load(missing)
    with pytest.raises(baas.BaasError, match="no router"):
        bank.evaluate()

    fused = bank.fuse_and_evaluate("soft", max_eval=16, progress=False)  # saves the router 'soft'
    again = baas.Bank(store, bb).evaluate(max_eval=16)  # a fresh Bank: the saved router, read from the store
    assert [r["strategy"] for r in again] == ["oracle", "soft"]
    same = ("space", "per_task", "mean_accuracy", "mean_oracle_accuracy", "routing_accuracy", "confusion")
    assert {k: again[1][k] for k in same} == {k: fused.best[k] for k in same}
    assert [t["n"] for t in again[1]["per_task"]] == [16, 16]
    assert again[0]["mean_accuracy"] == again[1]["mean_oracle_accuracy"]
    output = bank.evaluate(["hard", "soft"], max_eval=16, space="output")
    assert [r["strategy"] for r in output] == ["oracle", "hard", "soft"]
    assert {r["space"] for r in output} <= {"output", "both"}  # (both: all weight on one entry, the same in either space)
    bank.remove("demo_opposites")
    with pytest.raises(baas.BaasError, match="router 'soft' is stale"):
        baas.Bank(store, bb).evaluate(max_eval=16)

"""Crash safety, counted: `train-task`, `fuse` and `eval-forgetting` killed with SIGKILL at random points.

Each command runs in a forked child (the parent has already imported everything, so a child starts in
milliseconds and a hundred kills fit in minutes). After every kill the store must open, leave no
half-written file behind, and verify: no catalog row points at a missing or damaged file. After the
kills the command is let run to its end, and its figures must equal those of a run never killed.

A start that ends before its kill is a resume to the end: its figures are compared with the unkilled run's
and the store is put back to its starting state, so every command takes exactly KILLS kills. CI runs a
share (22 kills); BAAS_SLOW_TESTS=1 runs the long version (140 kills).
"""

import json
import multiprocessing
import os
import random
import shutil
import signal
import sys
import time

import pytest
import torch

from baas.store import Store

SLOW = bool(os.environ.get("BAAS_SLOW_TESTS"))
KILLS = {"train-task": 50, "fuse": 40, "eval-forgetting": 50} if SLOW else {"train-task": 8, "fuse": 6, "eval-forgetting": 8}
FORK = multiprocessing.get_context("fork")


def _child(args: list[str]) -> None:
    torch.set_num_threads(1)
    devnull = open(os.devnull, "w")
    sys.stdout = sys.stderr = devnull
    os.dup2(devnull.fileno(), 1)
    os.dup2(devnull.fileno(), 2)
    from baas.cli.main import app

    try:
        app(args, standalone_mode=False)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - any failure is a non-zero exit the parent sees
        code = 3
    os._exit(code)


def run(args) -> float:
    """Run a command to its end in a child; returns its seconds."""
    started = time.perf_counter()
    p = FORK.Process(target=_child, args=([str(a) for a in args],))
    p.start()
    p.join()
    assert p.exitcode == 0, f"{args[0]} failed with exit code {p.exitcode}"
    return time.perf_counter() - started


def check_store(root) -> None:
    store = Store(root)  # opening removes the killed writer's half-written files
    leftovers = [p for p in store.root.rglob("*.tmp")]
    assert not leftovers, leftovers
    report = store.check()
    p = report["problems"]
    assert not p["missing"] and not p["corrupt"] and not p["catalog"], p


def kill_repeatedly(args, paths, seconds: float, kills: int, rng: random.Random, same_as_reference) -> int:
    """Start the command until `kills` SIGKILLs have landed, each after a random time within its usual length,
    checking the store (`paths[0]`) after each. A start that finishes before its kill is a resume to the end:
    its figures must equal the reference (`same_as_reference()`), and then `paths` are put back as they were
    before the first start, so that later kills land again. Finally the command runs to its end once more.
    Returns the kills that landed."""
    start = paths[0].parent / f"{paths[0].name}-start"
    for path in paths:
        if path.exists():
            shutil.copytree(path, start / path.name)
    landed = attempts = 0
    while landed < kills and attempts < 4 * kills:
        attempts += 1
        p = FORK.Process(target=_child, args=([str(a) for a in args],))
        p.start()
        p.join(rng.uniform(0.05, seconds))
        if p.exitcode is None:
            os.kill(p.pid, signal.SIGKILL)
            p.join()
            landed += 1
            check_store(paths[0])
            continue
        assert p.exitcode == 0, f"{args[0]} failed with exit code {p.exitcode}"
        check_store(paths[0])
        assert same_as_reference(), f"{args[0]} resumed after kills ended with other figures than the unkilled run"
        for path in paths:
            shutil.rmtree(path, ignore_errors=True)
            if (start / path.name).exists():
                shutil.copytree(start / path.name, path)
    run(args)
    check_store(paths[0])
    assert same_as_reference(), f"{args[0]} resumed after kills ended with other figures than the unkilled run"
    return landed


TINY = ["--max-train", 40, "--max-eval", 16, "--epochs", 2, "--prefix-len", 2, "--suffix-len", 2, "--batch-size", 4,
        "--max-length", 48, "--checkpoint-every", 2]


def entries(root) -> dict:
    store = Store(root)
    return {e["task"]: store.load_entry(e["task"], e["version"]).tensors() for e in store.list_entries()}


def same_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_train_task_and_fuse_survive_kills(tiny_backbone_dir, tmp_path):
    rng, bb = random.Random(0), tiny_backbone_dir("bert")
    killed = {}

    def train(store, task):
        return ["train-task", task, "--backbone", bb, "--store", store, *TINY]

    seconds = run(train(tmp_path / "ref", "demo_categories"))
    ref = entries(tmp_path / "ref")

    def same_entry():  # a rerun reports the entry it made: one version, equal to the unkilled run's
        got = entries(tmp_path / "killed")
        return (len(Store(tmp_path / "killed").versions("demo_categories")) == 1 and got.keys() == ref.keys()
                and same_tensors(ref["demo_categories"], got["demo_categories"]))

    killed["train-task"] = kill_repeatedly(train(tmp_path / "killed", "demo_categories"), [tmp_path / "killed"],
                                           seconds, KILLS["train-task"], rng, same_entry)
    run(train(tmp_path / "ref", "demo_opposites"))
    run(train(tmp_path / "killed", "demo_opposites"))

    fuse = ["fuse", "--max-eval", 16, "--json"]
    shutil.copytree(tmp_path / "ref", tmp_path / "fuse-killed")
    seconds = run([*fuse, "--store", tmp_path / "ref"])

    def same_routers():
        ref_router, got_router = (Store(tmp_path / s).artifacts("router") for s in ("ref", "fuse-killed"))
        return [r["name"] for r in ref_router] == [r["name"] for r in got_router] and all(
            same_tensors(Store(tmp_path / "ref").load_artifact("router", r["name"])[0],
                         Store(tmp_path / "fuse-killed").load_artifact("router", r["name"])[0]) for r in ref_router)

    killed["fuse"] = kill_repeatedly([*fuse, "--store", tmp_path / "fuse-killed"], [tmp_path / "fuse-killed"], seconds,
                                     KILLS["fuse"], rng, same_routers)
    print(f"kills that landed: {killed}")
    assert killed == {k: KILLS[k] for k in killed}


def test_eval_forgetting_survives_kills(tiny_backbone_dir, tmp_path):
    rng, bb = random.Random(1), tiny_backbone_dir("bert")

    def protocol(name):
        return ["eval-forgetting", "--backbone", bb, "--store", tmp_path / f"{name}-store", "--out", tmp_path / name,
                "--methods", "baas,naive,lora", "--tasks", "demo_animal_sounds,demo_categories", "--max-train", 24,
                "--max-eval", 16, "--epochs", 1, "--json"]

    seconds = run(protocol("ref"))
    keep = ("accuracy_matrix", "macro_f1_matrix", "average_accuracy", "bwt", "fwt", "forgetting", "parameters")

    def figures(name):
        return {m: {k: v[k] for k in keep} for m, v in json.loads((tmp_path / name / "report.json").read_text())["methods"].items()}

    landed = kill_repeatedly(protocol("killed"), [tmp_path / "killed-store", tmp_path / "killed"], seconds,
                             KILLS["eval-forgetting"], rng, lambda: figures("killed") == figures("ref"))
    print(f"kills that landed: eval-forgetting {landed}")
    assert landed == KILLS["eval-forgetting"]


def test_concurrent_trainers_and_a_reader_share_one_store(tiny_backbone_dir, tmp_path):
    """Four processes train into one store at once (three tasks, one of them twice with other settings) while
    this process lists and reads the bank: every entry lands, none is ever seen torn, and the two writers
    of one task get distinct versions."""
    bb, store = tiny_backbone_dir("bert"), tmp_path / "store"
    Store(store)
    jobs = [["demo_categories"], ["demo_opposites"], ["demo_animal_sounds"], ["demo_categories", "--seed", 1]]
    children = []
    for task, *extra in jobs:
        p = FORK.Process(target=_child, args=([str(a) for a in ["train-task", task, "--backbone", bb, "--store", store,
                                                                 *TINY, *extra]],))
        p.start()
        children.append(p)
    reads = 0
    while any(p.is_alive() for p in children):
        reader = Store(store)
        for row in reader.list_entries():
            reader.load_entry(row["task"], row["version"])  # checksum-verified: a torn file would raise here
            reads += 1
        time.sleep(0.02)
    assert [p.exitcode for p in children] == [0, 0, 0, 0]
    final = Store(store)
    assert sorted((e["task"], e["versions"]) for e in final.list_entries()) == [
        ("demo_animal_sounds", 1), ("demo_categories", 2), ("demo_opposites", 1)]
    assert sorted(v["version"] for v in final.versions("demo_categories")) == [1, 2]
    assert final.check()["ok"]
    print(f"bank reads while writing: {reads}")

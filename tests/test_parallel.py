"""`train-task`, `eval-forgetting` and `fuse` data-parallel over two CPU processes (torchrun and accelerate's
launcher, gloo): the result of one process, within floating-point tolerance, and only the main process writes."""

import socket
import subprocess
import sys

import pytest
import torch
from test_cli import TINY_TRAIN, baas, last_json
from test_continual import figures, forgetting_args

from baas.store import Store


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args, env, launcher: str = "torchrun") -> subprocess.CompletedProcess:
    """`baas ARGS` on two processes, started as a user would with torchrun or `accelerate launch --multi_gpu`
    (accelerate's multi-process launcher; with no GPU, baas's processes talk over gloo)."""
    port = str(_free_port())
    start = ([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", port]
             if launcher == "torchrun" else
             [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", port])
    proc = subprocess.run([*start, "-m", "baas.cli.main", *map(str, args)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len([line for line in proc.stdout.splitlines() if line.startswith("{")]) == 1  # only the main process prints
    return proc


def test_two_processes_train_what_one_does(tiny_backbone_dir, cli_env, tmp_path):
    args = ["train-task", "demo_categories", "--backbone", tiny_backbone_dir("bert"), *TINY_TRAIN, "--json"]
    one = last_json(baas(*args, "--store", tmp_path / "one", env=cli_env))
    proc = launch([*args, "--store", tmp_path / "two"], cli_env)
    two = last_json(proc)
    assert two["processes"] == 2 and one["processes"] == 1
    assert two["accuracy"] == one["accuracy"]
    a, b = (Store(tmp_path / s).load_entry("demo_categories").tensors() for s in ("one", "two"))
    # The head's bias cancels in the softmax over a question's options, so its gradient is float noise that
    # Adam turns into full-size steps: it differs between runs and changes no answer. Everything else agrees.
    for name in set(a) - {"head_bias"}:
        assert torch.allclose(a[name], b[name], atol=1e-4), (name, (a[name] - b[name]).abs().max())
    runs = Store(tmp_path / "two").runs()
    assert len(runs) == 1 and runs[0]["status"] == "done"  # one run row: the workers never wrote to the store


def test_eval_forgetting_and_fuse_on_two_processes_give_the_figures_of_one(tiny_backbone_dir, cli_env, tmp_path):
    """The protocol with baas (entries, router, routed evaluation) and EWC (the shared loop with a penalty) under
    `accelerate launch`, then `fuse` under torchrun: every figure equals one process's, and the results file
    holds each cell once."""
    bb = tiny_backbone_dir("bert")
    one = last_json(baas(*forgetting_args(bb, tmp_path, "one", "baas,ewc"), env=cli_env))
    two = last_json(launch(forgetting_args(bb, tmp_path, "two", "baas,ewc"), cli_env, launcher="accelerate"))
    assert (one["processes"], two["processes"]) == (1, 2)
    assert figures(two) == figures(one)
    cells = [(tmp_path / name / "cells.jsonl").read_text().splitlines() for name in ("one", "two")]
    assert len(cells[1]) == len(cells[0]) == len(set(cells[1]))
    fuse = ["fuse", "--strategy", "all", "--space", "both", "--max-eval", 24, "--json"]
    alone = last_json(baas(*fuse, "--store", tmp_path / "one-store", env=cli_env))
    shared = last_json(launch([*fuse, "--store", tmp_path / "two-store"], cli_env))
    keep = ("strategy", "space", "mean_accuracy", "mean_oracle_accuracy", "routing_accuracy", "confusion")
    assert [{k: r[k] for k in keep} for r in shared["strategies"]] == [{k: r[k] for k in keep} for r in alone["strategies"]]


def test_gathered_shares_come_back_in_question_order(monkeypatch):
    """Process r scores questions r, r + N, r + 2N, ...: gathering the shares of 3 processes over 7 questions
    gives each question's answer back in its place (the all_gather is simulated)."""
    from baas.training.parallel import Processes

    n, world, answers = 7, 3, torch.tensor([10, 11, 12, 13, 14, 15, 16])
    shares = [answers[r::world] for r in range(world)]

    def all_gather(parts, padded):
        for r, part in enumerate(parts):
            part.zero_()
            part[: len(shares[r])] = shares[r]

    monkeypatch.setattr(torch.distributed, "all_gather", all_gather)
    processes = Processes()
    processes.rank, processes.world = 1, world
    assert processes.share(list(range(n))) == [1, 4]
    assert processes.gather(shares[1], n).tolist() == answers.tolist()

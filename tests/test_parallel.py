"""`train-task` data-parallel over two CPU processes (torchrun, gloo): the result of one process, within
floating-point tolerance, and only the main process writes to the store."""

import socket
import subprocess
import sys

import pytest
import torch
from test_cli import TINY_TRAIN, baas, last_json

from baas.store import Store


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_what_one_does(tiny_backbone_dir, cli_env, tmp_path):
    args = ["train-task", "demo_categories", "--backbone", tiny_backbone_dir("bert"), *TINY_TRAIN, "--json"]
    one = last_json(baas(*args, "--store", tmp_path / "one", env=cli_env))
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
                           "-m", "baas.cli.main", *map(str, args), "--store", str(tmp_path / "two")],
                          capture_output=True, text=True, env=cli_env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = last_json(proc)
    assert two["processes"] == 2 and one["processes"] == 1
    assert len([line for line in proc.stdout.splitlines() if line.startswith("{")]) == 1  # only the main process prints
    assert two["accuracy"] == one["accuracy"]
    a, b = (Store(tmp_path / s).load_entry("demo_categories").tensors() for s in ("one", "two"))
    # The head's bias cancels in the softmax over a question's options, so its gradient is float noise that
    # Adam turns into full-size steps: it differs between runs and changes no answer. Everything else agrees.
    for name in set(a) - {"head_bias"}:
        assert torch.allclose(a[name], b[name], atol=1e-4), (name, (a[name] - b[name]).abs().max())
    runs = Store(tmp_path / "two").runs()
    assert len(runs) == 1 and runs[0]["status"] == "done"  # one run row: the workers never wrote to the store


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

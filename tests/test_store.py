"""The store: atomic safetensors entries, verified reads, backbone checks, names, catalog, checkpoints."""

import json
import os

import pytest
import torch
from safetensors.torch import load_file

from baas.prompts_bank.bank import BankEntry
from baas.store import Store, StoreError, validate_task_name


def _entry(task="arc_easy", d=8, backbone="tiny"):
    g = torch.Generator().manual_seed(1)
    return BankEntry(task, torch.randn(1, 3, d, generator=g), torch.randn(1, 2, d, generator=g), torch.randn(d, generator=g),
                     torch.tensor(0.5), torch.randn(d, generator=g),
                     {"backbone": backbone, "hidden_size": d, "prefix_len": 3, "suffix_len": 2})


def test_roundtrip_and_plain_safetensors(tmp_path):
    store = Store(tmp_path)
    saved = store.save_entry(_entry(), "arc_easy", {"accuracy": 0.5})
    assert saved.version == 1
    path = store.entry_path("arc_easy")
    tensors = load_file(path)  # a plain safetensors file anyone can open
    assert set(tensors) == {"prefix", "suffix", "head_weight", "head_bias", "key"}
    loaded = store.load_entry("arc_easy", backbone="tiny", hidden_size=8)
    assert torch.equal(loaded.prefix, _entry().prefix) and loaded.meta["metrics"] == {"accuracy": 0.5}
    assert float(loaded.head_bias) == 0.5
    assert not list(path.parent.glob(".*tmp"))  # no temporary files left behind


def test_an_entry_written_before_deep_prompts_reads_as_depth_one(tmp_path):
    store = Store(tmp_path)
    old = _entry()
    old.prefix, old.suffix = old.prefix[0], old.suffix[0]  # the [L, d] layout of earlier versions
    store.save_entry(old, "arc_easy", {})
    loaded = store.load_entry("arc_easy", backbone="tiny", hidden_size=8)
    assert loaded.prefix.shape == (1, 3, 8) and torch.equal(loaded.suffix[0], old.suffix)


def test_versions_and_listing(tmp_path):
    store = Store(tmp_path)
    store.save_entry(_entry(), "arc_easy", {"accuracy": 0.4})
    store.save_entry(_entry(), "arc_easy", {"accuracy": 0.6})
    store.save_entry(_entry("medqa"), "medqa", {"accuracy": 0.3})
    rows = store.list_entries()
    assert [(r["task"], r["version"], r["versions"]) for r in rows] == [("arc_easy", 2, 2), ("medqa", 1, 1)]
    assert store.load_entry("arc_easy", 1).meta["metrics"]["accuracy"] == 0.4
    assert store.remove("arc_easy") == 2
    assert [r["task"] for r in store.list_entries()] == ["medqa"]
    assert not (tmp_path / "bank" / "arc_easy" / "v1.safetensors").exists()


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_corrupt_files_are_named(tmp_path, damage):
    store = Store(tmp_path)
    store.save_entry(_entry(), "arc_easy", {})
    path = store.entry_path("arc_easy")
    raw = bytearray(path.read_bytes())
    if damage == "flip":
        raw[-5] ^= 0xFF
    elif damage == "truncate":
        raw = raw[: len(raw) // 2]
    else:
        raw = bytearray(b"not a safetensors file")
    path.write_bytes(bytes(raw))
    with pytest.raises(StoreError, match=rf"{path}: bank file is corrupt or truncated"):
        store.load_entry("arc_easy")


def test_missing_file_and_missing_entry(tmp_path):
    store = Store(tmp_path)
    with pytest.raises(StoreError, match="no bank entry for task 'arc_easy'"):
        store.load_entry("arc_easy")
    store.save_entry(_entry(), "arc_easy", {})
    store.entry_path("arc_easy").unlink()
    with pytest.raises(StoreError, match="cannot read bank file"):
        store.load_entry("arc_easy")


def test_entry_for_another_backbone_is_refused(tmp_path):
    store = Store(tmp_path)
    store.save_entry(_entry(), "arc_easy", {})
    with pytest.raises(StoreError, match="trained on backbone tiny .hidden size 8., not bert-base .hidden size 768."):
        store.load_entry("arc_easy", backbone="bert-base", hidden_size=768)


@pytest.mark.parametrize("name", ["../evil", "a/b", "", ".hidden", "x" * 65, "bad name", "a\\b"])
def test_bad_task_names(tmp_path, name):
    with pytest.raises(StoreError, match="invalid task name"):
        validate_task_name(name)
    with pytest.raises(StoreError):
        Store(tmp_path).save_entry(_entry(name), "x", {})
    assert not (tmp_path.parent / "evil").exists()


def test_metadata_is_json_in_the_file(tmp_path):
    from safetensors import safe_open

    store = Store(tmp_path)
    store.save_entry(_entry(), "arc_easy", {"accuracy": 0.5})
    with safe_open(store.entry_path("arc_easy"), "pt") as f:
        meta = f.metadata()
    assert meta["format"] == "baas-bank-entry/1"
    assert json.loads(meta["baas"])["backbone"] == "tiny"


def test_runs_and_checkpoints(tmp_path):
    store = Store(tmp_path)
    run = store.start_run("arc_easy", "train", {"lr": 0.01})
    store.finish_run(run, "done", {"accuracy": 0.5})
    assert store.runs("arc_easy")[0]["status"] == "done"
    assert store.load_checkpoint("arc_easy", "k") is None
    store.save_checkpoint("arc_easy", "k", {"w": torch.ones(2), "progress": "{}"})
    assert torch.equal(store.load_checkpoint("arc_easy", "k")["w"], torch.ones(2))
    store.checkpoint_path("arc_easy", "k").write_bytes(b"junk")
    with pytest.raises(StoreError, match="unreadable checkpoint"):
        store.load_checkpoint("arc_easy", "k")
    store.drop_checkpoint("arc_easy", "k")
    assert store.load_checkpoint("arc_easy", "k") is None


WRITER = """
import sys, torch
from baas.prompts_bank.bank import BankEntry
from baas.store import Store
store = Store(sys.argv[1])
for i in range(int(sys.argv[2])):
    entry = BankEntry("shared_task", torch.randn(1, 2, 8), torch.randn(1, 2, 8), torch.randn(8), torch.tensor(0.0), torch.randn(8),
                      {"backbone": "tiny", "hidden_size": 8, "prefix_len": 2, "suffix_len": 2})
    store.save_entry(entry, "shared_task", {"accuracy": 0.5})
"""


def test_concurrent_writers_of_one_task_get_distinct_versions(tmp_path):
    """Four real processes save ten versions each of the same task into one store at once: every one lands,
    with its own version, and reads back verified (version allocation holds SQLite's write lock)."""
    import subprocess
    import sys

    Store(tmp_path)  # the catalog exists before the writers race
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), "10"]) for _ in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    store = Store(tmp_path)
    versions = [v["version"] for v in store.versions("shared_task")]
    assert sorted(versions) == list(range(1, 41))
    for v in versions:
        assert store.load_entry("shared_task", v).version == v  # file present and its sha256 matches


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid  # finished and reaped: no process has this pid now (barring reuse within microseconds)


def test_store_check_finds_each_kind_of_damage_and_repair_removes_only_what_no_row_needs(tmp_path, cli_env):
    from test_cli import baas

    store = Store(tmp_path)
    for task in ("arc_easy", "dream", "qasc"):
        store.save_entry(_entry(task), task, {"accuracy": 0.5})
    store.save_artifact("router", "hard", {"w": torch.ones(2)}, {"strategy": "hard"})
    store.save_cached("tokens", "ab" * 16, {"ids": torch.ones(3)})
    clean = baas("store", "check", "--store", tmp_path, "--json", env=cli_env)
    assert json.loads(clean.stdout)["ok"] and json.loads(clean.stdout)["files_checked"] == 4

    store.entry_path("dream").unlink()                                         # missing
    path = store.entry_path("qasc")
    blob = bytearray(path.read_bytes()); blob[-1] ^= 0xFF; path.write_bytes(bytes(blob))  # a flipped bit
    (tmp_path / "bank" / "arc_easy" / "v9.safetensors").write_bytes(b"left over")  # orphan
    half = tmp_path / "routers" / f".hard.safetensors.{_dead_pid()}.x1.tmp"
    half.write_bytes(b"half")  # a killed writer's
    (tmp_path / "tokens" / ("cd" * 16 + ".safetensors")).write_bytes(b"\0" * 7)  # an unreadable cache
    proc = baas("store", "check", "--store", tmp_path, "--json", env=cli_env, check=False)
    assert proc.returncode == 1
    p = json.loads(proc.stdout)["problems"]
    assert [m["name"] for m in p["missing"]] == ["dream@v1"] and [c["name"] for c in p["corrupt"]] == ["qasc@v1"]
    assert p["orphans"] == ["bank/arc_easy/v9.safetensors"] and json.loads(proc.stdout)["removed"] == [str(half.relative_to(tmp_path))]
    assert not half.exists()  # opening the store removed it
    assert p["bad_caches"] == ["tokens/" + "cd" * 16 + ".safetensors"] and p["catalog"] == []
    text = baas("store", "check", "--store", tmp_path, env=cli_env, check=False).stdout
    assert "missing: entry dream@v1" in text and "corrupt: entry qasc@v1" in text and "problems found" in text

    repaired = json.loads(baas("store", "check", "--store", tmp_path, "--repair", "--json", env=cli_env, check=False).stdout)
    assert len(repaired["removed"]) == 2 and not repaired["ok"]  # the damaged entries are the user's call
    assert store.load_entry("arc_easy").version == 1 and store.load_artifact("router", "hard") is not None
    assert store.load_cached("tokens", "ab" * 16) is not None
    Store(tmp_path).remove("dream")
    Store(tmp_path).remove("qasc")
    assert baas("store", "check", "--store", tmp_path, env=cli_env).returncode == 0


def test_a_killed_writers_temporary_files_go_on_the_next_open_and_a_live_ones_stay(tmp_path):
    import os

    Store(tmp_path)
    dead = tmp_path / "bank" / "t" / f".v1.safetensors.{_dead_pid()}.abc.tmp"
    live = tmp_path / "bank" / "t" / f".v2.safetensors.{os.getpid()}.abc.tmp"
    dead.parent.mkdir(parents=True)
    dead.write_bytes(b"x")
    live.write_bytes(b"x")
    Store(tmp_path)
    assert not dead.exists() and live.exists()


def test_a_backbone_folder_with_custom_code_never_runs_it(tiny_backbone_dir, tmp_path):
    """trust_remote_code stays off: a model folder that asks for its own Python code is loaded as its
    standard class or refused, and the code is never imported."""
    import shutil

    from baas.prompts_bank.errors import BaasError
    from baas.training.backbone import load_backbone

    folder = tmp_path / "evil"
    shutil.copytree(tiny_backbone_dir("bert"), folder)
    marker = tmp_path / "ran"
    (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\nfrom transformers import BertModel as EvilModel\n")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "evil.EvilModel", "AutoConfig": "evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    try:
        load_backbone(str(folder))
    except BaasError:
        pass
    assert not marker.exists()


# ---- a catalog that is damaged, locked or read-only, and a full disk: one error line, nothing changed ------


def _cli(*args):
    from typer.testing import CliRunner

    from baas.cli.main import app

    return CliRunner().invoke(app, [str(a) for a in args])


def _one_error(result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def _files(root) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_damaged_catalog_is_one_line_and_is_left_as_it_was(tmp_path):
    Store(tmp_path).save_entry(_entry(), "arc_easy", {})
    catalog = tmp_path / "catalog.sqlite"
    catalog.write_bytes(b"not sqlite at all " * 64 + catalog.read_bytes()[1152:])
    before = _files(tmp_path)
    for args in (["bank", "list"], ["store", "check"], ["bank", "rm", "arc_easy", "--yes"]):
        line = _one_error(_cli(*args, "--store", tmp_path))
        assert "catalog.sqlite" in line and "the catalog is damaged" in line, line
    assert _files(tmp_path) == before


def test_a_locked_catalog_is_waited_for_then_named(tmp_path, monkeypatch):
    import sqlite3
    import time

    Store(tmp_path).save_entry(_entry(), "arc_easy", {})
    monkeypatch.setenv("BAAS_STORE_TIMEOUT", "0.3")
    holder = sqlite3.connect(tmp_path / "catalog.sqlite")
    holder.execute("BEGIN EXCLUSIVE")  # another process in the middle of a write, for longer than we wait
    try:
        started = time.perf_counter()
        line = _one_error(_cli("bank", "rm", "arc_easy", "--yes", "--store", tmp_path))
        waited = time.perf_counter() - started
    finally:
        holder.rollback()
        holder.close()
    assert "locked by another process" in line and "0.3 s" in line and "BAAS_STORE_TIMEOUT" in line, line
    assert waited >= 0.3
    assert [e["task"] for e in Store(tmp_path).list_entries()] == ["arc_easy"]  # the rm did not happen
    monkeypatch.setenv("BAAS_STORE_TIMEOUT", "soon")
    assert "BAAS_STORE_TIMEOUT='soon'" in _one_error(_cli("bank", "list", "--store", tmp_path))


def test_a_read_only_catalog_refuses_writes_and_nothing_changes(tmp_path, monkeypatch):
    """SQLite opened read-only (what a read-only file or folder gives a non-root user, simulated so that the
    test also runs as root): reading works, writing is one line, and no file goes."""
    import sqlite3

    Store(tmp_path).save_entry(_entry(), "arc_easy", {})
    before = _files(tmp_path)
    connect = sqlite3.connect
    monkeypatch.setattr("baas.store.catalog.sqlite3.connect",
                        lambda path, **kw: connect(f"file:{path}?mode=ro", uri=True, **kw))
    assert _cli("bank", "list", "--store", tmp_path).exit_code == 0
    line = _one_error(_cli("bank", "rm", "arc_easy", "--yes", "--store", tmp_path))
    assert "catalog.sqlite" in line and "read-only" in line, line
    assert _files(tmp_path) == before


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes through file permissions")
def test_a_store_folder_without_write_permission_is_one_line(tmp_path):
    Store(tmp_path / "s").save_entry(_entry(), "arc_easy", {})
    before = _files(tmp_path / "s")
    for p in [tmp_path / "s", *(tmp_path / "s").rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        line = _one_error(_cli("bank", "rm", "arc_easy", "--yes", "--store", tmp_path / "s"))
        assert "read-only" in line or "cannot" in line, line
    finally:
        for p in [tmp_path / "s", *(tmp_path / "s").rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
    assert _files(tmp_path / "s") == before


def test_a_full_disk_stops_training_with_one_line_and_keeps_the_bank(tiny_backbone_dir, tmp_path, monkeypatch):
    """Every file write fails as on a full disk (at fsync, where delayed allocation reports it): train-task
    and import give one line naming the file, and the bank's entries and files are as they were (the
    catalog's run log records the failed run)."""
    import errno

    store = Store(tmp_path / "s")
    store.save_entry(_entry(), "arc_easy", {})
    before = {k: v for k, v in _files(tmp_path / "s").items() if k != "catalog.sqlite"}
    store.export_entry("arc_easy", None, tmp_path / "export")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("baas.store.files.os.fsync", full)
    line = _one_error(_cli("train-task", "demo_categories", "--backbone", tiny_backbone_dir("bert"), "--store",
                           tmp_path / "s", "--max-train", 8, "--max-eval", 8, "--epochs", 1, "--batch-size", 4))
    assert "No space left on device" in line and str(tmp_path / "s") in line, line
    line = _one_error(_cli("bank", "import", tmp_path / "export", "--name", "copy", "--store", tmp_path / "s"))
    assert "No space left on device" in line, line
    assert {k: v for k, v in _files(tmp_path / "s").items() if k != "catalog.sqlite"} == before
    assert [(e["task"], e["version"]) for e in Store(tmp_path / "s").list_entries()] == [("arc_easy", 1)]
    assert Store(tmp_path / "s").check()["ok"]


def test_replacing_an_artifact_never_leaves_a_row_that_does_not_match_its_file(tmp_path, monkeypatch):
    """A writer killed between writing a router's new file and moving its catalog row (found by the fault suite:
    the file used to be replaced in place): the old router still loads and checks clean, and the next save
    removes what the killed one left."""
    store = Store(tmp_path)
    store.save_artifact("router", "hard", {"w": torch.zeros(2)}, {"v": "1"})

    class Killed(BaseException):
        pass

    def killed():
        raise Killed

    monkeypatch.setattr(store, "_db", killed)
    with pytest.raises(Killed):
        store.save_artifact("router", "hard", {"w": torch.ones(2)}, {"v": "2"})
    monkeypatch.undo()
    problems = Store(tmp_path).check()["problems"]
    assert not problems["corrupt"] and not problems["missing"] and len(problems["orphans"]) == 1  # the new file
    assert Store(tmp_path).load_artifact("router", "hard")[1]["v"] == "1"
    store.save_artifact("router", "hard", {"w": torch.full((2,), 2.0)}, {"v": "3"})
    assert Store(tmp_path).check()["ok"] and len(list((tmp_path / "routers").iterdir())) == 1
    assert Store(tmp_path).load_artifact("router", "hard")[1]["v"] == "3"


def test_written_files_get_the_usual_permissions(tmp_path):
    """Files the store and reports write are readable as open() would make them under the umask, not private."""
    from baas.store.files import _UMASK, atomic_write

    atomic_write(tmp_path / "report.json", lambda f: f.write(b"{}"))
    assert (tmp_path / "report.json").stat().st_mode & 0o777 == 0o666 & ~_UMASK

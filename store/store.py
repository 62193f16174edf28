"""The store: one folder with a SQLite catalog, one safetensors file per bank entry, and checkpoints.

    <store>/catalog.sqlite            tasks, entries (versions, checksums, metrics), runs, llm_cache
    <store>/bank/<task>/v<N>.safetensors
    <store>/checkpoints/<task>/<run-key>.pt
    <store>/inits/<task>/<init-key>.safetensors   data-driven starting pairs (topic labels, chains)
    <store>/tokens/<key>.safetensors              token ids of a dataset split for one tokenizer
    <store>/queries/<key>.safetensors             routing query vectors of a dataset split for one backbone
    <store>/logits/<key>.safetensors              one entry's answers on one split's questions (those run so far)
    <store>/summaries/<task>@v<N>-<query>.safetensors  an entry's query statistics (what a router keeps)
    <store>/routers/<name>.safetensors            fitted routers
    <store>/states/<name>.safetensors             a continual baseline's model after each task (eval-forgetting)

Every file is written to a temporary name, fsynced and renamed before its catalog row is committed,
so a crash leaves either the old state or the new one. Every read of a bank file checks its sha256
against the catalog. Nothing is pickled: tensors go to safetensors, metadata to JSON, and checkpoints
are read back with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from baas.prompts_bank.bank import BankEntry
from baas.prompts_bank.pair import HEAD_FIELDS
from baas.prompts_bank.errors import BaasError

FORMAT = "baas-bank-entry/1"
TASK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    name TEXT PRIMARY KEY, dataset TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    task TEXT NOT NULL REFERENCES tasks(name), version INTEGER NOT NULL, file TEXT NOT NULL,
    sha256 TEXT NOT NULL, backbone TEXT NOT NULL, hidden_size INTEGER NOT NULL, created REAL NOT NULL,
    metrics TEXT NOT NULL, meta TEXT NOT NULL, PRIMARY KEY (task, version));
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, task TEXT NOT NULL, kind TEXT NOT NULL, started REAL NOT NULL,
    finished REAL, status TEXT NOT NULL, config TEXT NOT NULL, metrics TEXT);
CREATE TABLE IF NOT EXISTS artifacts (
    kind TEXT NOT NULL, name TEXT NOT NULL, file TEXT NOT NULL, sha256 TEXT NOT NULL, meta TEXT NOT NULL,
    created REAL NOT NULL, PRIMARY KEY (kind, name));
CREATE TABLE IF NOT EXISTS llm_cache (
    key TEXT PRIMARY KEY, model TEXT NOT NULL, request TEXT NOT NULL, response TEXT NOT NULL, created REAL NOT NULL);
"""


class StoreError(BaasError):
    pass


def default_store_path() -> Path:
    """--store wins, then BAAS_HOME, then ~/.baas."""
    return Path(os.environ.get("BAAS_HOME") or Path.home() / ".baas").expanduser()


def parse_entry_ref(text: str) -> tuple[str, int | None]:
    """`NAME` (the latest version) or `NAME@vN` / `NAME@N` (version N)."""
    name, at, version = text.partition("@")
    if not at:
        return validate_task_name(name), None
    digits = version[1:] if version[:1] in ("v", "V") else version
    if not digits.isdigit() or int(digits) < 1:
        raise StoreError(f"bad entry reference {text!r}: expected NAME or NAME@vN, e.g. arc_easy@v2")
    return validate_task_name(name), int(digits)


def validate_task_name(name: str) -> str:
    if not TASK_NAME.match(name or ""):
        raise StoreError(
            f"invalid task name {name!r}: use 1-64 letters, digits, '_' or '-', starting with a letter or digit"
        )
    return name


TMP_SUFFIX = ".tmp"


def _writer_gone(tmp: Path) -> bool:
    """Whether the process that wrote the temporary file `.<name>.<pid>.<random>.tmp` is no longer running
    (on this machine); a file without a pid in its name is left alone."""
    parts = tmp.name.split(".")
    pid = parts[-3] if len(parts) >= 4 else ""
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, but another user's
        return False
    return False


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """write(f) into a temporary file beside `path`, fsync, rename over `path`, fsync the folder.
    A failed write (a full disk, a read-only folder) leaves `path` as it was and raises a StoreError."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=TMP_SUFFIX)
        os.chmod(tmp, 0o666 & ~_UMASK)  # as open() would make it (mkstemp's files are private to their owner)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
    except OSError as exc:
        raise StoreError(f"{path}: cannot write ({exc.strerror or exc}); the store keeps what it had") from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def lock_timeout() -> float:
    """Seconds a command waits for another process's write lock on the catalog ($BAAS_STORE_TIMEOUT, default 30)."""
    raw = os.environ.get("BAAS_STORE_TIMEOUT", "30")
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise StoreError(f"BAAS_STORE_TIMEOUT={raw!r}: expected a number of seconds") from None


def _catalog_problem(exc: sqlite3.DatabaseError, wait: float) -> str:
    """What a catalog error means for the user, in one line."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return (f"the catalog is locked by another process and stayed locked for {wait:g} s; "
                "wait for it to finish, or raise $BAAS_STORE_TIMEOUT")
    if "readonly" in text or "read-only" in text:
        return "the catalog is read-only (its file or folder cannot be written); nothing was changed"
    if "disk is full" in text:
        return f"the catalog cannot be written ({text}); free some space and rerun: nothing was changed"
    if "disk I/O" in text:
        return f"the catalog's disk failed a read or write ({text}); nothing was changed"
    if "not a database" in text or "malformed" in text:
        return f"the catalog is damaged ({text}); restore it from a copy, or move the store aside and start a new one"
    return f"catalog error: {text}"


class Store:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root).expanduser() if root else default_store_path()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.root}: cannot create the store folder ({exc.strerror or exc})") from None
        self.catalog_path = self.root / "catalog.sqlite"
        with self._db() as db:
            db.executescript(SCHEMA)
        self.cleaned = []  # half-written files of processes that were killed, removed now
        for tmp in self._temporary_files():
            if _writer_gone(tmp):
                tmp.unlink(missing_ok=True)
                self.cleaned.append(str(tmp.relative_to(self.root)))

    def _temporary_files(self) -> list[Path]:
        return [Path(d) / f for d, _, files in os.walk(self.root) for f in files
                if f.startswith(".") and f.endswith(TMP_SUFFIX)]

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        wait = lock_timeout()
        try:
            db = sqlite3.connect(self.catalog_path, timeout=wait)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.catalog_path}: cannot open catalog: {exc}") from None
        db.row_factory = sqlite3.Row
        try:
            with db:  # one transaction: committed on success, rolled back on error
                yield db
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.catalog_path}: {_catalog_problem(exc, wait)}") from None
        finally:
            db.close()

    # ---- bank entries ------------------------------------------------------------------------

    def save_entry(self, entry: BankEntry, dataset: str, metrics: dict) -> BankEntry:
        """Write a new version of `entry.task`; returns the entry with its version and file set.

        The version is allocated under SQLite's write lock (`BEGIN IMMEDIATE`), held until the row is in:
        two processes saving the same task get distinct versions (the second waits a few milliseconds)."""
        task = validate_task_name(entry.task)
        tensors = {k: v.detach().contiguous().cpu().float() for k, v in entry.tensors().items()}
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT MAX(version) AS v FROM entries WHERE task = ?", (task,)).fetchone()
            version = (row["v"] or 0) + 1
            meta = dict(entry.meta, task=task, version=version, metrics=metrics, created=time.time())
            payload = save_safetensors(tensors, metadata={"format": FORMAT, "baas": json.dumps(meta, sort_keys=True)})
            path = self.root / "bank" / task / f"v{version}.safetensors"
            atomic_write(path, lambda f: f.write(payload))  # file first: a crash leaves no row without its file
            db.execute("INSERT OR IGNORE INTO tasks VALUES (?, ?, ?)", (task, dataset, meta["created"]))
            db.execute(
                "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (task, version, str(path.relative_to(self.root)), hashlib.sha256(payload).hexdigest(),
                 meta["backbone"], meta["hidden_size"], meta["created"], json.dumps(metrics), json.dumps(meta)),
            )
        entry.meta, entry.version = meta, version
        return entry

    def entry_path(self, task: str, version: int | None = None) -> Path:
        return self.root / self._entry_row(task, version)["file"]

    def _entry_row(self, task: str, version: int | None) -> sqlite3.Row:
        validate_task_name(task)
        with self._db() as db:
            if version is None:
                row = db.execute("SELECT * FROM entries WHERE task = ? ORDER BY version DESC LIMIT 1", (task,)).fetchone()
            else:
                row = db.execute("SELECT * FROM entries WHERE task = ? AND version = ?", (task, version)).fetchone()
        if row is None:
            which = f"version {version} of " if version else ""
            raise StoreError(f"no bank entry for {which}task '{task}' in store {self.root} (see `baas bank list`)")
        return row

    def load_entry(
        self, task: str, version: int | None = None, *, backbone: str | None = None, hidden_size: int | None = None
    ) -> BankEntry:
        """Read and verify an entry; refuse one made for another backbone when `backbone` is given."""
        row = self._entry_row(task, version)
        path = self.root / row["file"]
        try:
            payload = path.read_bytes()
        except OSError as exc:
            raise StoreError(f"{path}: cannot read bank file: {exc.strerror}") from None
        if hashlib.sha256(payload).hexdigest() != row["sha256"]:
            raise StoreError(
                f"{path}: bank file is corrupt or truncated (sha256 does not match the catalog); "
                f"retrain it with `baas train-task {task}` or remove that version with `baas bank rm {task}@v{row['version']}`"
            )
        try:
            tensors = load_safetensors(payload)
        except (SafetensorError, ValueError) as exc:
            raise StoreError(f"{path}: not a readable safetensors file: {exc}") from None
        meta = json.loads(row["meta"])
        if backbone is not None and (meta["backbone"] != backbone or meta["hidden_size"] != hidden_size):
            raise StoreError(
                f"{path}: entry '{task}' was trained on backbone {meta['backbone']} (hidden size {meta['hidden_size']}), "
                f"not {backbone} (hidden size {hidden_size}); pass --backbone {meta['backbone']} or retrain"
            )
        return BankEntry.from_tensors(task, tensors, meta, row["version"])

    def list_entries(self) -> list[dict]:
        """The latest version of every task, in the order tasks were first learned."""
        with self._db() as db:
            rows = db.execute(
                "SELECT e.*, t.dataset, (SELECT COUNT(*) FROM entries x WHERE x.task = e.task) AS versions "
                "FROM entries e JOIN tasks t ON t.name = e.task "
                "WHERE e.version = (SELECT MAX(version) FROM entries x WHERE x.task = e.task) ORDER BY t.created"
            ).fetchall()
        return [self._describe(r) for r in rows]

    def describe(self, task: str, version: int | None = None) -> dict:
        return self._describe(self._entry_row(task, version))

    def _describe(self, row: sqlite3.Row) -> dict:
        meta = json.loads(row["meta"])
        out = {k: row[k] for k in row.keys() if k not in ("meta", "metrics")}
        out.update(metrics=json.loads(row["metrics"]), meta=meta, path=str(self.root / row["file"]))
        return out

    def find_version(self, task: str, run_key: str) -> int | None:
        """The newest version of `task` trained by the run `run_key` names (same data, backbone and
        settings; see `baas.training.trainer.run_key`), or None."""
        with self._db() as db:
            row = db.execute("SELECT MAX(version) AS v FROM entries WHERE task = ? AND json_extract(meta, '$.run_key') = ?",
                             (validate_task_name(task), run_key)).fetchone()
        return row["v"]

    def versions(self, task: str) -> list[dict]:
        """Every version of a task, newest first (as `describe` gives them)."""
        validate_task_name(task)
        with self._db() as db:
            rows = db.execute("SELECT * FROM entries WHERE task = ? ORDER BY version DESC", (task,)).fetchall()
        return [self._describe(r) for r in rows]

    def remove(self, task: str, version: int | None = None) -> int:
        """Delete one version of a task, or every version; returns how many entries went."""
        validate_task_name(task)
        which, args = ("task = ? AND version = ?", (task, version)) if version is not None else ("task = ?", (task,))
        with self._db() as db:
            files = [r["file"] for r in db.execute(f"SELECT file FROM entries WHERE {which}", args)]
            if not files:
                what = f"version {version} of " if version is not None else ""
                raise StoreError(f"no bank entry for {what}task '{task}' in store {self.root} (see `baas bank list`)")
            db.execute(f"DELETE FROM entries WHERE {which}", args)
            if db.execute("SELECT COUNT(*) FROM entries WHERE task = ?", (task,)).fetchone()[0] == 0:
                db.execute("DELETE FROM tasks WHERE name = ?", (task,))
        for f in files:  # catalog first: a crash here leaves orphan files, never dangling rows
            (self.root / f).unlink(missing_ok=True)
        return len(files)

    # ---- sharing an entry: a self-contained folder ---------------------------------------------

    EXPORT_FORMAT = "baas-entry-export/1"

    def export_entry(self, task: str, version: int | None, folder: Path) -> Path:
        """Write `folder/entry.safetensors` (the bank file as stored), `folder/baas_entry.json` (what it
        is: backbone, shapes, pooling, data fingerprint, metrics, sha256) and `folder/README.md`, plus
        the entry's query summaries; returns the folder."""
        row = self._entry_row(task, version)
        self.load_entry(task, row["version"])  # verifies the checksum before anything is shared
        folder = Path(folder)
        if folder.exists() and any(folder.iterdir()):
            raise StoreError(f"{folder}: exists and is not empty; export into a new folder")
        meta, payload = json.loads(row["meta"]), (self.root / row["file"]).read_bytes()
        summaries = [a for a in self.artifacts("summary") if a["meta"].get("task") == task
                     and a["meta"].get("version") == str(row["version"])]
        config = {"format": self.EXPORT_FORMAT, "task": task, "version": row["version"], "sha256": row["sha256"],
                  "backbone": meta["backbone"], "hidden_size": meta["hidden_size"], "depth": meta.get("depth", 1),
                  "prefix_len": meta["prefix_len"], "suffix_len": meta["suffix_len"], "pooling": meta.get("pooling"),
                  "scoring": meta.get("scoring", "joint"), "dataset": meta.get("dataset"), "data_fingerprint": meta.get("data_fingerprint"),
                  "metrics": json.loads(row["metrics"]), "summaries": [{"name": a["name"], "meta": a["meta"]} for a in summaries],
                  "meta": meta}
        m = config["metrics"]
        card = (f"# baas prompt-bank entry: {task} (v{row['version']})\n\n"
                f"A frozen bidirectional prompt pair and scoring head for `{meta['backbone']}` (hidden size "
                f"{meta['hidden_size']}): {meta['prefix_len']} prefix + {meta['suffix_len']} suffix vectors at "
                f"{config['depth']} layer(s), pooling `{config['pooling']}`, trained on {meta.get('n_train')} questions of "
                f"`{meta.get('dataset')}`. Accuracy {m.get('accuracy', float('nan')):.3f} on {m.get('n_eval', '?')} "
                f"{m.get('eval_split', '')} questions.\n\nFiles: `entry.safetensors` (prefix [D, Lp, d], suffix [D, Ls, d], "
                "the head (`head_weight` [d], `head_bias` for joint scoring; `head_scale`, `head_proj_in` / `head_proj_out` "
                f"[d, r] for dual; all for both: this entry scores `{config['scoring']}`), key [d]), `baas_entry.json` (what it is and its sha256)"
                + (", `summaries/` (the router's statistics of its training queries)" if summaries else "")
                + ".\n\nAdd it to a store with `baas bank import DIR`.\n")
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / "entry.safetensors", lambda f: f.write(payload))
        for a in summaries:
            blob = Path(a["path"]).read_bytes()
            atomic_write(folder / "summaries" / f"{a['name']}.safetensors", lambda f, blob=blob: f.write(blob))
        atomic_write(folder / "README.md", lambda f: f.write(card.encode()))
        atomic_write(folder / "baas_entry.json", lambda f: f.write(json.dumps(config, indent=1).encode()))
        return folder

    def import_entry(self, folder: Path, name: str | None = None) -> BankEntry:
        """Check an exported folder (its config, the file's sha256, the tensors' shapes against the config)
        and add it as a new version of `name` (default: the exported task's name)."""
        folder = Path(folder)
        path = folder / "baas_entry.json"
        try:
            config = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise StoreError(f"{path}: not an exported baas entry ({exc}); make one with `baas bank export NAME DIR`") from None
        if not isinstance(config, dict) or config.get("format") != self.EXPORT_FORMAT:
            raise StoreError(f"{path}: field 'format': expected {self.EXPORT_FORMAT!r}, got {config.get('format') if isinstance(config, dict) else config!r}")
        try:
            payload = (folder / "entry.safetensors").read_bytes()
        except OSError as exc:
            raise StoreError(f"{folder / 'entry.safetensors'}: cannot read: {exc.strerror}") from None
        if hashlib.sha256(payload).hexdigest() != config.get("sha256"):
            raise StoreError(f"{folder / 'entry.safetensors'}: sha256 does not match {path}: the file is damaged or was changed")
        try:
            tensors = load_safetensors(payload)
        except (SafetensorError, ValueError) as exc:
            raise StoreError(f"{folder / 'entry.safetensors'}: not a readable safetensors file: {exc}") from None
        meta = dict(config["meta"])
        entry = BankEntry.from_tensors(validate_task_name(name or config["task"]), tensors, meta, 0)
        d, D = config["hidden_size"], config["depth"]
        head = entry.head_tensors()
        needed = {"joint": ("weight", "bias"), "dual": ("scale", "proj_in", "proj_out")}.get(entry.scoring, HEAD_FIELDS)
        missing = [f"head_{f}" for f in needed if f not in head]
        if missing:
            raise StoreError(f"{folder / 'entry.safetensors'}: scoring '{entry.scoring}' needs tensor(s) {', '.join(missing)}, "
                             "which the file does not have")
        checks = [("prefix", entry.prefix.shape, (D, config["prefix_len"], d)),
                  ("suffix", entry.suffix.shape, (D, config["suffix_len"], d))]
        checks += [(f"head_{f}", head[f].shape, (d,) if f == "weight" else (d, head[f].shape[-1]))
                   for f in ("weight", "proj_in", "proj_out") if f in head]
        for what, got, want in checks:
            if tuple(got) != want:
                raise StoreError(f"{folder / 'entry.safetensors'}: tensor '{what}' has shape {list(got)}, but "
                                 f"baas_entry.json says {list(want)}")
        for k in ("task", "version", "metrics", "created"):
            meta.pop(k, None)
        saved = self.save_entry(entry, meta.get("dataset") or entry.task, config["metrics"])
        for summary in config.get("summaries", []):  # the router's statistics come along, renamed to the new version
            tensors = load_safetensors((folder / "summaries" / f"{summary['name']}.safetensors").read_bytes())
            slug = summary["name"].split("@v", 1)[1].partition("-")[2]  # <task>@v<N>-<query slug>
            self.save_artifact("summary", f"{saved.task}@v{saved.version}-{slug}", tensors,
                               dict(summary["meta"], task=saved.task, version=str(saved.version)))
        return saved

    # ---- runs ---------------------------------------------------------------------------------

    def start_run(self, task: str, kind: str, config: dict) -> int:
        with self._db() as db:
            cur = db.execute(
                "INSERT INTO runs (task, kind, started, status, config) VALUES (?, ?, ?, 'running', ?)",
                (validate_task_name(task), kind, time.time(), json.dumps(config, sort_keys=True)),
            )
            return int(cur.lastrowid)

    def finish_run(self, run_id: int, status: str, metrics: dict | None = None) -> None:
        with self._db() as db:
            db.execute("UPDATE runs SET finished = ?, status = ?, metrics = ? WHERE id = ?",
                       (time.time(), status, json.dumps(metrics) if metrics else None, run_id))

    def runs(self, task: str | None = None) -> list[dict]:
        with self._db() as db:
            query = "SELECT * FROM runs" + (" WHERE task = ?" if task else "") + " ORDER BY id"
            return [dict(r) for r in db.execute(query, (task,) if task else ())]

    # ---- checkpoints --------------------------------------------------------------------------

    def checkpoint_path(self, task: str, key: str) -> Path:
        return self.root / "checkpoints" / validate_task_name(task) / f"{key}.pt"

    def save_checkpoint(self, task: str, key: str, state: dict) -> None:
        atomic_write(self.checkpoint_path(task, key), lambda f: torch.save(state, f))

    def load_checkpoint(self, task: str, key: str) -> dict | None:
        path = self.checkpoint_path(task, key)
        if not path.is_file():
            return None
        try:
            return torch.load(path, weights_only=True, map_location="cpu")
        except Exception as exc:  # a checkpoint we cannot read is an error to report, never to ignore
            raise StoreError(f"{path}: unreadable checkpoint ({type(exc).__name__}); delete it to start over") from None

    def drop_checkpoint(self, task: str, key: str) -> None:
        self.checkpoint_path(task, key).unlink(missing_ok=True)

    # ---- initialisations ----------------------------------------------------------------------

    def init_path(self, task: str, key: str) -> Path:
        return self.root / "inits" / validate_task_name(task) / f"{key}.safetensors"

    def save_init(self, task: str, key: str, tensors: dict[str, torch.Tensor], info: dict) -> Path:
        """A starting pair and the JSON record of how it was made, in one safetensors file."""
        path = self.init_path(task, key)
        blob = save_safetensors({k: v.contiguous() for k, v in tensors.items()}, metadata={"info": json.dumps(info)})
        atomic_write(path, lambda f: f.write(blob))
        return path

    def load_init(self, task: str, key: str) -> tuple[dict[str, torch.Tensor], dict] | None:
        path = self.init_path(task, key)
        if not path.is_file():
            return None
        try:
            with safe_open(path, "pt") as f:
                info = json.loads((f.metadata() or {})["info"])
                return {k: f.get_tensor(k) for k in f.keys()}, info
        except (SafetensorError, KeyError, ValueError, OSError) as exc:
            raise StoreError(f"{path}: unreadable initialisation ({type(exc).__name__}); delete it to make it again") from None

    # ---- caches: token ids, query vectors, entries' answers --------------------------------------

    CACHES = ("tokens", "queries", "logits")

    def cache_path(self, kind: str, key: str) -> Path:
        if kind not in self.CACHES or not re.fullmatch(r"[0-9a-f]{16,64}", key):
            raise StoreError(f"invalid cache entry {kind}/{key!r}")
        return self.root / kind / f"{key}.safetensors"

    def save_cached(self, kind: str, key: str, tensors: dict[str, torch.Tensor]) -> None:
        blob = save_safetensors({k: v.contiguous() for k, v in tensors.items()})
        atomic_write(self.cache_path(kind, key), lambda f: f.write(blob))

    def load_cached(self, kind: str, key: str) -> dict[str, torch.Tensor] | None:
        """The cached tensors, or None when absent; an unreadable file is removed and reported as absent
        (it is a cache: the caller computes it again and rewrites it)."""
        path = self.cache_path(kind, key)
        if not path.is_file():
            return None
        try:
            return load_safetensors(path.read_bytes())
        except (SafetensorError, OSError):
            path.unlink(missing_ok=True)
            return None

    # ---- artifacts: routers and the entries' query summaries ------------------------------------

    ARTIFACTS = {"router": "routers", "summary": "summaries", "state": "states"}

    def artifact_path(self, kind: str, name: str, sha256: str = "") -> Path:
        """Where an artifact's file goes: `FOLDER/NAME.SHA.safetensors`, named by its content, so that replacing
        an artifact writes a new file and then moves the catalog row to it in one transaction. A kill between
        the two leaves the old row and file as they were (plus an orphan that `store check --repair` removes),
        never a row whose checksum does not match its file."""
        if kind not in self.ARTIFACTS or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}", name):
            raise StoreError(f"invalid {kind} name {name!r}")
        return self.root / self.ARTIFACTS[kind] / (f"{name}.{sha256[:16]}.safetensors" if sha256 else f"{name}.safetensors")

    def save_artifact(self, kind: str, name: str, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> Path:
        """Write (or replace) a named artifact: a new file first, then its catalog row with the checksum, then the
        file it replaces (and any a killed writer left) goes."""
        payload = save_safetensors({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=meta)
        sha = hashlib.sha256(payload).hexdigest()
        path = self.artifact_path(kind, name, sha)
        atomic_write(path, lambda f: f.write(payload))
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO artifacts VALUES (?, ?, ?, ?, ?, ?)",
                       (kind, name, str(path.relative_to(self.root)), sha, json.dumps(meta), time.time()))
            kept = {self.root / r[0] for r in db.execute("SELECT file FROM artifacts WHERE kind = ?", (kind,))}
        for old in [self.artifact_path(kind, name), *path.parent.glob(f"{name}.{'[0-9a-f]' * 16}.safetensors")]:
            if old not in kept:
                old.unlink(missing_ok=True)
        return path

    def load_artifact(self, kind: str, name: str) -> tuple[dict[str, torch.Tensor], dict[str, str]] | None:
        """(tensors, metadata) of a named artifact, verified against its checksum; None when there is none."""
        self.artifact_path(kind, name)  # (checks the name)
        with self._db() as db:
            row = db.execute("SELECT * FROM artifacts WHERE kind = ? AND name = ?", (kind, name)).fetchone()
        if row is None:
            return None
        path = self.root / row["file"]
        try:
            payload = path.read_bytes()
        except OSError as exc:
            raise StoreError(f"{path}: cannot read {kind} file: {exc.strerror}") from None
        if hashlib.sha256(payload).hexdigest() != row["sha256"]:
            raise StoreError(f"{path}: {kind} file is corrupt or truncated (sha256 does not match the catalog); "
                             f"rebuild it (`baas fuse` remakes routers and summaries)")
        try:
            header = int.from_bytes(payload[:8], "little")  # safetensors: 8-byte header length, JSON header
            meta = json.loads(payload[8 : 8 + header]).get("__metadata__") or {}
            return load_safetensors(payload), meta
        except (SafetensorError, ValueError) as exc:
            raise StoreError(f"{path}: not a readable safetensors file: {exc}") from None

    def artifacts(self, kind: str) -> list[dict]:
        """Every artifact of a kind, newest first (of two saved within the clock's resolution, the one saved last)."""
        with self._db() as db:
            rows = db.execute("SELECT * FROM artifacts WHERE kind = ? ORDER BY created DESC, rowid DESC", (kind,)).fetchall()
        return [dict(r, meta=json.loads(r["meta"]), path=str(self.root / r["file"])) for r in rows]

    # ---- checking the whole store -------------------------------------------------------------

    CATALOGUED = ("bank", *ARTIFACTS.values())  # folders whose every file has a catalog row

    def check(self, repair: bool = False) -> dict:
        """Verify every file against the catalog. Returns the problems found, by kind:
        `missing` (a row whose file is gone), `corrupt` (a file whose sha256 or format does not match its
        row), `orphans` (a file in a catalogued folder that no row names), `bad_caches` (an unreadable
        cache, initialisation or checkpoint) and `catalog` (SQLite's own integrity check). With `repair`,
        orphans and bad caches are deleted (no catalog row needs them); missing and corrupt entries are
        left for the user (`baas bank rm`, or rerun what made them) and still reported. `removed` lists
        what went, including the half-written files of killed writers that opening the store removed."""
        problems: dict[str, list] = {k: [] for k in ("missing", "corrupt", "orphans", "bad_caches", "catalog")}
        with self._db() as db:
            verdict = [r[0] for r in db.execute("PRAGMA integrity_check")]
            if verdict != ["ok"]:
                problems["catalog"] = verdict
            rows = [("entry", f"{r['task']}@v{r['version']}", r["file"], r["sha256"]) for r in db.execute("SELECT * FROM entries")]
            rows += [(r["kind"], r["name"], r["file"], r["sha256"]) for r in db.execute("SELECT * FROM artifacts")]
        named = set()
        for kind, name, file, sha in rows:
            path = self.root / file
            named.add(path.resolve())
            where = {"kind": kind, "name": name, "file": file}
            if not path.is_file():
                problems["missing"].append(where)
                continue
            payload = path.read_bytes()
            if hashlib.sha256(payload).hexdigest() != sha:
                problems["corrupt"].append(dict(where, why="sha256 does not match the catalog"))
                continue
            try:
                load_safetensors(payload)
            except (SafetensorError, ValueError) as exc:
                problems["corrupt"].append(dict(where, why=f"not a readable safetensors file: {exc}"))
        for folder in self.CATALOGUED:
            for path in sorted((self.root / folder).rglob("*")) if (self.root / folder).is_dir() else []:
                if path.is_file() and not path.name.endswith(TMP_SUFFIX) and path.resolve() not in named:
                    problems["orphans"].append(str(path.relative_to(self.root)))
        for path in self._cache_files():
            if not self._readable(path):
                problems["bad_caches"].append(str(path.relative_to(self.root)))
        removed = list(self.cleaned)
        if repair:
            for rel in problems["orphans"] + problems["bad_caches"]:
                (self.root / rel).unlink(missing_ok=True)
                removed.append(rel)
            problems["orphans"], problems["bad_caches"] = [], []
        return {"store": str(self.root), "files_checked": len(rows), "ok": not any(problems.values()),
                "problems": problems, "removed": removed}

    def _cache_files(self) -> list[Path]:
        folders = [*self.CACHES, "inits", "checkpoints"]
        return sorted(p for f in folders if (self.root / f).is_dir() for p in (self.root / f).rglob("*")
                      if p.is_file() and not p.name.endswith(TMP_SUFFIX))

    @staticmethod
    def _readable(path: Path) -> bool:
        try:
            if path.suffix == ".pt":
                torch.load(path, weights_only=True, map_location="cpu")
            else:
                load_safetensors(path.read_bytes())
            return True
        except Exception:  # any failure to read means the same here: the file cannot be used
            return False

    # ---- LLM answer cache ---------------------------------------------------------------------

    def llm_cache_get(self, key: str) -> str | None:
        """The cached answer for a request hash (see `baas.training.llm`), or None."""
        with self._db() as db:
            row = db.execute("SELECT response FROM llm_cache WHERE key = ?", (key,)).fetchone()
        return None if row is None else row["response"]

    def llm_cache_put(self, key: str, model: str, request: dict, response: str) -> None:
        """Store (or replace) the answer for a request hash; the request is kept as JSON for audits."""
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO llm_cache VALUES (?, ?, ?, ?, ?)",
                       (key, model, json.dumps(request, sort_keys=True), response, time.time()))

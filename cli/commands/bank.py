"""`baas bank list | show | routers | rm | export | import`: the prompt bank's entries and saved routers (the API's `Bank`)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from baas.cli.options import JsonOpt, StoreOpt, VersionOpt
from baas.cli.render import Table, acc, emit, note, one_line_errors, say, show
from baas.prompts_bank.errors import BaasError

app = typer.Typer(help="Inspect and manage the prompt bank (the trained, frozen task entries).\n\n"
                       "Examples: `baas bank list`; `baas bank show arc_easy@v2`; `baas bank export arc_easy shared/arc_easy`.",
                  no_args_is_help=True, rich_markup_mode="markdown")

EntryArg = Annotated[str, typer.Argument(help="A bank entry: NAME (newest version) or NAME@vN.")]


def accuracy(metrics: dict) -> str:
    """An accuracy with its 95% interval and what it was measured on, e.g. `0.450 [0.382, 0.520] n=200 test`."""
    if metrics.get("accuracy") is not None and not metrics.get("n_eval"):
        return f"{metrics['accuracy']:.3f} (split and size not recorded)"
    return acc(metrics.get("accuracy"), metrics.get("n_eval"), metrics.get("accuracy_interval"), metrics.get("eval_split"))


@app.command("list")
@one_line_errors
def bank_list(store: StoreOpt = None, as_json: JsonOpt = False):
    """Every task in the bank (latest version), in the order it was learned.

    Example: `baas bank list --store runs/three/store`."""
    from baas.training.api import Bank

    bank = Bank(store)
    _emit_listing(bank.entries(), bank.store.root, "entries", as_json,
                  "prompt bank", ["entry", "version", "versions", "backbone", "Lp+Ls (x depth)", "accuracy"], _entry_cells,
                  "no entries in {root}; train one with `baas train-task NAME`")


def _entry_cells(r: dict) -> list:
    meta = r["meta"]
    shape = f"{meta['prefix_len']}+{meta['suffix_len']}" + (f" x{meta['depth']}" if meta.get("depth", 1) > 1 else "")
    return [r["task"], f"v{r['version']}", r["versions"], r["backbone"], shape, accuracy(r["metrics"])]


def _emit_listing(rows: list[dict], root: Path, key: str, as_json: bool, title: str, columns: list[str], cells, empty: str) -> None:
    """`{"store", key: rows}` as JSON, or a table of `cells(row)` titled `title at root` (`empty` when there are no rows)."""
    def render() -> None:
        if not rows:
            say(empty.format(root=root))
            return
        table = Table(f"{title} at {root}", columns)
        for r in rows:
            table.add_row(*cells(r))
        show(table)
    emit({"store": str(root), key: rows}, as_json, render)


@app.command("show")
@one_line_errors
def bank_show(name: EntryArg, store: StoreOpt = None, version: VersionOpt = None, as_json: JsonOpt = False):
    """Metadata, metrics and tensor shapes of one bank entry (its file is read and verified).

    Example: `baas bank show arc_easy@v1`."""
    from baas.training.api import Bank

    info = Bank(store).describe(name, version)
    emit(info, as_json, lambda: _show_entry(info))


def _show_entry(info: dict) -> None:
    meta, metrics = info["meta"], info["metrics"]
    table = Table(f"bank entry {info['task']}@v{info['version']}", ["field", "value"], header=False)
    rows = [("dataset", meta.get("dataset", "") + (f" (read as {meta['format']})" if meta.get("format") else "")),
            ("versions", ", ".join(f"v{v}" for v in sorted(info["all_versions"]))),
            ("backbone", f"{info['backbone']} (hidden {info['hidden_size']})"),
            ("prompt", f"{meta['prefix_len']} prefix + {meta['suffix_len']} suffix vectors x depth {meta.get('depth', 1)}, "
                       f"pooling {meta.get('pooling')}, init {meta.get('prefix_init')}/{meta.get('suffix_init')}, "
                       f"reparam {meta.get('reparam')}"),
            ("accuracy", accuracy(metrics)), ("macro F1", f"{metrics.get('macro_f1', float('nan')):.3f}"),
            ("trained on", f"{meta.get('n_train')} questions, best epoch {meta.get('best_epoch')}"),
            ("created", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(meta.get("created", 0)))),
            ("tensors", ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in info["tensors"].items())),
            ("file", info["path"])]
    for k, v in rows:
        table.add_row(k, v)
    show(table)


@app.command("routers")
@one_line_errors
def bank_routers(store: StoreOpt = None, as_json: JsonOpt = False):
    """The saved routers (made by `baas fuse`), newest first: the first is the one `predict` uses by default.
    Each with its strategy, rule and space, the entries it was fitted on, and what no longer fits the bank.

    Example: `baas bank routers --json`."""
    from baas.training.api import Bank

    bank = Bank(store)
    _emit_listing(bank.routers(), bank.store.root, "routers", as_json,
                  "saved routers", ["router", "strategy", "rule", "space", "entries", "problems"],
                  lambda r: [r["name"], r["strategy"], r["rule"], r["space"], ", ".join(r.get("entries", [])) or "–",
                             "; ".join(r["problems"]) or "none"],
                  "no saved routers in {root}; fit one with `baas fuse`")


@app.command("rm")
@one_line_errors
def bank_rm(name: Annotated[str, typer.Argument(help="NAME (every version) or NAME@vN (that version only).")], store: StoreOpt = None,
            yes: Annotated[bool, typer.Option("--yes", metavar="", help="Delete without asking (scripts); without it a terminal asks first.")] = False,
            as_json: JsonOpt = False):
    """Remove one version of an entry (NAME@vN), or every version of it (NAME), from the bank.

    The saved routers fitted on it are named first: they refuse to answer until `baas fuse` is rerun.

    Examples: `baas bank rm arc_easy@v1`; `baas bank rm arc_easy --yes` (every version, no question asked)."""
    from baas.training.api import Bank

    bank = Bank(store)

    def confirm(removal) -> bool:
        what = f"{len(removal.versions)} version(s) of '{removal.task}' (" + ", ".join(f"v{v}" for v in removal.versions) + ")"
        if removal.routers:
            many = len(removal.routers) > 1
            note(f"router{'s' if many else ''} {', '.join(repr(r) for r in removal.routers)} {'were' if many else 'was'} "
                 f"fitted on {name}; without it {'they refuse' if many else 'it refuses'} to answer until you rerun `baas fuse`")
        if yes:
            return True
        if not sys.stdin.isatty():
            raise BaasError(f"refusing to delete {what} without confirmation: rerun with --yes")
        return typer.confirm(f"delete {what} from {bank.store.root}?", default=False, err=True)

    result = bank.remove(name, confirm=confirm)
    emit(result, as_json, lambda: say(f"removed {result.removed_versions} version(s) of '{result.task}'"))


@app.command("export")
@one_line_errors
def bank_export(name: EntryArg, folder: Annotated[Path, typer.Argument(help="A new (or empty) folder to write.")],
                store: StoreOpt = None, as_json: JsonOpt = False):
    """Write one entry as a self-contained folder to share, as a PEFT adapter is shared: entry.safetensors,
    baas_entry.json (backbone, shapes, pooling, data fingerprint, metrics, sha256), a README card and the
    router's query summaries. `baas bank import FOLDER` adds it to another store.

    Example: `baas bank export arc_easy shared/arc_easy`."""
    from baas.training.api import Bank

    result = Bank(store).export(name, folder)
    emit(result, as_json, lambda: say(f"exported {name} to {result.folder}"))


@app.command("import")
@one_line_errors
def bank_import(folder: Annotated[Path, typer.Argument(help="A folder written by `baas bank export`.")],
                name: Annotated[Optional[str], typer.Option("--name", help="The entry's name here (default: its exported name).")] = None,
                store: StoreOpt = None, as_json: JsonOpt = False):
    """Check an exported entry (its sha256 and tensor shapes against its config) and add it to the bank as
    a new version. The saved routers do not know it until `baas fuse` is rerun; this command says so.

    Example: `baas bank import shared/arc_easy --name arc_easy_theirs`."""
    from baas.training.api import Bank

    result = Bank(store, create=True).import_entry(folder, name)
    emit(result, as_json, lambda: say(f"imported {folder} as {result.task}@v{result.version}"))

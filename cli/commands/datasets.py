"""`baas datasets`: the known dataset adapters and where each would load from (the API's `list_datasets`)."""

from __future__ import annotations

from baas.cli.options import DataDirOpt, JsonOpt
from baas.cli.render import Table, emit, one_line_errors, show


@one_line_errors
def datasets(data_dir: DataDirOpt = None, as_json: JsonOpt = False):
    """Known dataset adapters and where each would load from (local folder, hub, or generated).

    Examples: `baas datasets --data-dir DIR`; `baas datasets --json`."""
    from baas.training.api import list_datasets

    result = list_datasets(data_dir)
    emit(result, as_json, lambda: _show(result))


def _show(result) -> None:
    root = result.data_dir
    table = Table(f"datasets (local folders: {root})" if root else "datasets (no data directory: the hub)",
                  ["name", "hub id", "loads from", "splits"])
    for r in result.datasets:
        where = r["source"]
        if root is not None and where.startswith(root):
            where = "local folder"
        elif where.startswith("hub "):
            where = "hub only (no local folder)" if root is not None else "hub"
        table.add_row(r["name"], r["hub_id"] or "–", "generated" if where.startswith("generated") else where,
                      r["splits"].replace("validation", "val"))
    show(table)

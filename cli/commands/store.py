"""`baas store check`: verify a store's files against its catalog (the API's `check_store`)."""

from __future__ import annotations

from typing import Annotated

import typer

from baas.cli.options import JsonOpt, StoreOpt
from baas.cli.render import emit, one_line_errors, say

app = typer.Typer(help="Look after a store (the catalog and its files).\n\nExample: `baas store check --repair`.",
                  no_args_is_help=True, rich_markup_mode="markdown")


@app.command("check")
@one_line_errors
def store_check(
    store: StoreOpt = None,
    repair: Annotated[bool, typer.Option("--repair", metavar="", help="Delete what no catalog row needs: orphan files and unreadable caches. Missing or corrupt entries are only reported.")] = False,
    as_json: JsonOpt = False,
):
    """Verify every file of the store against its catalog (sha256 and format), and find orphans and
    unreadable caches. Exit status 0 means all is well. (Half-written files of killed processes are
    removed whenever a store is opened; they are listed as removed.)

    Examples: `baas store check`; `baas store check --repair` to remove what no catalog row needs.
    """
    from baas.training.api import check_store

    result = check_store(store, repair=repair)
    emit(result, as_json, lambda: _show(result))
    if not result["ok"]:
        raise typer.Exit(1)


def _show(result: dict) -> None:
    p = result["problems"]
    for item in p["missing"]:
        say(f"missing: {item['kind']} {item['name']}: {item['file']} is gone "
            + (f"(`baas bank rm {item['name']}` drops its row)" if item["kind"] == "entry" else "(rerun what made it)"))
    for item in p["corrupt"]:
        say(f"corrupt: {item['kind']} {item['name']}: {item['file']}: {item['why']}")
    for key, what in (("orphans", "orphan (no catalog row)"), ("bad_caches", "unreadable cache")):
        for rel in p[key]:
            say(f"{what}: {rel} (`--repair` removes it)")
    for line in p["catalog"]:
        say(f"catalog: {line}")
    for rel in result["removed"]:
        say(f"removed: {rel}")
    verdict = "all is well" if result["ok"] else "problems found"
    say(f"{result['store']}: {result['files_checked']} catalogued files checked; {verdict}")

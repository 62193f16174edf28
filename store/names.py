"""Where the store is, what its task names and entry references may be, and the error every store
failure raises (`StoreError`)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from baas.prompts_bank.errors import BaasError

TASK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


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

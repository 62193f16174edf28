"""Process-level speed settings: a faster memory allocator when one is installed (never required).

glibc's malloc hands large freed blocks back to the kernel, so every training step page-faults its
activations in again; jemalloc and tcmalloc keep them. An allocator has to be loaded before the
process starts, so the `baas` command re-executes itself once with `LD_PRELOAD` set when it finds
one (Linux only). `BAAS_ALLOCATOR` chooses: `auto` (default: the first found of ALLOCATORS),
`jemalloc`, `tcmalloc`, or `system` (leave malloc alone).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# In order of preference (see benchmarks/results/train_effects.md for what each gave here).
ALLOCATORS = {
    "tcmalloc": ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4"),
    "jemalloc": ("libjemalloc.so.2", "libjemalloc.so"),
}
LIB_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib")
ACTIVE = "BAAS_ALLOCATOR_ACTIVE"  # set in the re-executed process: never re-execute twice


def find_allocator(choice: str = "auto") -> Path | None:
    names = [n for kind, files in ALLOCATORS.items() if choice in ("auto", kind) for n in files]
    for name in names:
        for folder in LIB_DIRS:
            if (Path(folder) / name).is_file():
                return Path(folder) / name
    return None


def reexec_with_allocator(argv: list[str]) -> None:
    """Replace this process by the same `baas` command with a faster allocator preloaded, where one
    is installed and not yet loaded; otherwise return and carry on with the system allocator."""
    choice = os.environ.get("BAAS_ALLOCATOR", "auto").strip().lower() or "auto"
    if choice == "system" or os.environ.get(ACTIVE) or not sys.platform.startswith("linux"):
        return
    if choice not in ("auto", *ALLOCATORS):
        print(f"warning: BAAS_ALLOCATOR={choice!r} is not one of auto, {', '.join(ALLOCATORS)}, system; "
              "using the system allocator", file=sys.stderr)
        return
    library = find_allocator(choice)
    preload = os.environ.get("LD_PRELOAD", "")
    if library is None or any(Path(p).name.startswith(("libjemalloc", "libtcmalloc")) for p in preload.split(":") if p):
        return
    env = dict(os.environ, LD_PRELOAD=":".join(p for p in (str(library), preload) if p), **{ACTIVE: str(library)})
    os.execve(sys.executable, [sys.executable, "-m", "baas.cli.main", *argv[1:]], env)

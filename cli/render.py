"""How `baas` prints. A result goes to stdout as a table (rich) or, with --json, as one JSON line, always the
last; tables fit the terminal and split no word; progress, notes, warnings and errors go to stderr, one line
each. A user-facing error exits with status 2 (with --json it is also `{"error": ...}` on stdout)."""

from __future__ import annotations

import functools
import json
import os
import re
import warnings
from collections.abc import Callable

import typer
from rich import box
from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from baas.prompts_bank.errors import BaasError

out = Console()
err = Console(stderr=True)


def main_process() -> bool:
    """False under a launcher (torchrun, accelerate; see training/parallel.py) on every process but the main one:
    those compute their share in silence, and the main process prints."""
    return int(os.environ.get("RANK", "0")) == 0


def say(text: str) -> None:
    """A line of the result on stdout, as written (no markup, no highlighting), wrapped to the terminal between
    words (an interval in brackets kept whole)."""
    out.print(wrap(text, out.width, words=True), highlight=False, markup=False)


def note(text: str, kind: str = "note") -> None:
    """One line on stderr: `note: ...` (or `warning: ...`, `error: ...`)."""
    err.print(Text(f"{kind}: ", style="red" if kind == "error" else "") + Text(text), highlight=False, soft_wrap=True)


def emit(result, as_json: bool, human: Callable[[], None]) -> None:
    """A result: one JSON line (its `to_dict()`, or the dict itself) with --json, else `human()` prints it.
    Nothing on a launcher's other processes."""
    if not main_process():
        return
    if as_json:
        print(json.dumps(result.to_dict() if hasattr(result, "to_dict") else result, default=str))
    else:
        human()


def one_line_errors(fn):
    """Every user-facing error as one line on stderr and exit status 2 (with --json also `{"error": ...}` on
    stdout, a script's one JSON line); the library's warnings (a stale router) as `warning: ...` lines."""

    def show_warning(message, category, filename, lineno, file=None, line=None, _default=warnings.showwarning):
        if category.__module__.startswith("baas."):
            note(str(message), "warning")
        else:
            _default(message, category, filename, lineno, file, line)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("always", module=r"baas\.")  # each command says it again
                warnings.showwarning = show_warning
                return fn(*args, **kwargs)
        except BaasError as exc:
            note(str(exc), "error")
            if kwargs.get("as_json"):
                print(json.dumps({"error": str(exc)}))
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted: the last checkpoint is kept; rerun the same command to resume")
            raise typer.Exit(130) from None

    return wrapper


def three(value: float | None) -> str:
    """A share or metric with three decimals; – when there is none."""
    return "–" if value is None else f"{value:.3f}"


def acc(value: float | None, n: int | None = None, interval: list[float] | None = None, where: str | None = None) -> str:
    """An accuracy as every command prints one: `0.450 [0.382, 0.520] n=200`, its 95% interval (given, else
    Wilson's over `n` questions) and its question count, then `where` (a split) if given; – when there is none."""
    if value is None:
        return "–"
    if interval is None and n:
        from baas.training.metrics import accuracy_interval

        interval = accuracy_interval(value, n)
    return " ".join([three(value)] + [span(interval)] * bool(interval) + [f"n={n}"] * bool(n) + [where] * bool(where))


def span(interval: list[float] | None) -> str:
    """An interval, `[0.382, 0.520]`; – when there is none."""
    return "–" if not interval else f"[{interval[0]:.3f}, {interval[1]:.3f}]"


# ---- tables ------------------------------------------------------------------------------------------

CUT_MIN = 20  # the narrowest a cut column (one line, an ellipsis where it ends) is squeezed to


class Table:
    """A table to print: a title, column headers and rows of text. `show` fits it to the terminal. The first
    column (names) never wraps; `cut` names a column shown on one line and cut with an ellipsis (long
    questions) instead of wrapped."""

    def __init__(self, title: str, columns: list[str], *, header: bool = True, cut: str | None = None):
        self.title, self.columns, self.header = title, list(columns), header
        self.cut = self.columns.index(cut) if cut is not None else None
        self.rows: list[list[str]] = []

    def add_row(self, *cells) -> None:
        self.rows.append([str(c) for c in cells])


def show(table: Table) -> None:
    for part in fit(table, out.width):
        out.print(part)


def fields(title: str, record: dict, keys: list[str]) -> None:
    """A record as a two-column table of `keys` (floats with four decimals)."""
    table = Table(title, ["field", "value"], header=False)
    for k in keys:
        v = record.get(k)
        table.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    show(table)


_BREAK = re.compile(r"(?<=[A-Za-z0-9][-/_])(?=[A-Za-z0-9])")  # after a hyphen, slash or underscore inside a word


def _words(text: str) -> list[str]:
    """The words of a line, an interval in brackets (`[0.382, 0.520]`) one word: it never breaks inside."""
    words: list[str] = []
    for word in text.split():
        if words and words[-1].count("[") > words[-1].count("]"):
            words[-1] += " " + word
        else:
            words.append(word)
    return words


def _pieces(text: str, groups: bool = True) -> list[tuple[str, bool]]:
    """The pieces a line may break between: words (after a space: True; an interval one word unless `groups` is
    False), and within a word the parts after a hyphen, slash or underscore (False), so `GBaker/MedQA-USMLE` may
    break as `GBaker/` `MedQA-` `USMLE`."""
    return [(part, i == 0) for word in (_words(text) if groups else text.split()) for i, part in enumerate(_BREAK.split(word))]


def wrap(text: str, width: int, cut: bool = False, words: bool = False) -> str:
    """`text` in lines of at most `width`: broken between words, else inside a word after - / _, and only
    a piece longer than the whole width is folded. `cut`: each line kept whole up to `width`, then `…`.
    `words`: broken between words only (prose). An interval (`[0.382, 0.520]`) is broken only where the
    width leaves no other way."""
    lines = []
    for para in text.split("\n"):
        if cut:
            lines.append(para if len(para) <= width else para[: width - 1] + "…")
            continue
        line, pieces = "", [(w, True) for w in _words(para)] if words else _pieces(para)
        while pieces:
            piece, spaced = pieces.pop(0)
            joined = line + (" " if spaced and line else "") + piece
            if len(joined) <= width:
                line = joined
                continue
            if len(piece) > width and " " in piece:  # an interval wider than the column: broken between its words
                first, *rest = piece.split(" ")
                pieces[:0] = [(first, spaced)] + [(w, True) for w in rest]
                continue
            if line:
                lines.append(line)
            while len(piece) > width:  # longer than the column itself: folded (the last resort)
                lines.append(piece[:width])
                piece = piece[width:]
            line = piece
        lines.append(line)
    return "\n".join(lines)


def _spread(mins: list[int], wants: list[int], room: int) -> list[int]:
    """Widths within `room`: each column its natural width if all fit, else its minimum plus a share of
    what is left by how much more it wants."""
    if sum(wants) <= room:
        return wants
    spare, extra = room - sum(mins), [w - m for m, w in zip(mins, wants)]
    return [m + spare * e // max(sum(extra), 1) for m, e in zip(mins, extra)]


def fit(table: Table, width: int) -> list[RichTable]:
    """`table` as rich tables no wider than `width` that split no word: columns narrowed to their longest word
    (an interval in brackets one word); if that is not enough, to their longest piece (long names break after
    - / _); then the same with intervals that may break after their comma; if even that is too wide, the
    columns in several tables, each repeating the first column."""
    n = len(table.columns)
    texts = [([table.columns[c]] if table.header else []) + [row[c] for row in table.rows] for c in range(n)]
    lines = [[line for t in col for line in t.split("\n")] for col in texts]
    wants = [max(map(len, col), default=1) or 1 for col in lines]
    longest = lambda split: [max((len(w) for line in col for w in split(line)), default=1) for col in lines]  # noqa: E731
    words, pieces = longest(str.split), longest(lambda line: [p for p, _ in _pieces(line, groups=False)])
    whole_words, whole_pieces = longest(_words), longest(lambda line: [p for p, _ in _pieces(line)])  # intervals whole
    floor = lambda level: [min(wants[c], CUT_MIN) if c == table.cut else wants[c] if c == 0 else level[c]  # noqa: E731
                           for c in range(n)]
    for mins in (floor(whole_words), floor(whole_pieces), floor(words), floor(pieces)):
        if sum(mins) + 3 * n + 1 <= width:
            return [_render(table, list(range(n)), _spread(mins, wants, width - 3 * n - 1), table.title)]
    whole, groups, group = floor(words), [], [0]
    for c in range(1, n):  # first column + as many as fit with whole words; the rest in further tables
        if len(group) > 1 and sum(whole[i] for i in [*group, c]) + 3 * (len(group) + 1) + 1 > width:
            groups.append(group)
            group = [0]
        group.append(c)
    groups.append(group)
    parts = []
    for i, cols in enumerate(groups):
        sub = Table(table.title if i == 0 else "(continued)", [table.columns[c] for c in cols], header=table.header,
                    cut=table.columns[table.cut] if table.cut in cols else None)
        sub.rows = [[row[c] for c in cols] for row in table.rows]
        parts += fit(sub, width) if len(groups) > 1 else [_render(sub, list(range(len(cols))), None, sub.title)]
    return parts


def _render(table: Table, cols: list[int], widths: list[int] | None, title: str) -> RichTable:
    """A rich table of the given columns, each cell wrapped by `wrap` to its width (None: rich's own layout)."""
    out_table = RichTable(title=Text(title), show_header=table.header, box=box.HEAVY_HEAD)
    for i, c in enumerate(cols):
        w = widths[i] if widths else None
        header = table.columns[c] if w is None else wrap(table.columns[c], w, c == table.cut)
        out_table.add_column(Text(header), width=w, no_wrap=w is not None, overflow="fold")
    for row in table.rows:
        out_table.add_row(*(Text(row[c] if widths is None else wrap(row[c], widths[i], c == table.cut))
                            for i, c in enumerate(cols)))
    return out_table

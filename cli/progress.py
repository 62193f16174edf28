"""Progress on stderr for the CLI (the library's Reporter, see training/progress.py): on a terminal, rich bars, one
per stage under an optional bar over the whole run; without one (a log file, a pipe, CI), plain lines: a
stage's progress every 10% or 30 seconds, whichever comes first, its end with the time taken, and each step
of a whole run."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from baas.cli.render import err, main_process

EVERY_SECONDS = 30.0  # without a terminal, a stage says how far it is at least this often (and every 10%)


def reporter():
    """Progress on the main process; silence on a launcher's other processes."""
    if main_process():
        return CliProgress()
    from baas.training.progress import Reporter

    return Reporter()


@dataclass
class _Stage:
    label: str
    total: int
    done: int
    started: float
    said: float  # when the last line was printed
    tenths: int  # the tenths of `total` already said
    fields: dict = field(default_factory=dict)


class CliProgress:
    """The CLI's Reporter: rich bars on a terminal, else lines (see the module's docstring)."""

    def __init__(self, lines: bool | None = None, clock=time.monotonic):
        self.lines = not err.is_terminal if lines is None else lines
        self.clock = clock
        self.progress: Progress | None = None
        self.task_id = None
        self.overall_id = None
        self._stage: _Stage | None = None
        self._overall_total = 0

    def message(self, text: str) -> None:
        err.print(text, highlight=False, markup=False)

    def _progress(self) -> Progress:
        if self.progress is None:
            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=True,
            )
            self.progress.start()
        return self.progress

    def _line(self, text: str) -> None:
        err.print(text, highlight=False, markup=False, soft_wrap=True)

    def start(self, label: str, total: int, completed: int = 0) -> None:
        if self.lines:
            now = self.clock()
            self._stage = _Stage(label, total, completed, now, now, completed * 10 // total if total else 0)
            return
        self.task_id = self._progress().add_task(label, total=total, completed=completed, info="")

    def advance(self, n: int = 1, **fields) -> None:
        if self.lines:
            s = self._stage
            if s is None:
                return
            s.done += n
            s.fields.update(fields)
            now, tenths = self.clock(), s.done * 10 // s.total if s.total else 0
            if s.done < s.total and (tenths > s.tenths or now - s.said >= EVERY_SECONDS):
                info = "".join(f", {k} {v:.3f}" for k, v in s.fields.items())
                self._line(f"{s.label}: {s.done}/{s.total} ({100 * s.done // s.total}%), {now - s.started:.1f} s{info}")
                s.said, s.tenths = now, tenths
            return
        if self.progress is not None and self.task_id is not None:
            info = " ".join(f"{k} {v:.3f}" for k, v in fields.items())
            self.progress.update(self.task_id, advance=n, info=info)

    def stop(self) -> None:
        if self.lines:
            s = self._stage
            if s is not None:
                info = "".join(f", last {k} {v:.3f}" for k, v in s.fields.items())
                self._line(f"{s.label}: {s.done} done in {self.clock() - s.started:.1f} s{info}")
                self._stage = None
            return
        if self.progress is not None and self.task_id is not None:
            self.progress.remove_task(self.task_id)
            self.task_id = None
        if self.progress is not None and self.overall_id is None:
            self.progress.stop()
            self.progress = None

    def overall(self, total: int) -> None:
        if self.lines:
            self._overall_total = total
            return
        if total:
            self.overall_id = self._progress().add_task("starting", total=total, completed=0, info="")
        elif self.overall_id is not None:
            self.overall_id = None
            self.stop()

    def step(self, label: str, done: int) -> None:
        if self.lines:
            self._line(f"[{done + 1}/{self._overall_total}] {label}")
            return
        if self.overall_id is not None:
            self.progress.update(self.overall_id, description=label, completed=done)

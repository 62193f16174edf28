"""How the API shows progress: tqdm bars (a widget in a notebook, a text bar on stderr elsewhere), or silence."""

from __future__ import annotations

import sys

from baas.training.progress import Reporter


class ProgressBars(Reporter):
    """Progress for the Python API: a tqdm bar per stage (`tqdm.auto`: a widget in a notebook, a text bar on
    stderr elsewhere), one over a whole multi-step run, and messages on stderr. Silent on all but the main
    process under a launcher. Every call that trains or evaluates takes `progress=False` to turn it off."""

    def __init__(self):
        from baas.training.parallel import Processes

        self.quiet = not Processes().main
        self.bar = None
        self.whole = None

    def _tqdm(self, **kwargs):
        from tqdm.auto import tqdm

        return tqdm(file=sys.stderr, dynamic_ncols=True, **kwargs)

    def message(self, text: str) -> None:
        if not self.quiet:
            from tqdm.auto import tqdm

            tqdm.write(text, file=sys.stderr)

    def start(self, label: str, total: int, completed: int = 0) -> None:
        self.stop()
        if not self.quiet:
            self.bar = self._tqdm(desc=label, total=total, initial=completed, leave=False)

    def advance(self, n: int = 1, **fields) -> None:
        if self.bar is not None:
            if fields:
                self.bar.set_postfix({k: f"{v:.3f}" for k, v in fields.items()}, refresh=False)
            self.bar.update(n)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def overall(self, total: int) -> None:
        if self.whole is not None:
            self.whole.close()
            self.whole = None
        if total and not self.quiet:
            self.whole = self._tqdm(desc="starting", total=total)

    def step(self, label: str, done: int) -> None:
        if self.whole is not None:
            self.whole.set_description(label, refresh=False)
            self.whole.update(done - self.whole.n)


def reporter_for(reporter: Reporter | None, progress: bool) -> Reporter:
    """The reporter given (the CLI passes its own), else bars (`progress`) or silence."""
    return reporter if reporter is not None else ProgressBars() if progress else Reporter()

"""How training talks: the `Reporter` every call that trains or evaluates takes (progress bars and messages).
The library's is silent; the CLI's shows rich bars (cli/progress.py) and the Python API's tqdm bars
(training/api/progress.py)."""


class Reporter:
    """How training talks: progress bars and messages. The default is silent; the CLI shows rich bars."""

    def message(self, text: str) -> None:
        pass

    def start(self, label: str, total: int, completed: int = 0) -> None:
        pass

    def advance(self, n: int = 1, **fields) -> None:
        pass

    def stop(self) -> None:
        pass

    def overall(self, total: int) -> None:
        """A bar over a whole multi-step run (eval-forgetting); 0 ends it."""

    def step(self, label: str, done: int) -> None:
        """The overall bar shows `label`, with `done` steps behind it."""

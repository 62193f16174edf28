"""The `Adapter` base class: where a dataset's rows come from (local jsonl files or the hub) and how
they become checked examples, repeats refused, bad rows named by file and line (or skipped).

An adapter reads rows in the field layout of the dataset's Hugging Face hub version. The same `convert`
reads rows from the hub (`datasets.load_dataset`) and from local files
`<data_dir>/<name>/{train,validation,test}.jsonl`, so the shared data pack and the hub agree.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterator

from baas.prompts_bank.errors import DataError
from baas.training.data.schema import SPLITS, MCQExample, Row, RowError, RowProblem, SplitData


class Adapter:
    """Reads one dataset. Subclasses set the hub coordinates and implement `convert`."""

    name: str = ""
    hub_id: str = ""
    hub_config: str | None = None
    # Our split name -> the hub's split name. A split absent here has no labelled hub version.
    hub_splits: dict[str, str] = {"train": "train", "validation": "validation", "test": "test"}
    id_field: str | None = "id"  # the row field the example's id comes from; None: made from the question's text
    # A question that repeats an option text is an error in baas's own format; a published dataset has a few
    # (commonsense_qa, medmcqa, mmlu), kept as published so results compare with the literature, and counted.
    distinct_options = False

    def convert(self, row: Row) -> MCQExample:
        raise NotImplementedError

    def describe_source(self, data_dir: Path | None) -> str:
        if data_dir is not None:
            return str(data_dir / self.name)
        config = f", config {self.hub_config}" if self.hub_config else ""
        return f"hub {self.hub_id}{config}"

    def available_splits(self, data_dir: Path | None) -> list[str]:
        if data_dir is not None:
            return [s for s in SPLITS if (data_dir / self.name / f"{s}.jsonl").is_file()]
        return [s for s in SPLITS if s in self.hub_splits]

    def rows(self, split: str, data_dir: Path | None) -> tuple[str, Iterator[tuple[str, Any]]]:
        """(source, iterator of (where, raw row)), `where` being `FILE:LINE` or `hub[split] row N`."""
        if data_dir is not None:
            path = data_dir / self.name / f"{split}.jsonl"
            if not path.is_file():
                raise DataError(f"{path}: no such file (dataset '{self.name}', split '{split}')")
            return str(path), jsonl_rows(path)
        return self._hub_rows(split)

    def _hub_rows(self, split: str) -> tuple[str, Iterator[tuple[str, Any]]]:
        if split not in self.hub_splits:
            raise DataError(f"dataset '{self.name}' has no labelled '{split}' split on the hub")
        import datasets
        import huggingface_hub

        hub_verbosity = huggingface_hub.logging.get_verbosity()
        huggingface_hub.logging.set_verbosity_error()  # its retry chatter would bury the one error line below
        try:
            ds = datasets.load_dataset(self.hub_id, self.hub_config, split=self.hub_splits[split])
        except Exception as exc:  # network, missing dataset, auth: all mean "not here"
            raise DataError(
                f"could not load '{self.name}' from the Hugging Face hub ({self.describe_source(None)}, "
                f"split '{self.hub_splits[split]}'): {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}. "
                f"For local files pass --data-dir DIR (or set BAAS_DATA_DIR) with DIR/{self.name}/{{train,validation,test}}.jsonl"
            ) from None
        finally:
            huggingface_hub.logging.set_verbosity(hub_verbosity)
        where = f"{self.hub_id}[{self.hub_splits[split]}]"
        return where, ((f"{where} row {i}", row) for i, row in enumerate(ds))

    def load(self, split: str, data_dir: Path | None, skip_invalid: bool = False) -> SplitData:
        source, rows = self.rows(split, data_dir)
        examples, skipped, repeated = [], 0, 0
        seen_rows: dict[str, str] = {}  # digest of a row's content -> where it first was
        seen_ids: dict[str, str] = {}
        for where, raw in rows:
            try:
                if isinstance(raw, RowError):
                    raise raw
                example = self.convert(Row(raw))
                first = seen_rows.get(digest := _row_digest(raw))
                if first is not None:
                    raise RowProblem(f"the same row as {_line_of(first, source)}")
                first = seen_ids.get(example.id)
                if first is not None:
                    if self.id_field is not None and isinstance(raw, dict) and raw.get(self.id_field) not in (None, ""):
                        raise RowError(self.id_field, f"an id not used before in the split; {example.id!r} is also the "
                                                      f"id of {_line_of(first, source)}")
                    raise RowProblem(f"the same question and options as {_line_of(first, source)}")
                repeat = next((o for i, o in enumerate(example.options) if o in example.options[:i]), None)
                if repeat is not None and self.distinct_options:
                    raise RowError("options", f"expected distinct option texts, got {repeat!r} twice")
                repeated += repeat is not None
            except RowError as exc:
                if not skip_invalid:
                    raise DataError(f"{where}: {exc} (use --skip-invalid to skip bad rows)") from None
                skipped += 1
                continue
            seen_rows[digest], seen_ids[example.id] = where, where
            examples.append(example)
        if not examples:
            raise DataError(f"{source}: no usable rows for split '{split}'")
        return SplitData(examples, split, source, skipped, repeated)


def _row_digest(raw: Any) -> str:
    return hashlib.sha1(json.dumps(raw, sort_keys=True, default=str).encode("utf-8", "surrogatepass")).hexdigest()


def _line_of(where: str, source: str) -> str:
    """`line N` for a row of the same file, else where it was (`hub[split] row N`)."""
    return f"line {where[len(source) + 1:]}" if where.startswith(f"{source}:") else where


def jsonl_rows(path: Path) -> Iterator[tuple[str, Any]]:
    """(FILE:LINE, parsed object); a line that is not JSON yields a RowError in place of the row. A file that is
    not UTF-8 stops with a DataError at its first bad line (--skip-invalid does not skip it: every row is suspect)."""
    # A byte-order mark at the start is not part of the first row. Bytes that are not UTF-8 are read as lone
    # surrogates (surrogateescape), found per line below, so the error can name the line.
    with path.open(encoding="utf-8-sig", errors="surrogateescape") as f:
        for lineno, line in enumerate(f, 1):
            try:
                line.encode("utf-8")
            except UnicodeEncodeError as exc:
                byte = ord(line[exc.start]) - 0xDC00
                raise DataError(f"{path}:{lineno}: not UTF-8 (byte 0x{byte:02x} at character {exc.start + 1} of the line; "
                                "save the file as UTF-8)") from None
            if not line.strip():
                continue
            try:
                yield f"{path}:{lineno}", json.loads(line)
            except json.JSONDecodeError as exc:
                yield f"{path}:{lineno}", RowError("<line>", f"expected one JSON object per line ({exc.msg})")

"""`baas`: train prompt pairs per MCQ dataset on a frozen backbone, keep them in a bank, evaluate them.

Thin by design: parse options, call the library, print a table (rich) or one JSON object (--json,
always the last stdout line). Progress bars and messages go to stderr. Errors print one line on
stderr and exit with status 2.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from baas.prompts_bank.errors import BaasError
from baas.training.config import TrainConfig

DEFAULTS = TrainConfig()  # the library's defaults are the CLI's defaults

app = typer.Typer(
    help=(
        "Continual, parameter-efficient multiple-choice QA: one trained \\[prefix; input; suffix] prompt pair per "
        "dataset on a frozen transformer, kept in a safetensors prompt bank.\n\n"
        "Start with `baas demo` (offline, a few minutes), then e.g. "
        "`baas train-task arc_easy --data-dir DIR --max-train 600 --epochs 2` for each dataset, and "
        "`baas fuse --data-dir DIR` to answer them all with no task id (`baas predict` for your own questions)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # docstrings are paragraphs: single line breaks are re-flowed
)
bank_app = typer.Typer(help="Inspect and manage the prompt bank (the trained, frozen task entries).", no_args_is_help=True)
app.add_typer(bank_app, name="bank")
store_app = typer.Typer(help="Look after a store (the catalog and its files).", no_args_is_help=True)
app.add_typer(store_app, name="store")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"baas {version('baas')}")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Print baas's version and exit.")] = False) -> None:
    pass

out = Console()
err = Console(stderr=True)

# Options shared by several commands: one definition each, so they mean the same everywhere.
StoreOpt = Annotated[Optional[Path], typer.Option("--store", help="Store folder (catalog + bank). Default: $BAAS_HOME or ~/.baas.")]
DataDirOpt = Annotated[Optional[Path], typer.Option("--data-dir", help="Local datasets, one folder each: DIR/NAME/ with train.jsonl, validation.jsonl and test.jsonl in the hub layout. Default: $BAAS_DATA_DIR, else the Hugging Face hub.")]
BackboneOpt = Annotated[Optional[str], typer.Option("--backbone", help="Hugging Face encoder or decoder: hub id or local folder. Default: the offline all-MiniLM-L6-v2.")]
MaxEvalOpt = Annotated[Optional[int], typer.Option("--max-eval", min=1, help="Cap on validation and evaluation questions (a fixed random subset). Default: all.")]
MaxEvalSomeOpt = Annotated[int, typer.Option("--max-eval", min=1, help="Cap on each task's evaluation questions (a fixed random subset).")]
JsonOpt = Annotated[bool, typer.Option("--json", metavar="", help="Print one JSON object as the last stdout line.")]
SkipOpt = Annotated[bool, typer.Option("--skip-invalid", metavar="", help="Skip malformed rows (and report how many) instead of stopping at the first.")]
MaxTrainOpt = Annotated[Optional[int], typer.Option("--max-train", min=1, help="Cap on training questions (a fixed random subset). Default: all.")]
MaxTrainSomeOpt = Annotated[int, typer.Option("--max-train", min=1, help="Cap on each task's training questions (a fixed random subset).")]
PrefixLenOpt = Annotated[int, typer.Option("--prefix-len", min=0, max=256, help="Prefix vectors before the input (0 for none).")]
SuffixLenOpt = Annotated[int, typer.Option("--suffix-len", min=0, max=256, help="Suffix vectors after the input (0 for none).")]
PrefixInitOpt = Annotated[str, typer.Option("--prefix-init", help="topic (the dataset's topic labels: its fields, else spaCy entities and noun chunks), vocab (the task's frequent tokens) or random.")]
SuffixInitOpt = Annotated[str, typer.Option("--suffix-init", help="autocot (a global reasoning chain merged from K Auto-CoT chains), vocab or random.")]
ClustersOpt = Annotated[int, typer.Option("--clusters", min=1, help="K: question clusters for Auto-CoT, one local chain each.")]
LlmUrlOpt = Annotated[Optional[str], typer.Option("--llm-base-url", help="OpenAI-compatible endpoint for the chains, e.g. a local server's /v1 URL. Default: $BAAS_LLM_BASE_URL; unset: offline chains from the data. Key: $BAAS_LLM_API_KEY or $OPENAI_API_KEY.")]
LlmModelOpt = Annotated[Optional[str], typer.Option("--llm-model", help="Model name at that endpoint. Default: $BAAS_LLM_MODEL, else gpt-4o.")]
FormatOpt = Annotated[Optional[str], typer.Option("--format", help="The adapter that reads a folder named otherwise, e.g. --format arc_easy for a copy in DIR/arc_easy_small (or put {\"format\": \"arc_easy\"} in the folder's baas.json); jsonl for baas's own format.")]
VersionOpt = Annotated[Optional[int], typer.Option("--version", min=1, help="A specific version of the entry (also written NAME@vN). Default: the newest.")]
ScoringOpt = Annotated[str, typer.Option("--scoring", help="How options are scored. joint: a linear head on the pooled [context question; option] sequence; dual: each question read once and each option alone, scored by a learned scale times the cosine of the two (it starts as the encoder's own zero-shot answer); both: the sum of the two, the joint part starting at zero. Stored with the entry; a bank fuses entries of one mode.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for initialisation, clustering and batch order.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="Where the model runs: auto (a CUDA GPU, then Apple's MPS, then the CPU; the record says which), cpu, cuda, cuda:N or mps. Under torchrun / accelerate launch each process takes its local rank's GPU.")]
PrecisionOpt = Annotated[str, typer.Option("--precision", help="The frozen backbone's forward: fp32, bf16 or fp16 (autocast; the trained vectors, heads and optimiser states stay fp32; fp16 trains with a gradient scaler), or auto: bf16 on a GPU that supports it, else fp32.")]


def cli_errors(fn):
    """One clear line on stderr and exit status 2 for every user-facing error."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BaasError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            if kwargs.get("as_json"):  # a script reading stdout gets the error there too, as its one JSON line
                print(json.dumps({"error": str(exc)}))
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted: the last checkpoint is kept; rerun the same command to resume")
            raise typer.Exit(130) from None

    return wrapper


class RichReporter:
    """Progress bars on stderr for the trainer (see training.trainer.Reporter): one bar per stage, under an
    optional bar over the whole run."""

    def __init__(self):
        self.progress: Progress | None = None
        self.task_id = None
        self.overall_id = None
        # Without a terminal (a log file, a pipe, CI) bars become plain lines: a stage's start and end, and
        # each step of the whole run, with the time taken.
        self.lines = not err.is_terminal
        self._stage: tuple[str, float, int, dict] | None = None
        self._overall_total = 0

    def message(self, text: str) -> None:
        err.print(text, highlight=False)

    def _progress(self) -> Progress:
        if self.progress is None:
            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=True,
            )
            self.progress.start()
        return self.progress

    def start(self, label: str, total: int, completed: int = 0) -> None:
        if self.lines:
            self._stage = (label, time.perf_counter(), total, {})
            return
        self.task_id = self._progress().add_task(label, total=total, completed=completed, info="")

    def advance(self, n: int = 1, **fields) -> None:
        if self.lines:
            if self._stage is not None:
                self._stage[3].update(fields)
            return
        if self.progress is not None and self.task_id is not None:
            info = " ".join(f"{k} {v:.3f}" for k, v in fields.items())
            self.progress.update(self.task_id, advance=n, info=info)

    def stop(self) -> None:
        if self.lines:
            if self._stage is not None:
                label, started, total, fields = self._stage
                info = "".join(f", last {k} {v:.3f}" for k, v in fields.items())
                err.print(f"{label}: {total} done in {time.perf_counter() - started:.1f} s{info}", highlight=False, soft_wrap=True)
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
            err.print(f"[{done + 1}/{self._overall_total}] {label}", highlight=False, soft_wrap=True)
            return
        if self.overall_id is not None:
            self.progress.update(self.overall_id, description=label, completed=done)


def _table(title: str, columns: list[str], header: bool = True) -> Table:
    """A table that wraps cells at spaces (and folds only a word longer than its column), so nothing printed
    is lost; the first column (names) never wraps."""
    table = Table(title=title, show_header=header)
    for i, col in enumerate(columns):
        table.add_column(col, overflow="fold", no_wrap=i == 0)
    return table


def _show(table: Table) -> None:
    """Print a table; when it is wider than the terminal, give each column at least its longest word and
    share the rest by how much each column wants, so cells wrap between words and no word is split."""
    texts = [[str(col.header), *map(str, col.cells)] for col in table.columns]
    longest_word = [max((len(w) for t in col for w in t.split()), default=1) for col in texts]
    longest_line = [max((len(line) for t in col for line in t.splitlines() or [""]), default=1) for col in texts]
    room = out.width - 3 * len(texts) - 1  # borders and padding
    if sum(longest_line) > room >= sum(longest_word):
        spare, wants = room - sum(longest_word), [b - a for a, b in zip(longest_word, longest_line)]
        for col, word, want in zip(table.columns, longest_word, wants):
            col.width = word + spare * want // max(sum(wants), 1)
    out.print(table)


def _store(path: Path | None, default_subfolder: str = "", create: bool = True):
    """--store, else the default store (or a folder inside it, for the demo). Read-only commands pass
    `create=False`: a store that does not exist yet is an error there, and nothing is made on disk."""
    from baas.store import Store, StoreError, default_store_path  # torch-heavy: imported when a command needs it

    root = (path or default_store_path() / default_subfolder).expanduser()
    if not create and not (root / "catalog.sqlite").is_file():
        raise StoreError(f"no store at {root} (no catalog.sqlite there); train a task into it first, or pass the --store "
                         "that holds your bank")
    return Store(root)


def _worker() -> bool:
    """Under a launcher (torchrun, accelerate; see training/parallel.py), a process other than the main one: it
    computes its share in silence, and the main process writes and prints."""
    return int(os.environ.get("RANK", "0")) > 0


def _reporter():
    """Progress bars on the main process; silence on the others."""
    from baas.training.trainer import Reporter

    return Reporter() if _worker() else RichReporter()


def _emit(result: dict, as_json: bool, title: str, keys: list[str]) -> None:
    for note in result.get("notes", []):
        err.print(f"note: {note}", highlight=False)
    if as_json:
        print(json.dumps(result, default=str))
        return
    table = _table(title, ["field", "value"], header=False)
    for k in keys:
        v = result.get(k)
        table.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    _show(table)


RESULT_KEYS = ["task", "accuracy", "macro_precision", "macro_recall", "macro_f1", "chance", "n_train", "n_eval",
               "eval_split", "seconds", "bank_file"]


@app.command("train-task")
@cli_errors
def train_task_cmd(
    dataset: Annotated[str, typer.Argument(help="Dataset (see `baas datasets`), or a folder name under --data-dir.")],
    name: Annotated[Optional[str], typer.Option("--name", help="The entry's name in the bank (default: the dataset's). Two set-ups of one dataset sit side by side under two names.")] = None,
    format: FormatOpt = None,
    data_dir: DataDirOpt = None,
    backbone: BackboneOpt = None,
    store: StoreOpt = None,
    max_train: MaxTrainOpt = None,
    max_eval: MaxEvalOpt = None,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the training questions; the best on validation is kept.")] = DEFAULTS.epochs,
    prefix_len: PrefixLenOpt = DEFAULTS.prefix_len,
    suffix_len: SuffixLenOpt = DEFAULTS.suffix_len,
    depth: Annotated[Optional[int], typer.Option(min=1, help="Layers with their own prompt vectors. Default: every layer of the backbone (a deep pair: layer i's vectors replace the prompt positions' states where they enter layer i, starting from where the input-level pair leads). 1: the pair at the input embeddings only.")] = DEFAULTS.depth,
    gate: Annotated[Optional[float], typer.Option(help="Start of the pair's attention gate: added to every input token's attention scores for the prompt positions, and learned. Very negative: the pair starts hidden from the input (an encoder then reads exactly what head-only reads). Ignored with --no-gate.")] = DEFAULTS.gate,
    no_gate: Annotated[bool, typer.Option("--no-gate", metavar="", help="No gate: the input attends to the pair freely from the start (the default before the gate).")] = False,
    prefix_init: PrefixInitOpt = DEFAULTS.prefix_init,
    suffix_init: SuffixInitOpt = DEFAULTS.suffix_init,
    reparam: Annotated[str, typer.Option(help="Reparameterisation while training: bap (the BAP-Encoder: two Bi-LSTMs + cross-attention), mlp, or none. Materialised into plain tensors in the bank.")] = DEFAULTS.reparam,
    scoring: ScoringOpt = DEFAULTS.scoring,
    clusters: ClustersOpt = DEFAULTS.clusters,
    llm_base_url: LlmUrlOpt = None,
    llm_model: LlmModelOpt = None,
    lr: Annotated[float, typer.Option(help="Learning rate of the prompt vectors.")] = DEFAULTS.lr,
    head_lr: Annotated[float, typer.Option(help="Learning rate of the scoring head.")] = DEFAULTS.head_lr,
    batch_size: Annotated[int, typer.Option(min=1, help="Questions per step (all their options go together).")] = DEFAULTS.batch_size,
    max_length: Annotated[int, typer.Option(min=8, help="Token budget per option row; the context is cut first, never an option.")] = DEFAULTS.max_length,
    pooling: Annotated[Optional[str], typer.Option(help="mean_input | mean_all | suffix | last. Default: mean_input (encoders), last (decoders).")] = None,
    reparam_lr: Annotated[float, typer.Option(help="Learning rate of the reparameterisation (mlp, bap).")] = DEFAULTS.reparam_lr,
    seed: SeedOpt = DEFAULTS.seed,
    checkpoint_every: Annotated[int, typer.Option(min=1, help="Steps between checkpoints (also written at each epoch end).")] = DEFAULTS.checkpoint_every,
    device: DeviceOpt = DEFAULTS.device,
    precision: PrecisionOpt = DEFAULTS.precision,
    skip_invalid: SkipOpt = False,
    force: Annotated[bool, typer.Option("--force", metavar="", help="Train a new version even if the store holds an entry made with the same data and settings (by default that entry is reported).")] = False,
    as_json: JsonOpt = False,
):
    """Train DATASET's prompt pair and scoring head on the frozen backbone and save it to the bank (as --name).

    Evaluates on the test split (validation when the dataset has no labelled test) with the epoch that
    did best on validation. A killed run resumes from its last checkpoint when rerun with the same options.
    Head-only baseline: --prefix-len 0 --suffix-len 0 --head-lr 3e-2 (its best head rate). Shallow pair
    (input level only): --depth 1. A data-driven start (--prefix-init topic, --suffix-init autocot) is
    made once per data and settings and kept in the store (see `init-prompts`).
    """
    from baas.training.api import train_task

    result = train_task(dataset, name=name, data_dir=data_dir, store=store, backbone=backbone, max_train=max_train,
                        max_eval=max_eval, format=format, skip_invalid=skip_invalid, reporter=_reporter(), force=force,
                        epochs=epochs, batch_size=batch_size, lr=lr, head_lr=head_lr, prefix_len=prefix_len,
                        suffix_len=suffix_len, depth=depth, gate=None if no_gate else gate, prefix_init=prefix_init,
                        suffix_init=suffix_init, reparam=reparam, reparam_lr=reparam_lr, clusters=clusters,
                        llm_base_url=llm_base_url, llm_model=llm_model, scoring=scoring, pooling=pooling,
                        max_length=max_length, seed=seed, checkpoint_every=checkpoint_every, device=device,
                        precision=precision)
    if not _worker():
        _emit(result, as_json, f"baas train-task {result['task']}", RESULT_KEYS + ["version", "best_epoch", "reused", "processes", "device", "precision"])


@app.command("init-prompts")
@cli_errors
def init_prompts_cmd(
    name: Annotated[str, typer.Argument(help="Dataset name (see `baas datasets`); also the task's name in the bank.")],
    data_dir: DataDirOpt = None,
    backbone: BackboneOpt = None,
    store: StoreOpt = None,
    max_train: MaxTrainOpt = None,
    prefix_len: PrefixLenOpt = DEFAULTS.prefix_len,
    suffix_len: SuffixLenOpt = DEFAULTS.suffix_len,
    prefix_init: PrefixInitOpt = "topic",
    suffix_init: SuffixInitOpt = "autocot",
    clusters: ClustersOpt = DEFAULTS.clusters,
    llm_base_url: LlmUrlOpt = None,
    llm_model: LlmModelOpt = None,
    seed: SeedOpt = DEFAULTS.seed,
    skip_invalid: SkipOpt = False,
    as_json: JsonOpt = False,
):
    """Make (or show) NAME's data-driven starting pair: topic labels for the prefix; question clusters,
    their representatives, local reasoning chains and the merged global chain for the suffix.

    The result is kept in the store; `train-task` with the same data and settings starts from it. Its
    defaults differ from `train-task`'s on purpose: this command exists for the data-driven start, while
    `train-task` starts from the task's frequent tokens (`vocab`, chosen on validation) unless given
    `--prefix-init topic --suffix-init autocot`, and then says when it reuses a kept start. Offline (no --llm-base-url) the chains come from the data: its explanations or facts, else a template.
    """
    from baas.store import validate_task_name
    from baas.training.backbone import load_backbone
    from baas.training.data import load_task_data
    from baas.training.trainer import encode_cached, task_init

    validate_task_name(name)
    config = TrainConfig(prefix_len=prefix_len, suffix_len=suffix_len, prefix_init=prefix_init, suffix_init=suffix_init,
                         clusters=clusters, llm_base_url=llm_base_url, llm_model=llm_model, seed=seed)
    config.check()
    st = _store(store)
    data = load_task_data(name, data_dir, max_train=max_train, max_eval=1, skip_invalid=skip_invalid)
    bb = load_backbone(backbone)
    train_enc = encode_cached(data.train.examples, bb, config.max_length, st)
    init = task_init(name, data, bb, st, config, train_enc, reporter=RichReporter())
    info = dict(task=name, backbone=bb.name, n_train=len(data.train.examples), **init.info,
                prefix_shape=list(init.prefix.shape), suffix_shape=list(init.suffix.shape))
    if as_json:
        print(json.dumps(info, default=str))
        return
    topics = info.get("topics")
    if topics:
        out.print(f"[bold]topic labels[/bold] ({topics['source']}): " + ", ".join(topics["labels"]), highlight=False)
    chain = info.get("chain")
    if chain:
        table = _table(f"{len(chain['clusters'])} question clusters (Auto-CoT representatives)",
                       ["cluster", "size", "representative question", "local chain", "source"])
        for c in chain["clusters"]:
            table.add_row(str(c["index"]), str(c["size"]), c["representative"]["question"], c["local_chain"], c["source"])
        _show(table)
        out.print(f"[bold]global chain[/bold] ({chain['source']}):\n{chain['global_chain']}", highlight=False)
    out.print(f"prefix {info['prefix_shape']}, suffix {info['suffix_shape']} kept in {st.root}", highlight=False)


@app.command("eval-task")
@cli_errors
def eval_task_cmd(
    name: Annotated[str, typer.Argument(help="A bank entry: NAME (its newest version for the backbone) or NAME@vN (see `baas bank list`).")],
    version: VersionOpt = None,
    data_dir: DataDirOpt = None,
    backbone: Annotated[Optional[str], typer.Option("--backbone", help="Evaluate the newest version trained on this backbone (hub id or folder). Default: the backbone of the entry's newest version.")] = None,
    store: StoreOpt = None,
    max_eval: MaxEvalOpt = None,
    skip_invalid: SkipOpt = False,
    device: DeviceOpt = DEFAULTS.device,
    precision: PrecisionOpt = DEFAULTS.precision,
    as_json: JsonOpt = False,
):
    """Evaluate a bank entry on its dataset's evaluation split (single-task inference)."""
    from baas.training.api import eval_task

    result = eval_task(name, version=version, data_dir=data_dir, store=store, backbone=backbone,
                       max_eval=max_eval, skip_invalid=skip_invalid, reporter=RichReporter(), device=device,
                       precision=precision)
    task, version = result["task"], result["version"]
    _emit(result, as_json, f"baas eval-task {task}@v{version}", RESULT_KEYS)


TasksOpt = Annotated[Optional[str], typer.Option("--tasks", help="Comma-separated bank entries to use (default: every task in the bank).")]
QueryOpt = Annotated[str, typer.Option("--query", help="What a routing query is, KIND:LAYERS. KIND: context (question, then as much of the passage as fits), question, or options (question + options + passage); LAYERS: the backbone layers whose mean states are concatenated (0: the embeddings), e.g. context:2 or options:2,4,6. The pass stops after the deepest.")]
RuleOpt = Annotated[str, typer.Option("--rule", help="Routing rule fitted from the entries' query summaries: lda (shared covariance), qda (per-task Gaussians), linear (classifier on pseudo-queries), cosine (to each task's mean query), aoa (attention over the cosine, lda and qda distributions).")]


def _split_tasks(tasks: str | None) -> list[str] | None:
    return [t.strip() for t in tasks.split(",") if t.strip()] if tasks else None


@app.command("fuse")
@cli_errors
def fuse_cmd(
    strategy: Annotated[str, typer.Option("--strategy", help="hard (one entry; the default, chosen on validation), topk<k> (e.g. topk3), soft (every entry), memory (confidence-gated: hard when sure, soft when not), cluster, oracle (needs the task id: a reference), or all (every one, one table).")] = "hard",
    rule: RuleOpt = "lda",
    query: QueryOpt = "options:2",
    temperature: Annotated[float, typer.Option("--temperature", help="Divides the rule's log-probabilities before the strategy: above 1 spreads weight over more entries (soft, topk, memory).")] = 1.0,
    space: Annotated[str, typer.Option("--space", help="Where entries are mixed: prompt (one weighted pair and head, one forward pass), output (each entry's answer distribution, one pass per entry used), or both.")] = "prompt",
    tasks: TasksOpt = None,
    data_dir: DataDirOpt = None,
    backbone: BackboneOpt = None,
    store: StoreOpt = None,
    max_eval: MaxEvalSomeOpt = 200,
    split: Annotated[str, typer.Option("--split", help="eval (each task's test split, else validation) or validation (for making choices).")] = "eval",
    skip_invalid: SkipOpt = False,
    device: DeviceOpt = DEFAULTS.device,
    precision: PrecisionOpt = DEFAULTS.precision,
    as_json: JsonOpt = False,
):
    """Fit the Attention Router over the bank and answer every task's evaluation questions with no task id.

    The router is fitted from each entry's query summary (statistics of its training questions' query
    vectors, made once and kept in the store), never from earlier tasks' text. Reports per task the
    task-agnostic accuracy and macro F1, the oracle's accuracy (the true task's entry) and the routing
    accuracy (questions whose largest weight is on their own entry), plus the routing confusion matrix.
    The router is saved in the store under the strategy's name (with `--strategy all`, one per strategy, the
    best saved last); `baas predict` uses the latest one saved, and this command says which that is.
    """
    from baas.training.api import Bank

    bank = Bank(_store(store, create=False), backbone, device=device, precision=precision)
    report = bank.fuse_and_evaluate(strategy, tasks=_split_tasks(tasks), rule=rule, query=query, temperature=temperature,
                                    space=space, split=split, max_eval=max_eval, data_dir=data_dir,
                                    skip_invalid=skip_invalid, reporter=_reporter())
    if _worker():
        return
    if as_json:
        print(json.dumps(report, default=str))
        return
    results, best = report.get("strategies", [report]), report.get("best", report)
    if len(results) > 1:
        n = sum(map(sum, best["confusion"]["counts"]))
        table = _table(f"baas fuse: {len(best['confusion']['tasks'])} entries, rule {rule}, query {query}, {n} questions "
                       f"({split} splits), no task ids", ["strategy", "space", "accuracy", "macro F1", "oracle",
                                                          "routing", "entries/q", "ms/q (passes)"])
        for r in results:
            table.add_row(r["strategy"], r["space"], f"{r['mean_accuracy']:.3f}", f"{r['mean_macro_f1']:.3f}",
                          f"{r['mean_oracle_accuracy']:.3f}", f"{r['routing_accuracy']:.3f}",
                          f"{r['entries_per_question']:.1f}", f"{1000 * r['seconds_per_question']:.0f}")
        _show(table)
    _print_fuse(best)


def _print_fuse(r: dict) -> None:
    table = _table(f"{r['strategy']} ({r['space']} space): mean accuracy {r['mean_accuracy']:.3f}, oracle "
                   f"{r['mean_oracle_accuracy']:.3f}, routing {r['routing_accuracy']:.3f}",
                   ["task", "split (n)", "accuracy", "macro F1", "oracle", "routing"])
    for t in r["per_task"]:
        table.add_row(t["task"], f"{t['eval_split']} ({t['n']})", f"{t['accuracy']:.3f}", f"{t['macro_f1']:.3f}",
                      f"{t['oracle_accuracy']:.3f}", f"{t['routing_accuracy']:.3f}")
    _show(table)
    tasks, counts = r["confusion"]["tasks"], r["confusion"]["counts"]
    confusion = _table("routing confusion (rows: true task, columns: entry with the largest weight)", ["true \\ routed", *tasks])
    for name, row in zip(tasks, counts):
        confusion.add_row(name, *(str(c) for c in row))
    _show(confusion)
    if "router_file" in r:
        space = "output" if r["space"] == "output" else "prompt"
        out.print(f"router '{r['router']}' saved ({r['strategy']}, rule {r['rule']}, {space} space): `baas predict` uses it; "
                  f"{r['router_file']}", highlight=False)


@app.command("eval-forgetting")
@cli_errors
def eval_forgetting_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Report folder: cells.jsonl (results as they come), report.json, report.md, report.csv (every cell with its n and 95% interval), plots. Rerunning the same command there resumes.")] = Path("baas-forgetting"),
    tasks: Annotated[Optional[str], typer.Option("--tasks", help="Comma-separated datasets, in the order they are learned. Default: the ten shared datasets (arc_easy, arc_challenge, openbookqa, commonsense_qa, qasc, mmlu, medqa, medmcqa, dream, cosmos_qa).")] = None,
    methods: Annotated[str, typer.Option("--methods", help="Comma-separated: baas (the bank and its router; reports each --strategies and the oracle), naive (one pair trained on each task in turn: the lower bound), ewc (the same with an EWC penalty), multitask (one pair trained on all tasks at once: the upper bound), the PEFT baselines prompt_tuning, prefix_tuning, p_tuning, lora, adalora, dora, olora, and full_ft (sequential full fine-tuning), the reference rows zero_shot (the frozen encoder's cosine of question and option, nothing trained: no forgetting by construction) and st_ft (the sentence encoder fine-tuned with the sentence-transformers trainer and a ranking loss, wrong options as hard negatives, on each task in turn), or all.")] = "all",
    strategies: Annotated[str, typer.Option("--strategies", help="Router strategies reported for baas; the first is the method `baas`, the others `baas:NAME`. Default: hard and the two best of benchmarks/results/fuse.md.")] = "hard,cluster,topk2",
    orders: Annotated[int, typer.Option("--orders", min=1, help="Task orders: the first as given, the others seeded shuffles; metrics are the mean and spread over orders.")] = 1,
    data_dir: DataDirOpt = None,
    backbone: BackboneOpt = None,
    store: Annotated[Optional[Path], typer.Option("--store", help="Store of the protocol's bank entries, states and caches. Default: OUT/store, the run's own, so your bank is never touched. A store named here is shared: entries in it with the same data and settings are reused, new ones are added as new versions, and nothing the run did not make is removed or changed.")] = None,
    max_train: MaxTrainSomeOpt = 600,
    max_eval: MaxEvalSomeOpt = 200,
    epochs: Annotated[int, typer.Option(min=1, help="Epochs per task (best epoch on the task's validation split kept).")] = DEFAULTS.epochs,
    seed: SeedOpt = DEFAULTS.seed,
    scoring: ScoringOpt = DEFAULTS.scoring,
    ewc_lambda: Annotated[Optional[float], typer.Option("--ewc-lambda", min=0.0, help="Strength of the EWC penalty. Default: chosen on validation over the first two tasks from 1e2, 1e3, 1e4 and 1e5 (the mean validation accuracy of tasks 1 and 2 after task 2).")] = None,
    space: Annotated[str, typer.Option("--space", help="Where baas mixes entries: output (each entry's answers, cached per entry and split) or prompt (one fused pass per question and row).")] = "output",
    report_only: Annotated[bool, typer.Option("--report-only", metavar="", help="Train and evaluate nothing: write the report of the cells already in --out (a run still going, or stopped).")] = False,
    device: DeviceOpt = DEFAULTS.device,
    precision: PrecisionOpt = DEFAULTS.precision,
    as_json: JsonOpt = False,
):
    """Learn the tasks one after another with each method and measure what it keeps: the accuracy matrix
    R[k][i] (task i after training tasks 1..k), average and incremental accuracy, BWT, FWT and forgetting,
    in accuracy and macro F1, with parameters, time and memory.

    baas grows its bank by one entry per task and refits its router from the entries' query summaries; it
    answers with no task id. The protocol's bank lives in OUT/store unless --store names another; bank
    entries trained there with the same data and settings are reused, and an entry the run did not make is
    never removed or changed. Results go to --out as they come; a stopped run resumes with the same command.
    """
    from baas.training.backbone import load_backbone
    from baas.training.continual import DEFAULT_ORDER, METHODS, Budget, Settings, run_protocol
    from baas.training.continual.report import write_report
    from baas.training.routing import Query

    names = list(METHODS) if methods == "all" else _split_tasks(methods) or []
    chosen = _split_tasks(strategies) or []
    if space not in ("output", "prompt"):
        raise BaasError(f"unknown --space '{space}'; expected output or prompt")
    settings = Settings(tasks=_split_tasks(tasks) or list(DEFAULT_ORDER), orders=orders,
                        budget=Budget(max_train, max_eval, epochs, seed), query=str(Query.parse("options:2")),
                        space=space, ewc_lambda=ewc_lambda, config=TrainConfig(scoring=scoring, device=device, precision=precision))
    settings.config.check()
    report = run_protocol(settings, names, chosen, load_backbone(backbone, device, precision), _store(store or out_dir / "store"), out_dir, data_dir,
                          _reporter(), report_only=report_only)
    if _worker():
        return
    write_report(report, out_dir, "baas " + " ".join(a for a in sys.argv[1:] if a != "--report-only"))
    if as_json:
        print(json.dumps(report, default=str))
    else:
        _print_forgetting(report)
        out.print(f"report: {out_dir / 'report.md'} (also report.json, accuracy_matrix.png, forgetting_curves.png)", highlight=False)
    for name, failure in report["failed"].items():
        err.print(f"error: {name} failed at task {failure['task']}: {failure['error']} (rerun the same command to retry it)", highlight=False)
    if report["failed"]:
        raise typer.Exit(1)


def _print_forgetting(report: dict) -> None:
    fmt = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
    ci = lambda i: "" if not i else f" [{i[0]:.2f}, {i[1]:.2f}]"  # noqa: E731

    def metric(m: dict, key: str) -> str:
        return fmt(m[key]) + ("" if m[key] is None else ci((m.get("intervals") or {}).get(key)))

    def versus(v: dict | None) -> str:
        if not v:
            return "–"
        if not v["interval"]:
            return f"{100 * v['difference']:+.1f} (no interval)"
        return f"{100 * v['difference']:+.1f} [{100 * v['interval'][0]:+.1f}, {100 * v['interval'][1]:+.1f}] {v['verdict']}"

    confidence = f"{100 * report['uncertainty']['confidence']:.0f}%" if report.get("uncertainty") else "95%"
    table = _table(f"eval-forgetting: {len(report['tasks'])} tasks in turn, no task ids for baas ({confidence} intervals, "
                   "bootstrap over questions)",
                   ["method", "avg acc", "avg incr", "BWT", "FWT", "forgetting", "baas − method (points)",
                    "avg acc, learnable", "trainable/task", "seconds"])
    for name, m in report["methods"].items():
        p = m["parameters"] or {}
        table.add_row(name, metric(m, "average_accuracy"), fmt(m["average_incremental_accuracy"]), metric(m, "bwt"),
                      fmt(m["fwt"]), metric(m, "forgetting"), "" if name == "baas" else versus(m.get("versus_baas")),
                      metric(m, "learnable_average_accuracy") if "learnable_average_accuracy" in m else "–",
                      f"{p.get('trainable', '–'):,}" if p else "–", f"{m['seconds']:.0f}")
    _show(table)
    view = report.get("learnable") or {}
    if view.get("tasks") is not None:
        out.print(f"learnable tasks (some method {100 * view['margin']:.0f} points above chance on validation): "
                  f"{', '.join(view['tasks']) or 'none'}; left out: "
                  f"{', '.join(t for t in report['tasks'] if t not in view['tasks']) or 'none'}", highlight=False)
    f = report.get("findings") or {}
    for goal, g in f.get("goals", {}).items():
        out.print(f"goal {goal}: {fmt(g['value'])}{ci(g.get('interval'))} -> {'met' if g['met'] else 'missed'}", highlight=False)
    for name in f.get("baselines_above_baas", []):
        out.print(f"{name} beats baas on average accuracy (paired {confidence} interval of baas − {name} below zero)",
                  highlight=False)
    said = {"ahead": "baas is ahead of", "level": "baas is level with", "behind": "baas is behind",
            "no_interval": "no interval (cells without per-question results) for"}
    for key, names in (f.get("baas_versus") or {}).items():
        if names:
            out.print(f"{said[key]}: {', '.join(names)}", highlight=False)


@app.command("predict")
@cli_errors
def predict_cmd(
    question: Annotated[Optional[str], typer.Option("--question", help="One question to answer.")] = None,
    options: Annotated[Optional[list[str]], typer.Option("--option", help="An answer option (repeat: --option A --option B ...).")] = None,
    context: Annotated[Optional[str], typer.Option("--context", help="A passage the question is about.")] = None,
    file: Annotated[Optional[Path], typer.Option("--file", help="Questions in the baas jsonl format (a label or answer per row is optional; with them, accuracy is reported).")] = None,
    router: Annotated[Optional[str], typer.Option("--router", help="A router saved by `baas fuse` (its strategy name). Default: the latest one saved (the one `fuse` last reported).")] = None,
    store: StoreOpt = None,
    top: Annotated[int, typer.Option(min=1, help="Entries shown per question.")] = 3,
    device: DeviceOpt = DEFAULTS.device,
    precision: PrecisionOpt = DEFAULTS.precision,
    as_json: JsonOpt = False,
):
    """Answer questions with the fused bank, with no task id, and show which entries each answer used.

    `baas predict --question "Which gas do plants take in?" --option oxygen --option "carbon dioxide"`.
    Says which router (strategy, rule, space) answered. A router fitted on an entry that has since been
    removed is refused, and one that does not know an entry added since is used with a warning; both name
    the router and the entry: rerun `baas fuse`.
    """
    import warnings

    from baas.training.api import Bank, StaleRouterWarning, questions
    from baas.training.data import read_questions
    from baas.training.metrics import mcq_metrics

    if (question is None) == (file is None):
        raise BaasError("give either --question with two or more --option, or --file FILE.jsonl")
    if file is not None:
        examples, labelled = read_questions(file)
    else:
        if not options or len(options) < 2:
            raise BaasError("--question needs at least two --option values")
        examples, labelled = questions(question, list(options), context), False
    bank = Bank(_store(store, create=False), device=device, precision=precision)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StaleRouterWarning)
        rows = bank.predict(examples, router=router)
    stale = [str(w.message) for w in caught if issubclass(w.category, StaleRouterWarning)]
    for line in stale:
        err.print(f"warning: {line}", highlight=False, soft_wrap=True)
    name, fitted = bank.router_name, bank.router
    for row in rows:
        row["entries"] = row["entries"][:top]
    result = {"router": name, "strategy": fitted.strategy.name, "rule": fitted.rule.name, "space": fitted.space,
              "predictions": rows}
    if stale:
        result["warnings"] = stale
    if labelled:
        result["accuracy"] = mcq_metrics([e.label for e in examples], [r["answer"] for r in rows])["accuracy"]
    if as_json:
        print(json.dumps(result, default=str))
        return
    table = _table(f"baas predict (router '{name}': {fitted.strategy.name}, rule {fitted.rule.name}, {fitted.space} space, "
                   f"{len(fitted.tasks)} entries)",
                   ["question", "answer", "p", "entries used (weight)"])
    for r in rows:
        table.add_row(r["question"], r["answer_text"], f"{max(r['probabilities']):.2f}",
                      ", ".join(f"{e['task']} {e['weight']:.2f}" for e in r["entries"]))
    _show(table)
    if labelled:
        out.print(f"accuracy {result['accuracy']:.3f} on {len(rows)} questions")


@bank_app.command("list")
@cli_errors
def bank_list(store: StoreOpt = None, as_json: JsonOpt = False):
    """Every task in the bank (latest version), in the order it was learned."""
    st = _store(store, create=False)
    rows = st.list_entries()
    if as_json:
        print(json.dumps({"store": str(st.root), "entries": rows}, default=str))
        return
    table = _table(f"prompt bank at {st.root}", ["entry", "version", "versions", "backbone", "Lp+Ls (x depth)", "accuracy"])
    for r in rows:
        meta = r["meta"]
        shape = f"{meta['prefix_len']}+{meta['suffix_len']}" + (f" x{meta['depth']}" if meta.get("depth", 1) > 1 else "")
        table.add_row(r["task"], f"v{r['version']}", str(r["versions"]), r["backbone"], shape, _accuracy(r["metrics"]))
    if rows:
        _show(table)
    else:
        out.print(f"no entries in {st.root}; train one with `baas train-task NAME`")


@bank_app.command("show")
@cli_errors
def bank_show(name: Annotated[str, typer.Argument(help="A bank entry: NAME (newest version) or NAME@vN.")], store: StoreOpt = None,
              version: VersionOpt = None, as_json: JsonOpt = False):
    """Metadata, metrics and tensor shapes of one bank entry (its file is read and verified)."""
    from baas.store import parse_entry_ref

    st = _store(store, create=False)
    task, at = parse_entry_ref(name)
    entry = st.load_entry(task, at or version)
    info = st.describe(task, entry.version)
    info["tensors"] = {k: list(v.shape) for k, v in entry.tensors().items()}
    if as_json:
        print(json.dumps(info, default=str))
        return
    meta, metrics = info["meta"], info["metrics"]
    table = _table(f"bank entry {task}@v{entry.version}", ["field", "value"], header=False)
    rows = [("dataset", meta.get("dataset", "") + (f" (read as {meta['format']})" if meta.get("format") else "")),
            ("versions", ", ".join(f"v{v['version']}" for v in reversed(st.versions(task)))),
            ("backbone", f"{info['backbone']} (hidden {info['hidden_size']})"),
            ("prompt", f"{meta['prefix_len']} prefix + {meta['suffix_len']} suffix vectors x depth {meta.get('depth', 1)}, "
                       f"pooling {meta.get('pooling')}, init {meta.get('prefix_init')}/{meta.get('suffix_init')}, "
                       f"reparam {meta.get('reparam')}"),
            ("accuracy", _accuracy(metrics)), ("macro F1", f"{metrics.get('macro_f1', float('nan')):.3f}"),
            ("trained on", f"{meta.get('n_train')} questions, best epoch {meta.get('best_epoch')}"),
            ("created", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(meta.get("created", 0)))),
            ("tensors", ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in info["tensors"].items())),
            ("file", info["path"])]
    for k, v in rows:
        table.add_row(k, v)
    _show(table)


def _accuracy(metrics: dict) -> str:
    """An accuracy with what it was measured on, e.g. `0.450 (test, 200 questions)`."""
    acc = metrics.get("accuracy")
    if acc is None:
        return "–"
    where = ", ".join(x for x in (metrics.get("eval_split"), f"{metrics['n_eval']} questions" if metrics.get("n_eval") else None) if x)
    return f"{acc:.3f}" + (f" ({where})" if where else " (split and size not recorded)")


@bank_app.command("rm")
@cli_errors
def bank_rm(name: Annotated[str, typer.Argument(help="NAME (every version) or NAME@vN (that version only).")], store: StoreOpt = None,
            yes: Annotated[bool, typer.Option("--yes", metavar="", help="Delete without asking (scripts); without it a terminal asks first.")] = False,
            as_json: JsonOpt = False):
    """Remove one version of an entry (NAME@vN), or every version of it (NAME), from the bank.

    The saved routers fitted on it are named first: they refuse to answer until `baas fuse` is rerun."""
    from baas.store import parse_entry_ref
    from baas.training.api import Bank

    bank = Bank(_store(store, create=False))
    task, version = parse_entry_ref(name)
    doomed = [v["version"] for v in bank.store.versions(task) if version is None or v["version"] == version]
    if not doomed:
        raise BaasError(f"no bank entry for {name!r} in store {bank.store.root} (see `baas bank list`)")
    what = f"{len(doomed)} version(s) of '{task}' (" + ", ".join(f"v{v}" for v in sorted(doomed)) + ")"
    using = bank.routers_using(name)
    if using:
        err.print(f"note: router{'s' if len(using) > 1 else ''} {', '.join(repr(r) for r in using)} {'were' if len(using) > 1 else 'was'} "
                  f"fitted on {name}; without it {'they refuse' if len(using) > 1 else 'it refuses'} to answer until you "
                  "rerun `baas fuse`", highlight=False, soft_wrap=True)
    if not yes:
        if not sys.stdin.isatty():
            raise BaasError(f"refusing to delete {what} without confirmation: rerun with --yes")
        if not typer.confirm(f"delete {what} from {bank.store.root}?", default=False, err=True):
            raise BaasError("nothing deleted")
    result = bank.remove(name)
    if as_json:
        print(json.dumps(result))
    else:
        out.print(f"removed {what}", highlight=False)


@bank_app.command("export")
@cli_errors
def bank_export(name: Annotated[str, typer.Argument(help="A bank entry: NAME (newest version) or NAME@vN.")],
                folder: Annotated[Path, typer.Argument(help="A new (or empty) folder to write.")], store: StoreOpt = None,
                as_json: JsonOpt = False):
    """Write one entry as a self-contained folder to share, as a PEFT adapter is shared: entry.safetensors,
    baas_entry.json (backbone, shapes, pooling, data fingerprint, metrics, sha256), a README card and the
    router's query summaries. `baas bank import FOLDER` adds it to another store."""
    from baas.training.api import Bank

    result = Bank(_store(store, create=False)).export(name, folder)
    if as_json:
        print(json.dumps(result))
    else:
        out.print(f"exported {name} to {result['folder']}", highlight=False)


@bank_app.command("import")
@cli_errors
def bank_import(folder: Annotated[Path, typer.Argument(help="A folder written by `baas bank export`.")],
                name: Annotated[Optional[str], typer.Option("--name", help="The entry's name here (default: its exported name).")] = None,
                store: StoreOpt = None, as_json: JsonOpt = False):
    """Check an exported entry (its sha256 and tensor shapes against its config) and add it to the bank as
    a new version. The saved routers do not know it until `baas fuse` is rerun; this command says so."""
    from baas.training.api import Bank

    bank = Bank(_store(store), create=True)
    result = bank.import_entry(folder, name)
    added = f"{result['task']}@v{result['version']}"
    blind = [r["name"] for r in bank.routers() if any(added in line for line in r["problems"])]
    if blind:
        err.print(f"note: the saved router{'s' if len(blind) > 1 else ''} {', '.join(repr(r) for r in blind)} "
                  f"{'do' if len(blind) > 1 else 'does'} not know {added}, so predict never routes there; rerun `baas fuse` "
                  "to include it", highlight=False, soft_wrap=True)
    if as_json:
        print(json.dumps(result))
    else:
        out.print(f"imported {folder} as {result['task']}@v{result['version']}", highlight=False)


@store_app.command("check")
@cli_errors
def store_check(
    store: StoreOpt = None,
    repair: Annotated[bool, typer.Option("--repair", metavar="", help="Delete what no catalog row needs: orphan files and unreadable caches. Missing or corrupt entries are only reported.")] = False,
    as_json: JsonOpt = False,
):
    """Verify every file of the store against its catalog (sha256 and format), and find orphans and
    unreadable caches. Exit status 0 means all is well. (Half-written files of killed processes are
    removed whenever a store is opened; they are listed as removed.)

    `baas store check`; `baas store check --repair` to remove what no catalog row needs.
    """
    result = _store(store, create=False).check(repair=repair)
    if as_json:
        print(json.dumps(result))
    else:
        p = result["problems"]
        for item in p["missing"]:
            out.print(f"missing: {item['kind']} {item['name']}: {item['file']} is gone "
                      + (f"(`baas bank rm {item['name']}` drops its row)" if item["kind"] == "entry" else "(rerun what made it)"), highlight=False)
        for item in p["corrupt"]:
            out.print(f"corrupt: {item['kind']} {item['name']}: {item['file']}: {item['why']}", highlight=False)
        for key, what in (("orphans", "orphan (no catalog row)"), ("bad_caches", "unreadable cache")):
            for rel in p[key]:
                out.print(f"{what}: {rel} (`--repair` removes it)", highlight=False)
        for line in p["catalog"]:
            out.print(f"catalog: {line}", highlight=False)
        for rel in result["removed"]:
            out.print(f"removed: {rel}", highlight=False)
        verdict = "all is well" if result["ok"] else "problems found"
        out.print(f"{result['store']}: {result['files_checked']} catalogued files checked; {verdict}", highlight=False)
    if not result["ok"]:
        raise typer.Exit(1)


@app.command("datasets")
@cli_errors
def datasets_cmd(data_dir: DataDirOpt = None, as_json: JsonOpt = False):
    """Known dataset adapters and where each would load from (local folder, hub, or generated)."""
    from baas.training.data import dataset_table

    rows = dataset_table(data_dir)
    if as_json:
        print(json.dumps({"datasets": rows}))
        return
    from baas.training.data import resolve_data_dir

    root = resolve_data_dir(data_dir)
    table = _table(f"datasets (local folders: {root})" if root else "datasets (no data directory: the hub)",
                   ["name", "hub id", "loads from", "splits"])
    for r in rows:
        where = r["source"]
        if root is not None and where.startswith(str(root)):
            where = "local folder"
        elif where.startswith("hub "):
            where = "hub only (no local folder)" if root is not None else "hub"
        splits = r["splits"].replace("validation", "val")  # short enough that nothing wraps mid-word at 80 columns
        table.add_row(r["name"], r["hub_id"] or "–", "generated" if where.startswith("generated") else where, splits)
    _show(table)


@app.command("demo")
@cli_errors
def demo_cmd(
    store: Annotated[Optional[Path], typer.Option("--store", help="Store for the demo's bank. Default: $BAAS_HOME/demo or ~/.baas/demo.")] = None,
    backbone: BackboneOpt = None,
    epochs: Annotated[int, typer.Option(min=1, help="Epochs per task.")] = 2,
    as_json: JsonOpt = False,
):
    """Offline tour of the product in small: three generated MCQ tasks learned one after another into a
    bank, answered with no task id through the router, and compared with one prompt pair trained on the
    same tasks in turn (naive). Needs no network and no data files; a rerun reuses what is done."""
    import hashlib

    from baas.training.backbone import load_backbone
    from baas.training.continual import Budget, Settings, run_protocol
    from baas.training.continual.report import write_report
    from baas.training.data import GENERATORS

    st = _store(store, default_subfolder="demo")
    bb = load_backbone(backbone)
    # Both methods train at the default prompt rate (eval-forgetting would try three on the first task).
    settings = Settings(tasks=list(GENERATORS), budget=Budget(max_train=None, max_eval=None, epochs=epochs, seed=0),
                        lr_grid=(DEFAULTS.lr,))
    out_dir = st.root / "forgetting" / hashlib.sha256(json.dumps([bb.name, epochs]).encode()).hexdigest()[:12]
    report = run_protocol(settings, ["baas", "naive"], ["hard"], bb, st, out_dir, reporter=RichReporter())
    write_report(report, out_dir, f"baas demo --epochs {epochs}")
    m = report["methods"]
    rows = [dict(task=t, chance=report["chance"][t], accuracy=m["baas"]["final_accuracy"][t],
                 oracle_accuracy=m["oracle"]["final_accuracy"][t], naive_accuracy=m["naive"]["final_accuracy"][t])
            for t in report["tasks"]]
    keys = ("average_accuracy", "average_incremental_accuracy", "bwt", "fwt", "forgetting")
    forgetting = {name: {k: m[name][k] for k in keys} for name in ("baas", "oracle", "naive")}
    if as_json:
        print(json.dumps({"store": str(st.root), "report": str(out_dir), "tasks": rows, "forgetting": forgetting}, default=str))
        return
    fmt = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
    table = _table(f"baas demo: {len(rows)} generated tasks learned one after another ({bb.name}, frozen); "
                   "final accuracy on each task's test questions", ["task", "chance", "baas (no task id)", "oracle (task id)",
                                                                     "naive (one pair, in turn)"])
    for r in rows:
        table.add_row(r["task"], fmt(r["chance"]), fmt(r["accuracy"]), fmt(r["oracle_accuracy"]), fmt(r["naive_accuracy"]))
    _show(table)
    table = _table("what each kept (R\\[k]\\[i]: accuracy on task i after training tasks 1..k)",
                   ["method", "avg accuracy", "avg incremental", "BWT", "forgetting"])
    for name, f in forgetting.items():
        table.add_row(name, fmt(f["average_accuracy"]), fmt(f["average_incremental_accuracy"]), fmt(f["bwt"]), fmt(f["forgetting"]))
    _show(table)
    out.print(f"bank: {st.root}; report: {out_dir / 'report.md'}\nNext, real data: baas train-task arc_easy --data-dir DIR "
              "(one per dataset), baas fuse --data-dir DIR, baas eval-forgetting --data-dir DIR "
              "(DIR/NAME/{train,validation,test}.jsonl in the hub layout)", highlight=False)


def main() -> None:  # pragma: no cover - `python -m baas.cli.main`
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

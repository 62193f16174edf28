"""`baas train-task`: train one dataset's prompt pair and head into the bank (the API's `train_task`; with
`--seeds`, once per seed: `train_seeds`)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from baas.cli.config import configurable
from baas.cli.options import (DEFAULTS, BackboneOpt, ClustersOpt, ConfigOpt, DataDirOpt, DeviceOpt, FormatOpt, JsonOpt,
                              LlmModelOpt, LlmUrlOpt, MaxEvalOpt, MaxTrainOpt, PrecisionOpt, PrefixInitOpt, PrefixLenOpt,
                              ScoringOpt, SeedOpt, SkipOpt, StoreOpt, SuffixInitOpt, SuffixLenOpt)
from baas.cli.render import Table, acc, emit, fields, main_process, note, one_line_errors, say, show, span, three

# What the table shows of an evaluation (eval-task), and of a training run (train-task: these and more).
RESULT_KEYS = ["task", "accuracy", "macro_precision", "macro_recall", "macro_f1", "chance", "n_train", "n_eval",
               "eval_split", "seconds", "bank_file"]
TRAIN_KEYS = RESULT_KEYS + ["version", "best_epoch", "reused", "processes", "device", "precision"]


def show_record(result, as_json: bool, title: str, keys: list[str]) -> None:
    """A train or eval result: its data notes on stderr, then the fields table or the JSON line."""
    if main_process():
        for text in result.notes:
            note(text)
    record = result.to_dict()
    record["accuracy"] = acc(result.accuracy, result.n_eval, result.accuracy_interval, result.eval_split)  # 95% interval, n
    emit(result, as_json, lambda: fields(title, record, keys))


def parse_seeds(text: str | None) -> int | list[int] | None:
    """`--seeds`: N (that many seeds from --seed) or a comma-separated list (`0,1,2`)."""
    if text is None:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()] if "," in text else int(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r}: expected a count (3) or seeds separated by commas (0,1,2)", param_hint="--seeds") from None


def show_seeds(result, as_json: bool) -> None:
    """One row per seed (its accuracy with its 95% interval and n), then the mean ± sd of the accuracy and the
    mean's interval over the shared questions (the table), or the SeedsResult's JSON line."""
    if main_process():
        for text in dict.fromkeys(t for r in result.runs for t in r.notes):
            note(text)

    def human() -> None:
        table = Table(f"baas train-task {result.task}: {len(result.seeds)} seeds (accuracy: 95% interval, questions)",
                      ["seed", "entry", "accuracy", "split", "best epoch", "seconds"])
        for seed, r in zip(result.seeds, result.runs):
            table.add_row(seed, f"{r.task}@v{r.version}" + (" (reused)" if r.reused else ""),
                          acc(r.accuracy, r.n_eval, r.accuracy_interval), r.eval_split, r.best_epoch, r.seconds)
        show(table)
        sd = "" if result.sd_accuracy is None else f" ± {result.sd_accuracy:.3f} (sd over seeds)"
        say(f"accuracy over {len(result.runs)} seeds: {three(result.mean_accuracy)}{sd}; 95% interval "
            f"{span(result.accuracy_interval)} over the {result.n_eval or '–'} questions every seed answered")

    emit(result, as_json, human)


@one_line_errors
@configurable
def train_task(
    ctx: typer.Context,
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
    seeds: Annotated[Optional[str], typer.Option("--seeds", metavar="N|S,S,..", help="Train once per seed: N seeds from --seed, or a list (0,1,2). Each seed's entry is a version of --name (NAME@v1, v2, ...; a rerun reuses the seeds already trained); prints each and the mean ± sd of the accuracy.")] = None,
    checkpoint_every: Annotated[int, typer.Option(min=1, help="Steps between checkpoints (also written at each epoch end).")] = DEFAULTS.checkpoint_every,
    device: DeviceOpt = DEFAULTS.device,
    precision: PrecisionOpt = DEFAULTS.precision,
    skip_invalid: SkipOpt = False,
    force: Annotated[bool, typer.Option("--force", metavar="", help="Train a new version even if the store holds an entry made with the same data and settings (by default that entry is reported).")] = False,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
):
    """Train DATASET's prompt pair and scoring head on the frozen backbone and save it to the bank (as --name).

    Evaluates on the test split (validation when the dataset has no labelled test) with the epoch that
    did best on validation. A killed run resumes from its last checkpoint when rerun with the same options.
    Head-only baseline: --prefix-len 0 --suffix-len 0 --head-lr 3e-2 (its best head rate). Shallow pair
    (input level only): --depth 1. A data-driven start (--prefix-init topic, --suffix-init autocot) is
    made once per data and settings and kept in the store (see `init-prompts`).

    Examples: `baas train-task arc_easy --data-dir DIR --max-train 600 --epochs 2`;
    `baas train-task demo_categories` (generated, offline); `baas train-task arc_easy --name arc_head --prefix-len 0 --suffix-len 0`;
    `baas train-task arc_easy --seeds 3` (seeds 0, 1, 2: mean ± sd);
    `baas train-task arc_easy --config run.toml --epochs 1` (the file's settings, one changed).
    """
    from baas.cli.progress import reporter
    from baas.training.api import train_seeds, train_task

    several = parse_seeds(seeds)
    train = train_task if several is None else (lambda *a, **kw: train_seeds(*a, several, **kw))
    result = train(dataset, name=name, data_dir=data_dir, store=store, backbone=backbone, max_train=max_train,
                   max_eval=max_eval, format=format, skip_invalid=skip_invalid, reporter=reporter(), force=force,
                   epochs=epochs, batch_size=batch_size, lr=lr, head_lr=head_lr, prefix_len=prefix_len,
                   suffix_len=suffix_len, depth=depth, gate=None if no_gate else gate, prefix_init=prefix_init,
                   suffix_init=suffix_init, reparam=reparam, reparam_lr=reparam_lr, clusters=clusters,
                   llm_base_url=llm_base_url, llm_model=llm_model, scoring=scoring, pooling=pooling,
                   max_length=max_length, seed=seed, checkpoint_every=checkpoint_every, device=device,
                   precision=precision)
    if several is None:
        show_record(result, as_json, f"baas train-task {result.task}", TRAIN_KEYS)
    else:
        show_seeds(result, as_json)

"""Train one task's prompt pair and head on a frozen backbone, then freeze it into the store.

The loop is `loop.fit` (the one every method uses): AdamW with warmup and decay, clipping, the best epoch
on validation kept. Its checkpoints go to the store every `checkpoint_every` steps and at each epoch end,
so a killed run resumes where it stopped and ends with the same result as an uninterrupted one.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict

import torch

from baas.prompts_bank.errors import BaasError
from baas.prompts_bank.trainable import TrainablePromptPair
from baas.store import Store
from baas.training.answers import entry_answers, keep_answers
from baas.training.backbone import Backbone, resolve_precision
from baas.training.batching import Encoded
from baas.training.cache import encode_cached, init_key, run_key
from baas.training.config import TrainConfig
from baas.training.data import TaskData, fingerprint
from baas.training.fusion import DEFAULT_QUERY, entry_summary
from baas.training.init import LLMClient, LLMConfig, PromptInit, initialise
from baas.training.loop import PairLearner, answer_metrics, fit, make_optimizer
from baas.training.parallel import Processes
from baas.training.progress import Reporter
from baas.training.scoring import query_embeddings


def make_trainable(backbone: Backbone, train_enc: list[Encoded], config: TrainConfig, init: PromptInit | None = None
                   ) -> tuple[TrainablePromptPair, torch.optim.Optimizer]:
    """The task's trainable pair and head, started from `init` (by default the token-based start
    `config` names), and their optimiser: one learning rate for the vectors, one for the
    reparameterisation, one for the head. Made on the backbone's device (fp32, whatever the precision)."""
    if init is None:
        init = initialise(config, backbone.tokenizer, backbone.model.get_input_embeddings().weight, train_enc)
    depth = config.depth or backbone.num_layers
    if depth > backbone.num_layers:
        raise BaasError(f"--depth {depth} is deeper than backbone '{backbone.name}' ({backbone.num_layers} layers)")
    init = PromptInit(init.prefix.to(backbone.device), init.suffix.to(backbone.device), init.info)
    prefix, suffix = backbone.prompt_states(init.prefix, init.suffix, depth)
    gate = config.gate if config.prefix_len + config.suffix_len else None  # head-only has nothing to gate
    module = TrainablePromptPair(prefix, suffix, backbone.hidden_size, config.reparam, gate, config.scoring)
    module.to(backbone.device)
    return module, make_optimizer(module, config)


class _QuestionEmbeddings:
    """The training questions' [n, d] embeddings, computed once on first use (clustering, task key)."""

    def __init__(self, backbone: Backbone, examples: list):
        self.backbone, self.examples, self.value = backbone, examples, None

    def __call__(self) -> torch.Tensor:
        if self.value is None:
            self.value = query_embeddings(self.backbone, [e.question for e in self.examples])
        return self.value


def task_init(task: str, data: TaskData, backbone: Backbone, store: Store, config: TrainConfig,
              train_enc: list[Encoded], questions=None, reporter: Reporter | None = None) -> PromptInit:
    """The pair's starting vectors. A data-driven start (topic labels, Auto-CoT chain) is made once and
    kept in the store (`init-prompts` shows it); later runs with the same data and settings reuse it.
    The LLM for the chains: `config.llm_base_url` / `llm_model`, else BAAS_LLM_BASE_URL / BAAS_LLM_MODEL."""
    reporter = reporter or Reporter()
    embeddings = backbone.model.get_input_embeddings().weight
    if config.prefix_init != "topic" and config.suffix_init != "autocot":
        return initialise(config, backbone.tokenizer, embeddings, train_enc)
    llm_config = LLMConfig.from_env(config.llm_base_url, config.llm_model)
    use_llm = config.suffix_init == "autocot" and llm_config.enabled
    key = init_key(data, backbone, config, (llm_config.base_url, llm_config.model) if use_llm else None)
    stored = store.load_init(task, key)
    if stored is not None:
        info = stored[1]
        labels = info.get("topics", {}).get("labels")
        reporter.message(f"reusing the kept initialisation of '{task}' (prefix from {config.prefix_init}"
                         + (f": {', '.join(labels[:8])}{' …' if len(labels) > 8 else ''}" if labels and config.prefix_init == "topic" else "")
                         + f"; suffix from {config.suffix_init}); `baas init-prompts {task}` shows it")
        return PromptInit(stored[0]["prefix"], stored[0]["suffix"], dict(info, from_store=True))
    llm = LLMClient(llm_config, store, warn=reporter.message) if use_llm else None
    reporter.message(f"initialising '{task}': prefix from {config.prefix_init}, suffix from {config.suffix_init}"
                     + (f" ({llm.source})" if llm else " (offline chains)" if config.suffix_init == "autocot" else ""))
    init = initialise(config, backbone.tokenizer, embeddings, train_enc, data.train.examples,
                      questions or _QuestionEmbeddings(backbone, data.train.examples), llm)
    for warning in init.info.get("topics", {}).get("warnings", []) + init.info.get("chain", {}).get("warnings", []):
        reporter.message(f"warning: {warning}")
    if llm is not None:
        llm.close()
        init.info["llm"] = {"calls": llm.calls, "cache_hits": llm.cache_hits}
    store.save_init(task, key, {"prefix": init.prefix.cpu(), "suffix": init.suffix.cpu()}, init.info)
    return init


def train_pair(
    task: str,
    data: TaskData,
    backbone: Backbone,
    store: Store,
    config: TrainConfig,
    reporter: Reporter | None = None,
    stop_after_steps: int | None = None,
    force: bool = False,
) -> dict:
    """Train, select the best epoch on validation, evaluate, and save a bank entry. Returns the result record.

    An entry this run already made (same task, backbone, data and settings) is reported instead of
    training again (`reused` is true); `force` trains a new version anyway. `stop_after_steps` ends
    training early after that many optimiser steps, leaving the checkpoint in place, as a crash would
    (used by tests of resuming)."""
    config.check()
    reporter = reporter or Reporter()
    started = time.time()
    device = backbone.device  # the backbone's: load_backbone(..., device=config.device) put it there
    precision = resolve_precision(config.precision, device)
    key = run_key(task, backbone, data, config)
    version = None if force else store.find_version(task, key)
    if version is not None:
        reporter.message(f"'{task}' was already trained with this data and these settings: {task}@v{version} "
                         "is reported (--force trains a new version)")
        return _existing_result(task, version, data, backbone, store)
    torch.manual_seed(config.seed)
    pooling = config.pooling or backbone.default_pooling
    max_length = min(config.max_length, backbone.max_positions - config.prefix_len - config.suffix_len)
    train_enc, val_enc = (encode_cached(split.examples, backbone, max_length, store) for split in (data.train, data.validation))
    eval_enc = val_enc if data.eval is data.validation else encode_cached(data.eval.examples, backbone, max_length, store)

    questions = _QuestionEmbeddings(backbone, data.train.examples)
    processes = Processes()
    if processes.main:  # the start is made (and an LLM asked) once; the other processes read it from the store
        init = task_init(task, data, backbone, store, config, train_enc, questions, reporter)
    processes.barrier()
    if not processes.main:
        init = task_init(task, data, backbone, store, config, train_enc, questions, Reporter())
    module, _ = make_trainable(backbone, train_enc, config, init)
    learner = PairLearner(backbone, module, pooling, precision)
    checkpoint = store.load_checkpoint(task, key)
    if checkpoint is not None:
        reporter.message(f"'{task}' has a checkpoint: {store.checkpoint_path(task, key)}")
    resumed_at = json.loads(checkpoint["progress"])["step"] if checkpoint is not None else 0
    config_record = dict(asdict(config), backbone=backbone.name, resumed_at=resumed_at, processes=processes.world,
                         device=str(device), precision=precision)
    run_id = store.start_run(task, "train", config_record) if processes.main else None

    def finish_run(status: str, metrics: dict | None = None) -> None:
        if processes.main:
            store.finish_run(run_id, status, metrics)

    try:
        state = fit(learner, train_enc, val_enc, config, backbone.pad_id, reporter=reporter, label=task, resume=checkpoint,
                    save=lambda ckpt: store.save_checkpoint(task, key, ckpt), stop_after_steps=stop_after_steps)
    except BaseException as exc:
        finish_run("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed")
        raise
    if state.get("interrupted"):
        finish_run("interrupted")
        return {"task": task, "interrupted_at_step": state["step"]}

    task_key = questions().mean(0)
    meta = dict(
        backbone=backbone.name, hidden_size=backbone.hidden_size, is_decoder=backbone.is_decoder,
        prefix_len=config.prefix_len, suffix_len=config.suffix_len, depth=module.depth, prefix_init=config.prefix_init,
        suffix_init=config.suffix_init, reparam=config.reparam, init=init.info, pooling=pooling, max_length=max_length, config=asdict(config),
        data_fingerprint=fingerprint(data.train.examples), dataset=data.name, format=data.format, n_train=len(train_enc),
        best_epoch=state["best_epoch"], history=state["history"], start_accuracy=state.get("start_accuracy"), run_key=key,
        trainable_parameters=sum(p.numel() for p in module.parameters() if p.requires_grad),
        device=str(device), precision=precision,
    )
    entry = module.to_entry(task, task_key, meta)
    # The new entry's answers on the evaluation split, made as fused evaluation makes them and kept with the entry
    # in the store's cache: the protocol's oracle (and any later fuse) reads them instead of running them again.
    eval_questions = fingerprint(data.eval.examples)
    answers = _answers(entry, backbone, eval_enc, eval_questions, None, config.eval_batch_size, reporter,
                       f"{task} {data.eval_split}")
    result_metrics = answer_metrics(answers["logits"], eval_enc)
    metrics = {k: result_metrics[k] for k in ("accuracy", "macro_precision", "macro_recall", "macro_f1", "chance")}
    metrics.update(n_eval=len(eval_enc), eval_split=data.eval_split, max_eval=data.max_eval)  # what the accuracy is of
    if not processes.main:  # the main process saves; the others have trained the same pair
        processes.barrier()
        return dict(task=task, **metrics, n_train=len(train_enc), history=state["history"], rank=processes.rank,
                    version=store.find_version(task, key), reused=False, processes=processes.world, device=str(device),
                    precision=precision)
    entry = store.save_entry(entry, data.name, metrics)
    keep_answers(store, entry, eval_questions, max_length, answers)
    # The router's summary of this task, made while its questions are at hand (a router never rereads them).
    entry_summary(entry, backbone, store, DEFAULT_QUERY, train_examples=data.train.examples)
    finish_run("done", metrics)
    store.drop_checkpoint(task, key)
    processes.barrier()
    return dict(
        task=task, **metrics, n_train=len(train_enc),
        trainable_parameters=meta["trainable_parameters"],
        best_epoch=state["best_epoch"], history=state["history"], start_accuracy=state.get("start_accuracy"),
        predictions=result_metrics["predictions"], seconds=round(time.time() - started, 2),
        bank_file=str(store.entry_path(task, entry.version)), version=entry.version, notes=data.notes,
        backbone=backbone.name, resumed=checkpoint is not None, config=asdict(config), pooling=pooling, reused=False,
        processes=processes.world, device=str(device), precision=precision,
    )


def _existing_result(task: str, version: int, data: TaskData, backbone: Backbone, store: Store) -> dict:
    """train_pair's record of an entry already in the store, from what it was saved with."""
    info = store.describe(task, version)
    meta, metrics = info["meta"], info["metrics"]
    store.load_entry(task, version)  # its file is there and verifies
    return dict(
        task=task, **{k: metrics.get(k) for k in ("accuracy", "macro_precision", "macro_recall", "macro_f1", "chance",
                                                    "n_eval", "eval_split", "max_eval")},
        n_train=meta.get("n_train"), trainable_parameters=meta.get("trainable_parameters"),
        best_epoch=meta.get("best_epoch"), history=meta.get("history"), seconds=0.0, bank_file=info["path"],
        version=version, notes=data.notes, backbone=backbone.name, resumed=False, config=meta.get("config"),
        pooling=meta.get("pooling"), reused=True, device=meta.get("device", "cpu"), precision=meta.get("precision", "fp32"),
    )


def evaluate_entry(task: str, data: TaskData, backbone: Backbone, store: Store, reporter: Reporter | None = None,
                   batch_size: int = 32, version: int | None = None, keep_scores: bool = False) -> dict:
    """Evaluate a bank entry of `task` (the latest, or `version`) on its evaluation split, as single-task inference
    (`keep_scores`: each question's option scores too, as `scores`)."""
    reporter = reporter or Reporter()
    started = time.time()
    entry = store.load_entry(task, version, backbone=backbone.name, hidden_size=backbone.hidden_size)
    encoded = encode_cached(data.eval.examples, backbone, entry.meta["max_length"], store)
    answers = _answers(entry, backbone, encoded, fingerprint(data.eval.examples), store, batch_size, reporter,
                       f"{task} {data.eval_split}")
    metrics = answer_metrics(answers["logits"], encoded, keep_scores)
    metrics.pop("n")
    predictions, scores = metrics.pop("predictions"), metrics.pop("scores", None)
    run_id = store.start_run(task, "eval", {"backbone": backbone.name, "version": entry.version})
    store.finish_run(run_id, "done", dict(metrics, n_eval=len(encoded), eval_split=data.eval_split, dataset=data.name))
    return dict(task=task, **metrics, predictions=predictions, scores=scores, n_train=entry.meta.get("n_train"), n_eval=len(encoded), eval_split=data.eval_split, seconds=round(time.time() - started, 2),
                bank_file=str(store.entry_path(task, entry.version)), version=entry.version, notes=data.notes,
                backbone=backbone.name, device=str(backbone.device))


def _answers(entry, backbone: Backbone, encoded: list[Encoded], questions: str, store: Store | None, batch_size: int,
             reporter: Reporter, label: str) -> dict:
    """`answers.entry_answers` on every question of a split, with a progress bar (the share of this process)."""
    reporter.start(label, len(Processes().share(list(range(len(encoded))))))
    block = entry_answers(entry, backbone, encoded, questions, entry.meta["max_length"], store, batch_size=batch_size,
                          on_batch=reporter.advance)
    reporter.stop()
    return block

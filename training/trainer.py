"""Train one task's prompt pair and head on a frozen backbone, then freeze it into the store.

One loop: AdamW with linear warmup and decay, gradient clipping, validation after every epoch, the
best epoch kept. A checkpoint (trainable state, optimiser, RNG, progress) is written every
`checkpoint_every` steps and at each epoch end, so a killed run resumes where it stopped and ends
with the same result as an uninterrupted one.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from dataclasses import asdict

import torch
import torch.nn.functional as F

from baas.prompts_bank.errors import BaasError
from baas.prompts_bank.trainable import TrainablePromptPair
from baas.store import Store
from baas.training.backbone import Backbone
from baas.training.batching import (ENCODING_VERSION, Batch, Encoded, MemoryBackOff, batch_indices, collate, encode, pack,
                                    unpack)
from baas.training.config import TrainConfig
from baas.training.data import TaskData, fingerprint
from baas.training.initialise import PromptInit, initialise
from baas.training.metrics import chance, mcq_metrics
from baas.training.model import PromptSource, predict, query_embeddings, score
from baas.training.parallel import Processes
from baas.training.routing import DEFAULT_QUERY, entry_summary


class Reporter:
    """How the trainer talks: progress bars and messages. The default is silent; the CLI shows rich bars."""

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


def lr_factor(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


DEEP_LR_SCALE = 1.0  # layers 1..D-1 of a deep pair learn at lr x this (a hook for benchmarks/deep_start.py)
GATE_LR_SCALE = 10.0  # a gated pair's gate learns at lr x this (chosen on validation: benchmarks/results/deep_start.md)


def make_trainable(backbone: Backbone, train_enc: list[Encoded], config: TrainConfig, init: PromptInit | None = None
                   ) -> tuple[TrainablePromptPair, torch.optim.Optimizer]:
    """The task's trainable pair and head, started from `init` (by default the token-based start
    `config` names), and their optimiser: one learning rate for the vectors, one for the
    reparameterisation, one for the head."""
    if init is None:
        init = initialise(config, backbone.tokenizer, backbone.model.get_input_embeddings().weight, train_enc)
    depth = config.depth or backbone.num_layers
    if depth > backbone.num_layers:
        raise BaasError(f"--depth {depth} is deeper than backbone '{backbone.name}' ({backbone.num_layers} layers)")
    if backbone.deep_mode == "add":  # zero offsets, so step 0 is the shallow pair (benchmarks/deep_start.py)
        prefix = torch.cat([init.prefix.unsqueeze(0), init.prefix.new_zeros(depth - 1, *init.prefix.shape)])
        suffix = torch.cat([init.suffix.unsqueeze(0), init.suffix.new_zeros(depth - 1, *init.suffix.shape)])
    else:
        prefix, suffix = backbone.prompt_states(init.prefix, init.suffix, depth)
    gate = config.gate if config.prefix_len + config.suffix_len else None  # head-only has nothing to gate
    module = TrainablePromptPair(prefix, suffix, backbone.hidden_size, config.reparam, gate, config.scoring)
    return module, make_optimizer(module, config)


def make_optimizer(module: TrainablePromptPair, config: TrainConfig) -> torch.optim.Optimizer:
    groups = [
        {"params": [p for p in (module.prefix, module.suffix) if p.numel()], "lr": config.lr, "weight_decay": 0.0},
        {"params": [p for p in (module.deep_prefix, module.deep_suffix) if p.numel()], "lr": config.lr * DEEP_LR_SCALE,
         "weight_decay": 0.0},
        {"params": list(module.head.parameters()), "lr": config.head_lr, "weight_decay": 0.01},
    ]
    if module.gate is not None:
        groups.append({"params": [module.gate], "lr": config.lr * GATE_LR_SCALE, "weight_decay": 0.0})
    if module.reparam_parameters():
        groups.append({"params": module.reparam_parameters(), "lr": config.reparam_lr, "weight_decay": 0.0})
    return torch.optim.AdamW(groups)


CLOSED_GATE = -1e4  # a gate this low hides the pair from the input entirely (exp(-1e4) is 0 in fp32)


@torch.no_grad()
def closed_start(module: TrainablePromptPair) -> tuple[dict, PromptSource]:
    """The module's untrained start with its gate closed: its state dict, and the pair and head it gives."""
    state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    if module.gate is not None:
        state["gate"].fill_(CLOSED_GATE)
    twin = copy.deepcopy(module)
    twin.load_state_dict(state)
    return state, twin()


def train_step(backbone: Backbone, module: TrainablePromptPair, optimizer: torch.optim.Optimizer,
               batches: Batch | list[Batch] | None, pooling: str, clip: float, processes: Processes | None = None,
               total: int | None = None) -> float:
    """One optimiser step on one batch, given whole or in pieces (`MemoryBackOff`: each piece's gradient is
    added up before the step, so the pieces give the step the whole batch gives); returns the loss. The
    whole per-batch work of training. Data-parallel (`processes`): `batches` is this process's share (None:
    none) of a batch of `total` questions, and the gradients are added up across processes before the step."""
    optimizer.zero_grad(set_to_none=True)
    loss = torch.zeros(())
    pieces = [batches] if isinstance(batches, Batch) else batches or []
    total = total or sum(len(b.labels) for b in pieces)
    for batch in pieces:
        pair, head = module()
        logits = score(backbone, batch, pair, head, pooling)
        piece = F.cross_entropy(logits, batch.labels, reduction="sum") / total
        piece.backward()
        loss = loss + piece.detach()
    if processes is not None:
        processes.sum_gradients([p for p in module.parameters() if p.requires_grad], loss)
    torch.nn.utils.clip_grad_norm_(module.parameters(), clip)
    optimizer.step()
    return loss.item()


def evaluate_encoded(backbone: Backbone, encoded: list[Encoded], prompt: PromptSource, pooling: str, batch_size: int,
                     reporter: Reporter, label: str, backoff: MemoryBackOff | None = None) -> dict:
    """Metrics of one prompt source on encoded questions: accuracy, macro P/R/F1, chance, n. Under several
    processes each scores its share of the questions (see `logits`) and every process gets the metrics of all.
    `backoff`: kept across calls, so a batch size that did not fit is not tried again at every evaluation."""
    reporter.start(label, len(Processes().share(list(range(len(encoded))))))
    preds = predict(backbone, encoded, prompt, pooling, batch_size, reporter.advance, backoff or MemoryBackOff(reporter.message))
    reporter.stop()
    labels = [e.label for e in encoded]
    return dict(mcq_metrics(labels, preds), chance=chance([len(e.options) for e in encoded]), n=len(encoded))


def encode_cached(examples: list, backbone: Backbone, max_length: int, store: Store) -> list[Encoded]:
    """`encode`, done once per set of questions, tokenizer and length, then read back from the store."""
    tok = backbone.tokenizer
    blob = json.dumps([ENCODING_VERSION, backbone.name, type(tok).__name__, len(tok), max_length, fingerprint(examples)])
    key = hashlib.sha256(blob.encode()).hexdigest()[:32]
    cached = store.load_cached("tokens", key)
    if cached is not None:
        return unpack(cached)
    encoded = encode(examples, tok, max_length)
    store.save_cached("tokens", key, pack(encoded))
    return encoded


def run_key(task: str, backbone: Backbone, data: TaskData, config: TrainConfig) -> str:
    """Identifies a run for resuming: same task, backbone, data and settings."""
    blob = json.dumps([task, backbone.name, fingerprint(data.train.examples),
                       fingerprint(data.validation.examples), asdict(config)], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class _QuestionEmbeddings:
    """The training questions' [n, d] embeddings, computed once on first use (clustering, task key)."""

    def __init__(self, backbone: Backbone, examples: list):
        self.backbone, self.examples, self.value = backbone, examples, None

    def __call__(self) -> torch.Tensor:
        if self.value is None:
            self.value = query_embeddings(self.backbone, [e.question for e in self.examples])
        return self.value


def init_key(data: TaskData, backbone: Backbone, config: TrainConfig, llm: tuple[str, str] | None) -> str:
    """Identifies a data-driven initialisation: same training data, backbone, init settings and LLM
    (endpoint and model, None offline)."""
    fields = ("prefix_init", "suffix_init", "prefix_len", "suffix_len", "clusters", "seed")
    blob = json.dumps([backbone.name, fingerprint(data.train.examples), {f: getattr(config, f) for f in fields}, llm],
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def task_init(task: str, data: TaskData, backbone: Backbone, store: Store, config: TrainConfig,
              train_enc: list[Encoded], questions=None, reporter: Reporter | None = None) -> PromptInit:
    """The pair's starting vectors. A data-driven start (topic labels, Auto-CoT chain) is made once and
    kept in the store (`init-prompts` shows it); later runs with the same data and settings reuse it.
    The LLM for the chains: `config.llm_base_url` / `llm_model`, else BAAS_LLM_BASE_URL / BAAS_LLM_MODEL."""
    from baas.training.llm import LLMClient, LLMConfig

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
    store.save_init(task, key, {"prefix": init.prefix, "suffix": init.suffix}, init.info)
    return init


def train_task(
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
    module, optimizer = make_trainable(backbone, train_enc, config, init)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    steps_per_epoch = math.ceil(len(train_enc) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    warmup = max(1, int(config.warmup * total_steps))

    state = {"step": 0, "best_epoch": -1, "best_accuracy": -1.0, "history": [], "epoch_loss": 0.0, "start_accuracy": None}
    best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    checkpoint = store.load_checkpoint(task, key)
    if checkpoint is not None:
        module.load_state_dict(checkpoint["module"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        best_state = checkpoint["best_module"]
        state = json.loads(checkpoint["progress"])
        torch.set_rng_state(checkpoint["rng"])
        reporter.message(f"resuming '{task}' from step {state['step']} of {total_steps} ({store.checkpoint_path(task, key)})")
    config_record = dict(asdict(config), backbone=backbone.name, resumed_at=state["step"], processes=processes.world)
    run_id = store.start_run(task, "train", config_record) if processes.main else None

    def finish_run(status: str, metrics: dict | None = None) -> None:
        if processes.main:
            store.finish_run(run_id, status, metrics)

    def save_checkpoint() -> None:
        if not processes.main:
            return
        store.save_checkpoint(task, key, {
            "module": module.state_dict(), "optimizer": optimizer.state_dict(), "best_module": best_state,
            "progress": json.dumps(state), "rng": torch.get_rng_state(),
        })

    backoff, eval_backoff = MemoryBackOff(reporter.message), MemoryBackOff(reporter.message)  # training, evaluation
    if config.scoring != "joint" and state.get("start_accuracy") is None:
        # Epoch 0 is a candidate too: the untrained start with the pair hidden, which in dual scoring is the
        # encoder's zero-shot answer, so a task never ends below doing nothing on validation.
        best_state, start = closed_start(module)
        val = evaluate_encoded(backbone, val_enc, start, pooling, config.eval_batch_size, reporter, f"{task} start", eval_backoff)
        state["start_accuracy"] = state["best_accuracy"] = val["accuracy"]
        state["best_epoch"] = 0
        reporter.message(f"untrained start: validation accuracy {val['accuracy']:.3f}")
    try:
        # From the first epoch whose validation is not made: a checkpoint taken at an epoch's last step, before
        # its validation, resumes into that validation (not past it).
        for epoch in range(len(state["history"]), config.epochs):
            batches = batch_indices(train_enc, config.batch_size, shuffle=True, seed=config.seed * 1000 + epoch)
            done_in_epoch = state["step"] - epoch * steps_per_epoch
            reporter.start(f"{task} epoch {epoch + 1}/{config.epochs}", len(batches), completed=done_in_epoch)
            for idx in batches[done_in_epoch:]:
                share = [train_enc[i] for i in processes.share(idx)]
                for group, base in zip(optimizer.param_groups, base_lrs):
                    group["lr"] = base * lr_factor(state["step"], total_steps, warmup)
                loss = backoff.run(share, lambda pieces: train_step(
                    backbone, module, optimizer, [collate(p, backbone.pad_id) for p in pieces], pooling, config.clip,
                    processes, len(idx)))
                state["step"] += 1
                state["epoch_loss"] += loss
                reporter.advance(1, loss=loss)
                if stop_after_steps is not None and state["step"] >= stop_after_steps:
                    save_checkpoint()
                    reporter.stop()
                    finish_run("interrupted")
                    return {"task": task, "interrupted_at_step": state["step"]}
                # (an epoch's last step is saved after its validation: a checkpoint between the two would
                # resume past a validation never made, and pick the best epoch from fewer epochs)
                if state["step"] % config.checkpoint_every == 0 and state["step"] % steps_per_epoch != 0:
                    save_checkpoint()
            reporter.stop()
            val = evaluate_encoded(backbone, val_enc, module(), pooling, config.eval_batch_size, reporter, f"{task} validation",
                                   eval_backoff)
            state["history"].append({"epoch": epoch + 1, "train_loss": round(state["epoch_loss"] / len(batches), 4),
                                     "validation_accuracy": val["accuracy"], "validation_macro_f1": val["macro_f1"]})
            state["epoch_loss"] = 0.0
            reporter.message(f"epoch {epoch + 1}: validation accuracy {val['accuracy']:.3f}")
            if val["accuracy"] > state["best_accuracy"]:
                state["best_accuracy"], state["best_epoch"] = val["accuracy"], epoch + 1
                best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
            save_checkpoint()
    except BaseException as exc:
        finish_run("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed")
        raise

    module.load_state_dict(best_state)
    result_metrics = evaluate_encoded(backbone, eval_enc, module(), pooling, config.eval_batch_size, reporter,
                                      f"{task} {data.eval_split}", eval_backoff)
    task_key = questions().mean(0)
    meta = dict(
        backbone=backbone.name, hidden_size=backbone.hidden_size, is_decoder=backbone.is_decoder,
        prefix_len=config.prefix_len, suffix_len=config.suffix_len, depth=module.depth, prefix_init=config.prefix_init,
        suffix_init=config.suffix_init, reparam=config.reparam, init=init.info, pooling=pooling, max_length=max_length, config=asdict(config),
        data_fingerprint=fingerprint(data.train.examples), dataset=data.name, format=data.format, n_train=len(train_enc),
        best_epoch=state["best_epoch"], history=state["history"], run_key=key,
        trainable_parameters=sum(p.numel() for p in module.parameters() if p.requires_grad),
    )
    entry = module.to_entry(task, task_key, meta)
    metrics = {k: result_metrics[k] for k in ("accuracy", "macro_precision", "macro_recall", "macro_f1", "chance")}
    metrics.update(n_eval=len(eval_enc), eval_split=data.eval_split, max_eval=data.max_eval)  # what the accuracy is of
    if not processes.main:  # the main process saves; the others have trained the same pair
        processes.barrier()
        return dict(task=task, **metrics, n_train=len(train_enc), history=state["history"], rank=processes.rank,
                    version=store.find_version(task, key), reused=False, processes=processes.world)
    entry = store.save_entry(entry, data.name, metrics)
    # The router's summary of this task, made while its questions are at hand (a router never rereads them).
    entry_summary(entry, backbone, store, DEFAULT_QUERY, train_examples=data.train.examples)
    finish_run("done", metrics)
    store.drop_checkpoint(task, key)
    processes.barrier()
    return dict(
        task=task, **metrics, n_train=len(train_enc),
        trainable_parameters=meta["trainable_parameters"],
        best_epoch=state["best_epoch"], history=state["history"], seconds=round(time.time() - started, 2),
        bank_file=str(store.entry_path(task, entry.version)), version=entry.version, notes=data.notes,
        backbone=backbone.name, resumed=checkpoint is not None, config=asdict(config), pooling=pooling, reused=False,
        processes=processes.world,
    )


def _existing_result(task: str, version: int, data: TaskData, backbone: Backbone, store: Store) -> dict:
    """train_task's record of an entry already in the store, from what it was saved with."""
    info = store.describe(task, version)
    meta, metrics = info["meta"], info["metrics"]
    store.load_entry(task, version)  # its file is there and verifies
    return dict(
        task=task, **{k: metrics.get(k) for k in ("accuracy", "macro_precision", "macro_recall", "macro_f1", "chance",
                                                    "n_eval", "eval_split", "max_eval")},
        n_train=meta.get("n_train"), trainable_parameters=meta.get("trainable_parameters"),
        best_epoch=meta.get("best_epoch"), history=meta.get("history"), seconds=0.0, bank_file=info["path"],
        version=version, notes=data.notes, backbone=backbone.name, resumed=False, config=meta.get("config"),
        pooling=meta.get("pooling"), reused=True,
    )


def evaluate_entry(task: str, data: TaskData, backbone: Backbone, store: Store, reporter: Reporter | None = None,
                   batch_size: int = 32, version: int | None = None) -> dict:
    """Evaluate a bank entry of `task` (the latest, or `version`) on its evaluation split, as single-task inference."""
    reporter = reporter or Reporter()
    started = time.time()
    entry = store.load_entry(task, version, backbone=backbone.name, hidden_size=backbone.hidden_size)
    encoded = encode_cached(data.eval.examples, backbone, entry.meta["max_length"], store)
    metrics = evaluate_encoded(backbone, encoded, entry.prompt(), entry.meta["pooling"], batch_size, reporter,
                               f"{task} {data.eval_split}")
    metrics.pop("n")
    run_id = store.start_run(task, "eval", {"backbone": backbone.name, "version": entry.version})
    store.finish_run(run_id, "done", metrics)
    return dict(task=task, **metrics, n_train=entry.meta.get("n_train"), n_eval=len(encoded), eval_split=data.eval_split, seconds=round(time.time() - started, 2),
                bank_file=str(store.entry_path(task, entry.version)), version=entry.version, notes=data.notes,
                backbone=backbone.name)

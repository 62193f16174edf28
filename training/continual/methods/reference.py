"""The two reference rows of `baas eval-forgetting` (issue 24 §2), scored as every other method is: on the same
evaluation questions and token rows, through `loop.evaluate`, with the answer the option nearest the question.

    zero_shot  the cosine of the pooled question (context and question as one text) and each option on the frozen
               backbone, nothing trained: a `dual` head-only pair at its untrained start, which is exactly that
               cosine. It learns nothing, so its cells are the same after every task (no forgetting by construction).
    st_ft      what a practitioner would pick instead: the sentence encoder fine-tuned with the sentence-transformers
               library's own trainer (`SentenceTransformerTrainer`) and `MultipleNegativesRankingLoss`, each training
               question an (anchor = context and question, positive = the right option, negatives = the wrong
               options as hard negatives) tuple, one model trained on the tasks in turn; it answers by cosine.

st_ft uses the library as its users do: the model is the backbone's own sentence-transformers folder (modules.json:
the offline MiniLM's Transformer, mean Pooling and Normalize) or, for a plain model folder, a Transformer with mean
Pooling; the trainer runs `--epochs` epochs at the protocol's batch size, with a 10% warmup (the config's) and
linear decay, evaluates after every epoch with an evaluator that is `loop.evaluate` on the task's validation split,
and keeps the best epoch (`load_best_model_at_end`), as the other methods keep theirs. Its learning rate is chosen on
the first task's validation split from (1e-5, 3e-5, 1e-4), as full_ft's is. Questions with different option counts
go in one dataset per count (the trainer's multi-dataset batches), since a dataset's rows share their columns.
The default batch sampler keeps every method's batches and steps the same (NO_DUPLICATES would break MCQ batches
whose options repeat across questions, yes/no, into single questions). It runs on the CPU, as every other method
does, and in one process. Its state after each task (every weight) is kept in the store as the other sequential
methods' are, so a stopped run resumes.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch

from baas.prompts_bank.errors import BaasError
from baas.prompts_bank.pair import HEAD_FIELDS, ScoringHead
from baas.training.backbone import DEFAULT_BACKBONE, MPNET, offline_minilm_path, offline_mpnet_path
from baas.training.batching import Batch
from baas.training.continual.method import Method, learner_metrics
from baas.training.continual.methods.full_ft import FULL_GRID
from baas.training.continual.methods.sequential import Sequential
from baas.training.init import PromptInit
from baas.training.loop import Learner, PairLearner, evaluate
from baas.training.scoring import head_logits
from baas.training.trainer import make_trainable


# ---- zero_shot -------------------------------------------------------------------------------------------
class ZeroShot(Method):
    """The frozen backbone's cosine answer: a dual head-only learner at its untrained start, never trained."""

    key = "zero_shot"

    def __init__(self, ctx, order: list[str], run: str):
        super().__init__(ctx, order, run)
        self.learner: PairLearner | None = None
        self.cells: dict[int, dict] = {}  # task index -> its cell (the same after every task)

    def config(self):
        return replace(self.ctx.config, scoring="dual", prefix_len=0, suffix_len=0, depth=1, gate=None, reparam="none",
                       prefix_init="random", suffix_init="random")

    def new_learner(self) -> PairLearner:
        torch.manual_seed(self.ctx.config.seed)
        d = self.ctx.backbone.hidden_size
        empty = torch.zeros(0, d)
        module, _ = make_trainable(self.ctx.backbone, [], self.config(), init=PromptInit(empty, empty, {}))
        return PairLearner(self.ctx.backbone, module, self.ctx.pooling, self.ctx.config.precision)

    def learn(self, k: int) -> None:
        self.reused = False  # nothing to learn, nothing to keep
        self.learner = self.learner or self.new_learner()

    def evaluate(self, k: int, rows: list[int]) -> dict[str, dict[int, dict]]:
        for i in rows:
            if i not in self.cells:
                self.cells[i] = learner_metrics(self.ctx, self.learner, self.ctx.encoded(self.order[i], "eval"),
                                                f"zero-shot {self.order[i]}")
        return {self.key: {i: self.cells[i] for i in rows}}

    def parameters(self) -> dict[str, int]:
        return {"trainable": 0, "stored_per_task": 0, "stored_total": 0}


# ---- st_ft -----------------------------------------------------------------------------------------------


ST_FT_LR = 3e-5  # the rate when no grid is given to choose from (the middle of FULL_GRID, sentence-transformers' usual)


def _sentence_transformers():
    try:
        import sentence_transformers
    except ImportError:
        raise BaasError("st_ft needs the sentence-transformers library: pip install 'baas[baselines]'") from None
    return sentence_transformers


@contextmanager
def _quiet():
    """The trainer's and transformers' chatter (deprecations, 'no label_names', model-card notes) kept off the run's output."""
    loggers = [logging.getLogger(n) for n in ("sentence_transformers", "transformers", "accelerate")]
    levels = [lg.level for lg in loggers]
    bars = os.environ.get("TQDM_DISABLE")
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    os.environ["TQDM_DISABLE"] = "1"  # the library's own tqdm bars (model-card examples, checkpoint shards)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
        if bars is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = bars


def sentence_model(backbone, max_length: int):
    """A SentenceTransformer of the backbone's weights, from its local folder (no network): the folder's own
    sentence-transformers modules when it has them, else the model with mean pooling."""
    st = _sentence_transformers()
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    if backbone.name == DEFAULT_BACKBONE:
        path = str(offline_minilm_path())
    elif backbone.name == MPNET:
        path = str(offline_mpnet_path())
    else:
        path = backbone.name
    with _quiet():
        if (Path(path) / "modules.json").is_file():
            model = st.SentenceTransformer(path, device=str(backbone.device), local_files_only=True)
        else:
            word = Transformer(path)
            model = st.SentenceTransformer(modules=[word, Pooling(word.get_embedding_dimension(), "mean")],
                                           device=str(backbone.device))
    tokenizer = model.tokenizer
    if getattr(tokenizer, "pad_token", "") is None:  # decoders (GPT-2): pad with the end token, as load_backbone does
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    model.max_seq_length = max_length  # the protocol's rows are cut to this length too
    return model


# The similarity part of a `dual` head with P = I and scale 1: the plain cosine of question and option.
def _cosine_head(d: int) -> ScoringHead:
    return ScoringHead(None, None, torch.zeros(1), torch.zeros(1, d, 1), torch.zeros(1, d, 1))


class SentenceLearner(Learner):
    """A SentenceTransformer as a `Learner`: its option logits are the cosine of the question's and each option's
    sentence embeddings, computed from the batch's own token rows (the ones every method is scored on). Trained by
    the sentence-transformers trainer only; `optimizer` is never used."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.module = sentence_model(ctx.backbone, ctx.max_length)
        self.head = _cosine_head(self.module.get_embedding_dimension())

    def logits(self, batch: Batch) -> torch.Tensor:
        self.module.eval()
        device = self.module.device  # (the sentence-transformers trainer may have moved it)
        batch = batch.to(device)
        if self.head.scale.device != device:
            self.head = ScoringHead(*(None if t is None else t.to(device) for t in (getattr(self.head, f) for f in HEAD_FIELDS)))

        def encode(ids: torch.Tensor, mask: torch.Tensor, per_option: bool) -> torch.Tensor:
            out = self.module({"input_ids": ids, "attention_mask": mask})
            return out["sentence_embedding"].float()

        return head_logits(batch, self.head, encode)

    def optimizer(self, config, lr=None):
        raise BaasError("st_ft trains with the sentence-transformers trainer, not baas's loop")


def training_sets(examples) -> dict:
    """The training questions as (anchor, positive, negative_1, ...) rows, one dataset per option count."""
    from datasets import Dataset

    groups: dict[int, list] = {}
    for e in examples:
        if e.label is not None and len(e.options) > 1:
            groups.setdefault(len(e.options), []).append(e)
    sets = {}
    for k, group in sorted(groups.items()):
        columns = {"anchor": [f"{e.context} {e.question}".strip() for e in group],
                   "positive": [e.options[e.label] for e in group]}
        for j in range(1, k):
            columns[f"negative_{j}"] = [[o for n, o in enumerate(e.options) if n != e.label][j - 1] for e in group]
        sets[f"{k}_options"] = Dataset.from_dict(columns)
    if not sets:
        raise BaasError("st_ft: no labelled training question with two options or more")
    return sets


def _trainer_class():
    st = _sentence_transformers()

    class Trainer(st.SentenceTransformerTrainer):
        def add_model_card_callback(self, default_args_dict) -> None:
            """No model card is written (the library's documented way to drop its callback); it would also sample
            widget examples with the global `random`."""

    return Trainer


class STFineTuning(Sequential):
    """The sentence encoder fine-tuned with sentence-transformers' trainer and ranking loss, on the tasks in turn."""

    key = "st_ft"
    lr_grid = FULL_GRID

    def new_learner(self) -> Learner:
        torch.manual_seed(self.ctx.config.seed)
        return SentenceLearner(self.ctx)

    def choose_lr(self):
        """As Sequential's: each rate of `lr_grid` tried on the first task from the same start and seed, the best
        on its validation split kept with the learner it trained (the state after task 1)."""
        if len(self.lr_grid) < 2:
            return (self.lr_grid[0] if self.lr_grid else ST_FT_LR), None
        scores, tried = {}, {}
        for lr in self.lr_grid:
            tried[lr] = self.new_learner()
            scores[lr] = self.fit(tried[lr], 0, lr)
        self.lr_scores = scores
        best = max(scores, key=scores.get)
        return best, tried[best]

    def train(self, k: int) -> None:
        self.validation[k] = self.fit(self.learner, k, self.lr or ST_FT_LR)

    def fit(self, learner: SentenceLearner, k: int, lr: float) -> float:
        """Task k trained into `learner.module` by `SentenceTransformerTrainer`; the best epoch on validation is
        kept. Returns its validation accuracy."""
        st = _sentence_transformers()
        from sentence_transformers.base.evaluation import BaseEvaluator
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
        from transformers.trainer_callback import PrinterCallback

        ctx, task = self.ctx, self.order[k]
        if ctx.processes.world > 1:
            raise BaasError("st_ft runs in one process (the sentence-transformers trainer would start its own "
                            "distributed training under this launch); run it without the launch")
        config, validation = ctx.config, ctx.encoded(task, "validation")
        label = f"st_ft: {task} at lr {lr:g}"

        class ValidationAccuracy(BaseEvaluator):  # loop.evaluate on the task's validation rows
            def __init__(self):
                super().__init__()
                self.primary_metric = "accuracy"

            def __call__(self, model, output_path=None, epoch=-1, steps=-1):
                m = evaluate(lambda batch, idx: learner.logits(batch.to(learner.device)), validation, ctx.backbone.pad_id,
                             config.eval_batch_size, ctx.reporter, f"{label}: validation", device=learner.device)
                ctx.reporter.message(f"{label}: epoch {epoch:g}: validation accuracy {m['accuracy']:.3f}")
                return {"accuracy": m["accuracy"]}

        _Trainer = _trainer_class()
        seed = config.seed * 1000 + k  # as Sequential.train seeds task k
        with tempfile.TemporaryDirectory(prefix="st_ft-") as out, _quiet():
            args = st.SentenceTransformerTrainingArguments(
                output_dir=out, num_train_epochs=config.epochs, per_device_train_batch_size=config.batch_size,
                learning_rate=lr, warmup_ratio=config.warmup, max_grad_norm=config.clip, seed=seed, data_seed=seed,
                eval_strategy="epoch", save_strategy="epoch", save_total_limit=1, save_only_model=True,
                load_best_model_at_end=True, metric_for_best_model="accuracy", greater_is_better=True,
                report_to="none", disable_tqdm=True, logging_strategy="no", dataloader_num_workers=0,
                use_cpu=True)  # where every other method runs (baas trains and evaluates on the CPU)
            model = learner.module
            trainer = _Trainer(
                model=model, args=args, train_dataset=training_sets(ctx.data(task).train.examples),
                loss=MultipleNegativesRankingLoss(model), evaluator=ValidationAccuracy())
            trainer.remove_callback(PrinterCallback)  # its log lines: baas's reporter says what matters
            ctx.reporter.message(f"{label}: training with sentence-transformers' trainer")
            trainer.train()
            best = trainer.state.best_metric
        model.eval()
        return float(best)

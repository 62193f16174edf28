"""Fused inference over the prompt bank: answering a question without its task id. Query vectors, the
entries' query summaries, fitting a router (`baas.router`, the Attention Router Module), and evaluating
fused inference against the oracle (the true task's entry).

    question --query_vectors (cached)--> q [d] --Router (rule + strategy)--> weights over entries [E]
      prompt space:  PromptBank.fuse(weights) -> one pair and head -> one forward pass
      output space:  each weighted entry's own answer distribution, mixed -> one pass per entry used

A router is fitted from the entries' query summaries alone (`baas.router.summary`): a summary is made
from a task's own training questions, once, when it is first needed, and kept in the store beside the
entry. Adding a task never reads an earlier task's text.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import torch

from baas.prompts_bank.bank import PromptBank
from baas.prompts_bank.errors import BaasError
from baas.router.router import Router
from baas.router.strategies import DEFAULT_STRATEGIES, DEFAULT_STRATEGY, STRATEGIES  # noqa: F401 - the defaults, for cli and api
from baas.router.summary import QuerySummary
from baas.store import Store
from baas.training.answers import entry_answers
from baas.training.backbone import Backbone
from baas.training.batching import Encoded
from baas.training.cache import encode_cached, query_key
from baas.training.data import MCQExample, TaskData, fingerprint, load_task_data
from baas.training.metrics import mcq_metrics
from baas.training.scoring import logits, query_embeddings

# What a query vector is made of: (text, passage or None). The passage is cut first when too long.
QUERY_KINDS = {
    "question": lambda e: (e.question, None),
    "context": lambda e: (e.question, e.context),
    "options": lambda e: (e.question + " " + " ".join(e.options), e.context),
}
DEFAULT_RULE = "lda"
QUERY_MAX_LENGTH = 128
SPACES = ("prompt", "output")


@dataclass(frozen=True)
class Query:
    """What a routing query is: which text (`QUERY_KINDS`) and which layers' mean states, concatenated
    (0: the embeddings). Written `kind:layers`, e.g. `options:2`."""

    kind: str = "options"  # chosen on validation: benchmarks/results/routing_queries.md
    layers: tuple[int, ...] = (2,)

    def __post_init__(self):
        if self.kind not in QUERY_KINDS:
            raise BaasError(f"unknown query kind '{self.kind}'; expected one of {', '.join(QUERY_KINDS)}")
        if not self.layers or min(self.layers) < 0:
            raise BaasError(f"query layers must be 0 (the embeddings) or above, got {self.layers}")

    def __str__(self) -> str:
        return f"{self.kind}:{','.join(map(str, self.layers))}"

    @classmethod
    def parse(cls, text: str) -> "Query":
        kind, _, layers = text.partition(":")
        try:
            return cls(kind, tuple(int(x) for x in layers.split(",")) if layers else cls.layers)
        except ValueError:
            raise BaasError(f"bad query '{text}': expected KIND or KIND:LAYERS, e.g. context:2 or options:2,4") from None

    @property
    def slug(self) -> str:
        return f"{self.kind}-L{'_'.join(map(str, self.layers))}"


DEFAULT_QUERY = Query()


def query_vectors(examples: list[MCQExample], backbone: Backbone, query: Query, store: Store | None = None,
                  computed: list[int] | None = None) -> torch.Tensor:
    """[n, len(layers) * d] routing queries of `examples`, computed once per backbone, query and data, then
    read from the store. `computed`, when given, collects how many rows were computed now (not read back)."""
    if max(query.layers) > backbone.num_layers:
        raise BaasError(f"query layer {max(query.layers)} is deeper than backbone '{backbone.name}' ({backbone.num_layers} layers)")
    key = query_key(backbone, query, QUERY_MAX_LENGTH, examples)
    cached = store.load_cached("queries", key) if store is not None else None
    if cached is not None and cached["q"].shape[0] == len(examples):
        return cached["q"]
    firsts, seconds = zip(*(QUERY_KINDS[query.kind](e) for e in examples)) if examples else ((), ())
    paired = any(s is not None for s in seconds)
    q = query_embeddings(backbone, list(firsts), [s or "" for s in seconds] if paired else None,
                         max_length=QUERY_MAX_LENGTH, layers=query.layers)
    if computed is not None:
        computed.append(len(examples))
    if store is not None:
        store.save_cached("queries", key, {"q": q.contiguous()})
    return q


def entry_summary(entry, backbone: Backbone, store: Store, query: Query, data_dir=None,
                  train_examples: list[MCQExample] | None = None) -> QuerySummary:
    """The query summary of a bank entry: read from the store, else made from the entry's own training
    questions (given, or reloaded from `data_dir` and checked against the entry's data fingerprint)."""
    name = f"{entry.task}@v{entry.version}-{query.slug}"
    stored = store.load_artifact("summary", name)
    if stored is not None:
        return QuerySummary.from_tensors(stored[0])
    if train_examples is None:
        meta = entry.meta
        data = load_task_data(meta["dataset"], data_dir, max_train=meta["n_train"], max_eval=1, format=meta.get("format"))
        train_examples = data.train.examples
        if fingerprint(train_examples) != meta.get("data_fingerprint"):
            raise BaasError(f"entry '{entry.task}' v{entry.version} has no '{query}' query summary yet, and the training "
                            f"data of '{meta['dataset']}' found now is not the data it was trained on; pass the --data-dir "
                            "it was trained from, or retrain it")
    summary = QuerySummary.from_queries(query_vectors(train_examples, backbone, query, store))
    store.save_artifact("summary", name, summary.tensors(), {"task": entry.task, "version": str(entry.version),
                                                               "query": str(query), "backbone": backbone.name})
    return summary


def load_bank(store: Store, backbone: Backbone, tasks: list[str] | None = None) -> PromptBank:
    """The latest entry of each task (all tasks, or those named: `NAME` or `NAME@vN`), checked against the backbone."""
    from baas.store import parse_entry_ref

    listed = [r["task"] for r in store.list_entries()]
    refs = [parse_entry_ref(t) for t in tasks] if tasks else [(t, None) for t in listed]
    missing = [t for t, _ in refs if t not in listed]
    if missing:
        raise BaasError(f"no bank entry for {', '.join(repr(t) for t in missing)} in store {store.root}; "
                        f"the bank holds: {', '.join(listed) or 'nothing yet'}")
    if not refs:
        raise BaasError(f"the prompt bank at {store.root} is empty: train a task first (`baas train-task NAME`)")
    return PromptBank([store.load_entry(t, v, backbone=backbone.name, hidden_size=backbone.hidden_size).to(backbone.device)
                       for t, v in refs])


def fit_router(bank: PromptBank, backbone: Backbone, store: Store, rule: str = DEFAULT_RULE, strategy: str = DEFAULT_STRATEGY,
               query: Query = DEFAULT_QUERY, data_dir=None, temperature: float = 1.0) -> Router:
    """A router over the bank's entries, from their query summaries; it records each entry's version and checksum,
    so that a bank that changes after it was fitted is noticed (`router_problems`)."""
    summaries = [entry_summary(e, backbone, store, query, data_dir) for e in bank.entries]
    checksums = [store.describe(e.task, e.version)["sha256"] for e in bank.entries]
    return Router.fit(bank.tasks, [e.version for e in bank.entries], summaries, rule, strategy, str(query), temperature,
                      checksums)


class StaleRouterWarning(UserWarning):
    """A saved router does not know an entry the bank holds now (added, or a newer version, after it was fitted)."""


def router_problems(router: Router, store: Store, name: str) -> list[str]:
    """Check a router against the bank it will route to. An entry it was fitted on that is gone (or whose file
    changed) makes it unusable: a BaasError, in one line naming the router and the entries. An entry it does not
    know (a new one, or a newer version of one of its tasks it was not pinned to) only means it never routes
    there: one line each, returned for the caller to show."""
    from baas.store import parse_entry_ref

    by_task = {}
    for r in store.list_entries():
        by_task[r["task"]] = r
    gone, changed = [], []
    for i, (task, version) in enumerate(zip(router.tasks, router.versions)):
        try:
            row = store.describe(task, version)
        except BaasError:
            gone.append(f"{task}@v{version}")
            continue
        if router.checksums is not None and row["sha256"] != router.checksums[i]:
            changed.append(f"{task}@v{version}")
    if gone or changed:
        which = lambda xs: "which is" if len(xs) == 1 else "which are"  # noqa: E731
        what = "; and on ".join(x for x in (f"{', '.join(gone)}, {which(gone)} no longer in the bank" if gone else "",
                                            f"{', '.join(changed)}, {which(changed)} another file now (changed since)"
                                            if changed else "") if x)
        raise BaasError(f"router '{name}' is stale: it was fitted on {what}; rerun `baas fuse` (in Python: Bank.fuse) "
                        f"to fit it on the bank as it is")
    pinned = {t for t, v in map(parse_entry_ref, router.selection or []) if v is not None}
    unknown = []
    for task, row in by_task.items():
        if task not in router.tasks:
            if router.selection is None:
                unknown.append(f"{task}@v{row['version']} (added after it was fitted)")
        elif task not in pinned and row["version"] > router.versions[router.tasks.index(task)]:
            unknown.append(f"{task}@v{row['version']} (newer than the v{router.versions[router.tasks.index(task)]} it uses)")
    if not unknown:
        return []
    return [f"router '{name}' does not know entr{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}, so it never "
            "routes there; rerun `baas fuse` (in Python: Bank.fuse) to include "
            f"{'it' if len(unknown) == 1 else 'them'}"]


def routers_using(store: Store, task: str, version: int | None = None) -> list[str]:
    """The saved routers fitted on `task` (any version, or `version`), newest first."""
    names = []
    for saved in store.artifacts("router"):
        meta = saved["meta"]
        try:
            used = zip(json.loads(meta.get("tasks", "[]")), json.loads(meta.get("versions", "[]")))
        except ValueError:
            continue
        if any(t == task and (version is None or v == version) for t, v in used):
            names.append(saved["name"])
    return names


@dataclass
class EvalSet:
    """Every bank task's evaluation questions, concatenated, with each question's true entry."""

    encoded: list[Encoded]
    true: torch.Tensor  # [N] index of the question's own entry in the bank
    queries: torch.Tensor  # [N, d]
    splits: list[str]  # per task: the split evaluated
    query_seconds: float  # time spent making (or reading back) the query vectors
    queries_computed: int  # how many of them were computed now rather than read from the store's cache
    parts: list[tuple[int, int, str]]  # per task: its rows [start, end) and its questions' fingerprint


def eval_set(bank: PromptBank, datasets: list[TaskData], backbone: Backbone, store: Store, query: Query,
             split: str = "eval") -> EvalSet:
    encoded, true, queries, splits, parts, computed = [], [], [], [], [], []
    started = time.perf_counter()
    for i, data in enumerate(datasets):
        part = data.eval if split == "eval" else data.validation
        parts.append((len(encoded), len(encoded) + len(part.examples), fingerprint(part.examples)))
        encoded += encode_cached(part.examples, backbone, bank.meta["max_length"], store)
        true += [i] * len(part.examples)
        queries.append(query_vectors(part.examples, backbone, query, store, computed))
        splits.append(part.split)
    return EvalSet(encoded, torch.tensor(true), torch.cat(queries), splits, time.perf_counter() - started, sum(computed), parts)


def _entry_logits(bank: PromptBank, backbone: Backbone, evals: EvalSet, needed: torch.Tensor, batch_size: int,
                  store: Store | None, reporter) -> tuple[torch.Tensor, float]:
    """[N, E, K] each entry's logits on the questions it is needed for (-inf elsewhere), and the seconds
    one entry's pass takes per question. Each (entry, task) block is read from and kept in the store's cache
    (`answers.entry_answers`), so a later run (another rule, strategy or bank) only runs what is new."""
    n, e = needed.shape
    k_max = max(len(x.options) for x in evals.encoded)
    out = torch.full((n, e, k_max), float("-inf"))
    seconds, computed = 0.0, 0
    if reporter:
        reporter.start(f"entry passes over {n} questions", int(needed.sum()))  # counts passes: a question may need several
    for j, entry in enumerate(bank.entries):
        for start, end, part in evals.parts:
            rows = needed[start:end, j]
            if not rows.any():
                continue
            block = entry_answers(entry, backbone, evals.encoded[start:end], part, bank.meta["max_length"], store, rows,
                                  batch_size)
            seconds, computed = seconds + float(block["seconds"][0]), computed + int(block["seconds"][1])
            width = block["logits"].shape[1]  # a task's questions may have fewer options than the set's widest
            out[start:end, j, :width] = torch.where(rows[:, None], block["logits"], float("-inf"))
            if reporter:
                reporter.advance(int(rows.sum()))
    if reporter:
        reporter.stop()
    return out, seconds / max(computed, 1)


def _mixture(entry_logits: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Output space: sum_e w_e softmax(logits_e) over the entries with weight (others were never computed)."""
    probs = torch.nan_to_num(entry_logits.softmax(-1), nan=0.0)  # rows of -inf (not computed) -> 0
    return torch.einsum("ne,nek->nk", weights, probs)


def evaluate_fused(bank: PromptBank, router: Router, backbone: Backbone, evals: EvalSet, strategies: list[str],
                   spaces: list[str], batch_size: int = 32, reporter=None, store: Store | None = None,
                   oracle: bool = True, per_question: bool = False) -> list[dict]:
    """Each strategy in each fusion space on the same questions and queries: task-agnostic accuracy and
    macro F1 per task, the oracle's accuracy beside it, routing accuracy, the routing confusion matrix.

    Entries are run once per question that any strategy (or the oracle) gives weight to, and with a store
    their answers are kept for later runs; a strategy that puts all weight on one entry is the same
    computation in both spaces and is reported once. `oracle=False` skips the oracle (for questions of a
    task that has no entry in the bank yet: their `oracle_accuracy` and `routing_accuracy` mean nothing).
    `per_question` adds each task's `correct`: 1 or 0 per question, in the order of its evaluation questions."""
    pooling = bank.meta["pooling"]
    n, e = len(evals.encoded), len(bank)
    log_probs = router.log_probs(evals.queries)
    names = dict.fromkeys(["oracle", *strategies] if oracle else [s for s in strategies if s != "oracle"])
    weights = {s: router.with_strategy(s).strategy.weights(log_probs, evals.true) for s in names}
    needed = torch.zeros(n, e, dtype=torch.bool)
    for s, w in weights.items():
        if s == "oracle" or "output" in spaces or bool(((w > 0).sum(-1) == 1).all()):
            needed |= w > 0
    entry_logits, per_pass = _entry_logits(bank, backbone, evals, needed, batch_size, store, reporter)
    oracle_pred = _mixture(entry_logits, weights["oracle"]).argmax(-1) if oracle else None

    results = []
    for s, w in weights.items():
        single = bool(((w > 0).sum(-1) == 1).all())
        for space in (["output"] if single else spaces):
            if space == "output":
                pred = _mixture(entry_logits, w).argmax(-1)
                seconds = per_pass * float((w > 0).sum(-1).float().mean())
            else:
                started = time.perf_counter()
                if reporter:
                    reporter.start(f"{s} (prompt space)", n)
                pred = logits(backbone, evals.encoded, lambda idx, w=w: bank.fuse(w[idx]), pooling, batch_size,
                              on_batch=reporter.advance if reporter else None).argmax(-1)
                if reporter:
                    reporter.stop()
                seconds = (time.perf_counter() - started) / n
            results.append(_report(s, "both" if single else space, w, pred, oracle_pred, evals, bank, router, seconds,
                                   per_question))
    return results


def _share(hits: torch.Tensor) -> float:
    """The share of true values, counted in integers: 1/6 prints as 0.16666666666666666, not float32's 0.1666666716."""
    return int(hits.sum()) / hits.numel()


def _report(strategy, space, w, pred, oracle_pred, evals: EvalSet, bank: PromptBank, router: Router, seconds,
            per_question: bool = False) -> dict:
    labels = torch.tensor([x.label for x in evals.encoded])
    routed = w.argmax(-1)
    per_task = []
    for j, task in enumerate(bank.tasks):
        rows = evals.true == j
        if not rows.any():
            continue
        m = mcq_metrics(labels[rows].tolist(), pred[rows].tolist())
        per_task.append(dict(task=task, n=int(rows.sum()), eval_split=evals.splits[j], accuracy=m["accuracy"],
                             macro_f1=m["macro_f1"],
                             oracle_accuracy=None if oracle_pred is None else _share(oracle_pred[rows] == labels[rows]),
                             routing_accuracy=_share(routed[rows] == j)))
        if per_question:
            per_task[-1]["correct"] = (pred[rows] == labels[rows]).int().tolist()
    confusion = torch.zeros(len(bank), len(bank), dtype=torch.long)
    confusion.index_put_((evals.true, routed), torch.ones_like(routed), accumulate=True)
    mean = lambda k: None if per_task[0][k] is None else sum(t[k] for t in per_task) / len(per_task)  # noqa: E731 - tasks weigh alike
    return dict(
        strategy=strategy, space=space, rule=router.rule.name, query=router.query, temperature=router.temperature,
        per_task=per_task, mean_accuracy=mean("accuracy"), mean_macro_f1=mean("macro_f1"),
        mean_oracle_accuracy=mean("oracle_accuracy"), routing_accuracy=_share(routed == evals.true),
        entries_per_question=int((w > 0).sum()) / len(w), seconds_per_question=seconds,
        # the query pass's cost, when this run made the queries (None when they all came from the cache)
        query_seconds_per_question=evals.query_seconds / evals.queries_computed if evals.queries_computed else None,
        confusion={"tasks": bank.tasks, "counts": confusion.tolist()},
    )


def route_questions(router: Router, bank: PromptBank, backbone: Backbone, examples: list[MCQExample],
                    store: Store | None = None, batch_size: int = 32) -> list[dict]:
    """Answer questions with no task id: each one's answer, its option probabilities, and its weights
    over the bank's entries, mixed where the router says (`router.space`): prompt (one fused pair and
    head per question) or output (each weighted entry's answer distribution, mixed)."""
    from baas.training.batching import encode

    encoded = encode(examples, backbone.tokenizer, bank.meta["max_length"])
    weights, log_probs = router.route(query_vectors(examples, backbone, Query.parse(router.query), store))
    if router.space == "output":
        out = torch.zeros(len(examples), max(len(x.options) for x in examples))
        for j in range(len(bank)):
            rows = (weights[:, j] > 0).nonzero().flatten().tolist()
            if rows:
                scores = logits(backbone, [encoded[i] for i in rows], bank.single(j), bank.meta["pooling"], batch_size)
                out[rows, : scores.shape[1]] += weights[rows, j, None] * torch.nan_to_num(scores.softmax(-1), nan=0.0)
        out = out.clamp(min=1e-30).log()  # (log-probabilities: the softmax below gives the mixture back)
    else:
        out = logits(backbone, encoded, lambda idx: bank.fuse(weights[idx]), bank.meta["pooling"], batch_size)
    rows = []
    for x, w, lp, lg in zip(examples, weights, log_probs, out):
        probs = lg[: len(x.options)].softmax(-1)
        used = [(bank.tasks[j], float(w[j]), float(lp[j].exp())) for j in w.argsort(descending=True).tolist() if w[j] > 0]
        rows.append(dict(id=x.id, question=x.question, answer=int(probs.argmax()), answer_text=x.options[int(probs.argmax())],
                         probabilities=[round(float(p), 4) for p in probs],
                         entries=[{"task": t, "weight": round(wt, 4), "probability": round(p, 4)} for t, wt, p in used]))
    return rows


__all__ = ["DEFAULT_QUERY", "QUERY_KINDS", "Query", "SPACES", "STRATEGIES", "EvalSet", "StaleRouterWarning", "entry_summary", "eval_set",
           "evaluate_fused", "fit_router", "load_bank", "query_vectors", "route_questions", "router_problems", "routers_using"]

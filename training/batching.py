"""Tokenise MCQ examples once, then build dynamically padded, length-bucketed batches.

Only real options become rows: a batch of B questions with K_i options each has sum(K_i) rows,
and `option_mask [B, K_max]` says where their scores go. Nothing is padded into a fake answer.
"""

from __future__ import annotations

import gc
import random
import sys
from dataclasses import dataclass, field, fields
from typing import Any, Callable

import torch

from baas.prompts_bank.errors import BaasError, DataError

from baas.training.data import MCQExample


ENCODING_VERSION = 2  # bump when `encode`'s output changes: it keys the store's token cache


@dataclass
class Encoded:
    """One question's token ids, ready to pad: the joint `[context question] [option]` rows (one per option)
    for `joint` scoring, and the question alone and each option alone for `dual` scoring."""

    options: list[list[int]]
    label: int | None  # None: an unlabelled question (prediction only)
    question: list[int] = field(default_factory=list)  # `[context question]` as one text
    answers: list[list[int]] = field(default_factory=list)  # each option as one text

    @property
    def cost(self) -> int:
        return len(self.options) * max(len(o) for o in self.options)


@dataclass
class Batch:
    input_ids: torch.Tensor  # [N, T], N = number of real options in the batch
    attention_mask: torch.Tensor  # [N, T]
    option_mask: torch.Tensor  # [B, K_max] bool: which (question, option) slots are real
    labels: torch.Tensor  # [B]
    query_ids: torch.Tensor | None = None  # [B, Tq]: each question alone (dual scoring)
    query_mask: torch.Tensor | None = None  # [B, Tq]
    answer_ids: torch.Tensor | None = None  # [N, Ta]: each option alone (dual scoring)
    answer_mask: torch.Tensor | None = None  # [N, Ta]

    @property
    def options_per_question(self) -> torch.Tensor:
        return self.option_mask.sum(dim=1)

    def to(self, device: torch.device, non_blocking: bool = True) -> "Batch":
        """This batch on `device` (itself when it is there already). To CUDA the tensors go through pinned
        memory, so the copies are asynchronous and overlap the work queued before them."""
        if self.input_ids.device == device:
            return self
        pin = device.type == "cuda" and non_blocking
        return Batch(*(None if t is None else (t.pin_memory() if pin else t).to(device, non_blocking=non_blocking)
                       for t in (getattr(self, f.name) for f in fields(self))))


def encode(examples: list[MCQExample], tokenizer, max_length: int) -> list[Encoded]:
    """`[context question] [option]` as a pair; the context is cut first, then the start of the question,
    never an option. Decoders without a separator token get `Answer:` before the option in the pair.
    Beside the pairs: `[context question]` alone (cut the same way) and each option alone, as single texts."""
    head, middle, tail = pair_template(tokenizer)
    n_special = len(head) + len(middle) + len(tail)
    single_head, single_tail = single_template(tokenizer)
    answer_prefix = "" if tokenizer.sep_token is not None else "Answer: "

    def ids(texts: list[str]) -> list[list[int]]:
        return tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"] if texts else []

    contexts = ids([e.context for e in examples])
    questions = ids([(" " if e.context else "") + e.question for e in examples])
    flat_options = ids([f"{answer_prefix}{o}" for e in examples for o in e.options])
    flat_answers = ids([o for e in examples for o in e.options]) if answer_prefix else flat_options
    single_room = max(1, max_length - len(single_head) - len(single_tail))
    encoded, cursor = [], 0
    for e, ctx, q in zip(examples, contexts, questions):
        opts = flat_options[cursor : cursor + len(e.options)]
        answers = [single_head + a[:single_room] + single_tail for a in flat_answers[cursor : cursor + len(e.options)]]
        cursor += len(e.options)
        room = max_length - n_special - max(len(o) for o in opts)
        if room < 1:
            longest = max(len(o) for o in opts)
            raise DataError(f"question '{e.id}': its longest option takes {longest} tokens, more than --max-length {max_length} "
                            f"leaves after {n_special} special tokens; raise --max-length to at least {longest + n_special + 1}")
        alone = q[-single_room:]
        alone = single_head + ctx[: single_room - len(alone)] + alone + single_tail
        q = q[-room:]
        first = ctx[: room - len(q)] + q
        encoded.append(Encoded([head + first + middle + o + tail for o in opts], e.label, alone, answers))
    return encoded


def pack(encoded: list[Encoded]) -> dict[str, torch.Tensor]:
    """Encoded questions as flat tensors (for the store's token cache): every row's ids end to end and each
    row's length (per question: its joint rows, then the question alone, then each option alone), each
    question's option count, each label."""
    rows = [r for e in encoded for r in (*e.options, e.question, *e.answers)]
    return {
        "ids": torch.tensor([t for r in rows for t in r], dtype=torch.int32),
        "row_lengths": torch.tensor([len(r) for r in rows], dtype=torch.int32),
        "option_counts": torch.tensor([len(e.options) for e in encoded], dtype=torch.int32),
        "labels": torch.tensor([-1 if e.label is None else e.label for e in encoded], dtype=torch.int32),
    }


def unpack(tensors: dict[str, torch.Tensor]) -> list[Encoded]:
    """The inverse of `pack`."""
    ids, lengths = tensors["ids"].tolist(), tensors["row_lengths"].tolist()
    starts = [0]
    for n in lengths:
        starts.append(starts[-1] + n)
    rows = [ids[a:b] for a, b in zip(starts, starts[1:])]
    encoded, cursor = [], 0
    for k, label in zip(tensors["option_counts"].tolist(), tensors["labels"].tolist()):
        encoded.append(Encoded(rows[cursor : cursor + k], None if label < 0 else label, rows[cursor + k],
                               rows[cursor + k + 1 : cursor + 2 * k + 1]))
        cursor += 2 * k + 1
    return encoded


def pair_template(tokenizer) -> tuple[list[int], list[int], list[int]]:
    """The special tokens a tokenizer puts around a text pair: (before, between, after).

    Read off by encoding a known pair, which works for every fast tokenizer (BERT's [CLS] a [SEP] b [SEP],
    RoBERTa's <s> a </s></s> b </s>, GPT-2's bare a b)."""
    a = tokenizer("a", add_special_tokens=False)["input_ids"]
    b = tokenizer("b", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", "b")["input_ids"]
    i = next(k for k in range(len(full)) if full[k : k + len(a)] == a)
    j = next(k for k in range(i + len(a), len(full)) if full[k : k + len(b)] == b)
    return full[:i], full[i + len(a) : j], full[j + len(b) :]


def pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids [N, T] and attention mask [N, T], T the longest row."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return ids, mask


def collate(items: list[Encoded], pad_id: int) -> Batch:
    """A batch of questions: their joint rows, each question alone and each option alone (when encoded)."""
    input_ids, attention_mask = pad([o for item in items for o in item.options], pad_id)
    query = answer = (None, None)
    if all(item.question for item in items):
        query, answer = pad([item.question for item in items], pad_id), pad([a for item in items for a in item.answers], pad_id)
    counts = torch.tensor([len(item.options) for item in items])
    option_mask = torch.arange(int(counts.max())) < counts.unsqueeze(1)
    labels = torch.tensor([-1 if item.label is None else item.label for item in items])  # -1: unlabelled
    return Batch(input_ids, attention_mask, option_mask, labels, *query, *answer)


def single_template(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens a tokenizer puts around one text: (before, after), e.g. BERT's [CLS] a [SEP]."""
    a = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    i = next(k for k in range(len(full)) if full[k : k + len(a)] == a)
    return full[:i], full[i + len(a) :]


def batch_indices(encoded: list[Encoded], batch_size: int, shuffle: bool, seed: int = 0) -> list[list[int]]:
    """Length buckets: questions of similar cost share a batch, so padding stays small.

    Training shuffles, cuts the order into pools of 50 batches, sorts each pool by cost and shuffles
    the batches, so each epoch sees a different, still well-packed order. Evaluation just sorts.
    """
    order = list(range(len(encoded)))
    if not shuffle:
        order.sort(key=lambda i: encoded[i].cost)
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng = random.Random(seed)
    rng.shuffle(order)
    pool = batch_size * 50
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: encoded[i].cost)
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def out_of_memory(exc: BaseException) -> bool:
    """An allocation failure: CUDA's OutOfMemoryError, or the CPU allocator's RuntimeError."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text.lower())


class MemoryBackOff:
    """Runs a batch's work in pieces when the batch does not fit in memory: the work is redone in pieces of
    half the size, then a quarter, ..., and later batches start at the size that fitted. `attempt(pieces)`
    does the whole work of a batch from a clean start: in training it zeroes the gradients and adds each
    piece's share of the loss, so the optimiser step is the one the whole batch gives. A message says when,
    and how far, it backed off."""

    def __init__(self, warn: Callable[[str], None] | None = None, what: str = "scoring"):
        """`what`: the work it runs (training, evaluation), named first in its messages."""
        self.size: int | None = None  # the most questions per piece; None: no limit met yet
        self.warn = warn or (lambda text: print(f"warning: {text}", file=sys.stderr, flush=True))
        self.what = what

    def run(self, items: list, attempt: Callable[[list[list]], Any]) -> Any:
        while True:
            size = max(1, min(self.size or len(items), len(items)))
            try:
                return attempt([items[i: i + size] for i in range(0, len(items), size)])
            except Exception as exc:  # only an allocation failure is handled; anything else goes up as it was
                if not out_of_memory(exc):
                    raise
                if size == 1:
                    raise BaasError("out of memory on a single question: lower --max-length (or --batch-size "
                                    "for other jobs on this machine), or use a smaller backbone") from None
            gc.collect()  # the failed attempt's tensors go (the exception's frames held them) ...
            if torch.cuda.is_available():
                torch.cuda.empty_cache()  # ... and their blocks go back to the GPU, so the halved batch has the room
            self.size = -(-size // 2)
            self.warn(f"{self.what}: {size} questions at once did not fit in memory: going on {self.size} at a time "
                      "(the result is the same, only slower)")

"""Auto-CoT reasoning chains for a task, merged by a Chain Aggregator into the suffix's global chain.

The training questions are clustered (K-means on L2-normalised question embeddings). Each cluster's
representative is, as in Auto-CoT, the question nearest its centroid that passes two filters: at
most 60 words, and a rationale of at most 5 steps. Its *local chain* comes from an LLM when one is
given (zero-shot "Let's think step by step.") and otherwise from the data: the example's explanation
(QASC, OpenBookQA, MedMCQA, SciQ facts) or a template from the question's key terms and the gold
answer. The Chain Aggregator (`aggregate_chains`) merges the K local chains into one general
procedure, the *global chain* the suffix is initialised from.

The LLM is any object with `source: str` and `chat(messages, max_tokens, temperature) -> str` that
raises a `BaasError` on failure (`baas.training.init.llm`). An LLM that failed once is not asked again
in the same run: its failures (no key, cap reached, endpoint down) do not clear within seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from statistics import mean

import numpy as np
import torch
import torch.nn.functional as F

from baas.prompts_bank.errors import BaasError
from baas.training.data import LETTERS, MCQExample
from baas.training.init.topics import keywords, question_terms

MAX_QUESTION_WORDS = 60  # Auto-CoT's demonstration filters
MAX_RATIONALE_STEPS = 5
MAX_CANDIDATES = 5  # rationales built per cluster before settling for the nearest question
DEDUP_JACCARD = 0.8  # steps whose content-word sets overlap this much are one step
MAX_ITEMS = 6  # items kept when "Header: items" steps of several chains merge
LOCAL_SYSTEM = ("You answer multiple-choice questions. Reason in short numbered steps, one per line, at most "
                f"{MAX_RATIONALE_STEPS} steps, and end with the line 'The answer is (X).'")
MERGE_SYSTEM = "You write short, general reasoning procedures for kinds of multiple-choice questions."
GENERIC_CHAIN = ("1. Read the question and find what it asks for.\n2. Compare each option with the question.\n"
                 "3. Choose the option that fits best.")

_MARKER = re.compile(r"^(?:[-*•]\s*|(?:step\s*)?\d{1,2}[.):](?=\s|$)\s*)", re.I)
_NUMBERED = re.compile(r"(?:^|\s)(?:step\s*)?\d{1,2}[.):]\s+", re.I)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")
_HEADED = re.compile(r"^([A-Za-z][A-Za-z ]{0,30}):\s+(.+?)\.?$")  # "Key terms: a, b."
_ANSWER = re.compile(r"\b(?:answer|correct option|correct choice)\s*(?:is\b|:)", re.I)


@dataclass
class Cluster:
    index: int  # 0 = the largest cluster
    size: int
    representative: MCQExample
    distance: float  # of the representative to its centroid (L2, normalised embeddings)
    local_chain: str
    source: str  # the LLM's source ("llm:<model>") or "offline"

    def to_json(self) -> dict:
        r = self.representative
        return {"index": self.index, "size": self.size, "distance": round(self.distance, 6),
                "representative": {"id": r.id, "question": r.question, "answer": r.options[r.label]},
                "local_chain": self.local_chain, "source": self.source}


@dataclass
class ChainResult:
    clusters: list[Cluster]
    global_chain: str
    source: str  # "llm:<model>" (every local chain and the merge), "offline" (none of them) or "mixed"
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"clusters": [c.to_json() for c in self.clusters], "global_chain": self.global_chain,
                "source": self.source, "warnings": list(self.warnings)}


def cluster_questions(embeddings: torch.Tensor, k: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """K-means (faiss, 20 iterations) of the L2-normalised embeddings [n, d], k clipped to n.

    Returns (cluster of each question [n], its L2 distance to that centroid [n], number of clusters).
    Clusters are renumbered 0.. by size, largest first, and empty ones dropped."""
    import faiss

    n, d = embeddings.shape
    if n == 0:
        raise ValueError("no embeddings to cluster")
    x = np.ascontiguousarray(F.normalize(embeddings.detach().cpu().float(), dim=1).numpy(), dtype=np.float32)
    k = max(1, min(k, n))
    kmeans = faiss.Kmeans(d, k, niter=20, seed=seed, min_points_per_centroid=1, verbose=False)
    kmeans.train(x)
    squared, ids = kmeans.index.search(x, 1)
    ids = ids[:, 0]
    sizes = np.bincount(ids, minlength=k)
    order = sorted((c for c in range(k) if sizes[c]), key=lambda c: (-sizes[c], c))
    renumber = np.full(k, -1, dtype=np.int64)
    renumber[order] = np.arange(len(order))
    return renumber[ids], np.sqrt(np.maximum(squared[:, 0], 0.0)), len(order)


def split_steps(text: str) -> list[str]:
    """A rationale's steps: its non-empty lines; a single line is split at inline numbering
    ("1. ... 2. ..."), else into sentences. List markers ("1.", "Step 2:", "-") are removed."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) == 1:
        numbered = [p.strip() for p in _NUMBERED.split(lines[0]) if p.strip()]
        lines = numbered if len(numbered) > 1 else [s.strip() for s in _SENTENCE.split(lines[0]) if s.strip()]
    return [step for step in (_MARKER.sub("", line).strip() for line in lines) if step]


def numbered(steps: list[str]) -> str:
    return "\n".join(f"{i}. {step}" for i, step in enumerate(steps, 1))


def _answer_step(example: MCQExample) -> str:
    return f"The answer is ({LETTERS[example.label]}) {example.options[example.label].strip().rstrip('.')}."


def offline_chain(example: MCQExample, terms: list[str]) -> str:
    """A chain from the data alone: the explanation's sentences when the example has one, else a
    template from the question's key `terms` ("Question topic: X.", "Key terms: a, b.", "Compare each
    option against these terms."); both end with the gold answer."""
    if example.explanation and example.explanation.strip():
        steps = split_steps(example.explanation)
    elif terms:
        steps = [f"Question topic: {terms[0]}."]
        steps += [f"Key terms: {', '.join(terms[1:5])}."] if len(terms) > 1 else []
        steps += ["Compare each option against these terms."]
    else:
        steps = ["Read what the question asks.", "Compare each option against the question."]
    return numbered(steps + [_answer_step(example)])


def llm_chain(example: MCQExample, llm) -> str:
    """Zero-shot Auto-CoT: the question with lettered options and "Let's think step by step."."""
    options = "\n".join(f"({LETTERS[i]}) {o}" for i, o in enumerate(example.options))
    context = f"Context: {example.context[:2000]}\n" if example.context else ""
    prompt = f"{context}Question: {example.question}\nOptions:\n{options}\nAnswer: Let's think step by step."
    text = llm.chat([{"role": "system", "content": LOCAL_SYSTEM}, {"role": "user", "content": prompt}],
                    max_tokens=400, temperature=0.0)
    steps = split_steps(text)
    if not steps:
        raise BaasError("the LLM returned an empty rationale")
    return numbered(steps)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _normalised(step: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", step.lower()))


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


@dataclass
class _StepGroup:
    """Near-identical steps of several chains, shown by the first one seen; or, for "Header: items"
    steps, all steps with that header, shown as the header with the items of the largest clusters."""

    text: str
    key: str
    words: set[str]
    headed: bool = False
    chains: set[int] = field(default_factory=set)
    positions: list[float] = field(default_factory=list)
    items: list[tuple[int, int, str]] = field(default_factory=list)  # (-cluster size, chain, item)

    def render(self) -> str:
        if not self.headed:
            return self.text
        kept = list(dict.fromkeys(item for *_, item in sorted(self.items, key=lambda t: t[:2])))[:MAX_ITEMS]
        return f"{self.text}: {', '.join(kept)}."


def _same_step(old: _StepGroup, new: _StepGroup) -> bool:
    if old.headed or new.headed:
        return old.headed == new.headed and old.key == new.key
    return old.key == new.key or _jaccard(old.words, new.words) >= DEDUP_JACCARD


def merge_offline(chains: list[str], cluster_sizes: list[int], max_steps: int = 6) -> str:
    """The deterministic Chain Aggregator.

    1. Split every chain into steps (`split_steps`) and drop the answer-specific ones ("the answer is ...").
       Each step keeps its relative position in its chain (0 = first, 1 = last).
    2. De-duplicate: a step joins an earlier group when their normalised texts are equal or their
       content-word sets have Jaccard >= 0.8. Steps of the form "Header: a, b." (at most 3 header
       words) with the same header form one group, shown as "Header: " and the items of the largest
       clusters first (at most 6): the offline template's "Question topic: X." of K clusters becomes
       one step naming the K topics, instead of K near-duplicates.
    3. Score each group by how central it is: support (the summed sizes of the clusters whose chains
       contain it, over all questions) + sharing (the mean, over all chains, of the share of its content
       words that the chain uses anywhere). Both lie in [0, 1].
    4. Keep the `max_steps` best (ties: earlier position, then text), order them by mean relative
       position and number them "1. ...".
    """
    groups: list[_StepGroup] = []
    vocab: list[set[str]] = []
    for c, chain in enumerate(chains):
        steps = [s for s in split_steps(chain) if not _ANSWER.search(s)]
        vocab.append({w for s in steps for w in keywords(s)})
        for j, step in enumerate(steps):
            headed = _HEADED.match(step)
            if headed and len(headed.group(1).split()) <= 3:
                header = headed.group(1).strip()
                new = _StepGroup(header, f"{header.lower()}:", set(keywords(header)), headed=True)
            else:
                new = _StepGroup(step, _normalised(step), set(keywords(step)))
            group = next((g for g in groups if _same_step(g, new)), None)
            if group is None:
                groups.append(group := new)
            if headed and group.headed:
                items = (item.strip() for item in headed.group(2).split(","))
                group.items += [(-cluster_sizes[c], c, item) for item in items if item]
            group.chains.add(c)
            group.positions.append(j / (len(steps) - 1) if len(steps) > 1 else 0.0)
    total = sum(cluster_sizes) or 1

    def score(g: _StepGroup) -> float:
        support = sum(cluster_sizes[c] for c in g.chains) / total
        sharing = mean(len(g.words & v) / len(g.words) for v in vocab) if g.words else 0.0
        return support + sharing

    best = sorted(groups, key=lambda g: (-score(g), mean(g.positions), g.text))[:max_steps]
    best.sort(key=lambda g: (mean(g.positions), -score(g), g.text))
    return numbered([g.render() for g in best])


def _llm_merge(chains: list[str], cluster_sizes: list[int], llm, max_steps: int) -> str:
    body = "\n\n".join(f"Chain {i} ({size} questions):\n{chain}"
                       for i, (chain, size) in enumerate(zip(chains, cluster_sizes, strict=True), 1))
    prompt = (f"Merge these {len(chains)} reasoning chains into one general step-by-step reasoning procedure for "
              f"this kind of question, at most {max_steps} steps, one numbered step per line, no answer letters "
              f"and no specific answers.\n\n{body}")
    text = llm.chat([{"role": "system", "content": MERGE_SYSTEM}, {"role": "user", "content": prompt}],
                    max_tokens=400, temperature=0.0)
    steps = [s for s in split_steps(text) if not _ANSWER.search(s)][:max_steps]
    if not steps:
        raise BaasError("the LLM returned no usable steps for the merged chain")
    return numbered(steps)


def aggregate_chains(
    chains: list[str], cluster_sizes: list[int], llm=None, max_steps: int = 6
) -> tuple[str, str, list[str]]:
    """The global chain from K local chains: one merge request to the LLM when given (its answer is
    re-split, answer steps dropped, cut to `max_steps` and renumbered), else or on failure `merge_offline`.

    Returns (global chain, source: the LLM's source or "offline", warnings)."""
    if len(chains) != len(cluster_sizes):
        raise ValueError(f"{len(chains)} chains but {len(cluster_sizes)} cluster sizes")
    if llm is not None:
        try:
            return _llm_merge(chains, cluster_sizes, llm, max_steps), llm.source, []
        except BaasError as exc:
            return merge_offline(chains, cluster_sizes, max_steps), "offline", [
                f"LLM chain merge failed ({_first_line(exc)}); merged the chains offline"]
    return merge_offline(chains, cluster_sizes, max_steps), "offline", []


def build_chain(
    examples: list[MCQExample],
    question_embeddings: torch.Tensor,
    k: int = 8,
    llm=None,
    seed: int = 0,
    max_steps: int = 6,
    nlp=None,
) -> ChainResult:
    """Auto-CoT over the training questions (embeddings [n, d] in the same order) and the Chain
    Aggregator's global chain of at most `max_steps` steps. `nlp`: a loaded spaCy pipeline for the
    offline template's key terms (loaded on demand when None; keywords without spaCy)."""
    if not examples:
        raise BaasError("no training questions to build a reasoning chain from")
    if len(examples) != question_embeddings.shape[0]:
        raise ValueError(f"{len(examples)} examples but {question_embeddings.shape[0]} question embeddings")
    assign, distances, k_used = cluster_questions(question_embeddings, k, seed)
    warnings: list[str] = []
    active_llm = llm

    def local_chain(example: MCQExample) -> tuple[str, str]:
        nonlocal active_llm
        if active_llm is not None:
            try:
                return llm_chain(example, active_llm), active_llm.source
            except BaasError as exc:
                warnings.append(f"LLM chain failed for question {example.id} ({_first_line(exc)}); "
                                "this and all further chains built offline")
                active_llm = None
        terms: list[str] = []
        if not (example.explanation and example.explanation.strip()):
            found, _, term_warnings = question_terms([example.question], nlp)
            terms = found[0]
            warnings.extend(term_warnings)
        return offline_chain(example, terms), "offline"

    clusters = []
    for c in range(k_used):
        members = sorted(np.flatnonzero(assign == c).tolist(), key=lambda i: (distances[i], i))
        built: dict[int, tuple[str, str]] = {}
        chosen = None
        for i in members:
            if len(built) == MAX_CANDIDATES:
                break
            if len(examples[i].question.split()) > MAX_QUESTION_WORDS:
                continue
            built[i] = local_chain(examples[i])
            if len(split_steps(built[i][0])) <= MAX_RATIONALE_STEPS:
                chosen = i
                break
        if chosen is None:
            chosen = members[0]
            warnings.append(f"cluster {c}: no question near its centroid passes the Auto-CoT filters "
                            f"(<= {MAX_QUESTION_WORDS} words, <= {MAX_RATIONALE_STEPS} steps); took the nearest")
            if chosen not in built:
                built[chosen] = local_chain(examples[chosen])
        chain, source = built[chosen]
        clusters.append(Cluster(c, len(members), examples[chosen], float(distances[chosen]), chain, source))

    global_chain, merge_source, merge_warnings = aggregate_chains(
        [c.local_chain for c in clusters], [c.size for c in clusters], active_llm, max_steps)
    warnings.extend(merge_warnings)
    if not global_chain:
        global_chain = GENERIC_CHAIN
        warnings.append("the local chains had no steps besides their answers; using a generic chain")
    sources = {c.source for c in clusters} | {merge_source}
    source = sources.pop() if len(sources) == 1 else "mixed"
    return ChainResult(clusters, global_chain, source, list(dict.fromkeys(warnings)))

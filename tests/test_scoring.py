"""Scoring modes (joint, dual, both): shapes and masks on every tiny backbone, the zero-shot start of dual,
gradients through each mode, entries that keep their mode, and a bank that refuses mixed modes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from baas.prompts_bank.bank import PromptBank
from baas.prompts_bank.errors import BaasError
from baas.store import Store
from baas.training.batching import collate, encode, pack, unpack
from baas.training.config import SCORINGS, TrainConfig
from baas.training.data import MCQExample
from baas.training.loop import CLOSED_GATE, PairLearner, evaluate, fit, learner_scorer
from baas.training.scoring import logits, score
from baas.training.trainer import make_trainable

EXAMPLES = [
    MCQExample("q1", "what sound does a cow make", ["moo", "woof", "meow"], 0, context="the cow is in the barn"),
    MCQExample("q2", "which is hot", ["sun", "water"], 0),
    MCQExample("q3", "which animal is fast", ["dog", "cat", "cow", "piano"], 1),
]


def _trainable(bb, scoring: str, gate: float | None = -4.0, **kw):
    config = TrainConfig(scoring=scoring, gate=gate, prefix_len=kw.get("prefix_len", 2), suffix_len=kw.get("suffix_len", 3),
                         prefix_init="random", suffix_init="random")
    enc = encode(EXAMPLES, bb.tokenizer, 64)
    torch.manual_seed(0)
    module, optimizer = make_trainable(bb, enc, config)
    return module, optimizer, enc


@pytest.mark.parametrize("kind", ["bert", "roberta", "gpt2"])
@pytest.mark.parametrize("scoring", SCORINGS)
def test_modes_score_every_real_option_and_mask_the_rest(tiny_backbone, kind, scoring):
    bb = tiny_backbone(kind)
    module, optimizer, enc = _trainable(bb, scoring)
    batch = collate(enc, bb.pad_id)
    assert batch.query_ids.shape[0] == 3 and batch.answer_ids.shape[0] == 9
    pair, head = module()
    assert head.mode == scoring
    out = score(bb, batch, pair, head, bb.default_pooling)
    assert out.shape == (3, 4)
    assert torch.isinf(out[0, 3]) and torch.isinf(out[1, 2:]).all() and torch.isfinite(out[2]).all()
    # a gradient reaches the pair (its input-level vectors) and the head through this mode
    F.cross_entropy(out, batch.labels).backward()
    assert module.prefix.grad is not None and module.prefix.grad.abs().sum() > 0
    # (a bias moves every option alike, so the softmax gives it no gradient; proj_in has none while proj_out is 0)
    learning = {n: p for n, p in module.head.named_parameters() if n not in ("linear.bias", "proj_in")}
    assert learning and all(p.grad is not None and p.grad.abs().sum() > 0 for p in learning.values()), list(learning)


def _zero_shot(bb, examples) -> torch.Tensor:
    """The option nearest the question: cosine of mean-pooled states, nothing trained (benchmarks/accuracy/zero_shot.py)."""
    def embed(texts):
        enc = bb.tokenizer(texts, padding=True, return_tensors="pt")
        with torch.no_grad():
            hidden = bb.model(**enc).last_hidden_state
        w = enc["attention_mask"].unsqueeze(-1).float()
        return F.normalize((hidden * w).sum(1) / w.sum(1), dim=-1)

    q = embed([f"{e.context} {e.question}".strip() for e in examples])
    o = embed([o for e in examples for o in e.options])
    out, at = torch.full((len(examples), 4), float("-inf")), 0
    for i, e in enumerate(examples):
        out[i, : len(e.options)] = o[at : at + len(e.options)] @ q[i]
        at += len(e.options)
    return out


@pytest.mark.parametrize("scoring", ["dual", "both"])
def test_dual_starts_exactly_at_zero_shot_with_the_gate_closed(tiny_backbone, scoring):
    bb = tiny_backbone("bert")
    module, _, enc = _trainable(bb, scoring, gate=CLOSED_GATE)
    got = logits(bb, enc, module(), "mean_input")
    cos = _zero_shot(bb, EXAMPLES)
    scale = float(module.head.scale.detach().exp())
    assert torch.allclose(got[torch.isfinite(got)], scale * cos[torch.isfinite(cos)], atol=1e-4)
    # the loop's epoch-0 candidate is that start, whatever gate the pair starts from
    module, _, enc = _trainable(bb, scoring, gate=-4.0)
    learner = PairLearner(bb, module, "mean_input")
    start = learner.untrained_start()
    assert float(start["gate"]) == CLOSED_GATE and float(module.gate.detach()) == -4.0
    module.load_state_dict(start)
    assert evaluate(learner_scorer(learner), enc, bb.pad_id, 8)["predictions"] == cos.argmax(-1).tolist()


def test_fit_never_ends_below_the_untrained_start_on_validation(tiny_backbone):
    """A learning rate that wrecks the pair: the start (epoch 0) is kept, and it is the zero-shot answer."""
    bb = tiny_backbone("bert")
    module, _, enc = _trainable(bb, "dual", gate=-4.0)
    learner = PairLearner(bb, module, "mean_input")
    config = TrainConfig(scoring="dual", epochs=2, batch_size=2, lr=50.0, head_lr=50.0, precision="fp32")  # exact: fp32
    val = enc[:2]
    state = fit(learner, enc, val, config, bb.pad_id)
    start = state["start_accuracy"]
    assert start is not None and state["best_accuracy"] >= start
    assert all(state["best_accuracy"] >= h["validation_accuracy"] for h in state["history"])
    if state["best_epoch"] == 0:
        assert float(module.gate) == CLOSED_GATE


def test_joint_is_not_the_zero_shot_cosine(tiny_backbone):
    """The check above can fail: joint scoring at its start is not the cosine."""
    bb = tiny_backbone("bert")
    module, _, enc = _trainable(bb, "joint", gate=CLOSED_GATE)
    got = logits(bb, enc, module(), "mean_input")
    cos = _zero_shot(bb, EXAMPLES)
    assert not torch.allclose(got[torch.isfinite(got)], cos[torch.isfinite(cos)] * 20, atol=1e-2)


def test_token_cache_round_trip_keeps_questions_and_options_alone(tiny_backbone):
    bb = tiny_backbone("bert")
    enc = encode(EXAMPLES, bb.tokenizer, 64)
    back = unpack(pack(enc))
    assert back == enc
    cls, sep = bb.tokenizer.cls_token_id, bb.tokenizer.sep_token_id
    assert enc[0].question[0] == cls and enc[0].question[-1] == sep and enc[0].answers[1][0] == cls
    assert bb.tokenizer.decode(enc[0].answers[1], skip_special_tokens=True) == "woof"


@pytest.mark.parametrize("scoring", SCORINGS)
def test_entries_keep_their_mode_through_store_export_and_import(tiny_backbone, tmp_path, scoring):
    bb = tiny_backbone("bert")
    module, _, enc = _trainable(bb, scoring)
    meta = dict(backbone=bb.name, hidden_size=bb.hidden_size, prefix_len=2, suffix_len=3, depth=module.depth,
                pooling="mean_input", max_length=64)
    entry = module.to_entry("animals", torch.zeros(bb.hidden_size), meta)
    assert entry.scoring == scoring
    store = Store(tmp_path / "store")
    saved = store.save_entry(entry, "animals", {"accuracy": 0.5})
    loaded = store.load_entry("animals")
    assert loaded.scoring == scoring and set(loaded.head_tensors()) == set(entry.head_tensors())
    before = logits(bb, enc, entry.prompt(), "mean_input")
    assert torch.allclose(logits(bb, enc, loaded.prompt(), "mean_input"), before)
    folder = store.export_entry("animals", saved.version, tmp_path / "export")
    other = Store(tmp_path / "other").import_entry(folder, "copied")
    assert other.scoring == scoring
    assert torch.allclose(logits(bb, enc, other.prompt(), "mean_input"), before)


def test_a_bank_of_mixed_modes_is_refused_naming_the_entries(tiny_backbone):
    bb = tiny_backbone("bert")
    entries = []
    for task, scoring in (("alpha", "joint"), ("beta", "dual")):
        module, _, _ = _trainable(bb, scoring)
        entries.append(module.to_entry(task, torch.zeros(bb.hidden_size), {"backbone": bb.name, "pooling": "mean_input"}))
    with pytest.raises(BaasError, match=r"'alpha@v0' and 'beta@v0'.*scoring joint != dual"):
        PromptBank(entries)


def test_a_bank_of_dual_entries_fuses_heads_per_question(tiny_backbone):
    bb = tiny_backbone("bert")
    entries = []
    for i, task in enumerate(("alpha", "beta")):
        module, _, _ = _trainable(bb, "dual")
        with torch.no_grad():
            module.head.proj_out.normal_()
            module.head.scale.fill_(float(i))
        entries.append(module.to_entry(task, torch.zeros(bb.hidden_size), {"backbone": bb.name, "pooling": "mean_input"}))
    bank = PromptBank(entries)
    pair, head = bank.fuse(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]))
    assert head.mode == "dual" and head.scale.tolist() == [0.0, 1.0, 0.5]
    assert torch.allclose(head.proj_out[1], entries[1].head_proj_out)
    enc = encode(EXAMPLES, bb.tokenizer, 64)
    fused = logits(bb, enc, lambda idx: bank.fuse(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])[idx]), "mean_input")
    alone = logits(bb, enc, bank.single(1), "mean_input")
    assert torch.allclose(fused[1], alone[1], atol=1e-5)


def test_the_scoring_benchmark_keeps_each_question_of_its_full_ft_row(tiny_backbone, tmp_path):
    """benchmarks/accuracy/scoring.py's full_* and st_ft rows go through eval-forgetting's learners; their records must
    keep each test question's prediction, which the report's paired intervals need (st_ft's first records had none)."""
    import importlib.util

    from baas.store import Store
    from baas.training.data import load_task_data

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "accuracy" / "scoring.py"
    spec = importlib.util.spec_from_file_location("scoring_benchmark", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    data = load_task_data("demo_opposites", max_train=8, max_eval=12)
    config = TrainConfig(scoring="dual", epochs=1, batch_size=4, lr=3e-5)
    record = bench.one_task_baseline("full_ft", data, config, tiny_backbone("bert"), Store(tmp_path / "store"))
    labels = [e.label for e in data.eval.examples]
    assert len(record["predictions"]) == len(labels) == 12
    assert record["accuracy"] == pytest.approx(sum(p == y for p, y in zip(record["predictions"], labels)) / 12)

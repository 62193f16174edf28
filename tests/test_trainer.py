"""The trainer on tiny random backbones: it learns, saves a complete entry, and resumes exactly."""

import pytest
import torch

from baas.prompts_bank.errors import BaasError
from baas.store import Store
from baas.training.data import load_task_data
from baas.training.loop import CLOSED_GATE
from baas.training.trainer import TrainConfig, evaluate_entry, train_pair

SMALL = dict(epochs=2, batch_size=4, prefix_len=3, suffix_len=2, eval_batch_size=16, checkpoint_every=3, max_length=48)


def _data(n=40):
    return load_task_data("demo_categories", max_train=n, max_eval=32)


@pytest.mark.parametrize("kind,depth,gate", [("bert", 1, None), ("gpt2", 2, None), ("bert", 2, -4.0), ("gpt2", 2, -4.0)])
def test_train_saves_a_complete_entry(kind, depth, gate, tiny_backbone, tmp_path):
    bb = tiny_backbone(kind)
    store = Store(tmp_path)
    result = train_pair("cats", _data(), bb, store, TrainConfig(**SMALL, depth=depth, gate=gate))
    for key in ("task", "accuracy", "macro_precision", "macro_recall", "macro_f1", "chance", "n_train", "n_eval",
                "eval_split", "seconds", "bank_file"):
        assert key in result
    assert result["n_train"] == 40 and result["eval_split"] == "test" and result["chance"] == 0.25
    assert len(result["history"]) == 2 and result["best_epoch"] in (0, 1, 2)  # 0: the untrained start (both, dual)
    entry = store.load_entry("cats", backbone=bb.name, hidden_size=bb.hidden_size)
    assert entry.prefix.shape == (depth, 3, bb.hidden_size) and entry.suffix.shape == (depth, 2, bb.hidden_size)
    assert entry.meta["depth"] == depth
    assert entry.meta["pooling"] == ("last" if kind == "gpt2" else "mean_input")
    assert entry.meta["data_fingerprint"] and entry.meta["config"]["lr"] == 1e-2
    assert (entry.gate is None) == (gate is None)
    if gate is not None:  # a gate learns; a kept untrained start (epoch 0) holds it closed, as training started
        assert entry.gate.item() != gate if result["best_epoch"] > 0 else entry.gate.item() == CLOSED_GATE
    # Reloaded from disk, the entry scores exactly as it did at the end of training.
    again = evaluate_entry("cats", _data(), bb, store)
    assert again["accuracy"] == result["accuracy"]
    assert [r["status"] for r in store.runs("cats")] == ["done", "done"]


def test_frozen_backbone_is_untouched(tiny_backbone, tmp_path):
    bb = tiny_backbone("bert")
    before = {k: v.clone() for k, v in bb.model.state_dict().items()}
    train_pair("cats", _data(16), bb, Store(tmp_path), TrainConfig(**dict(SMALL, epochs=1)))
    after = bb.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("gate", [None, -4.0])
def test_a_deep_pair_starts_where_the_shallow_pair_leads(gate, tiny_backbone):
    """In a causal decoder the prefix's states do not depend on the input, so a deep prefix started from
    them scores every input exactly as the shallow prefix does."""
    from baas.training.batching import collate, encode
    from baas.training.scoring import score
    from baas.training.trainer import make_trainable

    bb = tiny_backbone("gpt2")
    data = _data(8)
    train_enc = encode(data.train.examples, bb.tokenizer, 48)
    module, _ = make_trainable(bb, train_enc, TrainConfig(**dict(SMALL, suffix_len=0, depth=2, gate=gate)))
    pair, head = module()
    assert pair.prefix.shape == (1, 2, 3, bb.hidden_size)
    assert not torch.allclose(pair.prefix[0, 0], pair.prefix[0, 1])  # layer 1 holds states, not a copy
    batch = collate(train_enc, bb.pad_id)
    with torch.no_grad():
        deep = score(bb, batch, pair, head, bb.default_pooling)
        shallow = score(bb, batch, type(pair)(pair.prefix[:, :1], pair.suffix[:, :1], pair.gate), head, bb.default_pooling)
    torch.testing.assert_close(deep, shallow, atol=1e-5, rtol=1e-5)


def test_a_prompt_deeper_than_the_backbone_is_refused(tiny_backbone, tmp_path):
    with pytest.raises(BaasError, match="--depth 3 is deeper than backbone"):
        train_pair("cats", _data(8), tiny_backbone("bert"), Store(tmp_path), TrainConfig(**dict(SMALL, depth=3)))


def _keyword_task(root, n=240):
    """Questions whose answer is always the one option naming an animal: separable even for a random model."""
    import json
    import random

    rng = random.Random(0)
    animals, others = ["cow", "dog", "cat"], ["apple", "hammer", "car", "bus", "red", "blue", "piano", "drum", "sun"]
    for split, count in (("train", n), ("validation", 60), ("test", 60)):
        rows = []
        for _ in range(count):
            options = [rng.choice(animals)] + rng.sample(others, 3)
            rng.shuffle(options)
            rows.append({"id": f"{split}-{len(rows)}", "question": "which is an animal?", "options": options,
                         "label": next(k for k, o in enumerate(options) if o in animals)})
        (root / "animals").mkdir(parents=True, exist_ok=True)
        (root / "animals" / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    return load_task_data("animals", root)


@pytest.mark.parametrize("prompt_len", [0, 4])
def test_training_learns_a_separable_task(prompt_len, tiny_backbone, tmp_path):
    bb = tiny_backbone("bert")
    config = TrainConfig(**dict(SMALL, epochs=3, batch_size=8, lr=3e-2, head_lr=3e-2, prefix_len=prompt_len, suffix_len=prompt_len))
    result = train_pair("animals", _keyword_task(tmp_path / "data"), bb, Store(tmp_path / "s"), config)
    assert result["accuracy"] > 0.6, result


# 10 steps per epoch: mid-epoch 1, and the end of epoch 1 before its validation (a stop the fault suite found:
# the resumed run skipped that validation and could pick another best epoch)
@pytest.mark.parametrize("stop", [7, 10])
def test_interrupted_run_resumes_to_the_same_result(stop, tiny_backbone, tmp_path):
    bb = tiny_backbone("bert")
    config = TrainConfig(**SMALL)
    full = train_pair("cats", _data(), bb, Store(tmp_path / "a"), config)

    store = Store(tmp_path / "b")
    stopped = train_pair("cats", _data(), bb, store, config, stop_after_steps=stop)
    assert stopped == {"task": "cats", "interrupted_at_step": stop}
    assert list((tmp_path / "b" / "checkpoints" / "cats").glob("*.pt"))
    resumed = train_pair("cats", _data(), bb, store, config)
    assert resumed["resumed"] is True
    assert resumed["accuracy"] == full["accuracy"] and resumed["history"] == full["history"]
    a = Store(tmp_path / "a").load_entry("cats")
    b = store.load_entry("cats")
    assert torch.equal(a.prefix, b.prefix) and torch.equal(a.head_weight, b.head_weight)
    assert not list((tmp_path / "b" / "checkpoints" / "cats").glob("*.pt"))  # dropped once done


def test_a_changed_config_does_not_resume_someone_elses_checkpoint(tiny_backbone, tmp_path):
    bb = tiny_backbone("bert")
    store = Store(tmp_path)
    train_pair("cats", _data(), bb, store, TrainConfig(**SMALL), stop_after_steps=4)
    result = train_pair("cats", _data(), bb, store, TrainConfig(**dict(SMALL, lr=5e-3)))
    assert result["resumed"] is False


@pytest.mark.parametrize("change, message", [
    (dict(epochs=0), "--epochs must be at least 1"),
    (dict(prefix_len=-1), "--prefix-len must be in 0..256"),
    (dict(pooling="max"), "unknown pooling 'max'"),
    (dict(lr=0), "learning rates must be positive"),
    (dict(suffix_init="zeros"), "unknown --suffix-init 'zeros'"),
])
def test_bad_config_is_refused(change, message):
    with pytest.raises(BaasError, match=message):
        TrainConfig(**change).check()


def _small_memory(monkeypatch, most: int):
    """Scoring more than `most` questions at once raises the CPU allocator's out-of-memory error."""
    import baas.training.loop as loop
    import baas.training.scoring as scoring

    real = scoring.score

    def score(backbone, batch, *args):
        if batch.option_mask.shape[0] > most:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:118] DefaultCPUAllocator: can't allocate memory")
        return real(backbone, batch, *args)

    monkeypatch.setattr(scoring, "score", score)
    monkeypatch.setattr(loop, "score", score)


class _Messages:
    def __init__(self):
        self.lines = []

    def __getattr__(self, name):
        return lambda *a, **k: None

    def message(self, text):
        self.lines.append(text)


def test_a_batch_that_does_not_fit_is_trained_in_pieces_with_the_same_result(tiny_backbone, tmp_path, monkeypatch):
    # (the default scoring evaluates the untrained start first: its back-offs say "evaluation", not "training")
    bb, config = tiny_backbone("bert"), TrainConfig(**dict(SMALL, epochs=1))
    whole = train_pair("cats", _data(), bb, Store(tmp_path / "a"), config)
    _small_memory(monkeypatch, most=1)
    messages = _Messages()
    pieces = train_pair("cats", _data(), bb, Store(tmp_path / "b"), config, reporter=messages)
    assert [m.split(" did not")[0] for m in messages.lines if m.startswith("training:")][:2] == \
        ["training: 4 questions at once", "training: 2 questions at once"]
    assert any(m.startswith("evaluation: ") for m in messages.lines)  # validation backed off on its own
    a, b = (Store(tmp_path / s).load_entry("cats").tensors() for s in "ab")
    # (the head's bias moves every option's score alike, so its gradient is rounding noise that Adam scales up:
    # it changes no answer and is left out)
    assert all(torch.allclose(a[k], b[k], atol=1e-4) for k in a if k != "head_bias"), {k: float((a[k] - b[k]).abs().max()) for k in a}
    assert pieces["accuracy"] == whole["accuracy"]


def test_a_single_question_that_does_not_fit_is_one_clear_error(tiny_backbone, tmp_path, monkeypatch):
    _small_memory(monkeypatch, most=0)
    with pytest.raises(BaasError, match="out of memory on a single question: lower --max-length"):
        train_pair("cats", _data(8), tiny_backbone("bert"), Store(tmp_path), TrainConfig(**dict(SMALL, epochs=1)))


def test_other_errors_are_not_taken_for_memory(tiny_backbone, tmp_path, monkeypatch):
    import baas.training.loop as loop

    monkeypatch.setattr(loop, "score", lambda *a: (_ for _ in ()).throw(RuntimeError("shape mismatch")))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        train_pair("cats", _data(8), tiny_backbone("bert"), Store(tmp_path), TrainConfig(**dict(SMALL, epochs=1)))

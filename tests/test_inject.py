"""The one injection path: placement, masks, positions, padding invariance, and frozen backbones."""

import pytest
import torch

from baas.prompts_bank.errors import BaasError
from baas.prompts_bank.pair import PromptPair, ScoringHead
from baas.training.backbone import INPUT, PAD, PREFIX, SUFFIX, inject, pool
from baas.training.batching import collate, encode
from baas.training.data import load_task_data
from baas.training.scoring import score


def _marked(n, t, d, offset):
    return (torch.arange(n * t * d, dtype=torch.float).reshape(n, t, d) + offset)


def test_inject_right_padding_places_suffix_after_last_real_token():
    embeds = _marked(2, 4, 1, 100)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    prefix = torch.full((2, 2, 1), -1.0)
    suffix = torch.full((2, 3, 1), -2.0)
    out, segments = inject(embeds, mask, prefix, suffix)
    row0 = out[0, :, 0].tolist()
    assert row0 == [-1, -1, 100, 101, 102, -2, -2, -2, 103]
    row1 = out[1, :, 0].tolist()
    assert row1 == [-1, -1, 104, 105, -2, -2, -2, 106, 107]
    P, I, S, _ = PREFIX, INPUT, SUFFIX, PAD
    assert segments.tolist() == [[P, P, I, I, I, S, S, S, _], [P, P, I, I, S, S, S, _, _]]


def test_inject_left_padding_keeps_pads_first():
    embeds = _marked(1, 4, 1, 10)
    mask = torch.tensor([[0, 1, 1, 1]])
    out, segments = inject(embeds, mask, torch.full((1, 1, 1), -1.0), torch.full((1, 2, 1), -2.0))
    assert out[0, :, 0].tolist() == [10, -1, 11, 12, 13, -2, -2]
    assert segments.tolist() == [[PAD, PREFIX, INPUT, INPUT, INPUT, SUFFIX, SUFFIX]]


def test_inject_without_prompts_is_identity():
    embeds = torch.randn(3, 5, 4)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    out, segments = inject(embeds, mask, torch.zeros(3, 0, 4), torch.zeros(3, 0, 4))
    assert torch.equal(out, embeds) and torch.equal(segments, mask * INPUT)


def test_pooling_reads_the_right_positions():
    hidden = torch.tensor([[[1.0], [2.0], [4.0], [8.0], [16.0]]])
    segments = torch.tensor([[PREFIX, INPUT, INPUT, SUFFIX, PAD]])
    assert pool(hidden, segments, "mean_input").item() == 3.0
    assert pool(hidden, segments, "mean_all").item() == 15.0 / 4
    assert pool(hidden, segments, "suffix").item() == 8.0
    assert pool(hidden, segments, "last").item() == 8.0
    assert pool(hidden, torch.tensor([[INPUT, INPUT, INPUT, PAD, PAD]]), "suffix").item() == pytest.approx(7.0 / 3)


def test_inject_gradient_reaches_prompts():
    prefix = torch.randn(2, 3, 4, requires_grad=True)
    suffix = torch.randn(2, 2, 4, requires_grad=True)
    out, _ = inject(torch.randn(2, 5, 4), torch.ones(2, 5), prefix, suffix)
    out.sum().backward()
    assert torch.equal(prefix.grad, torch.ones_like(prefix)) and torch.equal(suffix.grad, torch.ones_like(suffix))


@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("kind", ["bert", "roberta", "gpt2"])
def test_padding_does_not_change_a_rows_output(kind, depth, tiny_backbone):
    """The same input alone and padded beside a longer one pools to the same vector, with prompts on."""
    bb = tiny_backbone(kind)
    ids = bb.tokenizer(["what sound does a cow make?", "a cow"], add_special_tokens=True)["input_ids"]
    d = bb.hidden_size
    g = torch.Generator().manual_seed(0)
    prefix, suffix = torch.randn(1, depth, 3, d, generator=g), torch.randn(1, depth, 2, d, generator=g)
    pooling = bb.default_pooling
    short = torch.tensor([ids[1]])
    alone = bb.forward(short, torch.ones_like(short), prefix, suffix, pooling)
    width = len(ids[0])
    padded = torch.full((2, width), bb.pad_id)
    mask = torch.zeros(2, width, dtype=torch.long)
    for i, r in enumerate(ids):
        padded[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    together = bb.forward(padded, mask, prefix.expand(2, -1, -1, -1), suffix.expand(2, -1, -1, -1), pooling)
    torch.testing.assert_close(together[1:], alone, atol=1e-5, rtol=1e-5)
    if bb.is_decoder:  # left padding must give the same last-token state as right padding
        left = torch.full((1, width), bb.pad_id)
        left[0, width - len(ids[1]):] = torch.tensor(ids[1])
        left_mask = (torch.arange(width) >= width - len(ids[1])).long().unsqueeze(0)
        torch.testing.assert_close(bb.forward(left, left_mask, prefix, suffix, pooling), alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["bert", "roberta", "gpt2"])
def test_only_prompts_and_head_receive_gradients(kind, tiny_backbone):
    bb = tiny_backbone(kind)
    data = load_task_data("demo_categories", max_train=4)
    batch = collate(encode(data.train.examples, bb.tokenizer, 64), bb.pad_id)
    d = bb.hidden_size
    prefix = torch.randn(1, 2, 4, d, requires_grad=True)  # a deep pair: both layers' vectors must learn
    suffix = torch.randn(1, 2, 4, d, requires_grad=True)
    head_w = torch.randn(1, d, requires_grad=True)
    head_b = torch.zeros(1, requires_grad=True)
    logits = score(bb, batch, PromptPair(prefix, suffix), ScoringHead(head_w, head_b), bb.default_pooling)
    torch.nn.functional.cross_entropy(logits, batch.labels).backward()
    assert all(p.grad is None and not p.requires_grad for p in bb.model.parameters())
    for grad in (prefix.grad[0, 0], prefix.grad[0, 1], suffix.grad[0, 1], head_w.grad):
        assert grad.abs().sum() > 0
    # In a causal decoder nothing reads the suffix's layer-0 states except the suffix itself, whose
    # states layer 1 replaces: only an encoder's shallower suffix layers learn.
    assert (suffix.grad[0, 0].abs().sum() > 0) == (not bb.is_decoder)


@pytest.mark.parametrize("kind", ["bert", "gpt2"])
def test_deep_prompts_replace_the_prompt_states_entering_each_layer(kind, tiny_backbone):
    """Layer i's input holds prefix[:, i] / suffix[:, i] at the prompt positions and is untouched elsewhere."""
    bb = tiny_backbone(kind)
    first_child = {"bert": lambda layer: layer.attention, "gpt2": lambda layer: layer.ln_1}[kind]
    seen = []
    handle = first_child(bb.layers[1]).register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    ids = torch.tensor([[5, 6, 7, 8], [5, 6, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    d = bb.hidden_size
    prefix, suffix = torch.randn(2, 2, 3, d), torch.randn(2, 2, 2, d)
    try:
        bb.forward(ids, mask, prefix, suffix, bb.default_pooling)
        bb.forward(ids, mask, prefix[:, :1], suffix[:, :1], bb.default_pooling)  # depth 1: layer 1 sees layer 0's output
    finally:
        handle.remove()
    deep, shallow = seen
    torch.testing.assert_close(deep[0, :3], prefix[0, 1])
    torch.testing.assert_close(deep[0, 7:9], suffix[0, 1])
    torch.testing.assert_close(deep[1, 5:7], suffix[1, 1])  # right after the 3 prefix + 2 real tokens
    torch.testing.assert_close(deep[0, 3:7], shallow[0, 3:7])  # the input's states enter layer 1 unchanged
    assert not torch.allclose(shallow[0, :3], prefix[0, 1])
    with pytest.raises(BaasError, match="does not fit"):
        bb.forward(ids, mask, torch.randn(2, 3, 1, d), torch.randn(2, 3, 1, d), bb.default_pooling)


def test_variable_option_counts_are_masked_not_padded(tiny_backbone):
    from baas.training.data import make_example

    bb = tiny_backbone("bert")
    examples = [make_example("1", "what is hot?", ["cold", "hot"], 1, label_field="l", options_field="o"),
                make_example("2", "which is a tool?", ["hammer", "apple", "cow", "dog", "sun"], 0, label_field="l", options_field="o")]
    batch = collate(encode(examples, bb.tokenizer, 32), bb.pad_id)
    assert batch.input_ids.shape[0] == 7  # 2 + 5 real option rows, no fake answers
    d = bb.hidden_size
    logits = score(bb, batch, PromptPair(torch.zeros(1, 1, 2, d), torch.zeros(1, 1, 2, d)),
                   ScoringHead(torch.randn(1, d), torch.zeros(1)), bb.default_pooling)
    assert logits.shape == (2, 5)
    assert torch.isinf(logits[0, 2:]).all() and torch.isfinite(logits[1]).all()


def test_truncation_cuts_the_context_first_and_never_an_option(tiny_backbone):
    from baas.training.data import make_example

    bb = tiny_backbone("bert")
    tok = bb.tokenizer
    context = " ".join(["water plant sun energy"] * 30)
    e = make_example("1", "which is a tool?", ["hammer drum", "apple"], 0, label_field="l", options_field="o", context=context)
    (encoded,) = encode([e], tok, 24)
    for row, option in zip(encoded.options, e.options):
        assert len(row) <= 24
        option_ids = tok(option, add_special_tokens=False)["input_ids"]
        question_ids = tok(" " + e.question, add_special_tokens=False)["input_ids"]
        assert row[-1 - len(option_ids):-1] == option_ids  # the whole option, before the final [SEP]
        sep = len(row) - 2 - len(option_ids)
        assert row[sep - len(question_ids):sep] == question_ids  # the whole question survives
    assert max(len(r) for r in encoded.options) == 24  # the context filled what was left


@pytest.mark.parametrize("kind", ["bert", "gpt2"])
def test_layer_means_stop_early_and_match_the_full_pass(kind, tiny_backbone):
    from baas.training.scoring import query_embeddings

    bb = tiny_backbone(kind)
    texts = ["what does a cow say", "the opposite of hot is cold, which is which"]
    enc = bb.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = bb.model(**enc, output_hidden_states=True).hidden_states
    weights = enc["attention_mask"].unsqueeze(-1).float()
    mean = lambda i: (hidden[i] * weights).sum(1) / weights.sum(1)  # noqa: E731
    for layers in [(0,), (1,), (0, 2), (2, 1)]:
        got = bb.layer_means(enc["input_ids"], enc["attention_mask"], layers)
        assert torch.allclose(got, torch.cat([mean(i) for i in layers], -1), atol=1e-5), layers
    calls = []
    handle = bb.layers[1].register_forward_hook(lambda *a: calls.append(1))
    bb.layer_means(enc["input_ids"], enc["attention_mask"], (1,))  # layer 2 never runs
    handle.remove()
    assert calls == []
    assert query_embeddings(bb, texts, layers=(0, 1)).shape == (2, 2 * bb.hidden_size)


@pytest.mark.parametrize("kind", ["bert", "roberta", "gpt2"])
def test_a_closed_gate_reads_the_input_as_without_prompts(kind, tiny_backbone):
    """A very negative gate hides a deep pair from the input: the input's mean equals the prompt-free pass
    (positions too, in BERT's, RoBERTa's and GPT-2's numbering), with right and (decoders) left padding."""
    bb = tiny_backbone(kind)
    ids = bb.tokenizer(["what sound does a cow make?", "a cow"])["input_ids"]
    width = len(ids[0])
    d, g = bb.hidden_size, torch.Generator().manual_seed(0)
    prefix, suffix = torch.randn(2, 2, 3, d, generator=g), torch.randn(2, 2, 2, d, generator=g)
    none = torch.zeros(2, 1, 0, d)
    sides = ["right", "left"] if bb.is_decoder else ["right"]
    for side in sides:
        padded, mask = torch.full((2, width), bb.pad_id), torch.zeros(2, width, dtype=torch.long)
        for i, r in enumerate(ids):
            at = slice(0, len(r)) if side == "right" else slice(width - len(r), width)
            padded[i, at], mask[i, at] = torch.tensor(r), 1
        without = bb.forward(padded, mask, none, none, "mean_input")
        closed = bb.forward(padded, mask, prefix, suffix, "mean_input", torch.full((2,), -1e4))
        torch.testing.assert_close(closed, without, atol=1e-5, rtol=1e-5)
        ajar = bb.forward(padded, mask, prefix, suffix, "mean_input", torch.full((2,), -2.0))
        assert not torch.allclose(ajar, without, atol=1e-4)


def test_the_gate_learns_and_follows_the_pair_through_rows(tiny_backbone):
    """The gate gets a gradient through the attention mask, and each question's gate reaches its options."""
    bb = tiny_backbone("bert")
    data = load_task_data("demo_categories", max_train=4)
    batch = collate(encode(data.train.examples, bb.tokenizer, 64), bb.pad_id)
    d = bb.hidden_size
    gate = torch.tensor([-3.0], requires_grad=True)
    pair = PromptPair(torch.randn(1, 2, 2, d), torch.randn(1, 2, 2, d), gate)
    logits = score(bb, batch, pair, ScoringHead(torch.randn(1, d), torch.zeros(1)), "mean_input")
    torch.nn.functional.cross_entropy(logits, batch.labels).backward()
    assert gate.grad.abs().item() > 0
    counts = batch.options_per_question
    per_question = PromptPair(pair.prefix.expand(len(counts), -1, -1, -1), pair.suffix.expand(len(counts), -1, -1, -1),
                              torch.arange(len(counts), dtype=torch.float))
    assert per_question.per_row(counts).gate.tolist() == torch.arange(len(counts)).repeat_interleave(counts).float().tolist()

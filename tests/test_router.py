"""The Attention Router Module: summaries, rules, strategies, the bank's fusion, and the router file."""

import json

import pytest
import torch

from baas.prompts_bank.bank import BankEntry, PromptBank
from baas.prompts_bank.errors import BaasError
from baas.router.router import Router
from baas.router.rules import RULES
from baas.router.strategies import STRATEGIES, make_strategy
from baas.router.summary import QuerySummary
from baas.store import Store
from baas.store import StoreError


def entry(task, d=8, depth=2, lp=2, ls=3, seed=0, **meta):
    g = torch.Generator().manual_seed(seed)
    base = dict(backbone="tiny", hidden_size=d, depth=depth, prefix_len=lp, suffix_len=ls, pooling="mean_input")
    return BankEntry(task, torch.randn(depth, lp, d, generator=g), torch.randn(depth, ls, d, generator=g),
                     torch.randn(d, generator=g), torch.randn((), generator=g), torch.randn(d, generator=g),
                     dict(base, **meta), version=1)


def clustered_queries(tasks=4, n=200, d=16, spread=0.5, seed=0):
    """Each task's queries around its own centre, with a shared, correlated noise."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(tasks, d, generator=g) * 2
    mix = torch.randn(d, d, generator=g) * spread
    return [centres[t] + torch.randn(n, d, generator=g) @ mix for t in range(tasks)]


def test_summary_keeps_mean_and_covariance():
    q = clustered_queries(tasks=1, n=400, d=12)[0]
    full = QuerySummary.from_queries(q, rank=12)
    assert torch.allclose(full.mean, q.mean(0), atol=1e-5)
    assert torch.allclose(full.covariance(), torch.cov(q.T), atol=1e-4)
    low = QuerySummary.from_queries(q, rank=3)  # diagonal kept exactly, off-diagonal from 3 directions
    assert torch.allclose(low.covariance().diagonal(), torch.cov(q.T).diagonal(), atol=1e-4)
    assert low.size == 12 + 3 * 12 + 12 + 1
    back = QuerySummary.from_tensors(low.tensors())
    assert torch.equal(back.factor, low.factor) and back.count == 400


REFITTED = ["aoa", "cosine", "lda", "linear", "qda"]  # fitted from every summary at once
SEQUENTIAL = ["fusion", "orth", "reg"]  # trained task by task on the newest task's pseudo-queries only


def test_every_rule_is_tested():
    assert sorted(REFITTED + SEQUENTIAL) == sorted(RULES)


@pytest.mark.parametrize("rule", REFITTED)
def test_every_rule_routes_separable_tasks_to_their_own_entry(rule):
    per_task = clustered_queries()  # summaries from the first 150 queries of each task, routing on the other 50
    summaries = [QuerySummary.from_queries(q[:150]) for q in per_task]
    router = Router.fit([f"t{i}" for i in range(4)], [1] * 4, summaries, rule, "hard", "context")
    queries = torch.cat([q[150:] for q in per_task])
    true = torch.arange(4).repeat_interleave(50)
    weights, log_probs = router.route(queries)
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(len(queries)), atol=1e-5)
    assert (weights.argmax(-1) == true).float().mean() > 0.95


@pytest.mark.parametrize("name", [*STRATEGIES, "topk1", "topk4", "topk9"])
def test_strategy_weights_sum_to_one_and_topk_uses_k(name):
    g = torch.Generator().manual_seed(1)
    log_probs = torch.randn(7, 5, generator=g).log_softmax(-1)
    means = torch.randn(5, 6, generator=g)
    true = torch.tensor([0, 1, 2, 3, 4, 0, 1])
    w = make_strategy(name, means).weights(log_probs, true)
    assert w.shape == (7, 5) and (w >= 0).all()
    assert torch.allclose(w.sum(-1), torch.ones(7))
    if name.startswith("topk"):
        assert ((w > 0).sum(-1) == min(int(name[4:]), 5)).all()
        assert torch.equal(w.argmax(-1), log_probs.argmax(-1))
    if name == "hard":
        assert torch.equal(w.argmax(-1), log_probs.argmax(-1)) and ((w > 0).sum(-1) == 1).all()
    if name == "oracle":
        assert torch.equal(w.argmax(-1), true)


def test_cluster_strategy_stays_inside_the_most_likely_group():
    means = torch.tensor([[1.0, 0.0], [0.99, 0.05], [0.0, 1.0]])  # tasks 0 and 1 look alike
    strategy = make_strategy("cluster", means)
    assert strategy.groups[0] == strategy.groups[1] != strategy.groups[2]
    probs = torch.tensor([[0.3, 0.3, 0.4]])  # the group {0, 1} holds 0.6: it wins over task 2's 0.4
    w = strategy.weights(probs.log())
    assert torch.allclose(w, torch.tensor([[0.5, 0.5, 0.0]]))


def test_unknown_strategy_and_rule_are_refused():
    with pytest.raises(BaasError, match=r"unknown strategy 'fusion' \('fusion' is a routing rule: pass --rule fusion\)"):
        make_strategy("fusion")
    with pytest.raises(BaasError, match="unknown strategy 'top3'"):
        make_strategy("top3")
    with pytest.raises(BaasError, match="unknown routing rule 'svm'"):
        Router.fit(["a"], [1], [QuerySummary.from_queries(torch.randn(5, 4))], "svm", "hard", "context")
    with pytest.raises(BaasError, match="oracle strategy needs"):
        make_strategy("oracle").weights(torch.zeros(2, 3))


def test_bank_fuses_in_prompt_space_and_refuses_mixed_entries():
    bank = PromptBank([entry("a", seed=1), entry("b", seed=2), entry("c", seed=3)])
    assert bank.prefix.shape == (3, 2, 2, 8) and bank.head["bias"].shape == (3,)
    w = torch.tensor([[1.0, 0.0, 0.0], [0.25, 0.25, 0.5]])
    pair, head = bank.fuse(w)
    assert pair.prefix.shape == (2, 2, 2, 8) and pair.suffix.shape == (2, 2, 3, 8) and head.weight.shape == (2, 8)
    assert torch.allclose(pair.prefix[0], bank.entries[0].prefix)
    assert torch.allclose(head.bias[1], 0.25 * bank.head["bias"][0] + 0.25 * bank.head["bias"][1] + 0.5 * bank.head["bias"][2])
    wide = PromptBank([entry(t, seed=i) for i, t in enumerate("abcdefg")])  # top-2 of 7: the gathering path
    sparse = make_strategy("topk2").weights(torch.randn(4, 7).log_softmax(-1))
    pair, head = wide.fuse(sparse)
    assert torch.allclose(pair.suffix, torch.einsum("be,e...->b...", sparse, wide.suffix), atol=1e-6)
    assert torch.allclose(head.weight, sparse @ wide.head["weight"], atol=1e-6)
    for other in (entry("x", d=16), entry("x", depth=1), entry("x", ls=4), entry("x", backbone="other")):
        with pytest.raises(BaasError, match="cannot be fused"):
            PromptBank([entry("a"), other])
    with pytest.raises(BaasError, match="empty"):
        PromptBank([])


def test_gated_entries_fuse_their_gates_and_do_not_mix_with_ungated_ones(tmp_path):
    gated = []
    for i, t in enumerate("abc"):
        e = entry(t, seed=i)
        e.gate = torch.tensor(-float(i + 1))
        gated.append(e)
    store = Store(tmp_path)
    store.save_entry(gated[0], "a", {})
    back = store.load_entry("a")
    assert back.gate.item() == -1.0 and back.prompt()[0].gate.tolist() == [-1.0]
    bank = PromptBank(gated)
    pair, _ = bank.fuse(torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]]))
    assert pair.gate.tolist() == [-2.0, -2.0]
    assert PromptBank([entry("x"), entry("y")]).fuse(torch.ones(1, 2) / 2)[0].gate is None
    with pytest.raises(BaasError, match="'a' \\(gated\\) and 'x' \\(no gate\\) cannot be fused"):
        PromptBank([gated[0], entry("x")])


def test_router_round_trips_through_the_store_with_checksums(tmp_path):
    summaries = [QuerySummary.from_queries(q) for q in clustered_queries(tasks=3, d=8)]
    queries = torch.randn(10, 8)
    store = Store(tmp_path / "store")
    for rule in RULES:
        router = Router.fit(["a", "b", "c"], [1, 2, 1], summaries, rule, "topk2", "context", temperature=3.0)
        path = store.save_artifact("router", f"r-{rule}", *router.state())
        back = Router.from_state(*store.load_artifact("router", f"r-{rule}"))
        assert back.tasks == ["a", "b", "c"] and back.versions == [1, 2, 1] and back.strategy.name == "topk2"
        assert back.temperature == 3.0
        assert torch.allclose(back.route(queries)[0], router.route(queries)[0])
    assert [r["name"] for r in store.artifacts("router")][0] == f"r-{list(RULES)[-1]}"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="corrupt or truncated"):
        store.load_artifact("router", f"r-{list(RULES)[-1]}")
    assert store.load_artifact("router", "never-saved") is None
    with pytest.raises(StoreError, match="invalid router name"):
        store.artifact_path("router", "../escape")


def test_one_hot_prompt_fusion_is_the_entry_itself(tiny_backbone):
    """Prompt-space fusion with all weight on one entry gives exactly that entry's logits."""
    from baas.training.batching import encode
    from baas.training.data import load_task_data
    from baas.training.scoring import logits

    bb = tiny_backbone("bert")
    d, depth = bb.hidden_size, bb.num_layers
    bank = PromptBank([entry(t, d=d, depth=depth, seed=i, backbone=bb.name) for i, t in enumerate("abc")])
    examples = load_task_data("demo_opposites", max_eval=12).eval.examples
    encoded = encode(examples, bb.tokenizer, 48)
    for j in range(3):
        w = torch.zeros(len(encoded), 3)
        w[:, j] = 1
        fused = logits(bb, encoded, lambda idx: bank.fuse(w[idx]), "mean_input")
        alone = logits(bb, encoded, bank.single(j), "mean_input")
        assert torch.allclose(fused, alone, atol=1e-5)
    mixed = torch.tensor([[0.5, 0.5, 0.0]]).expand(len(encoded), -1)
    assert not torch.allclose(logits(bb, encoded, lambda idx: bank.fuse(mixed[idx]), "mean_input"),
                              logits(bb, encoded, bank.single(0), "mean_input"))


def test_temperature_spreads_the_weights():
    summaries = [QuerySummary.from_queries(q) for q in clustered_queries(tasks=3, d=8)]
    queries = torch.randn(20, 8)
    sharp, mild = (Router.fit(["a", "b", "c"], [1] * 3, summaries, "lda", "soft", "context", temperature=t) for t in (1.0, 20.0))
    entropy = lambda w: -(w * w.clamp(min=1e-12).log()).sum(-1).mean()  # noqa: E731
    assert entropy(mild.route(queries)[0]) > entropy(sharp.route(queries)[0])
    assert torch.equal(mild.route(queries)[0].argmax(-1), sharp.route(queries)[0].argmax(-1))
    with pytest.raises(BaasError, match="temperature must be positive"):
        Router.fit(["a"], [1], summaries[:1], "lda", "soft", "context", temperature=0)


def test_tasks_join_one_by_one_without_earlier_text(tiny_backbone, tmp_path, monkeypatch):
    """Each task's summary is made when it is trained; a later router is fitted from summaries alone."""
    from baas.training import fusion
    from baas.training.data import load_task_data
    from baas.training.trainer import TrainConfig, train_pair

    bb, store = tiny_backbone("bert"), Store(tmp_path)
    config = TrainConfig(epochs=1, batch_size=8, prefix_len=2, suffix_len=2, max_length=48)
    names = ["demo_categories", "demo_opposites", "demo_animal_sounds"]
    for i, name in enumerate(names):
        train_pair(name, load_task_data(name, max_train=24, max_eval=16), bb, store, config)
        assert [a["name"] for a in store.artifacts("summary")][0] == f"{name}@v1-{fusion.DEFAULT_QUERY.slug}"

        def no_text(*args, **kwargs):
            raise AssertionError("a router read a task's questions")

        with monkeypatch.context() as m:  # fitting the router after task i reads no task's text
            m.setattr(fusion, "load_task_data", no_text)
            m.setattr(fusion, "query_vectors", no_text)
            router = fusion.fit_router(fusion.load_bank(store, bb), bb, store, "lda", "hard")
        assert router.tasks == names[: i + 1]


def test_a_new_entry_keeps_its_answers_for_fused_evaluation(tiny_backbone, tmp_path, monkeypatch):
    """The trainer's final evaluation runs the new entry once on its evaluation split and keeps the answers with
    it: fused evaluation (the protocol's oracle, `baas fuse`) reads them instead of running them again, and
    gets the trainer's accuracy."""
    from baas.training import answers, fusion
    from baas.training.data import load_task_data
    from baas.training.trainer import TrainConfig, train_pair

    bb, store = tiny_backbone("bert"), Store(tmp_path)
    data = load_task_data("demo_categories", max_train=24, max_eval=16)
    result = train_pair("demo_categories", data, bb, store, TrainConfig(epochs=1, batch_size=8, prefix_len=2,
                                                                       suffix_len=2, max_length=48))
    bank = fusion.load_bank(store, bb)
    router = fusion.fit_router(bank, bb, store, "lda", "hard")
    evals = fusion.eval_set(bank, [data], bb, store, fusion.DEFAULT_QUERY)

    def no_pass(*args, **kwargs):
        raise AssertionError("the new entry was run again on its evaluation split")

    monkeypatch.setattr(answers, "logits", no_pass)
    results = fusion.evaluate_fused(bank, router, bb, evals, ["hard"], ["output"], store=store)
    oracle = next(r for r in results if r["strategy"] == "oracle")
    assert oracle["per_task"][0]["accuracy"] == result["accuracy"] and oracle["per_task"][0]["n"] == 16
    from baas.training.trainer import evaluate_entry  # eval-task reads them too

    assert evaluate_entry("demo_categories", data, bb, store)["accuracy"] == result["accuracy"]


def test_sequential_attention_forgets_and_its_continual_variants_hold_on():
    per_task = clustered_queries(tasks=5, d=64)  # room for every task's protected subspace (9 directions each)
    summaries = [QuerySummary.from_queries(q[:150]) for q in per_task]
    queries, true = torch.cat([q[150:] for q in per_task]), torch.arange(5).repeat_interleave(50)
    accuracy = {}
    for rule in SEQUENTIAL:
        routed = Router.fit(list("abcde"), [1] * 5, summaries, rule, "hard", "context").route(queries)[0].argmax(-1)
        accuracy[rule] = float((routed == true).float().mean())
        assert (routed[true == 4] == 4).float().mean() > 0.9  # the newest task is always learned
    assert accuracy["fusion"] < 0.4  # plain sequential training sends nearly everything to the newest task
    assert accuracy["reg"] > accuracy["fusion"] + 0.1 and accuracy["orth"] > accuracy["fusion"] + 0.1


def test_fused_evaluation_mixes_tasks_with_different_option_counts(tiny_backbone, tmp_path):
    """Tasks with 2 and 4 options in one evaluation; the oracle is each entry alone on its own task."""
    from dataclasses import replace

    from baas.training.batching import encode
    from baas.training.data import load_task_data
    from baas.training.fusion import EvalSet, evaluate_fused
    from baas.training.metrics import mcq_metrics
    from baas.training.scoring import predict

    bb = tiny_backbone("bert")
    bank = PromptBank([entry(t, d=bb.hidden_size, depth=bb.num_layers, seed=i, backbone=bb.name, max_length=48)
                       for i, t in enumerate("ab")])
    four = load_task_data("demo_categories", max_eval=12).eval.examples
    two = [replace(e, options=(e.options[e.label], e.options[(e.label + 1) % 4]), label=0)
           for e in load_task_data("demo_opposites", max_eval=10).eval.examples]
    encoded = [encode(part, bb.tokenizer, 48) for part in (four, two)]
    evals = EvalSet(encoded[0] + encoded[1], torch.tensor([0] * 12 + [1] * 10), torch.randn(22, 4), ["test", "test"],
                    0.0, 0, [(0, 12, "four"), (12, 22, "two")])
    summaries = [QuerySummary.from_queries(torch.randn(30, 4) + i) for i in range(2)]
    router = Router.fit(["a", "b"], [1, 1], summaries, "lda", "soft", "x")
    store = Store(tmp_path)
    results = evaluate_fused(bank, router, bb, evals, ["hard", "soft"], ["prompt", "output"], store=store)
    assert {(r["strategy"], r["space"]) for r in results} >= {("oracle", "both"), ("soft", "prompt"), ("soft", "output")}
    oracle = next(r for r in results if r["strategy"] == "oracle")
    for j, part in enumerate(encoded):
        alone = mcq_metrics([e.label for e in part], predict(bb, part, bank.single(j), "mean_input"))["accuracy"]
        assert oracle["per_task"][j]["accuracy"] == alone
    again = evaluate_fused(bank, router, bb, evals, ["hard", "soft"], ["prompt", "output"], store=store)  # from the cache
    assert [r["mean_accuracy"] for r in again] == [r["mean_accuracy"] for r in results]
    # One task alone (2 options, where the mixed set was 4 wide) reads the blocks the mixed run kept: no entry pass.
    from baas.training import answers

    def no_pass(*args, **kwargs):
        raise AssertionError("an entry was run again on questions whose answers are kept")

    alone = EvalSet(encoded[1], torch.tensor([1] * 10), evals.queries[12:], ["test", "test"], 0.0, 0, [(0, 10, "two")])
    with pytest.MonkeyPatch.context() as m:
        m.setattr(answers, "logits", no_pass)
        [oracle_alone] = [r for r in evaluate_fused(bank, router, bb, alone, ["hard"], ["output"], store=store)
                          if r["strategy"] == "oracle"]
    assert oracle_alone["per_task"][0]["accuracy"] == oracle["per_task"][1]["accuracy"]
    for r in results:  # shares of questions print as they should: 1/6 is 0.16666666666666666, not float32's 0.1666666716
        assert r["routing_accuracy"] == round(r["routing_accuracy"] * 22) / 22
        assert r["entries_per_question"] == round(r["entries_per_question"] * 22) / 22
        for t in r["per_task"]:
            for key in ("accuracy", "oracle_accuracy", "routing_accuracy"):
                assert t[key] == round(t[key] * t["n"]) / t["n"], (r["strategy"], key, t[key])


def test_a_saved_router_knows_when_the_bank_has_moved_on(tmp_path):
    """A router records the entries it was fitted on (name, version, checksum): an entry gone or changed since
    makes it refuse, one it does not know is named; each in one line with the router, the entry and what to do."""
    from dataclasses import replace

    from baas.training.fusion import router_problems, routers_using

    store = Store(tmp_path)
    for i, t in enumerate("ab"):
        store.save_entry(entry(t, seed=i), t, {})
    summaries = [QuerySummary.from_queries(q) for q in clustered_queries(tasks=2, d=8)]
    fitted = Router.fit(["a", "b"], [1, 1], summaries, "lda", "hard", "context",
                        checksums=[store.describe(t, 1)["sha256"] for t in "ab"])
    store.save_artifact("router", "hard", *fitted.state())
    router = Router.from_state(*store.load_artifact("router", "hard"))
    assert router.checksums == fitted.checksums and router.selection is None and router.space == "prompt"
    assert router_problems(router, store, "hard") == []

    store.save_entry(entry("c", seed=3), "c", {})  # a new entry (bank import --name c, train-task c)
    assert router_problems(router, store, "hard") == [
        "router 'hard' does not know entry c@v1 (added after it was fitted), so it never routes there; rerun `baas fuse` "
        "(in Python: Bank.fuse) to include it"]
    store.save_entry(entry("a", seed=4), "a", {})  # a newer version of an entry it uses
    [line] = router_problems(router, store, "hard")
    assert "entries a@v2 (newer than the v1 it uses), c@v1 (added after it was fitted)," in line  # in bank order
    assert router_problems(replace(router, selection=["a@v1", "b"]), store, "hard") == []  # fitted on what was asked for

    assert routers_using(store, "b") == ["hard"] and routers_using(store, "b", 2) == [] and routers_using(store, "c") == []
    store.remove("b")
    with pytest.raises(BaasError, match=r"^router 'hard' is stale: it was fitted on b@v1, which is no longer in the bank; "
                                        r"rerun `baas fuse`"):
        router_problems(router, store, "hard")
    store.save_entry(entry("b", seed=9), "b", {})  # b@v1 again, but another file
    with pytest.raises(BaasError, match=r"fitted on b@v1, which is another file now \(changed since\); rerun `baas fuse`"):
        router_problems(router, store, "hard")
    legacy = replace(router, checksums=None)  # a router saved before checksums were kept: versions only
    assert "a@v2" in router_problems(legacy, store, "hard")[0]


def test_the_newest_of_routers_saved_in_the_same_instant_is_the_last_saved(tmp_path, monkeypatch):
    summaries = [QuerySummary.from_queries(q) for q in clustered_queries(tasks=2, d=8)]
    router = Router.fit(["a", "b"], [1, 1], summaries, "lda", "hard", "context")
    store = Store(tmp_path)
    monkeypatch.setattr("baas.store.artifacts.time.time", lambda: 1000.0)  # a coarse clock: every save at one time
    for name in ("soft", "hard", "cluster", "topk2"):
        store.save_artifact("router", name, *router.with_strategy(name).state())
    assert [a["name"] for a in store.artifacts("router")] == ["topk2", "cluster", "hard", "soft"]
    store.save_artifact("router", "hard", *router.state())  # saved again: the newest
    assert store.artifacts("router")[0]["name"] == "hard"

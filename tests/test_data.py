"""Adapters read the hub layouts (shared pack files, hub rows, fixtures), validate rows, and say what they did."""

import json
from pathlib import Path

import pytest

from baas.training import data as data_mod
from baas.training.data import REGISTRY, MAX_OPTIONS, load_task_data
from baas.prompts_bank.errors import DataError

FIXTURES = Path(__file__).parent / "fixtures"
PACK = ["medqa", "medmcqa", "mmlu", "arc_easy", "arc_challenge", "openbookqa", "commonsense_qa", "qasc", "dream", "cosmos_qa"]


@pytest.mark.parametrize("name", PACK)
def test_every_shared_dataset_loads(name, shared_mcq):
    d = load_task_data(name, shared_mcq)
    for split in (d.train, d.validation, d.eval):
        assert split.examples and split.skipped == 0
        for e in split.examples:
            assert 2 <= len(e.options) <= MAX_OPTIONS and 0 <= e.label < len(e.options) and e.question
    # Gold answers are not all in one slot (an adapter that always returned 0 would pass the checks above).
    assert len({e.label for e in d.train.examples}) > 1
    if name == "commonsense_qa":
        assert d.eval_split == "validation" and any("no labelled test split" in n for n in d.notes)
    else:
        assert d.eval_split == "test"


def test_topics_and_explanations_come_from_fields(shared_mcq):
    assert load_task_data("mmlu", shared_mcq).train.examples[0].topic
    assert load_task_data("commonsense_qa", shared_mcq).train.examples[0].topic
    assert load_task_data("qasc", shared_mcq).train.examples[0].explanation
    assert "\n" in load_task_data("dream", shared_mcq).train.examples[0].context
    assert load_task_data("cosmos_qa", shared_mcq).train.examples[0].context


@pytest.mark.parametrize("name", ["race", "sciq"])
def test_fixture_datasets_in_hub_layout(name):
    d = load_task_data(name, FIXTURES)
    assert len(d.train.examples) == 2 and d.eval_split == "test"
    e = d.train.examples[0]
    assert e.options[e.label] in {"Every morning", "carbon dioxide"}


def test_sciq_answer_position_is_spread_and_stable():
    labels = [e.label for e in load_task_data("sciq", FIXTURES).train.examples]
    assert labels == [e.label for e in load_task_data("sciq", FIXTURES).train.examples]


def test_hub_rows_go_through_the_same_adapter(monkeypatch, shared_mcq):
    """A hub Dataset with the same rows as the local file yields the same examples."""
    import datasets

    rows = [json.loads(line) for line in (shared_mcq / "arc_easy" / "validation.jsonl").read_text().splitlines()[:20]]
    calls = []

    def fake_load(path, config=None, split=None):
        calls.append((path, config, split))
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    hub = REGISTRY["arc_easy"].load("validation", None)
    local = REGISTRY["arc_easy"].load("validation", shared_mcq)
    assert calls == [("allenai/ai2_arc", "ARC-Easy", "validation")]
    assert hub.examples == local.examples[:20]


def test_offline_hub_error_says_where_it_looked(monkeypatch):
    import datasets

    def offline(*a, **k):
        raise ConnectionError("Couldn't reach the Hugging Face Hub")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match=r"allenai/ai2_arc.*--data-dir DIR.*arc_easy/\{train,validation,test\}.jsonl"):
        load_task_data("arc_easy")
    # A data directory without the dataset's folder says so at once; the hub is only for runs without one.
    with pytest.raises(DataError, match=rf"no folder {FIXTURES / 'arc_easy'} in the data directory.*give no data directory"):
        load_task_data("arc_easy", FIXTURES)


def _write(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


GOOD = {"question": "Which is hot?", "options": ["ice", "fire"], "label": 1}


def test_malformed_row_names_file_line_and_field(tmp_path):
    bad = dict(GOOD, label=7)
    f = _write(tmp_path / "mine" / "train.jsonl", [GOOD, GOOD, bad])
    with pytest.raises(DataError) as info:
        load_task_data("mine", tmp_path)
    assert str(info.value).startswith(f"{f}:3: field 'label': expected an answer index in 0..1, got 7")


@pytest.mark.parametrize("row, field", [
    ("{not json", "<line>"),
    ({"question": "q?", "options": "a,b", "label": 0}, "options"),
    ({"question": "q?", "options": ["a"], "label": 0}, "options"),
    ({"question": "q?", "options": ["a", "b"], "answer": "c"}, "answer"),
    ({"options": ["a", "b"], "label": 0}, "question"),
    ({"question": "q?", "options": ["a", "b"], "label": 0, "answer": "b"}, "answer"),  # label and answer disagree
])
def test_each_kind_of_bad_row_is_reported(tmp_path, row, field):
    _write(tmp_path / "mine" / "train.jsonl", [GOOD, row])
    with pytest.raises(DataError, match=rf"train.jsonl:2: field '{field}'"):
        load_task_data("mine", tmp_path)


def test_a_byte_order_mark_is_not_part_of_the_first_row(tmp_path):
    f = _write(tmp_path / "mine" / "train.jsonl", [GOOD, dict(GOOD, question="Which is cold?", label=0)])
    f.write_bytes(b"\xef\xbb\xbf" + f.read_bytes())
    d = load_task_data("mine", tmp_path)
    assert sorted(e.question for e in d.train.examples + d.validation.examples) == ["Which is cold?", "Which is hot?"]
    agreeing = dict(GOOD, answer="fire")  # label and answer together are fine when they agree
    _write(tmp_path / "two" / "train.jsonl", [agreeing, agreeing])
    assert {e.label for e in load_task_data("two", tmp_path).train.examples} <= {1}


def test_skip_invalid_skips_and_counts(tmp_path):
    _write(tmp_path / "mine" / "train.jsonl", [GOOD, "{oops", dict(GOOD, label=-1)] + [GOOD] * 20)
    d = load_task_data("mine", tmp_path, skip_invalid=True)
    assert any("skipped 2 invalid rows" in n for n in d.notes)
    assert len(d.train.examples) + len(d.validation.examples) == 21


def test_missing_validation_is_carved_from_train_and_said(tmp_path):
    rows = [dict(GOOD, id=str(i), question=f"Which is hot {i}?") for i in range(200)]
    _write(tmp_path / "mine" / "train.jsonl", rows)
    d = load_task_data("mine", tmp_path)
    assert 5 < len(d.validation.examples) < 40
    assert not {e.id for e in d.validation.examples} & {e.id for e in d.train.examples}
    assert any("10% of train held out" in n for n in d.notes) and d.eval_split == "validation"


def test_up_to_ten_options(tmp_path):
    _write(tmp_path / "mine" / "train.jsonl", [{"question": "pick", "options": [str(i) for i in range(10)], "answer": "9"}])
    assert load_task_data("mine", tmp_path).train.examples[0].label == 9


def test_unknown_dataset_and_missing_data_dir(tmp_path):
    with pytest.raises(DataError, match="unknown dataset 'nope'"):
        load_task_data("nope", tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_task_data("arc_easy", tmp_path / "missing")


def test_max_train_is_a_fixed_subset(shared_mcq):
    a = load_task_data("mmlu", shared_mcq, max_train=50).train.examples
    b = load_task_data("mmlu", shared_mcq, max_train=50).train.examples
    assert a == b and len({e.topic for e in a}) > 5  # not just the first subject of a sorted file


def test_data_dir_from_environment(monkeypatch):
    monkeypatch.setenv("BAAS_DATA_DIR", str(FIXTURES))
    assert load_task_data("race").train.source.endswith("race/train.jsonl")


def test_dataset_table_lists_adapters(shared_mcq):
    rows = {r["name"]: r for r in data_mod.dataset_table(shared_mcq)}
    assert set(PACK) | {"race", "sciq", "demo_categories"} <= set(rows)
    assert rows["race"]["source"].startswith("hub ehovy/race")
    assert rows["arc_easy"]["source"] == str(shared_mcq / "arc_easy")

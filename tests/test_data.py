"""Adapters read the hub layouts (shared pack files, hub rows, fixtures), validate rows, and say what they did."""

import json
from pathlib import Path

import pytest

from baas.training.data import REGISTRY, MAX_OPTIONS, JsonlAdapter, dataset_table, load_task_data
from baas.training.data.loading import _hash_fraction
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
    f = _write(tmp_path / "mine" / "train.jsonl", [GOOD, dict(GOOD, question="Which is hotter?"), bad])
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
    d = JsonlAdapter("mine").load("train", tmp_path)
    assert sorted(e.question for e in d.examples) == ["Which is cold?", "Which is hot?"]
    agreeing = dict(GOOD, answer="fire")  # label and answer together are fine when they agree
    _write(tmp_path / "two" / "train.jsonl", [agreeing, dict(agreeing, question="Which burns?")])
    assert {e.label for e in JsonlAdapter("two").load("train", tmp_path).examples} == {1}


def test_skip_invalid_skips_and_counts(tmp_path):
    _write(tmp_path / "mine" / "train.jsonl", [GOOD, "{oops", dict(GOOD, label=-1)]
           + [dict(GOOD, question=f"Which is hot {i}?") for i in range(20)])
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
    assert JsonlAdapter("mine").load("train", tmp_path).examples[0].label == 9


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
    rows = {r["name"]: r for r in dataset_table(shared_mcq)}
    assert set(PACK) | {"race", "sciq", "demo_categories"} <= set(rows)
    assert rows["race"]["source"].startswith("hub ehovy/race")
    assert rows["arc_easy"]["source"] == str(shared_mcq / "arc_easy")


def _ids(n: int, held: bool) -> list[str]:
    """n ids that the 10% hold-out takes (held) or leaves in train."""
    return [i for i in map(str, range(10_000)) if (_hash_fraction(i) < 10) == held][:n]


def test_a_small_train_without_validation_is_refused_up_front_and_a_small_validation_is_said(tmp_path):
    """5 to 10 questions and no validation file: the 10% hold-out is often empty, and training then ended in
    `max() arg is an empty sequence`. Now the load refuses with what is needed."""
    rows = [dict(GOOD, id=i, question=f"Which is hot {i}?") for i in _ids(8, held=False)]
    _write(tmp_path / "mine" / "train.jsonl", rows)
    with pytest.raises(DataError) as info:
        load_task_data("mine", tmp_path)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'mine' / 'train.jsonl'}: no validation split, and holding out 10% of the 8 "
                              "training questions leaves no validation question")
    assert f"give {tmp_path / 'mine' / 'validation.jsonl'}" in message and "or more training questions" in message
    _write(tmp_path / "held" / "train.jsonl", [dict(GOOD, id=i) for i in _ids(1, held=True)])
    with pytest.raises(DataError, match="leaves no training question"):
        load_task_data("held", tmp_path)
    # With a validation file of 5 questions it loads, and says the best epoch rests on those 5.
    _write(tmp_path / "mine" / "validation.jsonl", [dict(GOOD, id=f"v{i}", question=f"Which is warm {i}?") for i in range(5)])
    d = load_task_data("mine", tmp_path)
    assert len(d.train.examples) == 8 and len(d.validation.examples) == 5
    assert any(n.startswith("validation has only 5 questions") and "best epoch and the reported accuracy" in n for n in d.notes)
    _write(tmp_path / "mine" / "validation.jsonl", [dict(GOOD, id=f"v{i}", question=f"Which is warm {i}?") for i in range(30)])
    assert not any("validation has only" in n for n in load_task_data("mine", tmp_path, max_eval=5).notes)  # a cap is chosen


@pytest.mark.parametrize("rows, line, message", [
    ([dict(GOOD, id="a"), dict(GOOD, id="b", question="Which is cold?"), dict(GOOD, id="a", question="Which is warm?")],
     3, "field 'id': an id not used before in the split; 'a' is also the id of line 1"),
    ([GOOD, dict(GOOD, question="Which is cold?"), GOOD], 3, "the same row as line 1"),
    ([GOOD, dict(GOOD, label=0)], 2, "the same question and options as line 1"),  # no ids: made from the text
    ([GOOD, {"question": "Which is wet?", "options": ["water", "sand", "water"], "label": 0}], 2,
     "field 'options': expected distinct option texts, got 'water' twice"),
    ([GOOD, {"question": "Which is wet?", "options": ["water", "sand"]}], 2,
     "field 'label': a label or an answer is needed (give 'label', the right option's index, or 'answer', its text)"),
])
def test_repeated_rows_ids_and_options_and_a_missing_answer_are_errors_or_skipped(tmp_path, rows, line, message):
    f = _write(tmp_path / "mine" / "train.jsonl", rows)
    with pytest.raises(DataError) as info:
        JsonlAdapter("mine").load("train", tmp_path)
    assert str(info.value) == f"{f}:{line}: {message} (use --skip-invalid to skip bad rows)"
    split = JsonlAdapter("mine").load("train", tmp_path, skip_invalid=True)
    assert split.skipped == 1 and len(split.examples) == len(rows) - 1


def test_a_published_dataset_keeps_a_repeated_option_and_says_so(tmp_path):
    """commonsense_qa, medmcqa and mmlu publish a few questions whose options repeat a text; they are kept as published
    (so results compare with the literature) and counted in the notes, where baas's own format refuses them."""
    row = {"id": "q1", "question": "Where?", "question_concept": "place", "answerKey": "B",
           "choices": {"label": ["A", "B", "C"], "text": ["home", "office", "home"]}}
    rows = [row] + [dict(row, id=f"q{i}", question=f"Where {i}?", choices={"label": ["A", "B"], "text": ["x", "y"]})
                    for i in range(2, 40)]
    _write(tmp_path / "copy" / "train.jsonl", rows)
    _write(tmp_path / "copy" / "validation.jsonl", rows)
    d = load_task_data("copy", tmp_path, format="commonsense_qa")
    assert d.train.examples[0].options == ("home", "office", "home") and d.train.repeated_options == 1
    assert "2 questions repeat an option text, as the dataset publishes them (kept)" in d.notes

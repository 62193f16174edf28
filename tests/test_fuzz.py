"""Property-based tests (hypothesis) over everything that reads user data: the jsonl reader, every dataset
adapter, the tokenising step, task names and entry references. The property is always the same: a valid
result, or one `BaasError`-family error that names what was wrong; never another exception."""

import json
import string

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is a dev dependency (pip install -e '.[dev]')")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from baas.prompts_bank.errors import BaasError  # noqa: E402
from baas.store import TASK_NAME, StoreError, parse_entry_ref, validate_task_name  # noqa: E402
from baas.training.batching import encode  # noqa: E402
from baas.training.data import MAX_OPTIONS, MIN_OPTIONS, REGISTRY, JsonlAdapter, Row, RowError, read_questions  # noqa: E402

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Odd text: NUL and other controls, lone surrogates (as JSON escapes allow), right-to-left marks, combining
# characters, zero-width characters, emoji, and plain text; sometimes huge.
ODD = st.sampled_from(["\x00", "\ud800", "\udfff", "\u200f", "\u202e", "\u0301", "\u200b", "\ufeff", "🐄", "\n", "\t", " "])
TEXT = st.one_of(
    st.text(max_size=30),
    st.lists(st.one_of(ODD, st.text(string.ascii_letters, max_size=5)), max_size=12).map("".join),
    st.just("x " * 1500),
)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True), TEXT)
JSON = st.recursive(SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=12), st.dictionaries(TEXT, inner, max_size=6)),
                    max_leaves=30)
ADAPTERS = sorted(n for n in REGISTRY if not n.startswith("demo_"))

# A valid row of each adapter's layout, the start of every mutation below.
KEYED = {"question": "Which gas do plants take in?", "choices": {"text": ["oxygen", "carbon dioxide", "helium"],
                                                                 "label": ["A", "B", "C"]}, "answerKey": "B"}
VALID = {
    "arc_easy": dict(KEYED, id="a1"), "arc_challenge": dict(KEYED, id="a2"),
    "openbookqa": {"id": "o1", "question_stem": KEYED["question"], "choices": KEYED["choices"], "answerKey": "B"},
    "commonsense_qa": dict(KEYED, id="c1", question_concept="plants"),
    "qasc": dict(KEYED, id="q1", fact1="Plants need CO2.", fact2="CO2 is a gas."),
    "mmlu": {"question": KEYED["question"], "choices": ["oxygen", "carbon dioxide"], "answer": 1, "subject": "biology"},
    "medqa": {"question": "Q?", "options": {"A": "one", "B": "two"}, "answer_idx": "B", "answer": "two"},
    "medmcqa": {"id": "m1", "question": "Q?", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": 2,
                "subject_name": "Anatomy"},
    "dream": {"id": 1, "dialogue_id": "d1", "dialogue": ["M: Hi.", "W: Hello."], "question": "Who spoke first?",
              "choice": ["the man", "the woman", "nobody"], "answer": "the man"},
    "cosmos_qa": {"id": "x1", "context": "It rained.", "question": "Why wet?", "answer0": "rain", "answer1": "sun",
                  "answer2": "wind", "answer3": "snow", "label": 0},
    "race": {"example_id": "r1", "article": "Text.", "question": "Q?", "options": ["a", "b", "c", "d"], "answer": "C"},
    "sciq": {"question": "Q?", "correct_answer": "a", "distractor1": "b", "distractor2": "c", "distractor3": "d",
             "support": "S."},
    "jsonl": {"id": "j1", "question": "Q?", "options": ["yes", "no"], "label": 1},
}


def _adapter(name):
    return JsonlAdapter("fuzzed") if name == "jsonl" else REGISTRY[name]


def _converts_or_says_why(adapter, raw):
    """The property every adapter keeps: a valid example, or a RowError naming a field."""
    try:
        example = adapter.convert(Row(raw))
    except RowError as exc:
        assert str(exc).startswith("field '"), exc
        return None
    assert MIN_OPTIONS <= len(example.options) <= MAX_OPTIONS
    assert all(o.strip() for o in example.options) and example.question.strip()
    assert example.label is None or 0 <= example.label < len(example.options)
    return example


def test_every_adapter_has_a_valid_row_here():
    assert set(VALID) == set(ADAPTERS) | {"jsonl"}, "a new adapter needs its valid row in VALID"
    for name, row in VALID.items():
        assert _converts_or_says_why(_adapter(name), row) is not None, name


@FUZZ
@given(name=st.sampled_from(sorted(VALID)), raw=JSON)
def test_any_json_value_gives_a_row_or_a_field_error(name, raw):
    _converts_or_says_why(_adapter(name), raw)


MUTATION = st.one_of(
    st.tuples(st.just("drop"), st.none()),
    st.tuples(st.just("set"), JSON),
    st.tuples(st.just("set"), st.integers(-5, 15)),  # labels and indices out of range
    st.tuples(st.just("set"), st.lists(TEXT, max_size=12)),  # 0, 1, 10, 11 options and odd texts
)


@FUZZ
@given(name=st.sampled_from(sorted(VALID)), data=st.data())
def test_valid_rows_with_fields_dropped_retyped_or_out_of_range(name, data):
    row = json.loads(json.dumps(VALID[name]))
    for _ in range(data.draw(st.integers(1, 3))):
        fields = sorted(row) + ["extra"]
        field = data.draw(st.sampled_from(fields))
        kind, value = data.draw(MUTATION)
        if kind == "drop":
            row.pop(field, None)
        else:
            row[field] = value
    _converts_or_says_why(_adapter(name), row)


@FUZZ
@given(lines=st.lists(st.one_of(JSON.map(json.dumps), st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
                                st.just(json.dumps(VALID["jsonl"]))), max_size=8),
       skip=st.booleans())
def test_a_jsonl_file_loads_or_names_file_and_line(tmp_path_factory, lines, skip):
    folder = tmp_path_factory.mktemp("data")
    (folder / "fuzzed").mkdir()
    path = folder / "fuzzed" / "train.jsonl"
    path.write_text("\n".join(line.replace("\n", " ").replace("\r", " ") for line in lines) + "\n", encoding="utf-8",
                    errors="surrogatepass")
    try:
        split = JsonlAdapter("fuzzed").load("train", folder, skip_invalid=skip)
    except BaasError as exc:
        message = str(exc)
        assert str(path) in message and "\n" not in message
        return
    good = sum(1 for line in lines if line.strip() == json.dumps(VALID["jsonl"]))
    assert len(split.examples) >= min(good, 1)  # (a repeat of the valid row is itself a bad row)
    assert split.skipped == 0 or skip


@FUZZ
@given(lines=st.lists(st.one_of(JSON.map(json.dumps), st.just(json.dumps({"question": "Q?", "options": ["a", "b"]}))),
                      min_size=1, max_size=6))
def test_questions_to_answer_read_or_fail_with_file_and_line(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("q") / "questions.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    try:
        examples, labelled = read_questions(path)
    except BaasError as exc:
        assert str(path) in str(exc)
        return
    assert examples and all(e.label is None for e in examples) != labelled or not examples


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(question=TEXT, context=TEXT, options=st.lists(TEXT, min_size=2, max_size=4), max_length=st.integers(8, 64))
def test_tokenising_odd_text_gives_rows_or_a_clear_length_error(tiny_backbone, question, context, options, max_length):
    from baas.training.data import make_example

    try:
        example = make_example("f1", question, options, 0, label_field="label", options_field="options", context=context)
    except RowError:
        return
    try:
        (encoded,) = encode([example], tiny_backbone("bert").tokenizer, max_length)
    except BaasError as exc:
        assert "--max-length" in str(exc)
        return
    assert len(encoded.options) == len(example.options) and all(len(r) <= max_length for r in encoded.options)


@FUZZ
@given(name=TEXT)
def test_task_names_never_leave_their_folder(name):
    try:
        valid = validate_task_name(name)
    except StoreError as exc:
        assert "invalid task name" in str(exc)
        return
    assert TASK_NAME.match(valid) and "/" not in valid and "\\" not in valid and not valid.startswith(".")
    for ref in (f"{name}@v{len(name)}", f"{name}@{name}"):
        try:
            task, version = parse_entry_ref(ref)
        except StoreError:
            continue
        assert task == valid and (version is None or version >= 1)


def test_a_lone_surrogate_is_named_with_file_line_and_field(tmp_path):
    """Found by the fuzzer: JSON may spell a lone surrogate, which crashed the tokenizer with a TypeError."""
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "train.jsonl").write_text(json.dumps(VALID["jsonl"]) + "\n"
                                                  + '{"question": "Why \\ud800?", "options": ["a", "b"], "label": 0}\n')
    with pytest.raises(BaasError, match=r"train.jsonl:2: field 'question': expected valid Unicode text, found a lone surrogate"):
        JsonlAdapter("odd").load("train", tmp_path)
    assert JsonlAdapter("odd").load("train", tmp_path, skip_invalid=True).skipped == 1

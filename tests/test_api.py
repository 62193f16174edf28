"""The Python API: the README's example runs as written, and the pieces it stands on."""

import re
from pathlib import Path

import pytest

import baas

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_api_example_runs_as_written(capsys):
    section = README.read_text().split("### Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, "README.md (Python API)", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == baas.__version__
    assert printed[1].startswith("demo_categories ") and printed[2].startswith("demo_opposites ")
    assert "[('demo_categories', 1), ('demo_opposites', 1)]" in printed[3]
    assert len(printed) == 6  # one line per answer


def test_unlabelled_questions_and_clear_errors(tmp_path):
    from baas.training.api import questions

    qs = questions([{"question": "Which is hot?", "options": ["ice", "fire"]},
                    {"question": "Which is cold?", "options": ["ice", "fire"], "answer": "ice"}])
    assert [q.label for q in qs] == [None, 0]
    with pytest.raises(baas.BaasError, match="has no options"):
        questions(["Which is hot?"], None)
    with pytest.raises(baas.BaasError, match="unknown setting"):
        baas.train_task("demo_categories", store=tmp_path, epoch=1)
    with pytest.raises(baas.BaasError, match="no router"):
        baas.Bank(tmp_path).predict("Which is hot?", ["ice", "fire"])
    with pytest.raises(AttributeError):
        baas.no_such_name  # noqa: B018

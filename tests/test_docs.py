"""The README leads and docs/ holds the rest: the README stays short and links every page of docs/, every
relative link in README.md and docs/*.md reaches a file (and, with `#anchor`, a heading there), and every
repository file the pages name in backticks exists. (`benchmarks/...` paths: tests/test_benchmarks.py.)
Fast: reads text only."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE_PATH = re.compile(r"`((?:training|router|store|cli|prompts_bank|tests)/[A-Za-z0-9_./]*)")


def anchors(page: Path) -> set[str]:
    """GitHub's ids for a page's headings: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    heads = re.findall(r"^#+ (.*)$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


def test_readme_is_short_and_links_every_page():
    text = README.read_text()
    assert len(text.splitlines()) < 200
    assert DOCS, "docs/ holds no page"
    unlinked = [p.name for p in DOCS if f"](docs/{p.name}" not in text]
    assert not unlinked, f"README links no docs/{unlinked}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, f"{page.relative_to(ROOT)}:\n" + "\n".join(broken)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_named_code_paths_exist(page):
    named = {m.rstrip("./") for m in CODE_PATH.findall(page.read_text())}
    missing = sorted(n for n in named if not (ROOT / n).exists())
    assert not missing, f"{page.relative_to(ROOT)} names files that are not there: {missing}"


def test_anchor_rule():
    page = ROOT / "docs" / "gpus.md"
    assert "gpus---device-and---precision" in anchors(page)

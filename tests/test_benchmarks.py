"""The benchmarks folder stays legible: every script compiles, every script is in benchmarks/README.md's
tables, and every `benchmarks/...` path the README files and the result tables name exists. Fast: no
benchmark runs, nothing is imported."""

import itertools
import py_compile
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
SCRIPTS = sorted(p for p in BENCHMARKS.rglob("*") if p.suffix in (".py", ".sh") and "results" not in p.parts)
PATH = re.compile(r"benchmarks/(?:[A-Za-z0-9_./*-]|\{[^}]*\})*(?:[A-Za-z0-9_/*]|\{[^}]*\})")


def named_paths(text: str) -> set[str]:
    """The `benchmarks/...` paths in a text, with `{a,b}` alternatives expanded."""
    found = set()
    for match in PATH.findall(text):
        parts = re.split(r"\{([^}]*)\}", match)  # literal, alternatives, literal, ...
        options = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
        found |= {"".join(choice) for choice in itertools.product(*options)}
    return found


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted(BENCHMARKS.rglob("*.md"))]


def test_there_are_scripts_in_every_folder():
    folders = {p.parent.relative_to(BENCHMARKS).as_posix() for p in SCRIPTS}
    assert {"perf", "accuracy", "routing", "continual", "probes"} <= folders
    assert not [p.name for p in SCRIPTS if p.parent == BENCHMARKS], "scripts belong in a subfolder of benchmarks/"


@pytest.mark.parametrize("script", [p for p in SCRIPTS if p.suffix == ".py"], ids=lambda p: p.relative_to(BENCHMARKS).as_posix())
def test_python_scripts_compile(script, tmp_path):
    py_compile.compile(str(script), cfile=str(tmp_path / "out.pyc"), doraise=True)


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
@pytest.mark.parametrize("script", [p for p in SCRIPTS if p.suffix == ".sh"], ids=lambda p: p.relative_to(BENCHMARKS).as_posix())
def test_shell_scripts_parse(script):
    ran = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr


def test_every_script_is_in_the_benchmarks_readme():
    readme = (BENCHMARKS / "README.md").read_text()
    missing = [p.relative_to(BENCHMARKS).as_posix() for p in SCRIPTS if f"`{p.name}`" not in readme]
    assert not missing, f"not in benchmarks/README.md: {missing}"


def test_named_benchmark_paths_exist():
    assert named_paths("`benchmarks/results/fuse_speed.{json,md}`, benchmarks/perf/x.py.") == {
        "benchmarks/results/fuse_speed.json", "benchmarks/results/fuse_speed.md", "benchmarks/perf/x.py"}
    missing = []
    for doc in documents():
        for name in sorted(named_paths(doc.read_text())):
            if not (list(ROOT.glob(name)) if "*" in name else (ROOT / name).exists()):
                missing.append(f"{doc.relative_to(ROOT)}: {name}")
    assert not missing, "paths named but not there:\n" + "\n".join(missing)

"""The library's layout holds: the packages import one way (cli -> training -> {router, store} -> prompts_bank,
never back), no two files import each other through any chain, every file stays under 400 lines, pyproject
lists every package, and one training loop serves everything."""

import ast
from pathlib import Path

import pytest

from baas.prompts_bank.reparam import REPARAMETERISERS
from baas.training.config import REPARAMS

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {
    "prompts_bank": set(),
    "store": {"prompts_bank"},
    "router": {"prompts_bank"},
    "training": {"prompts_bank", "store", "router"},
    "cli": {"prompts_bank", "store", "router", "training"},
}


def baas_imports(path: Path) -> set[str]:
    """The baas subpackages a file imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
        found |= {n.split(".")[1] for n in names if n.startswith("baas.") and n.count(".") >= 1}
    return found


def test_imports_run_one_way():
    wrong = []
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for imported in baas_imports(path) - allowed - {package}:
                wrong.append(f"{path.relative_to(ROOT)} imports baas.{imported}")
    assert not wrong, "\n".join(wrong)


# The library's folders and the modules they are installed as (pyproject's package-dir).
LIBRARY = {"baas": "baas", "router": "baas.router", "prompts_bank": "baas.prompts_bank", "training": "baas.training",
           "cli": "baas.cli", "store": "baas.store"}
MAX_LINES = 400


def library_modules(root: Path, folders: dict[str, str]) -> dict[str, Path]:
    """Module name -> file, for every .py under the folders (a package is its __init__.py)."""
    modules = {}
    for folder, name in folders.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = path.relative_to(root / folder).with_suffix("").parts
            modules[".".join([name, *parts[:-1]] + ([] if parts[-1] == "__init__" else [parts[-1]]))] = path
    return modules


def import_graph(root: Path, folders: dict[str, str]) -> dict[str, set[str]]:
    """Module -> the library modules it imports: every `import` and `from ... import`, at the top or inside a
    function, relative ones resolved. `from P import x` counts as importing the module P.x when there is one,
    else P itself. (The __init__ of a package Python runs on the way to a module is not counted.)"""
    modules = library_modules(root, folders)
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                for alias in node.names:  # `import a.b.c`: the deepest of a.b.c, a.b, a that is a library module
                    parts = alias.name.split(".")
                    edges.update([m for m in (".".join(parts[:i]) for i in range(len(parts), 0, -1)) if m in modules][:1])
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                source = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    edges.update([m for m in (f"{source}.{alias.name}", source) if m in modules][:1])
        graph[name] = edges - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each as a sorted list of nodes."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def package_graphs(graph: dict[str, set[str]], packages: set[str]) -> dict[str, dict[str, set[str]]]:
    """Per package, the imports between its children (a subpackage counts as one node with all it holds)."""
    def child(package: str, module: str) -> str | None:
        return f"{package}.{module[len(package) + 1:].split('.')[0]}" if module.startswith(package + ".") else None

    out = {}
    for package in packages:
        edges = out[package] = {}
        for name, imported in graph.items():
            if (node := child(package, name)) is not None:
                edges.setdefault(node, set()).update(c for c in (child(package, m) for m in imported) if c not in (None, node))
    return out


def test_no_import_cycle_between_files():
    found = cycles(import_graph(ROOT, LIBRARY))
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_no_import_cycle_between_subpackages():
    """One level up: inside each package, its modules and subpackages (each taken whole) import one way too."""
    modules = library_modules(ROOT, LIBRARY)
    packages = {m for m, p in modules.items() if p.name == "__init__.py"}
    found = [c for package, g in package_graphs(import_graph(ROOT, LIBRARY), packages).items() for c in cycles(g)]
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_cycle_detector_finds_a_planted_cycle(tmp_path):
    """a -> b (relative, inside a function) -> sub.c (absolute) -> a (`import`) is a cycle; d only imports."""
    (tmp_path / "lib" / "sub").mkdir(parents=True)
    for name, text in {"__init__.py": "", "a.py": "def f():\n    from .b import g\n", "b.py": "from pkg.sub.c import h\n",
                       "sub/__init__.py": "", "sub/c.py": "import pkg.a\nimport os\n", "d.py": "from . import a, b\n"}.items():
        (tmp_path / "lib" / name).write_text(text)
    graph = import_graph(tmp_path, {"lib": "pkg"})
    assert graph["pkg.d"] == {"pkg.a", "pkg.b"}
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c"]]
    (tmp_path / "lib" / "sub" / "c.py").write_text("import os\n")
    assert cycles(import_graph(tmp_path, {"lib": "pkg"})) == []
    assert cycles({"x": {"y"}, "y": {"x"}, "z": {"x"}}) == [["x", "y"]]
    # one level up: lib's child `sub` (taken whole) and `b` import each other although no two files do
    graph = {"pkg.b": {"pkg.sub.c"}, "pkg.sub.c": set(), "pkg.sub.e": {"pkg.b"}}
    assert cycles(graph) == [] and cycles(package_graphs(graph, {"pkg"})["pkg"]) == [["pkg.b", "pkg.sub"]]


def test_library_files_are_short():
    long = [f"{p.relative_to(ROOT)}: {n} lines" for p in library_modules(ROOT, LIBRARY).values()
            if (n := len(p.read_text().splitlines())) >= MAX_LINES]
    assert not long, f"library files of {MAX_LINES} lines or more:\n" + "\n".join(long)


def test_pyproject_lists_every_package():
    """setuptools installs only the packages listed: a subpackage left out is missing from a `pip install .`."""
    tomllib = pytest.importorskip("tomllib")
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setup["package-dir"] == {name: folder for folder, name in LIBRARY.items()}  # the folders this test reads
    packages = {m for m, p in library_modules(ROOT, LIBRARY).items() if p.name == "__init__.py"}
    assert sorted(setup["packages"]) == sorted(packages)


def test_reparam_names_match_the_config():
    assert tuple(REPARAMETERISERS) == REPARAMS


# Where a training loop may live: the one in training/loop.py (`fit`, `train_step`), which every method and
# benchmark trains through. router/rules.py is exempt: its LinearRule (LBFGS) and SequentialAttention (Adam)
# fit a router's small routing classifier on pseudo-queries sampled from the tasks' stored summaries; they
# fit a router, never a task's prompt, adapter or head on its questions.
LOOP_HOMES = {"training/loop.py", "router/rules.py"}
LOOP_FREE = ("training", "benchmarks", "cli", "router", "store", "prompts_bank", "baas")
LOOP_ONLY = {"clip_grad_norm_", "clip_grad_value_", "lr_factor", "zero_grad"}


def training_loop_calls(source: str) -> list[str]:
    """The calls in `source` that only a training loop makes: an optimiser's step (`x.step()`, or `step` on
    anything named like an optimiser), zeroing gradients, gradient clipping, the learning-rate schedule."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        optimiser_step = name == "step" and isinstance(func, ast.Attribute) and (
            not (node.args or node.keywords) or "opt" in ast.unparse(func.value).lower())
        if name in LOOP_ONLY or optimiser_step:
            found.append(f"line {node.lineno}: {ast.unparse(func)}(")
    return found


def test_the_detector_finds_a_training_loop():
    loop = """
for batch in batches:
    for group, base in zip(optimizer.param_groups, base_lrs):
        group["lr"] = base * lr_factor(step, total, warmup)
    loss = F.cross_entropy(model(batch), batch.labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, clip)
    optimizer.step()
"""
    assert len(training_loop_calls(loop)) == 4
    assert training_loop_calls("self.opt.step(closure)") and training_loop_calls("scheduler.step()")
    assert not training_loop_calls("reporter.step(label, done)")  # a progress bar's step is no optimiser's
    for home in sorted(LOOP_HOMES):  # each home really holds a loop (an exemption that is no longer needed goes)
        assert training_loop_calls((ROOT / home).read_text()), home


def test_one_training_loop():
    """Every trained thing (baas's pairs, the continual methods and baselines, the benchmarks) trains through
    training/loop.py: no other file steps an optimiser, clips gradients or schedules the learning rate."""
    wrong = []
    for folder in LOOP_FREE:
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if name not in LOOP_HOMES:
                wrong += [f"{name} {call}" for call in training_loop_calls(path.read_text())]
    assert not wrong, "a training loop outside training/loop.py:\n" + "\n".join(wrong)

"""The packages import one way: cli -> training -> {router, store} -> prompts_bank, never back."""

import ast
from pathlib import Path

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


def test_reparam_names_match_the_config():
    assert tuple(REPARAMETERISERS) == REPARAMS

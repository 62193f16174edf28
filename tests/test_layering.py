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

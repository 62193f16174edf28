"""The continual-learning protocol behind `baas eval-forgetting`: tasks learned one after another, the accuracy
matrix R[k][i] filled as they go, the methods compared on the same data, order and budget, and the report.

    context.py   Settings, Budget (what decides the figures) and the Context every method shares
    method.py    the Method base, and learner_metrics / fit over training/loop.py's one loop and evaluator
    methods/     one module per family of methods; registry.py: METHODS, every method by key
    results.py   the results file DIR/cells.jsonl (cells and steps as they come: a rerun resumes)
    protocol.py  run_protocol: every method over every order, task by task
    summary.py   the report object: metrics, intervals, the learnable-task view, findings
    report.py    the report folder: report.json, report.md, report.csv, and the figures of plots.py
    plots.py     accuracy_matrix.png and forgetting_curves.png; replot.py redraws them from a report.json

What each method keeps (stated in the report, counted from the tensors):
    baas       one frozen bank entry (pair + head) per task and the entry's query summary; a router
               refitted from the summaries after each task (never an earlier task's text)
    oracle     the same bank, each question sent to its own task's entry (needs the task id)
    naive      one pair and head trained on every task in turn: the lower bound
    ewc        the same, with an EWC penalty (diagonal Fisher, summed over tasks) against drifting from
               what earlier tasks needed
    multitask  one pair and head trained jointly on all tasks at once: the upper bound; it has no
               sequence, so only the last row of its matrix exists
    and the PEFT baselines (prompt_tuning, prefix_tuning, p_tuning, lora, adalora, dora, olora), full_ft, and
    the reference rows zero_shot and st_ft (see their modules under methods/).
"""

from baas.training.continual.context import DEFAULT_ORDER, Budget, Context, Settings
from baas.training.continual.method import Method, fit, learner_metrics
from baas.training.continual.methods.baas import Baas
from baas.training.continual.methods.ewc import EWC
from baas.training.continual.methods.sequential import Naive
from baas.training.continual.protocol import run_protocol
from baas.training.continual.registry import BASELINES, METHODS
from baas.training.continual.report import markdown, write_report
from baas.training.continual.results import Results
from baas.training.continual.summary import build_report, findings

__all__ = ["DEFAULT_ORDER", "Budget", "Context", "Settings", "Method", "fit", "learner_metrics", "Baas", "EWC", "Naive",
           "run_protocol", "BASELINES", "METHODS", "markdown", "write_report", "Results", "build_report", "findings"]

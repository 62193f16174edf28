"""The eval-forgetting report's two figures, drawn from the report object (summary.py) with matplotlib:
`accuracy_matrix.png` (each method's R[k][i] as a heatmap) and `forgetting_curves.png` (each task's accuracy over
the sequence, with its 95% Wilson interval and its chance level). Methods whose matrices are identical share
one panel. replot.py redraws a results folder's figures from its report.json."""

from __future__ import annotations

import json
import math
from pathlib import Path

from baas.training.metrics import wilson_interval

CELL_PT = 8  # the smallest type in a figure: cell numbers, ticks, legend


def panels(report: dict) -> list[tuple[str, dict]]:
    """(title, method) per panel, first order: methods with the same accuracy matrix share one panel, titled
    with all their names ('baas = baas:cluster')."""
    groups: dict[str, list[str]] = {}
    for name, m in report["methods"].items():
        groups.setdefault(json.dumps(m["accuracy_matrix"]), []).append(name)
    return [(" = ".join(names), report["methods"][names[0]]) for names in groups.values()]


def intervals(m: dict) -> list[list[list[float] | None]]:
    """Each cell's 95% Wilson interval: the report's own, else from the cell's accuracy and question count,
    else None (reports without counts)."""
    R = m["accuracy_matrix"]
    if m.get("accuracy_interval_matrix"):
        return m["accuracy_interval_matrix"]
    counts = m.get("n_matrix") or [[None] * len(row) for row in R]
    return [[None if a is None or not n else wilson_interval(round(a * n), n) for a, n in zip(row, ns)]
            for row, ns in zip(R, counts)]


def _grid(count: int) -> tuple[int, int]:
    cols = min(count, 2 if count <= 4 else 3)
    return math.ceil(count / cols), cols


def _span(report: dict) -> tuple[float, float]:
    values = [v for m in report["methods"].values() for row in m["accuracy_matrix"] for v in row if v is not None]
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    return (low - 0.01, high + 0.01) if high - low < 0.02 else (low, high)


def accuracy_matrix_figure(report: dict):
    """One heatmap per panel: rows after training task k, columns the task evaluated; the colour scale spans the
    data (shared by every panel), each cell's value printed, undefined cells hatched and marked '–'."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    order, shown = report["orders"][0], panels(report)
    T = len(order)
    rows, cols = _grid(len(shown))
    side = max(2.6, 0.34 * T + 1.3)  # a cell wide enough for '0.45' in 8 pt
    fig, axes = plt.subplots(rows, cols, figsize=(side * cols + 1.2, side * rows), squeeze=False, layout="constrained")
    low, high = _span(report)
    norm, cmap = Normalize(low, high), plt.get_cmap("viridis").with_extremes(bad="white")
    for ax, (title, m) in zip(axes.flat, shown):
        grid = [[math.nan if v is None else v for v in row] for row in m["accuracy_matrix"]]
        image = ax.imshow(grid, norm=norm, cmap=cmap)
        ax.set_title(title, fontsize=10)
        ax.set_xticks(range(T), order, rotation=45, ha="right", rotation_mode="anchor", fontsize=CELL_PT)
        ax.set_yticks(range(T), order, fontsize=CELL_PT)
        ax.set_xlabel("evaluated on", fontsize=CELL_PT + 1)
        ax.set_ylabel("after training", fontsize=CELL_PT + 1)
        for k in range(T):
            for i in range(T):
                value = grid[k][i]
                if math.isnan(value):
                    ax.add_patch(plt.Rectangle((i - 0.5, k - 0.5), 1, 1, fill=False, hatch="///", edgecolor="0.75",
                                               linewidth=0))
                    ax.text(i, k, "–", ha="center", va="center", fontsize=CELL_PT, color="0.4")
                elif T <= 12:
                    ax.text(i, k, f"{value:.2f}", ha="center", va="center", fontsize=CELL_PT,
                            color="black" if norm(value) > 0.6 else "white")
    for ax in list(axes.flat)[len(shown):]:
        ax.axis("off")
    fig.colorbar(image, ax=axes, shrink=min(0.8, 0.9 / rows + 0.2), label="accuracy (scale: the data's range)")
    fig.supxlabel("hatched '–': not measured or not defined (the oracle before a task's entry exists; multitask before "
                  "the last row; cells no metric reads)", fontsize=CELL_PT, color="0.35")
    return fig


def forgetting_curves_figure(report: dict):
    """One panel per (deduplicated) method: each task's accuracy after each task trained (x ticks: the task
    trained), from the task's own step on, with 95% Wilson bars; the cell just before it (forward transfer) is a
    hollow marker not joined to the curve; the task's chance level a dotted line in its colour."""
    import matplotlib.pyplot as plt

    order, shown = report["orders"][0], panels(report)
    T = len(order)
    rows, cols = _grid(len(shown))
    width = max(3.4, 0.4 * T + 1.2)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, 3.0 * rows + 0.9), squeeze=False, sharey=True,
                             layout="constrained")
    colours = plt.get_cmap("tab10" if T <= 10 else "tab20")
    for ax, (title, m) in zip(axes.flat, shown):
        R, bars = m["accuracy_matrix"], intervals(m)
        for i, task in enumerate(order):
            colour, dodge = colours(i % colours.N), 0.25 * (i - (T - 1) / 2) / max(T - 1, 1)  # bars side by side
            xs = [k for k in range(i, T) if R[k][i] is not None]
            ax.hlines(report["chance"][task], i - 0.3, T - 0.7, colors=[colour], linestyles=":", linewidth=1)
            if xs:
                low = [R[k][i] - bars[k][i][0] if bars[k][i] else 0 for k in xs]
                high = [bars[k][i][1] - R[k][i] if bars[k][i] else 0 for k in xs]
                ax.errorbar([k + dodge for k in xs], [R[k][i] for k in xs], yerr=[low, high], color=colour, marker="o", markersize=3,
                            linewidth=1.2, elinewidth=0.7, capsize=2, label=task)
            if i > 0 and R[i - 1][i] is not None:  # forward transfer: before the task is trained, not on its curve
                ax.plot([i - 1 + dodge], [R[i - 1][i]], linestyle="none", marker="o", markersize=4, markerfacecolor="none",
                        color=colour)
        ax.set_title(title, fontsize=10)
        ax.set_xticks(range(T), order, rotation=45, ha="right", rotation_mode="anchor", fontsize=CELL_PT)
        ax.set_xlim(-0.5, T - 0.5)
        ax.set_xlabel("after training", fontsize=CELL_PT + 1)
        ax.set_ylabel("accuracy", fontsize=CELL_PT + 1)
        ax.tick_params(axis="y", labelsize=CELL_PT)
        ax.grid(axis="y", linewidth=0.3, color="0.85")
    for ax in list(axes.flat)[len(shown):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(T, 5), fontsize=CELL_PT,
               title="task (bars: 95% Wilson interval; dotted: its chance; hollow: before it is trained)",
               title_fontsize=CELL_PT)
    return fig


def plots(report: dict, out: Path) -> list[Path]:
    """accuracy_matrix.png and forgetting_curves.png in `out`; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for name, draw in (("accuracy_matrix.png", accuracy_matrix_figure), ("forgetting_curves.png", forgetting_curves_figure)):
        fig = draw(report)
        paths.append(Path(out) / name)
        fig.savefig(paths[-1], dpi=150)
        plt.close(fig)
    return paths

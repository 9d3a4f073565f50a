"""The cost curves of a run as one PNG: a panel per curve, the figure and its baseline
(measured in the same run) against the amount of work, both axes logarithmic where the
work spans more than a factor of ten, so growth reads at a glance (a straight line of
slope 1 grows in proportion; flatter is better)."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt

if TYPE_CHECKING:
    from bench.harness import Result


def curves(results: list[Result]) -> dict[str, list[Result]]:
    """Points of each curve, in the order of their x."""
    found: dict[str, list[Result]] = defaultdict(list)
    for result in results:
        if result.curve and result.x is not None:
            found[result.curve].append(result)
    return {name: sorted(points, key=lambda r: r.x or 0.0) for name, points in found.items()}


def plot_curves(results: list[Result], path: Path) -> Path | None:
    """Write the PNG; None (and no file) when the run measured no curve."""
    found = curves(results)
    if not found:
        return None
    columns = 2 if len(found) > 1 else 1
    rows = math.ceil(len(found) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(6.4 * columns, 4.2 * rows), squeeze=False)
    for ax, (name, points) in zip(axes.flat, found.items(), strict=False):
        xs = [p.x or 0.0 for p in points]
        ax.plot(xs, [p.value for p in points], "o-", label="measured")
        with_base = [p for p in points if p.baseline is not None]
        if with_base:
            ax.plot(
                [p.x or 0.0 for p in with_base],
                [p.baseline or 0.0 for p in with_base],
                "s--",
                label=f"baseline: {with_base[0].baseline_name}",
            )
            for p in with_base:
                if p.ratio is not None:
                    ax.annotate(f"{p.ratio:.2f}x", (p.x or 0.0, p.value), fontsize=8)
        if xs and min(xs) > 0 and max(xs) / min(xs) > 10:
            ax.set_xscale("log")
        values = [p.value for p in points] + [p.baseline or 0.0 for p in with_base]
        if values and min(values) > 0 and max(values) / min(values) > 10:
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)  # from zero: a 1 % wobble must not look like a cliff
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(points[0].x_label)
        ax.set_ylabel(points[0].unit)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(found) :]:
        ax.set_visible(False)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path

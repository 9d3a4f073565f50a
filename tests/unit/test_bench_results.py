"""The bench's bookkeeping: targets read as met or not, ratios to an earlier run, and the
curves' plot (no speed is measured here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.compare import compare
from bench.harness import Result, Run, write_report


@pytest.mark.parametrize(
    ("target", "value", "baseline", "met"),
    [
        (">= 0.7x echo", 50.0, 100.0, False),
        (">= 0.7x echo", 80.0, 100.0, True),
        ("< 5 ms", 4.0, None, True),
        ("<= 0.05x (tokens cost under 5 %)", 1.0, 10.0, False),
        (">= 10,000 warnings/s at 100,000", 12_000.0, None, True),
        (">= 0.5x", 10.0, None, None),  # a ratio target without a baseline: cannot say
        ("", 1.0, 1.0, None),
    ],
)
def test_a_target_is_read_from_its_text(
    target: str, value: float, baseline: float | None, met: bool | None
) -> None:
    assert Result("s", "figure", value, "u", baseline, target=target).met is met


def test_results_are_written_plotted_and_compared(tmp_path: Path) -> None:
    run = Run(workdir=tmp_path)
    for x, value in ((1, 400.0), (10, 5_000.0), (100, 20_000.0)):
        point = Result("risk", f"verdicts ({x})", value, "verdicts/s", value * 2, "echo")
        point.curve, point.x, point.x_label = "verdicts/s", x, "values per message"
        run.results.append(point)
    run.results.append(Result("risk", "p99", 4.0, "ms", target="< 5 ms"))
    write_report(run, tmp_path / "a")
    assert (tmp_path / "a.png").read_bytes().startswith(b"\x89PNG")
    assert "| met |" in (tmp_path / "a.md").read_text()
    run.results[0].value, run.results[-1].value = 800.0, 8.0
    write_report(run, tmp_path / "b")
    lines = compare(tmp_path / "a.json", tmp_path / "b.json").splitlines()
    (first,) = [line for line in lines if "verdicts (1) " in line]
    (p99,) = [line for line in lines if "risk p99" in line]
    assert "2.00x  better" in first  # twice the verdicts/s
    assert "2.00x  worse" in p99  # twice the milliseconds
    assert sum("1.00x  same" in line for line in lines) == 2

"""``python -m bench --compare EARLIER.json``: every figure of this run beside the same
figure of an earlier run (matched by suite and name), with their ratio, so a change's
effect is one command away. Also ``python -m bench.compare EARLIER.json LATER.json``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

#: Units where less is better: for them a ratio below 1 is an improvement.
LOWER_IS_BETTER = {"ms", "s", "us", "bytes", "MiB", "statements", "round trips", "transactions"}


def load(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(path.read_text())
    return {(row["suite"], row["name"]): row for row in rows}


def compare(earlier: Path, later: Path) -> str:
    """The table of ratios, later / earlier, one line per figure of either run."""
    before, after = load(earlier), load(later)
    lines = [f"ratios to {earlier.name} (later / earlier; 'better' says which way is good)"]
    width = max((len(f"{s} {n}") for s, n in {*before, *after}), default=10)
    for key in sorted({*before, *after}):
        label = f"{key[0]} {key[1]}"
        old, new = before.get(key), after.get(key)
        if old is None or new is None:
            which = "later" if old is None else "earlier"
            lines.append(f"  {label:<{width}}  only in the {which} run")
            continue
        if not old["value"]:
            lines.append(f"  {label:<{width}}  earlier value 0: no ratio")
            continue
        ratio = new["value"] / old["value"]
        lower = new["unit"] in LOWER_IS_BETTER
        better = (ratio < 1) if lower else (ratio > 1)
        verdict = "same" if abs(ratio - 1) < 0.05 else "better" if better else "worse"
        lines.append(
            f"  {label:<{width}}  {old['value']:>14,.2f} -> {new['value']:>14,.2f} "
            f"{new['unit']:<12} {ratio:6.2f}x  {verdict}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(compare(Path(sys.argv[1]), Path(sys.argv[2])))

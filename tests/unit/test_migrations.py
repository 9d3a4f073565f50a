"""Every database's migrations form one line: one head, so `migrate` knows where to go.

Two branches that each add a migration after the same revision merge without a
conflict in git and then fail at start; this catches it before.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VERSION_DIRS = sorted(ROOT.glob("*/adapters/migrations/versions")) + sorted(
    ROOT.glob("services/*/adapters/migrations/versions")
)


def _revisions(directory: Path) -> dict[str, str | None]:
    """revision -> down_revision, read from each file's module-level assignments."""
    found: dict[str, str | None] = {}
    for path in directory.glob("*.py"):
        values: dict[str, object] = {}
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.AnnAssign | ast.Assign) and node.value is not None:
                targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
                for target in targets:
                    if isinstance(target, ast.Name) and isinstance(node.value, ast.Constant):
                        values[target.id] = node.value.value
        revision = values.get("revision")
        if isinstance(revision, str):
            down = values.get("down_revision")
            found[revision] = down if isinstance(down, str) else None
    return found


def test_every_service_has_migrations() -> None:
    assert len(VERSION_DIRS) >= 5


@pytest.mark.parametrize("directory", VERSION_DIRS, ids=lambda d: d.parts[-4])
def test_migrations_have_one_head_and_one_root(directory: Path) -> None:
    revisions = _revisions(directory)
    heads = set(revisions) - {down for down in revisions.values() if down}
    roots = [rev for rev, down in revisions.items() if down is None]
    assert len(heads) == 1, f"{directory}: several heads {sorted(heads)}"
    assert len(roots) == 1, f"{directory}: several roots {sorted(roots)}"
    assert all(down in revisions for down in revisions.values() if down)

"""Print pinned requirements from pyproject.toml, so the image installs exactly what it names.

    python deploy/requirements.py runtime        the [project] dependencies
    python deploy/requirements.py constraints    the same without extras (pip -c takes none)
    python deploy/requirements.py dev NAME...    the named pins from the dev extra

The Dockerfile runs it in its builder stage (standard library only: tomllib), so the
versions live in one place and the image cannot drift from ``pip install -e '.[dev]'``.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_EXTRAS = re.compile(r"\[[^\]]*\]")


def _name(requirement: str) -> str:
    match = _NAME.match(requirement.strip())
    if match is None:
        raise ValueError(f"cannot read a package name from {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def runtime(project: dict[str, object]) -> list[str]:
    deps = project.get("dependencies", [])
    if not isinstance(deps, list):
        raise ValueError("[project] dependencies must be a list")
    return [str(d) for d in deps]


def constraints(project: dict[str, object]) -> list[str]:
    """The runtime pins as a constraints file: ``pkg[extra]==1`` becomes ``pkg==1``."""
    return [_EXTRAS.sub("", r) for r in runtime(project)]


def dev(project: dict[str, object], names: list[str]) -> list[str]:
    extras = project.get("optional-dependencies", {})
    if not isinstance(extras, dict):
        raise ValueError("[project.optional-dependencies] must be a table")
    pins = {_name(r): str(r) for r in extras.get("dev", [])}
    missing = [n for n in names if _name(n) not in pins]
    if missing:
        raise KeyError(f"not in the dev extra: {', '.join(missing)}")
    return [pins[_name(n)] for n in names]


def main(argv: list[str]) -> int:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    if argv[:1] == ["runtime"] and len(argv) == 1:
        lines = runtime(project)
    elif argv[:1] == ["constraints"] and len(argv) == 1:
        lines = constraints(project)
    elif argv[:1] == ["dev"] and len(argv) > 1:
        lines = dev(project, argv[1:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

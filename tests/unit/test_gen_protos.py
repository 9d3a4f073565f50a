"""scripts/gen_protos.py leaves generated code readable by every user, whatever the umask:
the image generates it as root and runs it as uid 10001 (issue 19: a 0700 folder from
mkdtemp made every process in the image fail with ModuleNotFoundError)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from tests import harness


def modes(top: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(top.stat().st_mode)}
    for path in top.rglob("*"):
        found[str(path.relative_to(top))] = stat.S_IMODE(path.stat().st_mode)
    return found


def wrong_modes(top: Path, *, ignore: tuple[str, ...] = ()) -> list[str]:
    wrong = []
    for name, mode in modes(top).items():
        if any(part in ignore for part in Path(name).parts):
            continue
        want = 0o755 if (top / name).is_dir() else 0o644
        if mode != want:
            wrong.append(f"{name}: {oct(mode)}, want {oct(want)}")
    return wrong


def test_generated_tree_is_world_readable_under_a_strict_umask(tmp_path: Path) -> None:
    out = tmp_path / "gen" / "api"
    done = subprocess.run(
        [sys.executable, "scripts/gen_protos.py", "--out", str(out)],
        cwd=harness.ROOT,
        capture_output=True,
        text=True,
        preexec_fn=lambda: os.umask(0o077),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (out / "antifraud" / "risk" / "v1" / "risk_pb2.py").is_file()
    assert wrong_modes(out) == []
    # Nothing left behind beside it: no staging folder, no old copy.
    assert [p.name for p in out.parent.iterdir()] == ["api"]


def test_the_checkout_s_generated_tree_is_world_readable() -> None:
    # Make's stamp and Python's byte-code caches are not the generator's.
    ignore = (".generated", "__pycache__")
    assert wrong_modes(harness.ROOT / "services" / "api", ignore=ignore) == []

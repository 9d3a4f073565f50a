"""Generate Python code and type stubs from protos/ into services/api/.

The generated modules import each other as ``antifraud.x.v1``; they are
rewritten to ``services.api.antifraud.x.v1`` so the code lives inside our own
package instead of claiming a top-level ``antifraud`` name.

    python scripts/gen_protos.py              into services/api/
    python scripts/gen_protos.py --out DIR    into DIR (replaced whole)

Whatever the umask, the result is readable by everyone (folders 0755, files 0644): the
image generates it as root and runs it as an unprivileged user.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "services" / "api"
IMPORT_RE = re.compile(r"^(from|import) antifraud\.", re.MULTILINE)
DIR_MODE = 0o755
FILE_MODE = 0o644


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate Python code from protos/.")
    parser.add_argument(
        "--out", type=Path, default=OUT, help="target folder (default: %(default)s)"
    )
    out: Path = parser.parse_args(argv).out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    # Generate beside the target, then swap it in, so a concurrent import never
    # sees a half-written package. mkdtemp makes the staging folder 0700: the modes are
    # set on everything before the swap.
    staging = Path(tempfile.mkdtemp(prefix=".api-", dir=out.parent))
    try:
        if generate(staging) != 0:
            return 1
        make_readable(staging)
        old = out.with_name(f".api-old-{os.getpid()}")
        if out.exists():
            out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    shown = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    print(f"generated protos into {shown}")
    return 0


def make_readable(top: Path) -> None:
    """Folders 0755 and files 0644, from ``top`` down: readable (and folders searchable) by
    every user, writable by the owner only."""
    top.chmod(DIR_MODE)
    for path in top.rglob("*"):
        path.chmod(DIR_MODE if path.is_dir() else FILE_MODE)


def generate(out: Path) -> int:
    files = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *files,
    ]
    if protoc.main(args) != 0:
        print("protoc failed", file=sys.stderr)
        return 1
    for path in out.rglob("*.py*"):
        text = path.read_text()
        fixed = IMPORT_RE.sub(r"\1 services.api.antifraud.", text)
        if fixed != text:
            path.write_text(fixed)
    for folder in [out, *(p for p in out.rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    (out / "py.typed").touch()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Generate Python code and type stubs from protos/ into services/api/.

The generated modules import each other as ``antifraud.x.v1``; they are
rewritten to ``services.api.antifraud.x.v1`` so the code lives inside our own
package instead of claiming a top-level ``antifraud`` name.
"""

from __future__ import annotations

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


def main() -> int:
    # Generate beside the target, then swap it in, so a concurrent import never
    # sees a half-written package.
    staging = Path(tempfile.mkdtemp(prefix=".api-", dir=OUT.parent))
    try:
        if generate(staging) != 0:
            return 1
        old = OUT.with_name(f".api-old-{os.getpid()}")
        if OUT.exists():
            OUT.rename(old)
        staging.rename(OUT)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"generated protos into {OUT.relative_to(ROOT)}")
    return 0


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

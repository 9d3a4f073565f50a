"""`make bench`: every benchmark, one table, written to bench/results/.

python -m bench [--quick] [--only risk,risk_writes,report,...] [--compare EARLIER.json]

Writes bench/results/bench-<time>.json, .md and .png (the cost curves).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.compare import compare
from bench.harness import Run, h2load_available, use_token_keys, write_report
from services.common import logs

SUITES = [
    "risk",
    "risk_writes",
    "report",
    "warning",
    "screening",
    "privacy",
    "observability",
    "copies",
    "soak",
]


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("--quick", action="store_true", help="smaller data, shorter runs")
    parser.add_argument("--only", default=",".join(SUITES))
    parser.add_argument(
        "--compare", type=Path, help="an earlier results .json: print every figure's ratio to it"
    )
    args = parser.parse_args(argv)
    if args.compare is not None and not args.compare.is_file():
        print(f"bench: --compare: no file {args.compare}")
        return 2
    logs.configure(fmt="json", level="error")
    if not h2load_available():
        print("bench: h2load not found; install Debian's nghttp2-client (make bench does)")
        return 2
    run = Run(quick=args.quick)
    use_token_keys(run.workdir)
    print(f"benchmarks on {os.cpu_count()} cores; work dir {run.workdir}\n")
    took: dict[str, float] = {}
    try:
        for name in args.only.split(","):
            try:
                module = importlib.import_module(f"bench.bench_{name}")
            except ModuleNotFoundError:
                print(f"  {name}: no benchmark yet")
                continue
            print(f"[{name}]")
            started = time.monotonic()
            await module.run(run)
            took[name] = time.monotonic() - started
            print(f"  ({name}: {_minutes(took[name])})", flush=True)
    finally:
        shutil.rmtree(run.workdir, ignore_errors=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(__file__).parent / "results" / f"bench-{stamp}"
    write_report(run, out)
    print(f"\n{out.with_suffix('.md').read_text()}\nwritten to {out}.md, .json and .png")
    print("time per suite: " + ", ".join(f"{k} {_minutes(v)}" for k, v in took.items()))
    print(f"all suites: {_minutes(sum(took.values()))}")
    if args.compare is not None:
        print("\n" + compare(args.compare, out.with_suffix(".json")))
    return 0


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))

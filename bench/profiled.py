"""`antifraud serve NAME` under a profiler, for the bench: where a server's time goes.

    python -m bench.profiled serve warning

Counts every SQL statement (by its first words and table) and every commit and rollback
the process makes, with the time the driver took for them, and samples the event loop's
thread with pyinstrument every ``ANTIFRAUD_BENCH_PROFILE_INTERVAL`` seconds (0.005 unless
set; wall clock: time waiting on the network or the database shows as such). Written at
exit to ``$ANTIFRAUD_BENCH_PROFILE_DIR/<name>-sql.json``, ``<name>-profile.txt`` and
``<name>-session.pyisession`` (to render again: ``pyinstrument --load``). The bench starts
a server this way when ``ANTIFRAUD_BENCH_PROFILE`` names it (``Server`` in bench/harness.py).
"""

from __future__ import annotations

import atexit
import json
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

_TABLE = re.compile(r"\b(?:INTO|FROM|UPDATE)\s+(?:\"?\w+\"?\.)?\"?(\w+)", re.I)


_WRITTEN = re.compile(r"\b(?:INSERT\s+INTO|UPDATE)\s+(?!SET\b)(?:\"?\w+\"?\.)?\"?(\w+)", re.I)


def statement_kind(statement: str) -> str:
    """``insert warnings``, ``update deliveries``, ``select recipients``: verb and table;
    a statement that writes in a CTE, ``with <each table written>`` (``with reports+report_
    indicators``)."""
    verb = statement.split(None, 1)[0].lower() if statement.strip() else "?"
    written = _WRITTEN.findall(statement) if verb == "with" else []
    if written:
        return f"with {'+'.join(dict.fromkeys(written))}"
    table = _TABLE.search(statement)
    return f"{verb} {table.group(1)}" if table else verb


class SqlCounts:
    """Statements (and executemany rows), commits and rollbacks of every engine."""

    def __init__(self) -> None:
        self.statements: Counter[str] = Counter()
        self.rows: Counter[str] = Counter()
        self.seconds: Counter[str] = Counter()
        self.commits = 0
        self.rollbacks = 0
        self.commit_seconds = 0.0

    def install(self) -> None:
        event.listen(Engine, "before_cursor_execute", self._before)
        event.listen(Engine, "after_cursor_execute", self._after)
        event.listen(Engine, "commit", self._commit)
        event.listen(Engine, "rollback", self._rollback)

    def _before(
        self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def _after(
        self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        key = statement_kind(statement)
        self.statements[key] += 1
        self.rows[key] += len(params) if many and isinstance(params, list | tuple) else 1
        started = conn.info.pop("bench_started", None)
        if started is not None:
            self.seconds[key] += time.perf_counter() - started

    def _commit(self, conn: Any) -> None:
        self.commits += 1

    def _rollback(self, conn: Any) -> None:
        self.rollbacks += 1

    def as_json(self) -> dict[str, Any]:
        return {
            "commits": self.commits,
            "rollbacks": self.rollbacks,
            "statements": {
                k: {"count": n, "rows": self.rows[k], "seconds": round(self.seconds[k], 3)}
                for k, n in self.statements.most_common()
            },
        }


def main(argv: list[str]) -> int:
    from pyinstrument import Profiler

    from services.cli import main as cli_main

    name = argv[1] if len(argv) > 1 else "server"
    out = Path(os.environ.get("ANTIFRAUD_BENCH_PROFILE_DIR", "."))
    out.mkdir(parents=True, exist_ok=True)
    counts = SqlCounts()
    counts.install()
    profiler = Profiler(
        interval=float(os.environ.get("ANTIFRAUD_BENCH_PROFILE_INTERVAL", "0.005")),
        async_mode="disabled",
    )

    def write() -> None:
        session = profiler.stop()
        # Kept whole, to render again with other filters (``pyinstrument --load``).
        session.save(str(out / f"{name}-session.pyisession"))
        (out / f"{name}-sql.json").write_text(json.dumps(counts.as_json(), indent=2))
        (out / f"{name}-profile.txt").write_text(
            profiler.output_text(unicode=False, color=False, show_all=False)
        )

    atexit.register(write)
    profiler.start()
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

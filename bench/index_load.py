"""The risk index's load at start, timed in a fresh process as a server's start is
(``bench_risk``'s index curve).

python -m bench.index_load URL

Reads every indicator row with a plain ``SELECT *`` (the baseline), then loads the index as
the risk service does at start (``Lookup.load``), and prints
{"plain": seconds, "loaded": seconds, "indicators": n, "unloadable": n}. A process of its
own: the bench's own data (millions of values kept for the next point) would otherwise
share the heap and the garbage collector with the load being timed.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import sqlalchemy as sa

from services.common.db import Database
from services.risk.service_layer.lookup import Lookup


async def plain_read(db: Database) -> float:
    """Seconds to read every indicator row with a plain ``SELECT *``: the baseline of a
    load or a download of the whole list."""
    started = time.perf_counter()
    async with db.read() as conn:
        rows = (await conn.execute(sa.text("SELECT * FROM indicators"))).all()
    seconds = time.perf_counter() - started
    del rows
    return seconds


async def main(url: str) -> dict[str, float]:
    db = Database("risk", url=url)
    try:
        plain = await plain_read(db)
        lookup = Lookup(db)
        started = time.perf_counter()
        await lookup.load()
        loaded = time.perf_counter() - started
        return {
            "plain": plain,
            "loaded": loaded,
            "indicators": len(lookup.index),
            "unloadable": lookup.unloadable,
        }
    finally:
        await db.dispose()


if __name__ == "__main__":
    from services.common import logs

    logs.configure(fmt="json", level="error")
    print(json.dumps(asyncio.run(main(sys.argv[1]))))

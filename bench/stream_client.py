"""A load client for bidirectional streams, run as its own process by the benchmarks.

    python -m bench.stream_client ADDRESS METHOD BODY_FILE SECONDS STREAMS [ADDRESS METHOD BODY]...

Sends one pre-serialised request over and over on STREAMS concurrent streams,
keeping a bounded number in flight, and prints messages and bytes received per
second (and the messages answered while warming up) as JSON, one line per run.
Further (ADDRESS, METHOD, BODY_FILE) runs follow in turn in the same process (one
start-up for several points of a curve).
Responses are not parsed: the client must cost less than the server.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import grpc

from bench.harness import channel as channel_as

IN_FLIGHT = 8


async def one_stream(
    channel: grpc.aio.Channel, method: str, body: bytes, until: float
) -> tuple[int, int]:
    call: Any = channel.stream_stream(method, request_serializer=None, response_deserializer=None)()  # type: ignore[call-arg]
    received = 0
    size = 0
    sent = 0
    for _ in range(IN_FLIGHT):
        await call.write(body)
        sent += 1
    while True:
        response = await call.read()
        if response is grpc.aio.EOF:  # type: ignore[attr-defined]
            break
        received += 1
        size += len(response)
        if time.monotonic() < until:
            await call.write(body)
            sent += 1
        elif received == sent:
            await call.done_writing()
    return received, size


async def main(address: str, method: str, body_file: str, seconds: float, streams: int) -> None:
    with open(body_file, "rb") as f:  # noqa: ASYNC230 - before the measurement
        body = f.read()
    async with channel_as(address, "carrier:bench") as channel:
        warm_up, _ = await one_stream(channel, method, body, time.monotonic() + 0.5)
        started = time.monotonic()
        until = started + seconds
        done = await asyncio.gather(
            *(one_stream(channel, method, body, until) for _ in range(streams))
        )
        elapsed = time.monotonic() - started
    messages = sum(d[0] for d in done)
    print(
        json.dumps(
            {
                "messages_per_second": messages / elapsed,
                "bytes_per_second": sum(d[1] for d in done) / elapsed,
                "seconds": elapsed,
                # Answered while warming up, before the measurement: with ``messages_per_second``
                # times ``seconds``, every message the server answered in this run.
                "warm_up_messages": warm_up,
            }
        )
    )


async def main_all(argv: list[str]) -> None:
    seconds, streams = float(argv[3]), int(argv[4])
    runs = [tuple(argv[0:3])] + [tuple(argv[i : i + 3]) for i in range(5, len(argv), 3)]
    for address, method, body_file in runs:
        await main(address, method, body_file, seconds, streams)


if __name__ == "__main__":
    asyncio.run(main_all(sys.argv[1:]))

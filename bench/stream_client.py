"""A load client for bidirectional streams, run as its own process by the benchmarks.

    python -m bench.stream_client ADDRESS METHOD BODY_FILE SECONDS STREAMS [ADDRESS METHOD BODY]...

Sends pre-serialised requests on STREAMS concurrent streams, keeping a bounded
number in flight: BODY_FILE holds one or more messages, each a 4-byte big-endian
length and the message, sent in turn across all streams (each once before any
again), the warm-up included, and prints messages and bytes received per
second (and the messages answered while warming up) as JSON, one line per run.
Further (ADDRESS, METHOD, BODY_FILE) runs follow in turn in the same process (one
start-up for several points of a curve).
Responses are not parsed: the client must cost less than the server.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import struct
import sys
import time
from collections.abc import Iterator
from typing import Any

import grpc

from bench.harness import channel as channel_as

IN_FLIGHT = 8


async def one_stream(
    channel: grpc.aio.Channel, method: str, bodies: Iterator[bytes], until: float
) -> tuple[int, int]:
    call: Any = channel.stream_stream(method, request_serializer=None, response_deserializer=None)()  # type: ignore[call-arg]
    received = 0
    size = 0
    sent = 0
    for _ in range(IN_FLIGHT):
        await call.write(next(bodies))
        sent += 1
    while True:
        response = await call.read()
        if response is grpc.aio.EOF:  # type: ignore[attr-defined]
            break
        received += 1
        size += len(response)
        if time.monotonic() < until:
            await call.write(next(bodies))
            sent += 1
        elif received == sent:
            await call.done_writing()
    return received, size


async def main(address: str, method: str, body_file: str, seconds: float, streams: int) -> None:
    with open(body_file, "rb") as f:  # noqa: ASYNC230 - before the measurement
        framed = f.read()
    bodies: list[bytes] = []
    at = 0
    while at < len(framed):
        (size,) = struct.unpack_from(">I", framed, at)
        bodies.append(framed[at + 4 : at + 4 + size])
        at += 4 + size
    body = itertools.cycle(bodies)  # one turn shared by every stream
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

"""What every benchmark shares: servers in their own processes, load from other
processes, results as ratios to a baseline measured in the same run.

Nothing here asserts a speed; it measures and reports.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import grpc
from google.protobuf.message import Message

from services.common import lifecycle, tokens
from services.common.clients import open_channel
from services.common.config import env_key
from services.common.health_client import wait_serving
from services.common.principals import Principal
from tests.harness import free_port
from tests.speak_as import SpeakAs

ROOT = Path(__file__).resolve().parent.parent
#: A target the bench can check: a comparison, a number, and ``x`` when it is a ratio.
_TARGET = re.compile(r"\s*(>=|<=|<|>)\s*([\d,]*\.?\d+)\s*(x)?")


@dataclass
class Result:
    """One figure: its value, and the baseline it is compared with when there is one."""

    suite: str
    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: str = ""
    notes: str = ""
    #: A figure that is one point of a cost curve: the curve's name (its y axis) and where
    #: on the x axis this point lies (indicators, clients, values per message, contacts).
    curve: str = ""
    x: float | None = None
    x_label: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline  # type: ignore[operator]

    @property
    def met(self) -> bool | None:
        """Whether the target holds: ``>= 0.7x ...`` compares the ratio, ``< 5 ms ...`` the
        value; None without a target (or one that says no number)."""
        found = _TARGET.match(self.target)
        if found is None:
            return None
        op, number, times = found.groups()
        measured = self.ratio if times else self.value
        if measured is None:
            return None
        bound = float(number.replace(",", ""))
        return {">=": measured >= bound, "<=": measured <= bound,
                ">": measured > bound, "<": measured < bound}[op]  # fmt: skip

    @property
    def verdict(self) -> str:
        met = self.met
        return "" if met is None else "met" if met else "NOT met"


@dataclass
class Run:
    results: list[Result] = field(default_factory=list)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="antifraud-bench-")))
    quick: bool = False

    def add(self, result: Result) -> Result:
        self.results.append(result)
        ratio = f" ({result.ratio:.2f}x {result.baseline_name})" if result.ratio is not None else ""
        target = f"  [{result.target}: {result.verdict}]" if result.verdict else ""
        print(
            f"  {result.suite:<8} {result.name:<52} {result.value:>14,.2f} {result.unit}"
            f"{ratio}{target}",
            flush=True,
        )
        if result.notes:
            print(f"  {'':<8} {'':<52} {result.notes}", flush=True)
        return result


def median_round(ratios: list[float]) -> int:
    """The round whose ratio to its baseline is the median (the lower one of an even count):
    the figure of a point measured in rounds alternated with its baseline."""
    return sorted(range(len(ratios)), key=ratios.__getitem__)[(len(ratios) - 1) // 2]


def grpc_frame(message: Message) -> bytes:
    """A gRPC length-prefixed message, as h2load must post it."""
    body = message.SerializeToString()
    return struct.pack(">BI", 0, len(body)) + body


@dataclass
class H2Load:
    requests_per_second: float
    succeeded: int
    failed: int
    latencies_ms: list[float]

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")


def h2load_available() -> bool:
    return shutil.which("h2load") is not None


def h2load(
    address: str,
    method: str,
    body: bytes,
    *,
    requests: int,
    clients: int = 4,
    streams: int = 16,
    rps_per_client: float | None = None,
    workdir: Path,
    headers: tuple[str, ...] = (),
) -> H2Load:
    """Unary load from h2load (nghttp2): a C client in its own process, posting one gRPC frame."""
    data = workdir / "h2load-body.bin"
    data.write_bytes(body)
    log = workdir / "h2load-log.tsv"
    log.unlink(missing_ok=True)
    args = [
        "h2load",
        "-n",
        str(requests),
        "-c",
        str(clients),
        "-m",
        str(streams),
        "-d",
        str(data),
        "-H",
        "content-type: application/grpc",
        "-H",
        "te: trailers",
        *(arg for header in headers for arg in ("-H", header)),
        "--log-file",
        str(log),
        f"http://{address}{method}",
    ]
    if rps_per_client is not None:
        args[1:1] = [f"--rps={max(1, int(rps_per_client))}"]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=600).stdout
    rate = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    status = re.search(r"(\d+) succeeded, (\d+) failed", out)
    codes = re.search(r"status codes: (\d+) 2xx", out)
    latencies = [int(line.split("\t")[2]) / 1000 for line in log.read_text().splitlines() if line]
    if not (rate and status and codes):
        raise RuntimeError(f"h2load output not understood:\n{out}")
    return H2Load(float(rate.group(1)), int(status.group(1)), int(status.group(2)), latencies)


def use_token_keys(workdir: Path) -> None:
    """Signing keys for every issuer in the run's work dir, for the servers it starts (they
    inherit the environment) and for its own clients."""
    directory = workdir / "token-keys"
    os.environ["ANTIFRAUD_TOKEN_KEYS_DIR"] = str(directory)
    for issuer in sorted(tokens.ISSUERS):
        tokens.ensure_key(issuer, directory)


def bearer(principal: str, audience: str) -> str:
    """An ``authorization`` header for h2load: a token for ``principal`` at ``audience``."""
    token = tokens.Minter(tokens.keyring()).token(Principal.parse(principal), audience)
    return f"authorization: Bearer {token}"


def channel(address: str, principal: str) -> grpc.aio.Channel:
    """A channel whose calls speak as ``principal`` (or as each call's ``x-principal``)."""
    return open_channel(address, budget=600.0, propagate=SpeakAs(principal, 600.0))


class Server:
    """`antifraud serve NAME` in its own process, on a free port (or, as worker ``worker``
    of several, on the ``address`` its siblings share)."""

    def __init__(
        self,
        name: str,
        env: dict[str, str],
        workdir: Path,
        *,
        worker: int = 0,
        address: str = "",
    ) -> None:
        self.name = name
        self.worker = worker
        self.address = address or f"127.0.0.1:{free_port()}"
        self.env = {
            **os.environ,
            **env,
            f"ANTIFRAUD_{env_key(name)}_ADDR": self.address,
            f"ANTIFRAUD_{env_key(name)}_METRICS_ADDR": "off",
            "ANTIFRAUD_LOG_LEVEL": "warning",
            "ANTIFRAUD_LOG_FORMAT": "json",
            "ANTIFRAUD_DATA_DIR": str(workdir / "data"),
        }
        self.log = workdir / f"{name}{f'-{worker}' if worker else ''}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._terminated = False
        #: Run under bench/profiled.py (SQL counts, pyinstrument) when the environment's
        #: ANTIFRAUD_BENCH_PROFILE names this server; written to ANTIFRAUD_BENCH_PROFILE_DIR.
        self.profiled = name in os.environ.get("ANTIFRAUD_BENCH_PROFILE", "").split(",")

    async def start(self, timeout: float = 120) -> None:
        # The process says "ready" on a pipe once its own server is SERVING (as under
        # `antifraud up`): health on a shared address may be a sibling worker answering.
        read_end, write_end = os.pipe()
        env = {**self.env, lifecycle.READY_FD: str(write_end)}
        with open(self.log, "ab") as log:  # noqa: ASYNC230 - start-up, not a request path
            self.proc = subprocess.Popen(  # noqa: ASYNC220
                [
                    sys.executable,
                    "-m",
                    "bench.profiled" if self.profiled else "services.cli",
                    "serve",
                    self.name,
                    *(["--worker", str(self.worker)] if self.worker else []),
                ],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(write_end,),
            )
        os.close(write_end)
        with os.fdopen(read_end, "rb") as ready:
            said = await asyncio.wait_for(asyncio.to_thread(ready.readline), timeout)
        if said.strip() != b"ready":
            raise RuntimeError(f"{self.name} did not start; see {self.log}")
        await wait_serving(self.address, timeout=timeout)

    def terminate(self) -> None:
        """Ask the process to stop (SIGTERM) without waiting for it; ``stop`` waits."""
        if self.proc is not None and not self._terminated:
            self.proc.send_signal(signal.SIGTERM)
            self._terminated = True

    def stop(self) -> None:
        if self.proc is not None:
            self.terminate()
            self._terminated = False
            try:
                # A profiled server writes its profile at exit: that takes a while.
                self.proc.wait(90 if self.profiled else 10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None

    def rss_kib(self) -> int:
        assert self.proc is not None
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        return int(match.group(1)) if match else 0


@contextmanager
def servers(*items: Server) -> Iterator[None]:
    try:
        yield
    finally:
        # All asked at once, then waited for: their graceful stops overlap.
        for item in items:
            item.terminate()
        for item in items:
            item.stop()


def stream_loads(
    runs: list[tuple[str, str, bytes | list[bytes]]], *, seconds: float, streams: int
) -> list[dict[str, float]]:
    """Several stream loads in turn, (address, method, body) each, from one separate Python
    process: one start-up for all of them. A body that is a list of messages is sent in
    turn, each message once before any is sent again."""
    files: list[str] = []
    try:
        args: list[str] = []
        for address, method, body in runs:
            with tempfile.NamedTemporaryFile(suffix=".bin", delete=False) as f:
                for message in [body] if isinstance(body, bytes) else body:
                    f.write(struct.pack(">I", len(message)) + message)
            files.append(f.name)
            args += [address, method, f.name]
        out = subprocess.run(
            [sys.executable, "-m", "bench.stream_client", *args[:3], str(seconds), str(streams),
             *args[3:]],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            timeout=(seconds + 5) * len(runs) + 120,
        ).stdout  # fmt: skip
    finally:
        for name in files:
            os.unlink(name)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def write_report(run: Run, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [asdict(r) | {"ratio": r.ratio, "met": r.met} for r in run.results]
    path.with_suffix(".json").write_text(json.dumps(rows, indent=2))
    lines = [
        "| suite | figure | value | unit | baseline | ratio | target | met |",
        "| --- | --- | ---: | --- | ---: | ---: | --- | --- |",
    ]
    for r in run.results:
        base = f"{r.baseline:,.2f} ({r.baseline_name})" if r.baseline is not None else ""
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else ""
        lines.append(
            f"| {r.suite} | {r.name} | {r.value:,.2f} | {r.unit} | {base} | {ratio} | {r.target} "
            f"| {r.verdict} |"
        )
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")
    from bench.plot import plot_curves  # matplotlib only when results are written

    plot_curves(run.results, path.with_suffix(".png"))

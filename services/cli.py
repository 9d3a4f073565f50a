"""The `antifraud` command: run the suite, one service, migrations, health probes.

antifraud up                 start every service, simulator and the gateway
antifraud serve NAME         run one of them in this process
antifraud migrate [NAME...]  bring databases to the newest schema
antifraud health ADDRESS     exit 0 when the server there is SERVING
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time

from services import registry
from services.common import config, logs
from services.common.config import ServerSettings
from services.common.health_client import is_serving, wait_serving
from services.common.server import serve

STOP_TIMEOUT_SECONDS = 4.0


def _serve(args: argparse.Namespace) -> int:
    logs.configure()

    async def run() -> None:
        # Built inside the loop: channels a component opens belong to the loop that serves it.
        component = registry.build(args.name)
        await serve(component, ServerSettings.from_env(args.name, args.addr))

    asyncio.run(run())
    return 0


def _migrate(args: argparse.Namespace) -> int:
    """Migrate the named components, or every one that has a database."""
    logs.configure()

    async def run() -> None:
        for name in args.names or registry.UP_ORDER:
            component = registry.build(name)
            migrate = getattr(component, "migrate", None)
            if migrate is None:
                continue
            await migrate()
            db = getattr(component, "db", None)
            if db is not None:
                await db.dispose()
            print(f"{name}: migrated")

    asyncio.run(run())
    return 0


def _keys(args: argparse.Namespace) -> int:
    from gateway.adapters.keystore import KeyStore
    from gateway.bootstrap import VERSIONS
    from services.common.db import Database
    from services.common.principals import InvalidPrincipal, Role

    async def run() -> int:
        db = Database("gateway")
        try:
            await db.migrate(VERSIONS)
            keys = KeyStore(db)
            if args.keys_command == "create":
                try:
                    issued = await keys.create(Role(args.role), args.subject, args.description)
                except InvalidPrincipal as exc:
                    print(f"antifraud keys create: --subject: {exc}", file=sys.stderr)
                    return 2
                print(issued.token)
            elif args.keys_command == "revoke":
                if not await keys.revoke(args.key_id):
                    print(f"no active key {args.key_id}", file=sys.stderr)
                    return 1
                print(f"revoked {args.key_id}")
            else:
                for key in await keys.list():
                    state = "revoked" if key.revoked else "active"
                    role, subject = key.role.value, key.subject
                    print(f"{key.key_id}  {role:<8} {subject:<24} {state}  {key.description}")
            return 0
        finally:
            await db.dispose()

    return asyncio.run(run())


def _health(args: argparse.Namespace) -> int:
    return 0 if asyncio.run(is_serving(args.address, timeout=args.timeout)) else 1


async def _up(names: list[str]) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    started = time.monotonic()
    children: dict[str, asyncio.subprocess.Process] = {}
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name in names:
        children[name] = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.cli", "serve", name, env=env, start_new_session=True
        )
    try:
        timeout = config.env_float("UP_TIMEOUT_SECONDS", 60.0)
        await asyncio.gather(*(wait_serving(config.listen_addr(n), timeout=timeout) for n in names))
    except TimeoutError as exc:
        print(f"antifraud up: {exc}", file=sys.stderr)
        stop.set()
    else:
        width = max(len(n) for n in names)
        print(f"\nall {len(names)} servers SERVING in {time.monotonic() - started:.1f}s:")
        for name in names:
            role = registry.REGISTRY[name].role
            print(f"  {name:<{width}}  {config.listen_addr(name):<16} {role}")
        print("Ctrl-C or SIGTERM stops them all.\n", flush=True)
    exited = asyncio.ensure_future(
        asyncio.wait(
            [asyncio.ensure_future(p.wait()) for p in children.values()],
            return_when=asyncio.FIRST_COMPLETED,
        )
    )
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait([exited, stopper], return_when=asyncio.FIRST_COMPLETED)
    code = 0
    for name, proc in children.items():
        if proc.returncode is not None and not stop.is_set():
            print(
                f"antifraud up: {name} exited with {proc.returncode}; stopping all", file=sys.stderr
            )
            code = 1
    for proc in children.values():
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(
            asyncio.gather(*(p.wait() for p in children.values())), STOP_TIMEOUT_SECONDS
        )
    except TimeoutError:
        for proc in children.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        await asyncio.gather(*(p.wait() for p in children.values()))
    stopper.cancel()
    exited.cancel()
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="antifraud", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the whole suite as separate processes")
    up.add_argument("--only", nargs="*", help="start only these")
    one = sub.add_parser("serve", help="run one server")
    one.add_argument("name", choices=sorted(registry.REGISTRY))
    one.add_argument("--addr", help="listen address (default from the environment)")
    mig = sub.add_parser("migrate", help="migrate databases")
    mig.add_argument("names", nargs="*")
    probe = sub.add_parser("health", help="exit 0 when the server at ADDRESS is SERVING")
    probe.add_argument("address")
    probe.add_argument("--timeout", type=float, default=2.0)
    keys = sub.add_parser("keys", help="gateway API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it (shown once)")
    create.add_argument(
        "--role", required=True, choices=["citizen", "carrier", "bank", "analyst", "admin"]
    )
    create.add_argument(
        "--subject",
        default="",
        help="user id (citizen; empty before registration), partner or staff id",
    )
    create.add_argument("--description", default="")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    keys_sub.add_parser("list", help="list keys (never their secrets)")
    args = parser.parse_args(argv)
    if args.command == "keys":
        return _keys(args)
    if args.command == "serve":
        return _serve(args)
    if args.command == "migrate":
        return _migrate(args)
    if args.command == "health":
        return _health(args)
    return asyncio.run(_up(args.only or registry.UP_ORDER))


if __name__ == "__main__":
    sys.exit(main())

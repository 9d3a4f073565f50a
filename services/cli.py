"""The `antifraud` command: run the suite, one service, migrations, health probes.

antifraud up                 start every service, simulator and the gateway
                             (ANTIFRAUD_<NAME>_WORKERS processes each; risk and the
                             gateway default to one per core)
antifraud serve NAME         run one of them in this process
antifraud migrate [NAME...]  bring databases to the newest schema
antifraud health ADDRESS     exit 0 when the server there is SERVING
antifraud keys ...           gateway API keys
antifraud token ...          a signed token for calling a service directly (grpcurl)
antifraud token-keys ...     the keys that sign tokens between processes
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys

from services import registry, tls_command, token_command
from services.common import config, lifecycle, logs
from services.common.config import ServerSettings, SettingError
from services.common.health_client import http_ok, is_serving
from services.common.server import RunningServer, serve
from services.supervisor import Child, Supervisor, child_argv

log = logs.get_logger("antifraud")


def _serve(args: argparse.Namespace) -> int:
    logs.configure(route_native=True)
    ready = False

    def on_ready(_: RunningServer | None) -> None:
        nonlocal ready
        ready = True
        lifecycle.notify_ready()

    async def run() -> None:
        addresses = [args.addr] if args.addr else registry.listen_addresses(args.name)
        for addr in addresses:
            lifecycle.check_can_listen(addr, shared=args.worker > 0)
        if not registry.REGISTRY[args.name].grpc:
            await registry.serve_web(args.name, args.addr, lambda: on_ready(None))
            return
        # Built inside the loop: channels a component opens belong to the loop that serves it.
        component = lifecycle.build_checked(lambda: registry.build(args.name))
        _keep_for_life()  # the service's own modules, now loaded
        settings = ServerSettings.from_env(args.name, args.addr, worker=args.worker)
        await serve(component, settings, on_ready)

    try:
        asyncio.run(run())
    except Exception as exc:
        return _failed(exc, args.name, starting=not ready)
    return 0


def _keep_for_life() -> None:
    """What is loaded by now lives as long as the process: out of the garbage collector's
    reach (``gc.freeze``), so neither the collections while it runs nor the full one at exit
    walk every module's objects again (that exit alone was about a third of a second of
    CPU per process)."""
    gc.freeze()


def _failed(exc: Exception, service: str, *, starting: bool) -> int:
    """Log what stopped a process, in one line; its exit status."""
    fatal = lifecycle.fatal_start_error(exc) if starting else None
    if fatal is None:
        # A bug, not the environment: its traceback is wanted (one JSON record in JSON mode).
        log.exception("failed", service=service)
        return 1
    event, fields, status = fatal
    log.error(event, service=service, **fields)
    return status


def _migrate(args: argparse.Namespace) -> int:
    """Migrate the named components, or every one that has a database. Only the schema:
    no service is built, so no service's keys are read (a migration role needs none)."""
    from services.common.db import Database

    logs.configure()

    current = ""

    async def run() -> None:
        nonlocal current
        for name in args.names or registry.UP_ORDER:
            current = name
            versions = registry.migrations(name)
            if versions is None:
                continue
            db = Database(name)
            try:
                await db.migrate(versions)
            finally:
                await db.dispose()
            print(f"{name}: migrated")

    try:
        asyncio.run(run())
    except Exception as exc:
        return _failed(exc, current, starting=True)
    return 0


def _keys(args: argparse.Namespace) -> int:
    from gateway.adapters.keystore import KeyStore
    from gateway.bootstrap import VERSIONS
    from services.common.db import Database
    from services.common.principals import InvalidPrincipal, Role

    logs.configure()  # on stderr: stdout carries the key

    async def run() -> int:
        db = Database("gateway")
        try:
            await db.migrate(VERSIONS)
            keys = KeyStore(db)
            if args.keys_command == "create":
                try:
                    issued = await keys.create(
                        Role(args.role), args.subject, args.description, args.region
                    )
                except InvalidPrincipal as exc:
                    print(f"antifraud keys create: --subject/--region: {exc}", file=sys.stderr)
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
                    region = f"  (region {key.region})" if key.region else ""
                    print(
                        f"{key.key_id}  {role:<8} {subject:<24} {state}  {key.description}{region}"
                    )
            return 0
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except Exception as exc:  # a database it cannot reach: one line, as a server says it
        return _failed(exc, "gateway", starting=True)


def _health(args: argparse.Namespace) -> int:
    if args.http:
        return 0 if http_ok(args.address, timeout=args.timeout) else 1
    return 0 if asyncio.run(is_serving(args.address, timeout=args.timeout)) else 1


def _up(args: argparse.Namespace) -> int:
    logs.configure(route_native=True)
    names: list[str] = args.only or registry.UP_ORDER
    try:
        # Before any child starts: a port another process holds is one line, and no child
        # is started only to fail on it.
        for name in names:
            for addr in registry.listen_addresses(name):
                lifecycle.check_can_listen(addr)
    except lifecycle.StartError as exc:
        log.error("cannot start", error=str(exc))
        return lifecycle.EXIT_CANNOT_START
    children = []
    for name in names:
        label = f"{config.listen_addr(name):<16} {_role(name)}"
        count = config.workers(name)
        if count == 1:
            children.append(Child(name, child_argv(name), label=label))
            continue
        # Several processes on one port (SO_REUSEPORT), each its own server: each is
        # started, watched, restarted and stopped like any other child.
        first = Child(f"{name}-1", child_argv(name, 1), label=f"{label} (worker 1 of {count})")
        children.append(first)
        for worker in range(2, count + 1):
            children.append(
                Child(
                    f"{name}-{worker}",
                    child_argv(name, worker),
                    label=f"{label} (worker {worker} of {count})",
                    after=first,
                )
            )
    supervisor = Supervisor(
        children, grace_seconds=config.shared().grace_seconds, start_timeout=args.timeout
    )
    return asyncio.run(supervisor.run())


def _role(name: str) -> str:
    return registry.REGISTRY[name].role


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="antifraud", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the whole suite as separate processes")
    up.add_argument("--only", nargs="*", choices=sorted(registry.REGISTRY), help="start only these")
    up.add_argument(
        "--timeout", type=float, default=60.0, help="seconds for every server to be SERVING"
    )
    one = sub.add_parser("serve", help="run one server")
    one.add_argument("name", choices=sorted(registry.REGISTRY))
    one.add_argument("--addr", help="listen address (default from the environment)")
    one.add_argument(
        "--worker",
        type=int,
        default=0,
        help="worker number K >= 1: share the address with the other workers (SO_REUSEPORT)",
    )
    mig = sub.add_parser("migrate", help="migrate databases")
    mig.add_argument("names", nargs="*")
    probe = sub.add_parser("health", help="exit 0 when the server at ADDRESS is SERVING")
    probe.add_argument("address")
    probe.add_argument("--timeout", type=float, default=2.0)
    probe.add_argument(
        "--http", action="store_true", help="a web process (the console): GET /healthz instead"
    )
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
    create.add_argument(
        "--region",
        default="",
        help="an officer's region (GB/T 2260, e.g. 440300): their tasks only",
    )
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    keys_sub.add_parser("list", help="list keys (never their secrets)")
    token_command.add_parsers(sub)
    tls_command.add_parsers(sub)
    args = parser.parse_args(argv)
    _keep_for_life()  # every command's modules are loaded by now
    if args.command == "serve":
        lifecycle.die_with_supervisor()  # first: the supervisor may die at any moment
    try:
        # Every setting present, once, before anything starts.
        config.check_environment()
    except SettingError as exc:
        logs.configure_for_failure(route_native=args.command in ("serve", "up"))
        log.error("bad setting", variable=exc.variable, value=exc.value, expected=exc.expected)
        return lifecycle.EXIT_BAD_SETTING
    if args.command in ("token", "token-keys"):
        return token_command.run(args)
    if args.command == "tls-certs":
        return tls_command.run(args)
    if args.command == "up":
        return _up(args)
    if args.command == "keys":
        return _keys(args)
    if args.command == "serve":
        return _serve(args)
    if args.command == "migrate":
        return _migrate(args)
    return _health(args)


if __name__ == "__main__":
    sys.exit(main())

"""`antifraud token` and `antifraud token-keys`: debugging a service directly, and the keys.

antifraud token --role analyst --subject a1 --audience risk    a token for grpcurl
antifraud token --service report --audience risk               as a service of the suite
antifraud token-keys init                                      every issuer's first key
antifraud token-keys rotate gateway                            the issuer's next key
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from services.common import logs, tokens
from services.common.principals import InvalidPrincipal, Principal, Role

_ROLES = ["citizen", "carrier", "bank", "analyst", "admin"]


def add_parsers(sub: Any) -> None:
    token = sub.add_parser("token", help="print a signed token for calling a service directly")
    who = token.add_mutually_exclusive_group(required=True)
    who.add_argument("--role", choices=_ROLES, help="a caller the gateway vouches for")
    who.add_argument("--service", choices=sorted(tokens.ISSUERS - {tokens.GATEWAY}))
    token.add_argument("--subject", default="", help="user, partner or staff id (with --role)")
    token.add_argument(
        "--audience", required=True, help="the service called: risk, report, warning, identity"
    )
    keys = sub.add_parser("token-keys", help="the signing keys of tokens")
    keys_sub = keys.add_subparsers(dest="keys_action", required=True)
    keys_sub.add_parser("init", help="generate every issuer's first key where it has none")
    rotate = keys_sub.add_parser("rotate", help="add an issuer's next key")
    rotate.add_argument("issuer", choices=sorted(tokens.ISSUERS))


def run(args: argparse.Namespace) -> int:
    logs.configure(level="warning")  # stdout carries the token alone: TOKEN=$(antifraud token)
    if args.command == "token-keys":
        if args.keys_action == "init":
            for issuer in sorted(tokens.ISSUERS):
                tokens.ensure_key(issuer)
            print(f"token keys in {tokens.keys_dir()}")
        else:
            print(tokens.rotate(args.issuer))
        return 0
    try:
        if args.service:
            principal = Principal.service(args.service)
        else:
            principal = Principal(Role(args.role), args.subject)
    except InvalidPrincipal as exc:
        print(f"antifraud token: {exc}", file=sys.stderr)
        return 2
    issuer = tokens.issuer_for(principal)
    tokens.ensure_key(issuer)  # a machine set up by `make run` has it already
    try:
        print(tokens.Minter(tokens.keyring()).token(principal, args.audience))
    except tokens.InvalidToken as exc:
        print(f"antifraud token: {exc}", file=sys.stderr)
        return 1
    return 0

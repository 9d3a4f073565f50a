"""Sign-in, sign-out and the interface language."""

from __future__ import annotations

import hmac
import secrets

import grpc
from starlette.requests import Request
from starlette.responses import Response

from services.common.logs import get_logger
from services.console import console_metrics, i18n
from services.console.backend import BackendError
from services.console.web import (
    LANG_COOKIE,
    SIGNIN_COOKIE,
    CsrfRefused,
    begin,
    checked_form,
    console,
    current,
    end,
    field,
    language,
    peek,
    read_form,
    redirect,
    render,
    set_signin_cookie,
)

log = get_logger("console")
#: An API key is ``afk_<id>_<secret>``; nothing longer is sent on.
MAX_KEY = 200


def key_id(api_key: str) -> str:
    """``afk_<id>``: what may be shown and logged of a key (never its secret)."""
    parts = api_key.split("_")
    return "_".join(parts[:2]) if len(parts) >= 3 else "afk_?"


def _signin_page(request: Request, message: str = "", status_code: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request, "signin.html", None, status_code=status_code, message=message, token=token
    )
    set_signin_cookie(response, token)
    return response


async def signin_form(request: Request) -> Response:
    message = ""
    if request.query_params.get("expired"):
        message = "signin.expired"
    elif request.query_params.get("out"):
        message = "signin.out"
    return _signin_page(request, message)


async def signin(request: Request) -> Response:
    form = await read_form(request)
    token = str(form.get("csrf", ""))
    cookie = request.cookies.get(SIGNIN_COOKIE, "")
    if not token or not cookie or not hmac.compare_digest(token, cookie):
        console_metrics.SIGNINS.labels("csrf_refused").inc()
        raise CsrfRefused
    api_key = field(form, "api_key", MAX_KEY)
    if not api_key:
        console_metrics.SIGNINS.labels("key_invalid").inc()
        return _signin_page(request, "signin.invalid", 400)
    app = console(request)
    try:
        await app.gateway.as_person(api_key).dashboard()
    except BackendError as exc:
        if exc.code is grpc.StatusCode.PERMISSION_DENIED:
            console_metrics.SIGNINS.labels("role_refused").inc()
            log.info("sign-in refused", key=key_id(api_key), reason="role")
            return _signin_page(request, "signin.refused", 403)
        if exc.code is grpc.StatusCode.UNAUTHENTICATED:
            console_metrics.SIGNINS.labels("key_invalid").inc()
            log.info("sign-in refused", key=key_id(api_key), reason="key")
            return _signin_page(request, "signin.invalid", 401)
        console_metrics.SIGNINS.labels("unavailable").inc()
        raise
    session = app.sessions.create(api_key, key_id(api_key), language(request))
    begin(request, session)  # the answer carries it, sealed
    console_metrics.SIGNINS.labels("signed_in").inc()
    log.info("signed in", key=session.subject)
    response = redirect("/review")
    response.delete_cookie(SIGNIN_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response


async def signout(request: Request) -> Response:
    session = current(request)
    await checked_form(request, session)
    end(request)
    console_metrics.SESSIONS_ENDED.labels("signed_out").inc()
    log.info("signed out", key=session.subject)
    return redirect("/signin?out=1")


async def set_language(request: Request) -> Response:
    lang = request.path_params["lang"]
    if lang not in i18n.LANGS:
        lang = i18n.LANGS[0]
    session = peek(request)
    if session is not None:
        session.lang = lang
    response = redirect("/review" if session else "/signin")
    response.set_cookie(
        LANG_COOKIE,
        lang,
        max_age=365 * 86400,
        path="/",
        secure=True,
        httponly=True,
        samesite="strict",
    )
    return response

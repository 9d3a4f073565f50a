"""What every page shares: the session from its cookie, CSRF checks, rendering, errors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from services.console import charts, console_metrics, i18n
from services.console.backend import Backend, BackendError, Gateway
from services.console.sessions import Session, SessionSeal
from services.console.settings import ConsoleSettings

HERE = Path(__file__).parent
#: The session cookie: Secure, HttpOnly, SameSite=Strict, the whole site.
SESSION_COOKIE = "console_session"
#: The sign-in form's CSRF token before there is a session (double submit).
SIGNIN_COOKIE = "console_signin"
LANG_COOKIE = "console_lang"
#: Form limits: nothing a console form needs is larger.
MAX_FIELDS = 20
MAX_FIELD_BYTES = 8 * 1024


@dataclass
class Console:
    settings: ConsoleSettings
    sessions: SessionSeal
    gateway: Gateway
    templates: Jinja2Templates


class SignInNeeded(Exception):
    """No live session: the person signs in (again)."""

    def __init__(self, expired: bool) -> None:
        self.expired = expired


class CsrfRefused(Exception):
    """A form without the session's CSRF token, or from another origin."""


def console(request: Request) -> Console:
    found: Console = request.app.state.console
    return found


def templates() -> Jinja2Templates:
    env = Jinja2Templates(directory=HERE / "templates")
    env.env.globals["charts"] = charts
    env.env.globals["i18n"] = i18n
    return env


def language(request: Request, session: Session | None = None) -> str:
    if session is not None:
        return session.lang
    lang = request.cookies.get(LANG_COOKIE, "")
    return lang if lang in i18n.LANGS else i18n.LANGS[0]


def peek(request: Request) -> Session | None:
    """The live session of this request, if any (read once; the answer re-seals it)."""
    if "session" not in request.scope.get("state", {}):
        cookie = request.cookies.get(SESSION_COOKIE, "")
        request.state.session = console(request).sessions.open(cookie)
    found: Session | None = request.state.session
    return found


def current(request: Request) -> Session:
    """The signed-in person's live session; SignInNeeded otherwise."""
    session = peek(request)
    if session is None:
        raise SignInNeeded(expired=bool(request.cookies.get(SESSION_COOKIE, "")))
    return session


def begin(request: Request, session: Session) -> None:
    """From this answer on, the browser holds ``session``."""
    request.state.session = session


def end(request: Request) -> None:
    """The session ends: this answer deletes its cookie."""
    request.state.session = None
    request.state.session_ended = True


def backend(request: Request, session: Session) -> Backend:
    return console(request).gateway.as_person(session.api_key)


def check_origin(request: Request) -> None:
    """A browser names where a form came from; another site's form is refused."""
    origin = request.headers.get("origin")
    if origin and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise CsrfRefused


async def read_form(request: Request) -> FormData:
    check_origin(request)
    try:
        return await request.form(max_files=0, max_fields=MAX_FIELDS, max_part_size=MAX_FIELD_BYTES)
    except HTTPException:
        raise
    except Exception:  # a body that is no form at all
        raise HTTPException(400) from None


async def checked_form(request: Request, session: Session) -> FormData:
    """The form, once its CSRF token is the session's."""
    form = await read_form(request)
    if not session.csrf_ok(str(form.get("csrf", ""))):
        raise CsrfRefused
    return form


def field(form: FormData, name: str, limit: int = 1000) -> str:
    value = form.get(name, "")
    text = value if isinstance(value, str) else ""
    if len(text) > limit:
        raise HTTPException(400, f"{name}: at most {limit} characters")
    return text.strip()


def render(
    request: Request,
    template: str,
    session: Session | None,
    status_code: int = 200,
    **context: Any,
) -> Response:
    t = i18n.Translator(language(request, session))
    return console(request).templates.TemplateResponse(
        request,
        template,
        {"t": t, "session": session, "csrf": session.csrf if session else "", **context},
        status_code=status_code,
    )


def redirect(path: str) -> RedirectResponse:
    """After a POST: see the result with a GET (no form sent twice)."""
    return RedirectResponse(path, status_code=303)


def set_session_cookie(response: Response, sealed: str, max_age: float) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        sealed,
        max_age=int(max_age),
        path="/",
        secure=True,
        httponly=True,
        samesite="strict",
    )


def set_signin_cookie(response: Response, token: str) -> None:
    response.set_cookie(
        SIGNIN_COOKIE, token, max_age=3600, path="/", secure=True, httponly=True, samesite="strict"
    )


_ERRORS = {
    grpc.StatusCode.PERMISSION_DENIED: (403, "error.forbidden"),
    grpc.StatusCode.NOT_FOUND: (404, "error.not_found"),
    grpc.StatusCode.UNAVAILABLE: (503, "error.unavailable"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (503, "error.unavailable"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "error.unavailable"),
}


def delete_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")


def error_page(request: Request, exc: BackendError) -> Response:
    """A refusal from the gateway, said in the person's language."""
    session = peek(request)
    if exc.code is grpc.StatusCode.UNAUTHENTICATED:
        console_metrics.SESSIONS_ENDED.labels("revoked").inc()
        end(request)  # the key was revoked: the session ends with it
        return redirect("/signin?expired=1")
    status, key = _ERRORS.get(exc.code, (400, "error.invalid"))
    detail = exc.message if key == "error.invalid" else ""
    return render(request, "error.html", session, status_code=status, key=key, detail=detail)

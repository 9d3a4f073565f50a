"""The console's web application: routes, error pages, and what it is built from."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from services.common.keys import load_service
from services.console import (
    auth_pages,
    case_pages,
    console_metrics,
    figure_pages,
    review_pages,
    task_pages,
)
from services.console.backend import BackendError, Gateway
from services.console.headers import SecurityHeaders, SessionCookie
from services.console.sessions import SessionSeal
from services.console.settings import ConsoleSettings
from services.console.web import (
    HERE,
    Console,
    CsrfRefused,
    SignInNeeded,
    end,
    error_page,
    peek,
    redirect,
    render,
    templates,
)


async def home(request: Request) -> Response:
    return redirect("/review")


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def _signin_needed(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInNeeded)
    if not exc.expired:
        return redirect("/signin")
    console_metrics.SESSIONS_ENDED.labels("expired").inc()
    end(request)  # its cookie goes: it opens as nothing any more
    return redirect("/signin?expired=1")


async def _csrf_refused(request: Request, exc: Exception) -> Response:
    return render(
        request, "error.html", peek(request), status_code=403, key="error.csrf", detail=""
    )


async def _backend_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BackendError)
    return error_page(request, exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    key = "error.not_found" if exc.status_code == 404 else "error.invalid"
    detail = exc.detail if exc.status_code == 400 else ""
    return render(
        request, "error.html", peek(request), status_code=exc.status_code, key=key, detail=detail
    )


ROUTES = [
    Route("/", home),
    Route("/healthz", healthz),
    Route("/signin", auth_pages.signin_form, methods=["GET"]),
    Route("/signin", auth_pages.signin, methods=["POST"]),
    Route("/signout", auth_pages.signout, methods=["POST"]),
    Route("/lang/{lang}", auth_pages.set_language, methods=["GET"]),
    Route("/review", review_pages.queue, methods=["GET"]),
    Route("/review/{ref}", review_pages.detail_page, methods=["GET"]),
    Route("/review/{ref}/decide", review_pages.decide, methods=["POST"]),
    Route("/review/{ref}/reveal", review_pages.reveal, methods=["POST"]),
    Route("/cases", case_pages.board, methods=["GET"]),
    Route("/cases/{case}", case_pages.case_page, methods=["GET"]),
    Route("/cases/{case}/reply", case_pages.reply, methods=["POST"]),
    Route("/tasks", task_pages.queues, methods=["GET"]),
    Route("/tasks/claim", task_pages.claim, methods=["POST"]),
    Route("/tasks/complete", task_pages.complete, methods=["POST"]),
    Route("/figures", figure_pages.page, methods=["GET"]),
    Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
]


def create_app(settings: ConsoleSettings, sessions: SessionSeal | None = None) -> Starlette:
    """The application; ``sessions`` lets a test hold the keys (and the clock)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        gateway = Gateway(settings.gateway, settings.call_seconds)
        app.state.console = Console(
            settings,
            sessions
            or SessionSeal(
                # Shared by every replica: any of them opens a session another one sealed.
                load_service("console"),
                idle_seconds=settings.idle_seconds,
                max_age_seconds=settings.max_age_seconds,
            ),
            gateway,
            templates(),
        )
        try:
            yield
        finally:
            await gateway.close()

    return Starlette(
        routes=ROUTES,
        # SessionCookie inside SecurityHeaders: the re-sealed cookie is set before the
        # request is logged and counted.
        middleware=[Middleware(SecurityHeaders), Middleware(SessionCookie)],
        exception_handlers={
            SignInNeeded: _signin_needed,
            CsrfRefused: _csrf_refused,
            BackendError: _backend_error,
            HTTPException: _http_error,
        },
        lifespan=lifespan,
    )

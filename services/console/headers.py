"""Security headers on every answer; one log line and the metrics of each request (by the
route's pattern, never a value); the session cookie re-sealed on every answer."""

from __future__ import annotations

import time

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response

from services.common.logs import get_logger
from services.console import console_metrics
from services.console.web import delete_session_cookie, set_session_cookie

log = get_logger("console")

#: No inline script or style, nothing from elsewhere, no framing, forms only to ourselves.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    # same-origin, not no-referrer: with no-referrer Chromium sends "Origin: null" on our own
    # forms, and the origin check refuses them; other sites get no referrer either way.
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


class SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith("/static/"):
            # Pages hold what only the signed-in person may see: never kept by a cache.
            response.headers["cache-control"] = "no-store"
        route = request.scope.get("route")
        # The route's pattern, never the path: no value of a page goes into a log line.
        pattern = getattr(route, "path", "unmatched")
        seconds = time.perf_counter() - started
        console_metrics.observe(request.method, pattern, response.status_code, seconds)
        log.info(
            "request",
            method=request.method,
            route=pattern,
            status=response.status_code,
            ms=round(seconds * 1000, 1),
        )
        return response


class SessionCookie(BaseHTTPMiddleware):
    """Every answer carries the session sealed anew (its idle clock restarted, whatever the
    page changed in it), or deletes the cookie of a session that ended."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        state = request.scope.get("state", {})
        if state.get("session_ended"):
            delete_session_cookie(response)
        elif state.get("session") is not None:
            app = request.app.state.console
            sealed = app.sessions.seal(state["session"])
            set_session_cookie(response, sealed, app.settings.max_age_seconds)
        return response

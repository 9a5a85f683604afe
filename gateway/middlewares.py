"""What every response gets: strict security headers, and JSON errors people can read
instead of HTML error pages (or a trace) under /api/."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web, web_response

log = logging.getLogger(__name__)

# The Server header names no software or version: on our responses (below), and on those
# aiohttp answers itself before the application sees a request (a malformed request line),
# which take this module default.
SERVER = "navigator"
web_response.SERVER_SOFTWARE = SERVER
HSTS: web.AppKey[str] = web.AppKey("hsts", str)  # Strict-Transport-Security, when set

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
       "object-src 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def error(status: int, code: str, message: str, **headers: str) -> web.Response:
    """A JSON error people can read."""
    return web.json_response({"error": code, "message": message}, status=status,
                             headers=headers or None)


@web.middleware
async def security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    """Strict headers on every response; JSON errors instead of HTML pages."""
    try:
        response = await handler(request)
    except web.HTTPRequestEntityTooLarge:
        response = error(413, "too_large", "That message is too long. Please send a shorter "
                                           "one.")
    except web.HTTPException as exc:
        if exc.status >= 400 and request.path.startswith("/api/"):
            response = error(exc.status, "http_error", exc.reason)
        else:  # 404s and redirects get the same strict headers
            response = web.Response(status=exc.status, text=f"{exc.status} {exc.reason}",
                                    headers={k: v for k, v in exc.headers.items()
                                             if k.lower() == "location"})
    except Exception:  # noqa: BLE001 - never leak a trace to the client
        log.exception("gateway error on %s", request.path)
        response = error(500, "internal", "Sorry, something went wrong. Please try again.")
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers["Server"] = SERVER
    hsts = request.app.get(HSTS)
    if hsts:
        response.headers["Strict-Transport-Security"] = hsts
    if request.path.startswith("/api/"):
        response.headers["Cache-Control"] = "no-store"
    return response


MIDDLEWARES = [security_headers]

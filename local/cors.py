"""CORS for the API, the way App Service answers it for a Functions app whose CORS lists origins with
`supportCredentials`: a preflight from a listed origin gets 204 with that origin, credentials allowed
and the requested method and headers echoed; a response to a listed origin carries the origin; any
other origin gets no CORS headers (a preflight from it, 403), so the browser refuses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
API_PREFIX = "/api/"


def cors_middleware(
    allowed_origins: Callable[[], Iterable[str]],
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A middleware allowing `allowed_origins()` (read per request: the local origin is known only once
    the port is bound)."""

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is None or not request.path.startswith(API_PREFIX):
            return await handler(request)
        allowed = origin in set(allowed_origins())
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            if not allowed:
                return web.json_response(
                    {"error": {"code": "origin_not_allowed", "message": f"CORS does not allow {origin}"}},
                    status=403,
                )
            return web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Credentials": "true",
                    "Access-Control-Allow-Methods": request.headers["Access-Control-Request-Method"],
                    "Access-Control-Allow-Headers": request.headers.get("Access-Control-Request-Headers", ""),
                    "Access-Control-Max-Age": "600",
                    "Vary": "Origin",
                },
            )
        response = await handler(request)
        if allowed:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Vary"] = "Origin"
        return response

    return cors

"""The one error shape of everything under /api/ in the local mode: `{"error": {"code", "message"}}`
as application/json, the body the functions' contract documents (functions/contract.py)."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

from aiohttp import web

from functions.contract import ContractError

JSON = "application/json"
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    500: "internal_error",
    503: "service_unavailable",
}


def error_code(status: int) -> str:
    """The machine-readable code of an HTTP error status (`404` -> `not_found`)."""
    if status in _CODES:
        return _CODES[status]
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def error_body(code: str, message: str) -> str:
    """The documented error body, built where the functions build theirs."""
    return ContractError(0, code, message).body()


def error_response(
    status: int, message: str, code: str | None = None, headers: Mapping[str, str] | None = None
) -> web.Response:
    """An error answer in the API's shape (`code` defaults to the status's own)."""
    return web.Response(
        status=status,
        text=error_body(code or error_code(status), message),
        content_type=JSON,
        headers=headers,
    )


def error_exception(error: type[web.HTTPError], message: str, code: str | None = None) -> web.HTTPError:
    """The same answer as an exception to raise from deep inside a handler."""
    return error(text=error_body(code or error_code(error.status_code), message), content_type=JSON)

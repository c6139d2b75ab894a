"""The admin endpoint ``/_emulator/...``, for tests that run the emulator as a process.

Every route needs ``Authorization: Bearer <admin token>``. An integration key is never an
admin token: it gets 403, any other token 401. Bodies are camelCase JSON.

| route | effect |
| --- | --- |
| ``GET /_emulator/faults`` | current fault settings |
| ``PUT /_emulator/faults`` | replace the fault settings (absent fields take defaults) |
| ``DELETE /_emulator/faults`` | stop injecting faults |
| ``GET /_emulator/counters`` | ``{"counters": {command: {outcome: n}}, "initialSetupCalls": n}`` |
| ``GET /_emulator/requests`` | ``{"requests": [record, ...]}``, oldest first |
| ``POST /_emulator/reset-counters`` | clear counters, request log and initial setup count |
| ``POST /_emulator/keys`` | ``{"commands": [...] or null}`` -> ``{"apiKey": key}`` |
| ``POST /_emulator/keys/revoke`` | ``{"apiKey": key}`` -> ``{}`` |
| ``GET /_emulator/clients`` | ``{"clients": [...]}`` as ``FetchOidcClient`` returns them |
| ``POST /_emulator/secret-matches`` | ``{"customerId", "secret"}`` -> ``{"matches": bool}`` |
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .faults import FaultSettings
from .keys import KEY_PREFIX

if TYPE_CHECKING:
    from .server import EmulatorServer

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_admin_routes(app: web.Application, server: EmulatorServer) -> None:
    """Register the admin routes of ``server`` on ``app``."""
    routes = _AdminRoutes(server)
    table: list[tuple[str, str, Handler]] = [
        ("GET", "/_emulator/faults", routes.get_faults),
        ("PUT", "/_emulator/faults", routes.put_faults),
        ("DELETE", "/_emulator/faults", routes.delete_faults),
        ("GET", "/_emulator/counters", routes.get_counters),
        ("GET", "/_emulator/requests", routes.get_requests),
        ("POST", "/_emulator/reset-counters", routes.reset_counters),
        ("POST", "/_emulator/keys", routes.mint_key),
        ("POST", "/_emulator/keys/revoke", routes.revoke_key),
        ("GET", "/_emulator/clients", routes.get_clients),
        ("POST", "/_emulator/secret-matches", routes.secret_matches),
    ]
    for method, path, handler in table:
        app.router.add_route(method, path, routes.guarded(handler))


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class _AdminRoutes:
    def __init__(self, server: EmulatorServer) -> None:
        self._server = server

    def guarded(self, handler: Handler) -> Handler:
        """Wrap ``handler`` with the admin token check."""

        async def check_token(request: web.Request) -> web.StreamResponse:
            token = self._server.admin_token
            header = request.headers.get("Authorization", "")
            scheme, _, presented = header.partition(" ")
            presented = presented.strip()
            if scheme.lower() != "bearer" or not presented or token is None:
                return _error(401, "The admin endpoint needs 'Authorization: Bearer <token>'.")
            if presented.startswith(KEY_PREFIX):
                return _error(403, "Integration keys cannot use the admin endpoint.")
            if not hmac.compare_digest(presented.encode("utf-8"), token.encode("utf-8")):
                return _error(401, "The admin token is wrong.")
            return await handler(request)

        return check_token

    async def get_faults(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self._server.faults.to_wire())

    async def put_faults(self, request: web.Request) -> web.StreamResponse:
        body = await _json_object(request)
        if body is None:
            return _error(400, "The body must be a JSON object of fault settings.")
        try:
            settings = FaultSettings.from_wire(body)
        except (TypeError, ValueError) as error:
            return _error(400, str(error))
        self._server.set_faults(settings)
        return web.json_response(settings.to_wire())

    async def delete_faults(self, request: web.Request) -> web.StreamResponse:
        self._server.clear_faults()
        return web.json_response(self._server.faults.to_wire())

    async def get_counters(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {
                "counters": {name: dict(counts) for name, counts in self._server.counters.items()},
                "initialSetupCalls": self._server.initial_setup_calls,
            }
        )

    async def get_requests(self, request: web.Request) -> web.StreamResponse:
        records = [record.to_wire() for record in self._server.request_log]
        return web.json_response({"requests": records})

    async def reset_counters(self, request: web.Request) -> web.StreamResponse:
        self._server.reset_counters()
        return web.json_response({})

    async def mint_key(self, request: web.Request) -> web.StreamResponse:
        body = await _json_object(request)
        commands = None if body is None else body.get("commands")
        if commands is not None and (
            not isinstance(commands, list) or not all(isinstance(c, str) for c in commands)
        ):
            return _error(400, "commands must be a list of command names or null.")
        try:
            key = await self._server.mint_key(commands)
        except ValueError as error:
            return _error(400, str(error))
        return web.json_response({"apiKey": key})

    async def revoke_key(self, request: web.Request) -> web.StreamResponse:
        body = await _json_object(request)
        key = None if body is None else body.get("apiKey")
        if not isinstance(key, str):
            return _error(400, "The body needs a string field 'apiKey'.")
        await self._server.revoke_key(key)
        return web.json_response({})

    async def get_clients(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"clients": self._server.clients()})

    async def secret_matches(self, request: web.Request) -> web.StreamResponse:
        body = await _json_object(request) or {}
        customer_id, secret = body.get("customerId"), body.get("secret")
        if not isinstance(customer_id, str) or not isinstance(secret, str):
            return _error(400, "The body needs string fields 'customerId' and 'secret'.")
        return web.json_response({"matches": self._server.secret_matches(customer_id, secret)})


async def _json_object(request: web.Request) -> dict[str, Any] | None:
    """Return the body as a JSON object; None when it is empty or not an object."""
    raw = await request.read()
    if not raw:
        return None
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return body if isinstance(body, dict) else None

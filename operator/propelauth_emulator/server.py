"""The emulator's HTTP server and its Python API, :class:`EmulatorServer`.

Routes (all on one port):

- ``POST /run-command``: the sidecar protocol, authenticated with an integration key.
- ``POST /api/initial_setup``: mints the first full-access key, once.
- ``/_emulator/...``: the admin endpoint for tests (see :mod:`propelauth_emulator.admin`),
  authenticated with a separate admin token that no integration key can stand in for.

A ``/run-command`` request goes through these steps: read the body, draw the injected faults,
authenticate the key, check the command and the key's permission, run the command, record the
request. Neither the log lines nor the request log contain headers, bodies, keys or secrets.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from . import metrics, protocol
from .admin import add_admin_routes
from .commands import CommandRunner
from .faults import FaultInjector, FaultPlan, FaultSettings
from .keys import KeyGrant, key_from_header
from .metrics import RequestMetrics, RequestRecord
from .state import EmulatorState

logger = logging.getLogger("propelauth_emulator")

DEFAULT_HOST: Final = "127.0.0.1"
# Command names from clients are cut to this length before they are counted or logged.
_MAX_COMMAND_NAME_LENGTH: Final = 64
# aiohttp waits this long for requests in progress when the server stops.
_SHUTDOWN_TIMEOUT_SECONDS: Final = 5.0


class EmulatorServer:
    """An emulated PropelAuth BYO sidecar listening on loopback.

    ``state_path`` is the SQLite state file (created when missing). ``setup_secret`` enables
    ``/api/initial_setup``; None disables it. ``port`` 0 picks a free port, readable from
    :attr:`url` after :meth:`start`. ``admin_token`` guards the admin endpoint; None generates
    a random one (read it from :attr:`admin_token`), and ``enable_admin=False`` removes the
    endpoint. ``post_login_redirect_origins`` restricts ``InitiateOidcLogin``'s
    ``postLoginRedirectUrl`` to these origins; None allows any http(s) URL.
    """

    def __init__(
        self,
        state_path: Path,
        setup_secret: str | None = None,
        host: str = DEFAULT_HOST,
        port: int = 0,
        *,
        admin_token: str | None = None,
        enable_admin: bool = True,
        faults: FaultSettings | None = None,
        post_login_redirect_origins: Collection[str] | None = None,
        request_log_size: int = metrics.DEFAULT_REQUEST_LOG_SIZE,
    ) -> None:
        self._state_path = Path(state_path)
        self._setup_secret = setup_secret
        self._host = host
        self._requested_port = port
        self._admin_token = (admin_token or secrets.token_urlsafe(32)) if enable_admin else None
        self._post_login_redirect_origins = post_login_redirect_origins

        self._state = EmulatorState(self._state_path)
        self._commands = CommandRunner(self._state, post_login_redirect_origins)
        self._faults = FaultInjector(faults)
        self._metrics = RequestMetrics(request_log_size)
        self._web_runner: web.AppRunner | None = None
        self._port: int | None = None

    def __repr__(self) -> str:
        return f"EmulatorServer(url={self._url_or_none()!r}, state_path={str(self._state_path)!r})"

    # Life cycle.

    async def start(self) -> None:
        """Load the state file and start listening; raises ``OSError`` if the port is taken."""
        if self._web_runner is not None:
            raise RuntimeError("The emulator is already running.")
        await self._state.open()

        app = web.Application()
        app.router.add_post("/run-command", self._handle_run_command)
        app.router.add_post("/api/initial_setup", self._handle_initial_setup)
        if self._admin_token is not None:
            add_admin_routes(app, self)

        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=_SHUTDOWN_TIMEOUT_SECONDS
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._requested_port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            await self._state.close()
            raise
        self._web_runner = runner
        self._port = int(runner.addresses[0][1])
        logger.info("The PropelAuth emulator is listening on %s.", self.url)

    async def stop(self) -> None:
        """Stop listening, finish the requests in progress and close the state file."""
        runner, self._web_runner = self._web_runner, None
        if runner is None:
            return
        await runner.cleanup()
        await self._state.close()
        logger.info("The PropelAuth emulator on port %s has stopped.", self._port)

    @property
    def url(self) -> str:
        """Base URL such as ``http://127.0.0.1:43127``; raises ``RuntimeError`` before start."""
        url = self._url_or_none()
        if url is None:
            raise RuntimeError("The emulator has not been started.")
        return url

    @property
    def admin_token(self) -> str | None:
        """Bearer token of the admin endpoint; None when the endpoint is disabled."""
        return self._admin_token

    # Keys and state.

    async def mint_key(self, commands: Iterable[str] | None = None) -> str:
        """Create an integration key for ``commands`` (None for all) and return it.

        Raises ``ValueError`` for a command the emulator does not implement.
        """
        if commands is not None:
            commands = frozenset(commands)
            unknown = commands - protocol.IMPLEMENTED_COMMANDS
            if unknown:
                raise ValueError(f"Unknown commands for an integration key: {sorted(unknown)}.")
        return await self._state.mint_key(commands)

    async def revoke_key(self, key: str) -> None:
        """Delete an integration key; later requests with it get ``IntegrationKeyNotFound``."""
        await self._state.revoke_key(key)

    def clients(self) -> list[dict[str, Any]]:
        """Return the stored clients as ``FetchOidcClient`` returns them, without secrets."""
        return [client.to_fetch_response() for client in self._state.clients()]

    def secret_matches(self, customer_id: str, secret: str) -> bool:
        """Tell whether ``secret`` is the client secret stored for ``customer_id``."""
        return self._state.secret_matches(customer_id, secret)

    @property
    def initial_setup_done(self) -> bool:
        """Whether initial setup has minted its key, in this run or an earlier one."""
        return self._state.initial_setup_done

    # Faults and metrics.

    def set_faults(self, settings: FaultSettings | None = None, **fields: Any) -> FaultSettings:
        """Replace the fault settings with ``settings`` or with ``FaultSettings.create(**fields)``.

        Fields not given take their defaults (no fault). Returns the new settings.
        """
        if settings is None:
            settings = FaultSettings.create(**fields)
        elif fields:
            raise TypeError("Pass either a FaultSettings or keyword fields, not both.")
        self._faults.replace(settings)
        logger.info("Fault settings changed to %s.", settings.to_wire())
        return settings

    def clear_faults(self) -> None:
        """Stop injecting faults."""
        self.set_faults(FaultSettings())

    @property
    def faults(self) -> FaultSettings:
        """The current fault settings."""
        return self._faults.settings

    @property
    def counters(self) -> Mapping[str, Mapping[str, int]]:
        """A copy of ``command -> outcome -> count`` since start or the last reset."""
        return self._metrics.counters()

    @property
    def request_log(self) -> Sequence[RequestRecord]:
        """A copy of the request log, oldest first."""
        return self._metrics.records()

    @property
    def initial_setup_calls(self) -> int:
        """Number of ``/api/initial_setup`` requests since start or the last reset."""
        return self._metrics.initial_setup_calls

    def reset_counters(self) -> None:
        """Clear the counters, the request log and :attr:`initial_setup_calls`."""
        self._metrics.reset()

    # Request handling.

    async def _handle_run_command(self, request: web.Request) -> web.StreamResponse:
        clock_start = time.perf_counter()
        started_at = time.time()
        body, body_error = await _read_json_object(request)
        command = _command_name(body)
        plan = self._faults.plan(command)

        def finish(outcome: str, status: int | None) -> None:
            self._record(started_at, clock_start, "/run-command", command, outcome, status, plan)

        fault_response = await self._apply_faults_before(request, plan)
        if fault_response is not None:
            outcome, response = fault_response
            finish(outcome, None if response is None else response.status)
            if response is None:
                raise _drop_connection(request)
            return response

        try:
            grant = self._authenticate(request)
            if body_error is not None:
                raise protocol.invalid_request(body_error)
            data = _command_data(body, command)
            assert command is not None
            if not grant.allows(command):
                raise protocol.CommandError(protocol.COMMAND_NOT_ALLOWED, {"command_name": command})
            result = await self._commands.run(command, data)
            outcome, status, response_body = metrics.OK, 200, result
        except protocol.CommandError as error:
            outcome, status, response_body = error.error_type, error.status, error.to_body()
        except Exception:
            # An emulator bug: respond with UnexpectedError, as the sidecar does, and keep serving.
            logger.exception(
                "The command %s failed unexpectedly; responding with status 500.", command
            )
            internal = protocol.CommandError(protocol.UNEXPECTED_ERROR, "Internal emulator error.")
            outcome, status, response_body = internal.error_type, 500, internal.to_body()

        if plan.drop_after:
            finish(metrics.DROPPED, None)
            raise _drop_connection(request)
        finish(outcome, status)
        return web.json_response(response_body, status=status)

    async def _handle_initial_setup(self, request: web.Request) -> web.StreamResponse:
        clock_start = time.perf_counter()
        started_at = time.time()
        body, body_error = await _read_json_object(request)
        plan = self._faults.plan(None)

        def finish(outcome: str, status: int | None) -> None:
            self._record(started_at, clock_start, "/api/initial_setup", None, outcome, status, plan)

        fault_response = await self._apply_faults_before(request, plan)
        if fault_response is not None:
            outcome, response = fault_response
            finish(outcome, None if response is None else response.status)
            if response is None:
                raise _drop_connection(request)
            return response

        try:
            key = await self._run_initial_setup(body, body_error)
            outcome, status, response_body = metrics.OK, 200, {"apiKey": key}
        except protocol.CommandError as error:
            outcome, status, response_body = error.error_type, error.status, error.to_body()

        if plan.drop_after:
            finish(metrics.DROPPED, None)
            raise _drop_connection(request)
        finish(outcome, status)
        return web.json_response(response_body, status=status)

    async def _run_initial_setup(self, body: dict[str, Any], body_error: str | None) -> str:
        """Check the setup secret and mint the first key.

        Once setup is done every later call gets 409, whatever secret it sends, also after a
        restart. Before that, a wrong or missing secret gets 401.
        """
        if self._setup_secret is None:
            raise protocol.CommandError(
                protocol.INITIAL_SETUP_NOT_ENABLED,
                "Initial setup is disabled because the emulator has no setup secret.",
                status=404,
            )
        if self._state.initial_setup_done:
            raise _initial_setup_already_done()
        if body_error is not None:
            raise protocol.CommandError(protocol.INVALID_REQUEST, body_error, status=400)

        setup_secret = body.get("setupSecret")
        if not isinstance(setup_secret, str) or not hmac.compare_digest(
            setup_secret.encode("utf-8"), self._setup_secret.encode("utf-8")
        ):
            logger.warning("Initial setup was rejected because the setup secret is wrong.")
            raise protocol.CommandError(
                protocol.INVALID_SETUP_SECRET, "The setup secret is wrong.", status=401
            )

        key = await self._state.complete_initial_setup()
        if key is None:
            raise _initial_setup_already_done()
        logger.info("Initial setup minted the first integration key.")
        return key

    def _authenticate(self, request: web.Request) -> KeyGrant:
        key = key_from_header(request.headers.get("Authorization"))
        grant = self._state.find_key(key)
        if grant is None:
            raise protocol.CommandError(protocol.INTEGRATION_KEY_NOT_FOUND)
        return grant

    async def _apply_faults_before(
        self, request: web.Request, plan: FaultPlan
    ) -> tuple[str, web.Response | None] | None:
        """Apply the faults that come before the command; None means "run the command".

        Returns the outcome and the response to send, or no response to drop the connection.
        """
        if plan.outage:
            response = web.Response(status=503, text="503 Service Unavailable\n")
            return metrics.OUTAGE, response
        if plan.delay_seconds:
            await asyncio.sleep(plan.delay_seconds)
        if plan.drop_before:
            return metrics.DROPPED, None
        if plan.error_status is not None:
            body = {"type": protocol.UNEXPECTED_ERROR, "details": "Injected error."}
            return metrics.INJECTED_ERROR, web.json_response(body, status=plan.error_status)
        return None

    def _record(
        self,
        started_at: float,
        clock_start: float,
        endpoint: str,
        command: str | None,
        outcome: str,
        status: int | None,
        plan: FaultPlan,
    ) -> None:
        latency_ms = (time.perf_counter() - clock_start) * 1000.0
        record = RequestRecord(
            started_at=started_at,
            endpoint=endpoint,
            command=command,
            outcome=outcome,
            status=status,
            latency_ms=latency_ms,
            fault=plan.name,
        )
        self._metrics.record(record)
        logger.info(
            "%s %s: %s (%s) in %.1f ms.",
            endpoint,
            command or "-",
            outcome,
            "dropped" if status is None else status,
            latency_ms,
        )

    def _url_or_none(self) -> str | None:
        if self._port is None or self._web_runner is None:
            return None
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    # Used by the admin routes.

    @property
    def state(self) -> EmulatorState:
        """The stored clients and keys."""
        return self._state


def _initial_setup_already_done() -> protocol.CommandError:
    return protocol.CommandError(
        protocol.INITIAL_SETUP_ALREADY_DONE,
        "Initial setup was already done; create further keys in the sidecar dashboard.",
        status=409,
    )


async def _read_json_object(request: web.Request) -> tuple[dict[str, Any], str | None]:
    """Return the body as a JSON object, or an empty dict and the reason it is not one."""
    raw = await request.read()
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}, "The request body is not valid JSON."
    if not isinstance(body, dict):
        return {}, "The request body must be a JSON object."
    return body, None


def _command_name(body: dict[str, Any]) -> str | None:
    command = body.get("command")
    if not isinstance(command, str):
        return None
    return command[:_MAX_COMMAND_NAME_LENGTH]


def _command_data(body: dict[str, Any], command: str | None) -> dict[str, Any]:
    """Return the command's ``data`` object; raises for a missing or unknown command."""
    if command is None:
        raise protocol.invalid_request("The request body needs a string field 'command'.")
    if command not in protocol.IMPLEMENTED_COMMANDS:
        raise protocol.invalid_request(f"The emulator does not implement the command {command!r}.")
    data = body.get("data", {})
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise protocol.invalid_request("The field 'data' must be a JSON object.")
    return data


def _drop_connection(request: web.Request) -> web.HTTPException:
    """Abort the connection and return the exception that ends the handler.

    The client sees the connection close without a response. aiohttp discards the exception's
    response because the transport is already closed.
    """
    if request.transport is not None:
        request.transport.abort()
    return web.HTTPServiceUnavailable()

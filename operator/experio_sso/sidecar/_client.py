"""Async client of the PropelAuth BYO sidecar's API, and the registry of one client per URL.

The reconcile logic calls ``SidecarClient`` methods with the integration key of the moment:
the key is an argument of every call, not of the client, because the key Secret can change
while the client lives. Each sidecar URL gets one ``httpx.AsyncClient`` (a connection pool)
and one semaphore that bounds the calls in flight, so that a burst of reconciles queues here
instead of opening a connection per resource.

Wire protocol: every command is ``POST {url}/run-command`` with ``{"command", "data"}`` and
``Authorization: Bearer <integration key>``; HTTP 200 carries the command's answer and any
other status carries ``{"type", "details"}``. ``_exchange`` is the only place that sends a
request, and the only place that turns transport errors, error bodies and malformed answers
into the exceptions of ``_exceptions``.

Logging: one DEBUG line per call with the command, the outcome and the duration. Bodies,
headers and secrets are never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, TypeVar

import httpx
import pydantic
from pydantic import SecretStr

from ._exceptions import (
    ClientIdAlreadyTakenError,
    CommandNotAllowedError,
    CustomerIdAlreadyTakenError,
    InitialSetupAlreadyDoneError,
    InvalidField,
    InvalidFieldsError,
    InvalidSidecarUrlError,
    OidcClientNotFoundError,
    SetupSecretRejectedError,
    SidecarError,
    SidecarTimeoutError,
    SidecarUnavailableError,
    UnauthorizedError,
    UnexpectedResponseError,
    excerpt,
)
from ._models import (
    CreateOidcClientRequest,
    OidcClient,
    PatchOidcClientRequest,
    _ClientIdResponse,
    _InitialSetupResponse,
    _PingResponse,
    _ResponseModel,
)

__all__ = ["SidecarApi", "SidecarClient", "SidecarClientSettings", "SidecarClients"]

logger = logging.getLogger(__name__)

_ResponseT = TypeVar("_ResponseT", bound=_ResponseModel)

_RUN_COMMAND_PATH = "/run-command"

# An integration key goes into an HTTP header, so it must be visible ASCII without spaces.
# A trailing newline, the usual result of `echo key | kubectl create secret`, fails this check.
_HEADER_SAFE_KEY = re.compile(r"[!-~]+")

_UNAUTHORIZED_ERROR_TYPES = frozenset(
    {"InvalidPrefix", "IntegrationKeyNotFound", "NoIntegrationKeyFoundInHeader"}
)

_TIMEOUT_PHASES: Mapping[type[httpx.TimeoutException], str] = {
    httpx.ConnectTimeout: "connecting",
    httpx.WriteTimeout: "sending the request",
    httpx.ReadTimeout: "waiting for the answer",
    httpx.PoolTimeout: "waiting for a free connection",
}


@dataclass(frozen=True)
class SidecarClientSettings:
    """Timeouts and limits of the connection to one sidecar."""

    connect_timeout: float = 5.0
    """Seconds to open a TCP connection. The sidecar runs in the cluster, so a connection that
    takes longer than this points to a missing Service or a network policy, not to load."""

    read_timeout: float = 15.0
    """Seconds to wait for the answer once the request is sent. The sidecar writes OIDC clients
    to PostgreSQL before it answers, so this leaves room for a slow database."""

    write_timeout: float = 5.0
    """Seconds to send the request body; bodies are a few kilobytes at most."""

    pool_timeout: float = 5.0
    """Seconds to wait for a free pooled connection. The semaphore keeps callers from
    exceeding the pool, so this only fires when connections leak."""

    max_concurrent_requests: int = 10
    """Calls in flight per sidecar, and the size of the connection pool. Further calls wait
    for a free slot, without a time limit, before their own timeouts start."""

    keepalive_expiry: float = 30.0
    """Seconds an idle pooled connection is kept open."""


class SidecarApi(Protocol):
    """What the reconcile logic needs from a sidecar client; tests may pass a fake."""

    async def ping(self, integration_key: SecretStr) -> int: ...

    async def create_oidc_client(
        self, integration_key: SecretStr, request: CreateOidcClientRequest
    ) -> str: ...

    async def fetch_oidc_client(
        self, integration_key: SecretStr, customer_id: str
    ) -> OidcClient: ...

    async def patch_oidc_client(
        self, integration_key: SecretStr, customer_id: str, request: PatchOidcClientRequest
    ) -> str: ...

    async def delete_oidc_client(self, integration_key: SecretStr, customer_id: str) -> None: ...

    async def initial_setup(self, setup_secret: SecretStr) -> SecretStr: ...


class _EmptyResponse(_ResponseModel):
    """Answer of ``DeleteOidcClient``: an empty object."""


def normalize_sidecar_url(url: str) -> str:
    """Validate a sidecar URL and return it without a trailing slash.

    Raises ``InvalidSidecarUrlError`` unless the URL is ``http`` or ``https`` with a host.
    A user name or password in the URL is rejected too, because the URL appears in messages.
    """
    try:
        parsed = httpx.URL(url.strip())
    except httpx.InvalidURL as exc:
        raise InvalidSidecarUrlError(f"The sidecar URL {url!r} is invalid: {exc}") from exc

    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidSidecarUrlError(
            f"The sidecar URL {url!r} is invalid: expected http:// or https:// and a host name, "
            "for example http://propelauth:2884."
        )
    if parsed.userinfo:
        raise InvalidSidecarUrlError(
            "The sidecar URL contains a user name or password; remove it, because the sidecar "
            "authenticates calls with the integration key."
        )
    return str(parsed).rstrip("/")


class SidecarClient:
    """Client of one sidecar URL, with its own connection pool and concurrency limit.

    Create it through ``SidecarClients.get`` so that every caller shares one pool per URL.
    Every method raises a subclass of ``SidecarError`` on failure, and nothing else for
    network or protocol problems.
    """

    def __init__(
        self,
        url: str,
        *,
        settings: SidecarClientSettings | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = normalize_sidecar_url(url)
        self.settings = settings or SidecarClientSettings()

        limit = self.settings.max_concurrent_requests
        if limit < 1:
            raise ValueError(f"max_concurrent_requests must be at least 1, got {limit}")
        self._semaphore = asyncio.Semaphore(limit)

        # NB: trust_env=False ignores HTTP(S)_PROXY: the sidecar is an in-cluster Service, and
        # a proxy meant for egress would receive the integration key.
        self._http = httpx.AsyncClient(
            base_url=self.url,
            timeout=httpx.Timeout(
                connect=self.settings.connect_timeout,
                read=self.settings.read_timeout,
                write=self.settings.write_timeout,
                pool=self.settings.pool_timeout,
            ),
            limits=httpx.Limits(
                max_connections=limit,
                max_keepalive_connections=limit,
                keepalive_expiry=self.settings.keepalive_expiry,
            ),
            transport=transport,
            trust_env=False,
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"SidecarClient(url={self.url!r})"

    async def __aenter__(self) -> SidecarClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections; the client cannot be used afterwards."""
        await self._http.aclose()

    # Commands.

    async def ping(self, integration_key: SecretStr) -> int:
        """Check the URL and the integration key with ``Ping``; return the sidecar's timestamp."""
        answer = await self._run_command("Ping", {}, integration_key, _PingResponse)
        return answer.timestamp

    async def create_oidc_client(
        self, integration_key: SecretStr, request: CreateOidcClientRequest
    ) -> str:
        """Create an OIDC client with ``CreateOidcClient``; return the sidecar's client ID.

        Raises ``CustomerIdAlreadyTakenError`` when the customer ID has a client already (for
        example because an earlier call timed out after the sidecar applied it),
        ``ClientIdAlreadyTakenError`` and ``InvalidFieldsError``.
        """
        answer = await self._run_command(
            "CreateOidcClient",
            request.to_wire(),
            integration_key,
            _ClientIdResponse,
            customer_id=request.customer_id,
            secrets=(request.idp_info_from_customer.client_secret.get_secret_value(),),
        )
        return answer.client_id

    async def fetch_oidc_client(self, integration_key: SecretStr, customer_id: str) -> OidcClient:
        """Read the OIDC client of a customer ID with ``FetchOidcClient``.

        Raises ``OidcClientNotFoundError`` when the sidecar has none.
        """
        return await self._run_command(
            "FetchOidcClient",
            {"customerId": customer_id},
            integration_key,
            OidcClient,
            customer_id=customer_id,
        )

    async def patch_oidc_client(
        self, integration_key: SecretStr, customer_id: str, request: PatchOidcClientRequest
    ) -> str:
        """Change the OIDC client of a customer ID with ``PatchOidcClient``; return its client ID.

        Fields left ``None`` in ``request`` stay as they are. Raises
        ``OidcClientNotFoundError`` and ``InvalidFieldsError``.
        """
        secrets: tuple[str, ...] = ()
        idp_info = request.idp_info_from_customer
        if idp_info is not None and idp_info.client_secret is not None:
            secrets = (idp_info.client_secret.get_secret_value(),)

        answer = await self._run_command(
            "PatchOidcClient",
            {**request.to_wire(), "customerId": customer_id},
            integration_key,
            _ClientIdResponse,
            customer_id=customer_id,
            secrets=secrets,
        )
        return answer.client_id

    async def delete_oidc_client(self, integration_key: SecretStr, customer_id: str) -> None:
        """Delete the OIDC client of a customer ID with ``DeleteOidcClient``.

        Raises ``OidcClientNotFoundError`` when the sidecar has none; callers that delete
        usually treat that as done.
        """
        await self._run_command(
            "DeleteOidcClient",
            {"customerId": customer_id},
            integration_key,
            _EmptyResponse,
            customer_id=customer_id,
        )

    async def initial_setup(self, setup_secret: SecretStr) -> SecretStr:
        """Mint the first integration key with the sidecar's setup secret; return the key.

        NOTE: no public document describes this endpoint. This function holds the whole
        assumed contract, so that a correction touches only this function:
        ``POST {url}/api/initial_setup`` with ``{"setupSecret": ...}`` and no integration key;
        200 with ``{"apiKey": ...}`` the first time; 401 when the secret is wrong; 409 when
        initial setup already minted a key.

        Raises ``SetupSecretRejectedError`` (401) and ``InitialSetupAlreadyDoneError`` (409).
        """
        secret_value = setup_secret.get_secret_value()
        manual_fallback = (
            "create an integration key in the sidecar dashboard and store it in the API key Secret"
        )
        status_errors: Mapping[int, SidecarError] = {
            401: SetupSecretRejectedError(
                "The sidecar rejected the setup secret; make it equal to the sidecar's "
                f"INITIAL_SETUP_SECRET, or {manual_fallback}.",
                command="InitialSetup",
            ),
            409: InitialSetupAlreadyDoneError(
                "Initial setup was already done on this sidecar and cannot mint another key; "
                f"{manual_fallback}.",
                command="InitialSetup",
            ),
        }

        answer = await self._exchange(
            path="/api/initial_setup",
            command="InitialSetup",
            payload={"setupSecret": secret_value},
            integration_key=None,
            response_model=_InitialSetupResponse,
            secrets=(secret_value,),
            status_errors=status_errors,
        )
        logger.info("Initial setup on the sidecar at %s returned an integration key", self.url)
        return answer.api_key

    # The one place that talks HTTP and translates errors.

    async def _run_command(
        self,
        command: str,
        data: Mapping[str, Any],
        integration_key: SecretStr,
        response_model: type[_ResponseT],
        *,
        customer_id: str | None = None,
        secrets: Sequence[str] = (),
    ) -> _ResponseT:
        return await self._exchange(
            path=_RUN_COMMAND_PATH,
            command=command,
            payload={"command": command, "data": dict(data)},
            integration_key=integration_key,
            response_model=response_model,
            customer_id=customer_id,
            secrets=secrets,
        )

    async def _exchange(
        self,
        *,
        path: str,
        command: str,
        payload: Mapping[str, Any],
        integration_key: SecretStr | None,
        response_model: type[_ResponseT],
        customer_id: str | None = None,
        secrets: Sequence[str] = (),
        status_errors: Mapping[int, SidecarError] | None = None,
    ) -> _ResponseT:
        """Send one request and return its validated answer, or raise a ``SidecarError``.

        ``secrets`` are the secret values in the request; they are redacted from any foreign
        text that goes into an exception message. ``status_errors`` maps an HTTP status to the
        exception raised for it before the body is read as an error body.
        """
        headers: dict[str, str] = {}
        if integration_key is not None:
            key_value = integration_key.get_secret_value()
            if not _HEADER_SAFE_KEY.fullmatch(key_value):
                error: SidecarError = UnauthorizedError(
                    "The integration key is empty or contains whitespace or non-ASCII "
                    "characters (a trailing newline is the usual cause); store the key alone "
                    "in the API key Secret.",
                    command=command,
                )
                _log_outcome(command, error, None, 0.0)
                raise error
            headers["Authorization"] = f"Bearer {key_value}"
            secrets = (*secrets, key_value)

        started = time.perf_counter()
        try:
            async with self._semaphore:
                response = await self._http.post(path, json=payload, headers=headers)
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, httpx.CookieConflict) as exc:
            error = self._translate_http_error(exc, command, secrets)
            _log_outcome(command, error, None, _milliseconds_since(started))
            raise error from exc
        elapsed = _milliseconds_since(started)

        try:
            answer = self._read_answer(
                response, command, response_model, customer_id, secrets, status_errors or {}
            )
        except SidecarError as error:
            _log_outcome(command, error, response.status_code, elapsed)
            raise
        _log_outcome(command, None, response.status_code, elapsed)
        return answer

    def _translate_http_error(
        self, exc: Exception, command: str, secrets: Sequence[str]
    ) -> SidecarError:
        """Map an exception raised by httpx while sending or receiving to a ``SidecarError``."""
        reason = excerpt(str(exc) or type(exc).__name__, secrets)

        if isinstance(exc, httpx.TimeoutException):
            phase = _TIMEOUT_PHASES.get(type(exc), "waiting")
            return SidecarTimeoutError(
                f"Sidecar command {command} at {self.url} timed out while {phase}; retrying later.",
                command=command,
            )

        # An unusable URL; normalize_sidecar_url catches most of these earlier.
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            return InvalidSidecarUrlError(
                f"Sidecar command {command} cannot be sent to {self.url}: {reason}",
                command=command,
            )

        # The sidecar (or a proxy) answered, but broke the answer off or garbled it.
        if isinstance(exc, httpx.RemoteProtocolError | httpx.DecodingError):
            return UnexpectedResponseError(
                f"Sidecar command {command} at {self.url} got a broken answer: {reason}",
                command=command,
            )

        # Connection refused, name not resolved, connection reset, proxy failure.
        if isinstance(exc, httpx.NetworkError | httpx.ProxyError):
            return SidecarUnavailableError(
                f"Sidecar at {self.url} is unreachable for command {command}: {reason}",
                command=command,
            )

        # LocalProtocolError, redirects, stream misuse: the exchange failed in a way that
        # neither the network nor the sidecar explains.
        return UnexpectedResponseError(
            f"Sidecar command {command} at {self.url} failed: {type(exc).__name__}: {reason}",
            command=command,
        )

    def _read_answer(
        self,
        response: httpx.Response,
        command: str,
        response_model: type[_ResponseT],
        customer_id: str | None,
        secrets: Sequence[str],
        status_errors: Mapping[int, SidecarError],
    ) -> _ResponseT:
        """Validate a success body into ``response_model``, or raise for an error answer."""
        status = response.status_code

        if status in status_errors:
            raise status_errors[status]

        try:
            body = json.loads(response.content)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UnexpectedResponseError(
                f"Sidecar command {command} at {self.url} answered HTTP {status} with a body "
                f"that is not JSON (a proxy's error page or a truncated body): "
                f"{excerpt(response.text, secrets)!r}",
                command=command,
                status_code=status,
            ) from exc

        if status != httpx.codes.OK:
            raise self._error_from_body(body, status, command, customer_id, secrets)

        try:
            return response_model.model_validate(body)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
                for error in exc.errors(include_url=False, include_input=False)
            )
            raise UnexpectedResponseError(
                f"Sidecar command {command} at {self.url} answered HTTP 200 with a body of an "
                f"unexpected shape: {excerpt(problems, secrets)}",
                command=command,
                status_code=status,
            ) from exc

    def _error_from_body(
        self,
        body: Any,
        status: int,
        command: str,
        customer_id: str | None,
        secrets: Sequence[str],
    ) -> SidecarError:
        """Map an error body ``{"type", "details"}`` to its exception."""
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            return UnexpectedResponseError(
                f"Sidecar command {command} at {self.url} answered HTTP {status} without an "
                f"error type: {excerpt(json.dumps(body), secrets)!r}",
                command=command,
                status_code=status,
            )

        error_type: str = body["type"]
        details = body.get("details")

        if error_type in _UNAUTHORIZED_ERROR_TYPES:
            return UnauthorizedError(
                f"The sidecar at {self.url} rejected the integration key ({error_type}) for "
                f"command {command}; store a valid key in the API key Secret.",
                command=command,
                error_type=error_type,
            )

        if error_type == "CommandNotAllowed":
            denied_command = _denied_command(details) or command
            return CommandNotAllowedError(
                f"The integration key may not run the sidecar command {denied_command}; "
                "create a key with that permission in the sidecar dashboard.",
                command=command,
                denied_command=denied_command,
            )

        if error_type == "InvalidFields":
            fields = _invalid_fields(details, secrets)
            if fields is None:
                return UnexpectedResponseError(
                    f"Sidecar command {command} at {self.url} answered InvalidFields without a "
                    "readable list of fields.",
                    command=command,
                    status_code=status,
                    error_type=error_type,
                )
            listing = "; ".join(f"{f.field} ({f.code}): {f.message}" for f in fields)
            return InvalidFieldsError(
                f"The sidecar rejected fields of {command}: {listing or 'no field named'}",
                command=command,
                fields=fields,
            )

        if error_type == "OidcClientNotFound":
            return OidcClientNotFoundError(
                f"The sidecar has no OIDC client with customer ID {customer_id!r}.",
                command=command,
                customer_id=customer_id,
            )

        if error_type == "CustomerIdAlreadyTakenForEoidcClient":
            return CustomerIdAlreadyTakenError(
                f"The sidecar already has an OIDC client with customer ID {customer_id!r}.",
                command=command,
                customer_id=customer_id,
            )

        if error_type == "ClientIdAlreadyTaken":
            return ClientIdAlreadyTakenError(
                "Another OIDC client in the sidecar already uses the identity provider's client "
                f"ID requested for customer ID {customer_id!r}.",
                command=command,
                customer_id=customer_id,
            )

        # UnexpectedError, and any type that this client does not know.
        detail_text = details if isinstance(details, str) else json.dumps(details)
        label = (
            "reported an unexpected error"
            if error_type == "UnexpectedError"
            else f"answered the unknown error type {excerpt(error_type)!r}"
        )
        return UnexpectedResponseError(
            f"Sidecar command {command} at {self.url} {label} (HTTP {status}): "
            f"{excerpt(detail_text, secrets)!r}",
            command=command,
            status_code=status,
            error_type=error_type,
        )


def _denied_command(details: Any) -> str | None:
    """Find the command name in ``CommandNotAllowed`` details: a string or ``{"command"}``."""
    if isinstance(details, str) and details:
        return excerpt(details)
    if isinstance(details, dict):
        name = details.get("command")
        if isinstance(name, str) and name:
            return excerpt(name)
    return None


def _invalid_fields(details: Any, secrets: Sequence[str]) -> list[InvalidField] | None:
    """Read ``{"fields": [{"field", "code", "message"}]}``; return ``None`` if it is malformed."""
    if not isinstance(details, dict) or not isinstance(details.get("fields"), list):
        return None

    fields: list[InvalidField] = []
    for item in details["fields"]:
        if not isinstance(item, dict):
            return None
        parts = [item.get("field"), item.get("code"), item.get("message")]
        if not all(isinstance(part, str) for part in parts):
            return None
        field, code, message = (excerpt(str(part), secrets) for part in parts)
        fields.append(InvalidField(field=field, code=code, message=message))
    return fields


def _milliseconds_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _log_outcome(
    command: str, error: SidecarError | None, status: int | None, elapsed_ms: float
) -> None:
    if error is None:
        logger.debug(
            "Sidecar command %s succeeded: HTTP %s in %.0f ms", command, status, elapsed_ms
        )
    else:
        logger.debug(
            "Sidecar command %s failed: %s (HTTP %s) in %.0f ms",
            command,
            type(error).__name__,
            status if status is not None else "none",
            elapsed_ms,
        )


class SidecarClients:
    """Registry of one ``SidecarClient`` per sidecar URL, shared by all handlers.

    ``transport_factory`` builds the httpx transport for a URL; tests pass one that returns
    ``httpx.MockTransport``. Closing the registry closes every client it created.
    """

    def __init__(
        self,
        settings: SidecarClientSettings | None = None,
        *,
        transport_factory: Callable[[str], httpx.AsyncBaseTransport] | None = None,
    ) -> None:
        self.settings = settings or SidecarClientSettings()
        self._transport_factory = transport_factory
        self._clients: dict[str, SidecarClient] = {}

    def get(self, url: str) -> SidecarClient:
        """Return the client of ``url``, creating it on first use.

        URLs that differ only in a trailing slash share a client. Raises
        ``InvalidSidecarUrlError`` for a URL that cannot be used.
        """
        key = normalize_sidecar_url(url)
        client = self._clients.get(key)
        if client is None:
            transport = self._transport_factory(key) if self._transport_factory else None
            client = SidecarClient(key, settings=self.settings, transport=transport)
            self._clients[key] = client
        return client

    async def aclose(self) -> None:
        """Close every client; a later ``get`` creates fresh ones."""
        clients = list(self._clients.values())
        self._clients.clear()
        for client in clients:
            await client.aclose()

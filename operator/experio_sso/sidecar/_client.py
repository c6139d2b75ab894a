"""Async client of the PropelAuth BYO sidecar's API.

The reconcile logic calls ``SidecarClient`` methods with the integration key of the moment:
the key is an argument of every call, not of the client, because the key Secret can change
while the client lives. Each sidecar URL gets one ``httpx.AsyncClient`` (a connection pool)
and one semaphore that bounds the calls in flight, so that a burst of reconciles queues here
instead of opening a connection per resource.

Wire protocol: every command is ``POST {url}/run-command`` with ``{"command", "data"}`` and
``Authorization: Bearer <integration key>``; HTTP 200 carries the command's response and any
other status carries ``{"type", "details"}``. ``_exchange`` is the only place that sends a
request; it hands every failure to ``_translate``, which maps it to the exceptions of
``_exceptions``.

Logging: one DEBUG line per call with the command, the outcome and the duration. Bodies,
headers and secrets are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, TypeVar

import httpx
from pydantic import SecretStr

from ._exceptions import (
    InitialSetupAlreadyDoneError,
    InvalidSidecarUrlError,
    SetupSecretRejectedError,
    SidecarError,
    UnauthorizedError,
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
from ._translate import HTTPX_ERRORS, Call, read_response_body, translate_http_error

__all__ = ["SidecarApi", "SidecarClient", "SidecarClientSettings", "normalize_sidecar_url"]

logger = logging.getLogger(__name__)

_ResponseT = TypeVar("_ResponseT", bound=_ResponseModel)

_RUN_COMMAND_PATH = "/run-command"

# An integration key goes into an HTTP header, so it must be visible ASCII without spaces.
# A trailing newline, which `echo key > file` adds before `kubectl create secret --from-file`,
# fails this check.
_HEADER_SAFE_KEY = re.compile(r"[!-~]+")


@dataclass(frozen=True)
class SidecarClientSettings:
    """Timeouts and limits of the connection to one sidecar."""

    connect_timeout: float = 5.0
    """Seconds to open a TCP connection. The sidecar runs in the cluster, so a connection that
    takes longer than this points to a missing Service or a network policy, not to load."""

    read_timeout: float = 15.0
    """Seconds to wait for the response once the request is sent. The sidecar writes OIDC clients
    to PostgreSQL before it responds, so this leaves room for a slow database."""

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
    """Interface of a sidecar client as the reconcile logic uses it; tests may pass a fake."""

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
    """Response of ``DeleteOidcClient``: an empty object."""


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
        result = await self._run_command("Ping", {}, integration_key, _PingResponse)
        return result.timestamp

    async def create_oidc_client(
        self, integration_key: SecretStr, request: CreateOidcClientRequest
    ) -> str:
        """Create an OIDC client with ``CreateOidcClient``; return the sidecar's client ID.

        Raises ``CustomerIdAlreadyTakenError`` when the customer ID has a client already (for
        example because an earlier call timed out after the sidecar applied it),
        ``ClientIdAlreadyTakenError`` and ``InvalidFieldsError``.
        """
        result = await self._run_command(
            "CreateOidcClient",
            request.to_wire(),
            integration_key,
            _ClientIdResponse,
            customer_id=request.customer_id,
            secrets=(request.idp_info_from_customer.client_secret.get_secret_value(),),
        )
        return result.client_id

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

        result = await self._run_command(
            "PatchOidcClient",
            {**request.to_wire(), "customerId": customer_id},
            integration_key,
            _ClientIdResponse,
            customer_id=customer_id,
            secrets=secrets,
        )
        return result.client_id

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

        NOTE: no public document describes this endpoint. This function contains the whole
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

        result = await self._exchange(
            path="/api/initial_setup",
            command="InitialSetup",
            payload={"setupSecret": secret_value},
            integration_key=None,
            response_model=_InitialSetupResponse,
            secrets=(secret_value,),
            status_errors=status_errors,
        )
        logger.info("Initial setup on the sidecar at %s returned an integration key", self.url)
        return result.api_key

    # The one place that sends requests; _translate maps their failures.

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
        """Send one request and return its validated response, or raise a ``SidecarError``.

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
        call = Call(url=self.url, command=command, customer_id=customer_id, secrets=secrets)

        # The semaphore bounds calls in flight. The clock starts once a slot is free, so the
        # logged duration leaves out the time spent queueing.
        async with self._semaphore:
            started = time.perf_counter()
            try:
                response = await self._http.post(path, json=payload, headers=headers)
            except HTTPX_ERRORS as exc:
                error = translate_http_error(exc, call)
                _log_outcome(command, error, None, _milliseconds_since(started))
                raise error from exc
        elapsed = _milliseconds_since(started)

        try:
            result = read_response_body(response, call, response_model, status_errors or {})
        except SidecarError as error:
            _log_outcome(command, error, response.status_code, elapsed)
            raise
        _log_outcome(command, None, response.status_code, elapsed)
        return result


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

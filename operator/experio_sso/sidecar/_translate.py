"""Translation of every failure of one exchange with the sidecar into a ``SidecarError``.

``SidecarClient._exchange`` is the only caller: it hands over the httpx exception or the
response, and raises what these functions return or raise. Transport errors, error bodies
``{"type", "details"}``, bodies that are not JSON and success bodies of the wrong shape all
end here, so that the mapping to the exception tree of ``_exceptions`` lives in one module.

Foreign text (error details, a proxy's page, an httpx error string) goes into a message only
through ``excerpt``, which redacts the secrets of the request and cuts the text short.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pydantic

from ._exceptions import (
    ClientIdAlreadyTakenError,
    CommandNotAllowedError,
    CustomerIdAlreadyTakenError,
    InvalidField,
    InvalidFieldsError,
    InvalidSidecarUrlError,
    OidcClientNotFoundError,
    SidecarError,
    SidecarTimeoutError,
    SidecarUnavailableError,
    UnauthorizedError,
    UnexpectedResponseError,
    excerpt,
)
from ._models import _ResponseModel

_ResponseT = TypeVar("_ResponseT", bound=_ResponseModel)

_UNAUTHORIZED_ERROR_TYPES = frozenset(
    {"InvalidPrefix", "IntegrationKeyNotFound", "NoIntegrationKeyFoundInHeader"}
)

_TIMEOUT_PHASES: Mapping[type[httpx.TimeoutException], str] = {
    httpx.ConnectTimeout: "connecting",
    httpx.WriteTimeout: "sending the request",
    httpx.ReadTimeout: "waiting for the response",
    httpx.PoolTimeout: "waiting for a free connection",
}

# Every exception that httpx raises from a request; the client catches exactly these.
HTTPX_ERRORS = (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, httpx.CookieConflict)


@dataclass(frozen=True)
class Call:
    """Context of one call for its messages: the sidecar, the command and the customer ID.

    ``secrets`` are the secret values sent in the request (integration key, client secret,
    setup secret). They are never shown, only redacted from foreign text.
    """

    url: str
    command: str
    customer_id: str | None = None
    secrets: Sequence[str] = ()


def translate_http_error(exc: Exception, call: Call) -> SidecarError:
    """Map an exception raised by httpx while sending or receiving to a ``SidecarError``."""
    reason = excerpt(str(exc) or type(exc).__name__, call.secrets)
    command = call.command

    if isinstance(exc, httpx.TimeoutException):
        phase = _TIMEOUT_PHASES.get(type(exc), "waiting")
        return SidecarTimeoutError(
            f"Sidecar command {command} at {call.url} timed out while {phase}.",
            command=command,
        )

    # An unusable URL; normalize_sidecar_url rejects most of these before any call.
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return InvalidSidecarUrlError(
            f"Sidecar command {command} cannot be sent to {call.url}: {reason}",
            command=command,
        )

    # The sidecar or a proxy responded, but cut the response off or garbled it.
    if isinstance(exc, httpx.RemoteProtocolError | httpx.DecodingError):
        return UnexpectedResponseError(
            f"Sidecar command {command} at {call.url} received a broken response: {reason}",
            command=command,
        )

    # Connection refused, host name not resolved, connection reset, proxy failure.
    if isinstance(exc, httpx.NetworkError | httpx.ProxyError):
        return SidecarUnavailableError(
            f"Sidecar at {call.url} is unreachable for command {command}: {reason}",
            command=command,
        )

    # LocalProtocolError, redirects, stream misuse: neither the network nor the sidecar
    # explains these, so they count as an exchange that went wrong.
    return UnexpectedResponseError(
        f"Sidecar command {command} at {call.url} failed: {type(exc).__name__}: {reason}",
        command=command,
    )


def read_response_body(
    response: httpx.Response,
    call: Call,
    response_model: type[_ResponseT],
    status_errors: Mapping[int, SidecarError],
) -> _ResponseT:
    """Validate a success body into ``response_model``, or raise for any other response.

    ``status_errors`` maps an HTTP status to the exception raised for it without reading the
    body; initial setup uses it because its errors are told apart by status alone.
    """
    status = response.status_code
    command = call.command

    if status in status_errors:
        raise status_errors[status]

    try:
        body = json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UnexpectedResponseError(
            f"Sidecar command {command} at {call.url} returned HTTP {status} with a body "
            "that is not JSON, such as a proxy's error page or a truncated body: "
            f"{excerpt(response.text, call.secrets)!r}",
            command=command,
            status_code=status,
        ) from exc

    if status != httpx.codes.OK:
        raise _error_from_body(body, status, call)

    try:
        return response_model.model_validate(body)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        )
        raise UnexpectedResponseError(
            f"Sidecar command {command} at {call.url} returned HTTP 200 with a body of an "
            f"unexpected shape: {excerpt(problems, call.secrets)}",
            command=command,
            status_code=status,
        ) from exc


def _error_from_body(body: Any, status: int, call: Call) -> SidecarError:
    """Map an error body ``{"type", "details"}`` to its exception."""
    command = call.command
    customer_id = call.customer_id

    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        return UnexpectedResponseError(
            f"Sidecar command {command} at {call.url} returned HTTP {status} without an "
            f"error type: {excerpt(json.dumps(body), call.secrets)!r}",
            command=command,
            status_code=status,
        )

    error_type: str = body["type"]
    details = body.get("details")

    if error_type in _UNAUTHORIZED_ERROR_TYPES:
        return UnauthorizedError(
            f"The sidecar at {call.url} rejected the integration key ({error_type}) for "
            f"command {command}; store a valid key in the API key Secret.",
            command=command,
            error_type=error_type,
        )

    if error_type == "CommandNotAllowed":
        denied_command = _denied_command(details, call.secrets) or command
        return CommandNotAllowedError(
            f"The integration key may not run the sidecar command {denied_command}; "
            "create a key with that permission in the sidecar dashboard.",
            command=command,
            denied_command=denied_command,
        )

    if error_type == "InvalidFields":
        fields = _invalid_fields(details, call.secrets)
        if fields is None:
            return UnexpectedResponseError(
                f"Sidecar command {command} at {call.url} returned InvalidFields without a "
                "readable list of fields.",
                command=command,
                status_code=status,
                error_type=error_type,
            )
        listing = "; ".join(f"{item.field} ({item.code}): {item.message}" for item in fields)
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
        else f"returned the unknown error type {excerpt(error_type, call.secrets)!r}"
    )
    return UnexpectedResponseError(
        f"Sidecar command {command} at {call.url} {label} (HTTP {status}): "
        f"{excerpt(detail_text, call.secrets)!r}",
        command=command,
        status_code=status,
        error_type=error_type,
    )


def _denied_command(details: Any, secrets: Sequence[str]) -> str | None:
    """Find the command name in ``CommandNotAllowed`` details: a string or ``{"command"}``."""
    if isinstance(details, str) and details:
        return excerpt(details, secrets)
    if isinstance(details, dict):
        name = details.get("command")
        if isinstance(name, str) and name:
            return excerpt(name, secrets)
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

"""Exceptions raised by the sidecar client.

Every failure of a call to the sidecar surfaces as one of these, never as an ``httpx``,
``json`` or ``pydantic`` error. The module ``_translate`` is the one place that maps
lower-level errors and the sidecar's error bodies to these, and the original is chained with
``raise ... from exc``. The tree::

    SidecarError                      retryable
    ├── SidecarUnavailableError       yes   connection refused, DNS failure, reset
    │   └── SidecarTimeoutError       yes   connect, read, write or pool timeout
    ├── InvalidSidecarUrlError        no    the URL is not an http(s) URL with a host
    ├── UnexpectedResponseError       yes   non-JSON body, proxy error page, truncated
    │                                       body, unknown error type, ``UnexpectedError``,
    │                                       any other failed HTTP exchange
    ├── UnauthorizedError             no    ``InvalidPrefix``, ``IntegrationKeyNotFound``,
    │                                       ``NoIntegrationKeyFoundInHeader``, or a key
    │                                       that cannot be sent in a header
    ├── CommandNotAllowedError        no    the key lacks the permission for a command
    ├── InvalidFieldsError            no    ``InvalidFields``, with the field errors
    ├── OidcClientNotFoundError       no    ``OidcClientNotFound``
    ├── CustomerIdAlreadyTakenError   no    ``CustomerIdAlreadyTakenForEoidcClient``
    ├── ClientIdAlreadyTakenError     no    ``ClientIdAlreadyTaken``
    ├── SetupSecretRejectedError      no    initial setup returned HTTP 401
    └── InitialSetupAlreadyDoneError  no    initial setup returned HTTP 409

``retryable`` tells the operator whether to back off and call again (the cause may go away by
itself) or to report the failure and wait for a person or for a change of the resource.
``OidcClientNotFoundError`` and ``CustomerIdAlreadyTakenError`` are not retryable because they
describe the sidecar's state, which the caller acts on (recreate, adopt) instead of retrying.

The messages and reprs of these exceptions contain no integration key, client secret or setup
secret of the request. Text taken from a foreign body is cut to ``MAX_EXCERPT_LENGTH``
characters after every such secret, also in JSON-escaped spellings, has been replaced by
``[redacted]``. The chained original exception is not rewritten: it is an httpx, json or
pydantic error, and for the requests this client sends none of those quote request headers
or bodies (pydantic models here hide input values in their errors).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "MAX_EXCERPT_LENGTH",
    "ClientIdAlreadyTakenError",
    "CommandNotAllowedError",
    "CustomerIdAlreadyTakenError",
    "InitialSetupAlreadyDoneError",
    "InvalidField",
    "InvalidFieldsError",
    "InvalidSidecarUrlError",
    "OidcClientNotFoundError",
    "SetupSecretRejectedError",
    "SidecarError",
    "SidecarTimeoutError",
    "SidecarUnavailableError",
    "UnauthorizedError",
    "UnexpectedResponseError",
    "excerpt",
]

MAX_EXCERPT_LENGTH = 200
"""Maximum number of characters of a foreign body (error details, an HTML page) in a message."""

_REDACTED = "[redacted]"

# Levels of JSON string escaping under which a secret is still found and redacted.
_ESCAPING_LEVELS = 3


def excerpt(text: str, secrets: Sequence[str] = ()) -> str:
    """Shorten foreign text for a message: redact ``secrets``, fold whitespace, cut the rest.

    Redaction happens before cutting, so that a secret that straddles the cut cannot leave a
    prefix of itself behind.
    """
    for variant in _spellings(secrets):
        text = text.replace(variant, _REDACTED)
    text = " ".join(text.split())
    if len(text) > MAX_EXCERPT_LENGTH:
        text = text[:MAX_EXCERPT_LENGTH] + "..."
    return text


def _spellings(secrets: Sequence[str]) -> list[str]:
    """List each secret as sent and as it reads inside JSON strings, longest first.

    An error body may quote the request (JSON) inside a JSON string, and a message may quote
    that body as JSON again, so a secret with quotes, backslashes or non-ASCII characters is
    also looked for in its JSON-escaped forms. NOTE: more than ``_ESCAPING_LEVELS`` levels of
    escaping are not redacted.
    """
    spellings: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        level = {secret}
        spellings.update(level)
        for _ in range(_ESCAPING_LEVELS):
            level = {
                json.dumps(variant, ensure_ascii=ascii_only)[1:-1]
                for variant in level
                for ascii_only in (True, False)
            }
            spellings.update(level)
    return sorted(spellings, key=len, reverse=True)


class SidecarError(Exception):
    """Base of every error raised by the sidecar client.

    ``command`` is the sidecar command (``Ping``, ``CreateOidcClient``, ...) or ``InitialSetup``
    whose call failed, or ``None`` when the failure came before any call.
    """

    retryable: ClassVar[bool] = False
    """Whether calling again later may succeed without a person changing anything."""

    def __init__(self, message: str, *, command: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.command = command


class SidecarUnavailableError(SidecarError):
    """The sidecar could not be reached: connection refused, DNS failure, connection reset.

    The request may or may not have been applied when the connection broke after sending it.
    """

    retryable = True


class SidecarTimeoutError(SidecarUnavailableError):
    """Connecting, sending, reading or waiting for a pooled connection took too long.

    A timed-out ``CreateOidcClient`` may have been applied; a retry then raises
    ``CustomerIdAlreadyTakenError``.
    """


class InvalidSidecarUrlError(SidecarError):
    """The sidecar URL cannot be used: not ``http``/``https``, no host, or user info in it."""


class UnexpectedResponseError(SidecarError):
    """The sidecar returned a response that the client cannot use.

    A body that is not JSON (a proxy's error page), a truncated body, a success body of the
    wrong shape, an error type that this client does not know, or the sidecar's own
    ``UnexpectedError``. ``status_code`` is ``None`` when no complete response arrived;
    ``error_type`` is the body's ``type`` when there was one.
    """

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        command: str | None = None,
        status_code: int | None = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(message, command=command)
        self.status_code = status_code
        self.error_type = error_type


class UnauthorizedError(SidecarError):
    """The sidecar rejected the integration key, or the key cannot be sent at all.

    ``error_type`` is ``InvalidPrefix``, ``IntegrationKeyNotFound`` or
    ``NoIntegrationKeyFoundInHeader``, or ``None`` when the client refused to send a key that
    contains whitespace or non-ASCII characters.
    """

    def __init__(
        self, message: str, *, command: str | None = None, error_type: str | None = None
    ) -> None:
        super().__init__(message, command=command)
        self.error_type = error_type


class CommandNotAllowedError(SidecarError):
    """The integration key is valid but lacks the permission for ``denied_command``."""

    def __init__(self, message: str, *, command: str | None = None, denied_command: str) -> None:
        super().__init__(message, command=command)
        self.denied_command = denied_command


@dataclass(frozen=True)
class InvalidField:
    """One field error of an ``InvalidFields`` response, as the sidecar reports it."""

    field: str
    code: str
    message: str


class InvalidFieldsError(SidecarError):
    """The sidecar rejected fields of the request; ``fields`` lists each field, code and message."""

    def __init__(
        self, message: str, *, command: str | None = None, fields: Sequence[InvalidField]
    ) -> None:
        super().__init__(message, command=command)
        self.fields = tuple(fields)


class _CustomerIdError(SidecarError):
    """An error about the OIDC client of one customer ID."""

    def __init__(
        self, message: str, *, command: str | None = None, customer_id: str | None = None
    ) -> None:
        super().__init__(message, command=command)
        self.customer_id = customer_id


class OidcClientNotFoundError(_CustomerIdError):
    """The sidecar has no OIDC client for the customer ID."""


class CustomerIdAlreadyTakenError(_CustomerIdError):
    """An OIDC client with this customer ID exists already (one client per customer ID)."""


class ClientIdAlreadyTakenError(_CustomerIdError):
    """Another OIDC client in the sidecar already uses the identity provider's client ID."""


class SetupSecretRejectedError(SidecarError):
    """Initial setup rejected the setup secret (HTTP 401)."""


class InitialSetupAlreadyDoneError(SidecarError):
    """Initial setup already minted a key earlier and cannot run again (HTTP 409)."""

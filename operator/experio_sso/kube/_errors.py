"""Exceptions raised by the Kubernetes API client, and the one place that raises them.

Every failure of a request surfaces as one of these, never as an ``httpx`` or ``json`` error.
:func:`translated_errors` wraps every request and every watch stream, and
:func:`error_from_status` turns an error response or a watch ``ERROR`` event into an exception;
both chain the original with ``raise ... from exc``. The tree::

    KubeError                 retryable
    ├── NotFound              no    404
    ├── AlreadyExists         no    409 with reason AlreadyExists (create)
    ├── Conflict              no    409 with reason Conflict (stale resourceVersion), or a JSON
    │                               patch that could not be applied (a failed ``test`` operation
    │                               or a missing path, returned as 422 with no causes)
    ├── Forbidden             no    403; the message names the verb and the resource
    │   └── Unauthorized      no    401 after one refresh of the credentials
    ├── Invalid               no    422 and 400, with the API server's message and field causes
    ├── Gone                  no    410: a resourceVersion or continue token is too old
    └── Unavailable           yes   connect errors, timeouts, broken streams, 5xx, 429

Messages never contain Secret data or request bodies. The API server echoes the whole object in
some 422 messages (for example, a merge patch with invalid base64 in ``data`` gets the patched
Secret back, with every key's value), so for Secrets the message of a 400 or 422 is withheld and
only the field paths of the causes are kept. Other foreign text is cut to
``MAX_EXCERPT_LENGTH`` characters.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

__all__ = [
    "MAX_EXCERPT_LENGTH",
    "AlreadyExists",
    "Conflict",
    "Forbidden",
    "Gone",
    "Invalid",
    "KubeError",
    "NotFound",
    "RequestContext",
    "Unauthorized",
    "Unavailable",
    "error_from_response",
    "error_from_status",
    "translated_errors",
]

MAX_EXCERPT_LENGTH = 300
"""Maximum number of characters of foreign text (server messages, bodies) kept in a message."""


class KubeError(Exception):
    """A request to the Kubernetes API server failed.

    ``status`` is the HTTP status code and ``reason`` the ``Status.reason`` of the API server's
    response. Both are ``None`` when no response arrived.
    """

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, status: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.status = status
        self.reason = reason


class NotFound(KubeError):
    """The object (or its namespace, or its kind) does not exist."""


class AlreadyExists(KubeError):
    """An object with this name already exists."""


class Conflict(KubeError):
    """The object changed since it was read, or a JSON patch's ``test`` operation failed."""


class Forbidden(KubeError):
    """RBAC (or an admission policy) does not allow this request."""


class Unauthorized(Forbidden):
    """The API server rejected the credentials, even after they were refreshed once."""


class Invalid(KubeError):
    """The API server rejected the request or the object as invalid.

    ``fields`` lists the field paths of the causes, for example ``("data[bad key]",)``.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str | None = None,
        fields: tuple[str, ...] = (),
    ):
        super().__init__(message, status=status, reason=reason)
        self.fields = fields


class Gone(KubeError):
    """A resourceVersion or continue token is older than the API server keeps: list again."""


class Unavailable(KubeError):
    """The API server could not be reached or asked to retry later.

    ``retry_after`` is the delay in seconds the server asked for, when it asked for one.
    """

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message, status=status, reason=reason)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RequestContext:
    """What a request does, for error messages: ``patch ssoclients.auth.experio.cloud/status``.

    ``secret`` marks requests whose bodies or responses may contain Secret data, so that the
    API server's messages are withheld where they could echo that data.
    """

    verb: str
    resource: str
    namespace: str | None = None
    name: str | None = None
    secret: bool = False
    json_patch: bool = False

    def __str__(self) -> str:
        target = self.resource
        if self.name:
            target = f'{target} "{self.name}"'
        if self.namespace:
            target = f'{target} in namespace "{self.namespace}"'
        return f"{self.verb} {target}"


def excerpt(text: str) -> str:
    """Cut foreign text to ``MAX_EXCERPT_LENGTH`` characters, marking the cut."""
    text = " ".join(text.split())
    if len(text) <= MAX_EXCERPT_LENGTH:
        return text
    return text[:MAX_EXCERPT_LENGTH] + "...(cut)"


def _cause_fields(status_body: Mapping[str, Any]) -> tuple[str, ...]:
    details = status_body.get("details")
    causes = details.get("causes") if isinstance(details, dict) else None
    if not isinstance(causes, list):
        return ()
    return tuple(
        str(cause["field"]) for cause in causes if isinstance(cause, dict) and cause.get("field")
    )


def _retry_after(status_body: Mapping[str, Any], header: str | None) -> float | None:
    if header:
        with contextlib.suppress(ValueError):
            return float(header)
    details = status_body.get("details")
    if isinstance(details, dict) and isinstance(details.get("retryAfterSeconds"), int):
        return float(details["retryAfterSeconds"])
    return None


def error_from_status(
    code: int,
    status_body: Mapping[str, Any] | None,
    context: RequestContext,
    *,
    raw_text: str = "",
    retry_after_header: str | None = None,
) -> KubeError:
    """Map an HTTP status code and the API server's ``Status`` object to an exception.

    ``status_body`` is ``None`` when the answer was not a ``Status`` (a proxy's error page, for
    example); then ``raw_text`` is cut short and used instead.
    """
    body: Mapping[str, Any] = status_body or {}
    reason = body.get("reason") if isinstance(body.get("reason"), str) else None
    server_message = str(body.get("message") or "") if status_body else raw_text
    fields = _cause_fields(body)

    # A 400 or 422 may echo the object, so for Secrets only the field paths are kept.
    if context.secret and code in (400, 422):
        listed = ", ".join(fields) if fields else "no field named"
        detail = f"rejected as {reason or 'invalid'} ({listed}); the API server's message is "
        detail += "withheld because it may contain Secret data"
    else:
        detail = excerpt(server_message) or "(no message)"
    message = f"{context} failed with HTTP {code}: {detail}"

    if code == 404:
        return NotFound(message, status=code, reason=reason)
    if code == 409 and reason == "AlreadyExists":
        return AlreadyExists(message, status=code, reason=reason)
    if code == 409:
        return Conflict(message, status=code, reason=reason)
    if code == 401:
        return Unauthorized(message, status=code, reason=reason)
    if code == 403:
        return Forbidden(message, status=code, reason=reason)
    if code == 410:
        return Gone(message, status=code, reason=reason)
    if code == 422 and context.json_patch and not fields:
        # The API server rejects a JSON patch it cannot apply (a failed "test" operation, or
        # a path that does not exist) with 422, a generic message and no field causes.
        # Both mean that the object is not in the state the patch expected.
        return Conflict(
            f"{context} failed: the JSON patch does not apply to the current object "
            "(a test operation failed or a path does not exist)",
            status=code,
            reason=reason,
        )
    if code in (400, 422):
        return Invalid(message, status=code, reason=reason, fields=fields)
    if code == 429 or code >= 500:
        return Unavailable(
            message,
            status=code,
            reason=reason,
            retry_after=_retry_after(body, retry_after_header),
        )
    return KubeError(message, status=code, reason=reason)


def error_from_response(response: httpx.Response, context: RequestContext) -> KubeError:
    """Map an error response, whose body has been read, to an exception."""
    status_body: dict[str, Any] | None = None
    with contextlib.suppress(ValueError):
        parsed = json.loads(response.content)
        if isinstance(parsed, dict) and parsed.get("kind") == "Status":
            status_body = parsed
    return error_from_status(
        response.status_code,
        status_body,
        context,
        raw_text=response.text if status_body is None else "",
        retry_after_header=response.headers.get("Retry-After"),
    )


@contextlib.contextmanager
def translated_errors(context: RequestContext) -> Iterator[None]:
    """Translate ``httpx`` and JSON errors raised inside the block into :class:`KubeError`."""
    try:
        yield
    except KubeError:
        raise
    except httpx.TimeoutException as exc:
        raise Unavailable(f"{context} timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        # Connection refused, reset, TLS failure, or a stream cut off by a restarting server.
        raise Unavailable(f"{context} failed: {type(exc).__name__}: {excerpt(str(exc))}") from exc
    except httpx.HTTPError as exc:
        raise KubeError(f"{context} failed: {type(exc).__name__}: {excerpt(str(exc))}") from exc
    except ValueError as exc:
        # json.JSONDecodeError and UnicodeDecodeError; the body itself is not quoted.
        raise KubeError(
            f"{context} failed: the API server's response is not valid JSON ({type(exc).__name__})"
        ) from exc

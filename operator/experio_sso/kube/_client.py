"""The operator's async client for the objects kopf does not watch for it.

Controllers call :class:`KubeClient` to read and write Secrets, ConfigMaps, Events, the status
subresource and finalizers of our custom resources, and to watch Secrets' metadata. It speaks
plain JSON over one ``httpx.AsyncClient`` connection pool, so every call runs on the event loop.
The ``kubernetes`` package only loads the configuration, in a worker thread (see ``_config``).

Every request goes through :meth:`KubeClient._request` or the watch's stream, and both translate
errors in one place (``_errors.translated_errors``). Requests are logged at DEBUG as method,
path, status code and duration; bodies and headers never are.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import json
import logging
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from pydantic import SecretStr

from experio_sso.constants import MANAGER_NAME

from ._config import ClusterConnection, load_connection
from ._errors import (
    Gone,
    Invalid,
    NotFound,
    RequestContext,
    error_from_response,
    translated_errors,
)
from ._resources import SECRETS, ResourceKind
from ._watch import Backoff, MetadataEvent, watch_metadata

__all__ = ["DEFAULT_FIELD_MANAGER", "KubeClient", "SecretRead"]

logger = logging.getLogger("experio_sso.kube")

DEFAULT_FIELD_MANAGER = MANAGER_NAME
"""The ``fieldManager`` recorded in managedFields for our creates and patches."""

PATCH_CONTENT_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
}
MAX_LIST_RESTARTS = 3
"""How often a paginated list starts over after its continue token expired (410) mid-way."""


@dataclass(frozen=True)
class SecretRead:
    """One key of one Secret, decoded, with the Secret's identity.

    ``status`` is ``ok`` (``value`` set), ``secret_not_found``, ``key_missing`` or ``empty``
    (the key exists with a zero-length value). ``uid`` and ``resource_version`` identify the
    Secret version that was read, so that a caller can record what it applied without keeping
    or hashing the value. Both are ``None`` when the Secret does not exist.
    """

    status: Literal["ok", "secret_not_found", "key_missing", "empty"]
    value: SecretStr | None
    uid: str | None
    resource_version: str | None


class KubeClient:
    """An async client for the Kubernetes API with one exception tree (see ``experio_sso.kube``).

    Create it with :meth:`connect` and close it with :meth:`aclose` (or ``async with``). The
    constructor takes a loaded :class:`ClusterConnection` and an optional ``httpx`` transport,
    for tests that observe the raw traffic.
    """

    def __init__(
        self,
        connection: ClusterConnection,
        *,
        timeout: float = 30.0,
        max_connections: int = 20,
        field_manager: str = DEFAULT_FIELD_MANAGER,
        page_size: int = 500,
        watch_backoff: Backoff | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.connection = connection
        self.timeout = timeout
        self.field_manager = field_manager
        self.page_size = page_size
        self.watch_backoff = watch_backoff or Backoff(initial=0.5, maximum=30.0)
        # Proxy and CA settings come from the kubeconfig alone, not from HTTPS_PROXY or
        # SSL_CERT_FILE, so that the client talks to exactly the cluster it was given.
        self._http = httpx.AsyncClient(
            base_url=connection.server,
            verify=connection.ssl_context,
            proxy=connection.proxy,
            timeout=timeout,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers={"User-Agent": DEFAULT_FIELD_MANAGER},
            transport=transport,
            trust_env=False,
        )
        self._extensions = (
            {"sni_hostname": connection.tls_server_name} if connection.tls_server_name else {}
        )

    @classmethod
    async def connect(
        cls,
        kubeconfig: str | None = None,
        *,
        # The client's per-request timeout, not a timeout of connect() itself.
        timeout: float = 30.0,  # noqa: ASYNC109
        max_connections: int = 20,
    ) -> KubeClient:
        """Load the configuration (see :func:`load_connection`) and return a client for it.

        ``timeout`` is in seconds, per request phase (connect, read, write, pool);
        ``max_connections`` includes the long-lived connections of running watches.
        Raises :class:`KubeError` when no configuration is found; it does not contact the
        API server.
        """
        connection = await load_connection(kubeconfig)
        logger.info(
            "Using the Kubernetes API server at %s (configuration: %s)",
            connection.server,
            connection.source,
        )
        return cls(connection, timeout=timeout, max_connections=max_connections)

    async def aclose(self) -> None:
        """Close the connection pool; running watches end with :class:`Unavailable`."""
        await self._http.aclose()

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- transport ---------------------------------------------------------------------------

    async def headers(self, accept: str = "application/json") -> dict[str, str]:
        """Return the request headers: ``Accept`` and, for token users, ``Authorization``."""
        headers = {"Accept": accept}
        authorization = await self.connection.credentials.authorization()
        if authorization:
            headers["Authorization"] = authorization
        return headers

    def build_request(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        *,
        params: dict[str, str] | None = None,
        content: bytes | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Request:
        """Build a request for ``path`` with the TLS server name that the kubeconfig sets."""
        return self._http.build_request(
            method,
            path,
            params=params,
            content=content,
            headers=headers,
            extensions=self._extensions,
            timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
        )

    async def send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        """Send a request; on 401, refresh the credentials and send it once more."""
        started = time.monotonic()
        response = await self._http.send(request, stream=stream)
        if response.status_code == 401 and await self.connection.credentials.refresh():
            await response.aclose()
            authorization = await self.connection.credentials.authorization()
            if authorization:
                request.headers["Authorization"] = authorization
            response = await self._http.send(request, stream=stream)
        logger.debug(
            "%s %s returned %d in %.0f ms",
            request.method,
            request.url.path,
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        return response

    async def _request(
        self,
        method: str,
        path: str,
        context: RequestContext,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> dict[str, Any]:
        """Send one request and return the decoded JSON response; raise :class:`KubeError`."""
        with translated_errors(context):
            headers = await self.headers(accept)
            content = None
            if body is not None:
                content = json.dumps(body).encode()
                headers["Content-Type"] = content_type
            request = self.build_request(method, path, headers, params=params, content=content)
            response = await self.send(request)
            if response.is_error:
                raise error_from_response(response, context)
            answer = json.loads(response.content)
            if not isinstance(answer, dict):
                raise ValueError("the response is not a JSON object")
            return answer

    # --- objects -----------------------------------------------------------------------------

    async def get(
        self, kind: ResourceKind, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        """Return one object, or ``None`` when it (or its namespace) does not exist."""
        context = RequestContext("get", kind.resource, namespace, name, secret=kind == SECRETS)
        try:
            return await self._request("GET", kind.path(namespace, name), context)
        except NotFound:
            return None

    async def list(
        self,
        kind: ResourceKind,
        namespace: str | None,
        *,
        label_selector: str | None = None,
    ) -> builtins.list[dict[str, Any]]:
        """Return all objects of a kind in a namespace (``None``: in all namespaces).

        Lists page by page (``page_size`` objects per request); when the continue token
        expires between pages, the list starts over. Each item gets ``apiVersion`` and
        ``kind``, which the API server leaves out of list items.
        """
        items, _ = await self.list_pages(kind, namespace, label_selector=label_selector)
        for item in items:
            item.setdefault("apiVersion", kind.api_version)
            item.setdefault("kind", kind.kind)
        return items

    async def list_pages(
        self,
        kind: ResourceKind,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        accept: str = "application/json",
    ) -> tuple[builtins.list[dict[str, Any]], str]:
        """Return all items of a paginated list and the list's resourceVersion."""
        context = RequestContext("list", kind.resource, namespace, secret=kind == SECRETS)
        for attempt in range(1, MAX_LIST_RESTARTS + 1):
            items: builtins.list[dict[str, Any]] = []
            params = {"limit": str(self.page_size)}
            if label_selector:
                params["labelSelector"] = label_selector
            try:
                while True:
                    page = await self._request(
                        "GET", kind.path(namespace), context, params=params, accept=accept
                    )
                    items.extend(page.get("items") or [])
                    metadata = page.get("metadata") or {}
                    if not metadata.get("continue"):
                        return items, str(metadata.get("resourceVersion") or "")
                    params["continue"] = str(metadata["continue"])
            except Gone:
                # The continue token expired between pages: start over, up to a limit.
                if attempt == MAX_LIST_RESTARTS:
                    raise
                logger.info(
                    "Listing %s expired between pages; starting over (attempt %d of %d)",
                    kind.resource,
                    attempt + 1,
                    MAX_LIST_RESTARTS,
                )
        raise AssertionError("unreachable")

    async def create(
        self, kind: ResourceKind, namespace: str | None, body: dict[str, Any]
    ) -> dict[str, Any]:
        """Create an object and return it as stored; raises :class:`AlreadyExists` on 409."""
        name = (body.get("metadata") or {}).get("name")
        context = RequestContext("create", kind.resource, namespace, name, secret=kind == SECRETS)
        return await self._request(
            "POST",
            kind.path(namespace),
            context,
            params={"fieldManager": self.field_manager, "fieldValidation": "Strict"},
            body=body,
        )

    async def patch(
        self,
        kind: ResourceKind,
        namespace: str | None,
        name: str,
        patch: dict[str, Any] | builtins.list[dict[str, Any]],
        *,
        patch_type: Literal["merge", "json"] = "merge",
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Patch an object (or its ``status`` subresource) and return it as stored.

        ``merge`` is a JSON merge patch (RFC 7386): lists such as ``metadata.finalizers`` are
        replaced whole, so guard them with ``metadata.resourceVersion`` or use ``json``, a
        JSON patch (RFC 6902) whose ``test`` operations make it conditional. Unknown fields
        are rejected (``fieldValidation=Strict``). Raises :class:`NotFound`, :class:`Conflict`
        (stale resourceVersion, failed ``test``, missing path) and :class:`Invalid`.
        """
        verb = f"patch ({subresource})" if subresource else "patch"
        context = RequestContext(
            verb,
            kind.resource,
            namespace,
            name,
            secret=kind == SECRETS,
            json_patch=patch_type == "json",
        )
        return await self._request(
            "PATCH",
            kind.path(namespace, name, subresource),
            context,
            params={"fieldManager": self.field_manager, "fieldValidation": "Strict"},
            body=patch,
            content_type=PATCH_CONTENT_TYPES[patch_type],
        )

    async def delete(self, kind: ResourceKind, namespace: str | None, name: str) -> bool:
        """Delete an object; return ``False`` when it did not exist.

        An object with finalizers is only marked for deletion; it still exists afterwards.
        """
        context = RequestContext("delete", kind.resource, namespace, name, secret=kind == SECRETS)
        try:
            await self._request("DELETE", kind.path(namespace, name), context)
        except NotFound:
            return False
        return True

    # --- Secrets -------------------------------------------------------------------------------

    async def read_secret_key(self, namespace: str, name: str, key: str) -> SecretRead:
        """Read one key of a Secret and decode it as UTF-8.

        The other keys are dropped as soon as the response is parsed. Raises :class:`Invalid`
        when the value is not UTF-8 text (the message names the key, not the value), and the
        other :class:`KubeError` types for failed requests.
        """
        context = RequestContext("get", SECRETS.resource, namespace, name, secret=True)
        try:
            secret = await self._request("GET", SECRETS.path(namespace, name), context)
        except NotFound:
            return SecretRead("secret_not_found", None, None, None)

        data = secret.pop("data", None) or {}
        encoded = data.get(key)
        data.clear()
        metadata = secret.get("metadata") or {}
        uid = metadata.get("uid")
        resource_version = metadata.get("resourceVersion")
        if encoded is None:
            return SecretRead("key_missing", None, uid, resource_version)
        if not encoded:
            return SecretRead("empty", None, uid, resource_version)

        try:
            value = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise Invalid(
                f'{context} failed: key "{key}" is not UTF-8 text in base64',
                reason="KeyNotText",
            ) from exc
        return SecretRead("ok", SecretStr(value), uid, resource_version)

    # --- watch ---------------------------------------------------------------------------------

    def watch_metadata(
        self,
        kind: ResourceKind,
        namespace: str | None,
        on_listed: Callable[[], None] | None = None,
    ) -> AsyncGenerator[MetadataEvent, None]:
        """Watch the metadata of a kind's objects in a namespace (``None``: all namespaces).

        See :func:`experio_sso.kube._watch.watch_metadata`. Close the iterator when done
        (``contextlib.aclosing``) or cancel the task that iterates it.
        """
        return watch_metadata(self, kind, namespace, on_listed)

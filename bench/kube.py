"""A small Kubernetes API client for the benchmark driver and the floor, with its own counters.

The figures count the API server's requests from its ``apiserver_request_total`` metric, which
has no label for the client. So every request this client sends is also counted here, under the
same (verb, resource, subresource) labels the API server uses, and the driver subtracts its own
requests from the server's totals. What is left is the operator's (or the floor's) traffic.

Only JSON over one ``httpx.AsyncClient`` with the admin client certificate; nothing here is
used by the operator.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import re
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

logger = logging.getLogger("bench.kube")

GROUP = "auth.experio.cloud"
VERSION = "v1alpha1"
WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY"})
READ_VERBS = frozenset({"GET", "LIST", "WATCH"})

# One sample line of the Prometheus text format, such as
# apiserver_request_total{code="201",...,verb="POST",version="v1"} 12
_SAMPLE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

RequestKey = tuple[str, str, str]
"""(verb, resource, subresource) as ``apiserver_request_total`` labels a request."""


@dataclass(frozen=True)
class Kind:
    """A resource kind and its REST path."""

    group: str
    version: str
    plural: str

    def path(self, namespace: str | None, name: str | None = None, sub: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace:
            base += f"/namespaces/{namespace}"
        path = f"{base}/{self.plural}"
        if name:
            path += f"/{name}"
            if sub:
                path += f"/{sub}"
        return path


SECRETS = Kind("", "v1", "secrets")
NAMESPACES = Kind("", "v1", "namespaces")
CLIENTS = Kind(GROUP, VERSION, "ssoclients")
SETTINGS = Kind(GROUP, VERSION, "experioauthsettings")


def kubeconfig_tls(kubeconfig: Path) -> tuple[str, ssl.SSLContext]:
    """Return the server URL and a TLS context with the client certificate of a kubeconfig.

    Only certificate users are supported, which is what the local control plane writes.
    """
    config = yaml.safe_load(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    user = config["users"][0]["user"]
    context = ssl.create_default_context(cafile=cluster["certificate-authority"])
    context.load_cert_chain(user["client-certificate"], user["client-key"])
    return str(cluster["server"]), context


@dataclass
class Kube:
    """JSON requests to one API server; counts its own requests in :attr:`sent`."""

    server: str
    tls: ssl.SSLContext
    max_connections: int = 32
    sent: collections.Counter[RequestKey] = field(default_factory=collections.Counter)

    def __post_init__(self) -> None:
        self._http = httpx.AsyncClient(
            base_url=self.server,
            verify=self.tls,
            timeout=httpx.Timeout(60.0),
            limits=httpx.Limits(
                max_connections=self.max_connections,
                max_keepalive_connections=self.max_connections,
            ),
            trust_env=False,
        )

    @classmethod
    def from_kubeconfig(cls, kubeconfig: Path, max_connections: int = 32) -> Kube:
        server, tls = kubeconfig_tls(kubeconfig)
        return cls(server, tls, max_connections)

    async def aclose(self) -> None:
        await self._http.aclose()

    def _count(self, verb: str, kind: Kind, sub: str = "") -> None:
        resource = kind.plural
        self.sent[(verb, resource, sub)] += 1

    async def _send(
        self,
        method: str,
        verb: str,
        kind: Kind,
        path: str,
        *,
        sub: str = "",
        body: Any = None,
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
        allow: tuple[int, ...] = (),
    ) -> dict[str, Any] | None:
        self._count(verb, kind, sub)
        content = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": content_type} if content is not None else {}
        response = await self._http.request(
            method, path, content=content, headers=headers, params=params
        )
        if response.status_code in allow:
            return None
        if response.is_error:
            raise RuntimeError(
                f"{method} {path} failed with status {response.status_code}: {response.text[:300]}"
            )
        answer: dict[str, Any] = response.json()
        return answer

    async def create(self, kind: Kind, namespace: str | None, body: dict[str, Any]) -> None:
        await self._send("POST", "POST", kind, kind.path(namespace), body=body)

    async def get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any] | None:
        return await self._send("GET", "GET", kind, kind.path(namespace, name), allow=(404,))

    async def patch(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        patch: Any,
        *,
        sub: str = "",
        patch_type: str = "application/merge-patch+json",
    ) -> dict[str, Any] | None:
        return await self._send(
            "PATCH",
            "PATCH",
            kind,
            kind.path(namespace, name, sub),
            sub=sub,
            body=patch,
            content_type=patch_type,
            allow=(404,),
        )

    async def delete(self, kind: Kind, namespace: str | None, name: str) -> None:
        await self._send("DELETE", "DELETE", kind, kind.path(namespace, name), allow=(404,))

    async def list(self, kind: Kind, namespace: str | None) -> tuple[list[dict[str, Any]], str]:
        """Return every object (500 per page) and the list's resourceVersion."""
        items: list[dict[str, Any]] = []
        params = {"limit": "500"}
        while True:
            page = await self._send("GET", "LIST", kind, kind.path(namespace), params=params)
            assert page is not None
            items.extend(page.get("items") or [])
            metadata = page.get("metadata") or {}
            if not metadata.get("continue"):
                return items, str(metadata.get("resourceVersion") or "")
            params["continue"] = str(metadata["continue"])

    async def watch(
        self, kind: Kind, namespace: str | None, resource_version: str
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield the watch events after ``resource_version`` until the server ends the stream."""
        self._count("WATCH", kind)
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "300",
        }
        timeout = httpx.Timeout(60.0, read=330.0)
        async with self._http.stream(
            "GET", kind.path(namespace), params=params, timeout=timeout
        ) as response:
            if response.is_error:
                raise RuntimeError(f"watch of {kind.plural} failed: {response.status_code}")
            async for line in response.aiter_lines():
                if line.strip():
                    yield json.loads(line)

    async def request_totals(self) -> collections.Counter[RequestKey]:
        """Return ``apiserver_request_total`` summed over codes, by verb/resource/subresource."""
        response = await self._http.get("/metrics")
        response.raise_for_status()
        totals: collections.Counter[RequestKey] = collections.Counter()
        for line in response.text.splitlines():
            match = _SAMPLE.match(line)
            if match is None:
                continue
            labels = dict(_LABEL.findall(match["labels"]))
            if not labels.get("resource"):
                continue
            key = (labels.get("verb", ""), labels["resource"], labels.get("subresource", ""))
            totals[key] += int(float(match["value"]))
        return totals


def is_ready(body: dict[str, Any]) -> bool:
    """Tell whether an object's Ready condition is True for its current generation."""
    generation = body["metadata"].get("generation")
    for condition in (body.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(
                condition.get("status") == "True"
                and condition.get("observedGeneration") == generation
            )
    return False


class ObjectWatch:
    """Follow the objects of one kind in one namespace: which exist, which are Ready, and when.

    A background task lists, then watches, and starts over after any error. Waiters are woken
    once per batch of events, so that waiting on thousands of objects stays linear.
    """

    def __init__(
        self,
        kube: Kube,
        kind: Kind,
        namespace: str,
        on_change: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.kube = kube
        self.on_change = on_change
        self.kind = kind
        self.namespace = namespace
        self.objects: dict[str, dict[str, Any]] = {}
        self.ready: set[str] = set()
        self.ready_at: dict[str, float] = {}
        self._changed = asyncio.Event()
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ObjectWatch:
        self._task = asyncio.create_task(self._run(), name=f"watch {self.kind.plural}")
        async with asyncio.timeout(60):
            await self._synced.wait()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _store(self, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        self.objects[name] = body
        if is_ready(body):
            if name not in self.ready:
                self.ready.add(name)
                self.ready_at[name] = time.monotonic()
        else:
            self.ready.discard(name)
        if self.on_change is not None:
            self.on_change(body)

    def _forget(self, name: str) -> None:
        self.objects.pop(name, None)
        self.ready.discard(name)

    async def _run(self) -> None:
        while True:
            try:
                items, resource_version = await self.kube.list(self.kind, self.namespace)
                self.objects.clear()
                self.ready.clear()
                for item in items:
                    self._store(item)
                self._synced.set()
                self._changed.set()
                while True:
                    async for event in self.kube.watch(self.kind, self.namespace, resource_version):
                        body = event["object"]
                        resource_version = body["metadata"]["resourceVersion"]
                        if event["type"] in ("ADDED", "MODIFIED"):
                            self._store(body)
                        elif event["type"] == "DELETED":
                            self._forget(body["metadata"]["name"])
                        elif event["type"] == "ERROR":
                            raise RuntimeError(f"watch error: {body.get('message')}")
                        self._changed.set()
            except (httpx.HTTPError, RuntimeError) as error:
                # A closed stream or an expired resourceVersion: list again from scratch.
                logger.debug("Watch of %s restarts after: %s", self.kind.plural, error)
                await asyncio.sleep(0.2)

    async def wait(self, predicate: Callable[[], bool], limit_seconds: float, what: str) -> float:
        """Wait until ``predicate()`` is true; return the monotonic time it was first seen.

        Raises ``TimeoutError`` naming ``what`` after ``limit_seconds``.
        """
        deadline = time.monotonic() + limit_seconds
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {limit_seconds:.0f} s waiting for {what}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, 1.0)):
                    await self._changed.wait()
        return time.monotonic()

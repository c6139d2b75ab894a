"""In-memory state of the operator: the latest objects seen, Secret references, sidecar sessions.

kopf's watch events feed :class:`ObjectStore`; the metadata-only Secret watch feeds
:class:`SecretTracker`; the settings controller keeps one :class:`SidecarSession` per namespace
with the verified integration key. Controllers read these instead of asking the API server, so
an unchanged object costs no request at all.

Nothing here contains a Secret's data, except the integration key of each namespace, which every
call to the sidecar needs and which is kept as a ``SecretStr``.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from experio_sso.backoff import Backoff
from experio_sso.conditions import Outcome

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

ObjectKey = tuple[str, str]
"""(namespace, name) of an object."""

Body = dict[str, Any]


def key_of(body: Mapping[str, Any]) -> ObjectKey:
    metadata = body["metadata"]
    return (str(metadata["namespace"]), str(metadata["name"]))


def slim_copy(body: Mapping[str, Any]) -> Body:
    """Return a copy of an object without the fields the operator never reads.

    The copy is shallow except for ``metadata``, because the store replaces ``status`` whole,
    updates only its own ``metadata`` dict and never changes anything in ``spec``. A deep copy
    of every watch event took a tenth of the operator's time in the convergence profile.
    """
    copied = dict(body)
    metadata = {k: v for k, v in (body.get("metadata") or {}).items() if k != "managedFields"}
    annotations = metadata.get("annotations")
    if annotations and LAST_APPLIED in annotations:
        metadata["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    copied["metadata"] = metadata
    return copied


class ObjectStore:
    """The latest body of every object of one kind, by namespace and name."""

    def __init__(self) -> None:
        self._objects: dict[ObjectKey, Body] = {}
        self._names_by_namespace: dict[str, set[str]] = defaultdict(set)

    def __len__(self) -> int:
        return len(self._objects)

    def upsert(self, body: Mapping[str, Any]) -> Body | None:
        """Store ``body``; return the body it replaces, if any."""
        key = key_of(body)
        previous = self._objects.get(key)
        self._objects[key] = slim_copy(body)
        self._names_by_namespace[key[0]].add(key[1])
        return previous

    def remove(self, key: ObjectKey) -> Body | None:
        previous = self._objects.pop(key, None)
        names = self._names_by_namespace.get(key[0])
        if names is not None:
            names.discard(key[1])
            if not names:
                del self._names_by_namespace[key[0]]
        return previous

    def get(self, key: ObjectKey) -> Body | None:
        return self._objects.get(key)

    def in_namespace(self, namespace: str) -> list[Body]:
        names = self._names_by_namespace.get(namespace, ())
        return [self._objects[(namespace, name)] for name in names]

    def namespaces(self) -> list[str]:
        return list(self._names_by_namespace)

    def keys_in_namespace(self, namespace: str) -> list[ObjectKey]:
        return [(namespace, name) for name in self._names_by_namespace.get(namespace, ())]

    def update_status(self, key: ObjectKey, written: Mapping[str, Any]) -> None:
        """Record the object a status write returned, before its watch event arrives.

        The resourceVersion is recorded too, so that the next write guarded by it does not
        fail on the operator's own change.
        """
        body = self._objects.get(key)
        if body is not None:
            body["status"] = written.get("status") or {}
            version = (written.get("metadata") or {}).get("resourceVersion")
            if version:
                body["metadata"]["resourceVersion"] = version

    def update_metadata(self, key: ObjectKey, metadata: Mapping[str, Any]) -> None:
        body = self._objects.get(key)
        if body is not None:
            body["metadata"].update((k, v) for k, v in metadata.items() if k != "managedFields")


@dataclass(frozen=True)
class SecretVersion:
    """Identity of one version of a Secret: changes whenever its data may have changed."""

    uid: str
    resource_version: str


class SecretTracker:
    """Index of the Secrets that objects reference, with the current version of each.

    Only referenced Secrets are remembered, and only their UID and resourceVersion. Events
    about other Secrets are dropped, so memory does not grow with unrelated Secrets.
    """

    def __init__(self) -> None:
        self._dependents: dict[ObjectKey, set[tuple[str, ObjectKey]]] = defaultdict(set)
        self._references: dict[tuple[str, ObjectKey], set[ObjectKey]] = {}
        self._versions: dict[ObjectKey, SecretVersion] = {}

    def set_references(self, kind: str, owner: ObjectKey, secrets: Iterable[ObjectKey]) -> None:
        """Replace the Secrets that ``owner`` of ``kind`` references."""
        dependent = (kind, owner)
        for secret in self._references.pop(dependent, set()):
            dependents = self._dependents.get(secret)
            if dependents is not None:
                dependents.discard(dependent)
                if not dependents:
                    del self._dependents[secret]
                    self._versions.pop(secret, None)
        wanted = set(secrets)
        if wanted:
            self._references[dependent] = wanted
            for secret in wanted:
                self._dependents[secret].add(dependent)

    def observe(
        self, secret: ObjectKey, version: SecretVersion | None
    ) -> set[tuple[str, ObjectKey]]:
        """Record a Secret event (None: deleted); return the objects to reconcile."""
        dependents = self._dependents.get(secret)
        if not dependents:
            return set()
        if version is None:
            self._versions.pop(secret, None)
        else:
            if self._versions.get(secret) == version:
                return set()
            self._versions[secret] = version
        return set(dependents)

    def version(self, secret: ObjectKey) -> SecretVersion | None:
        return self._versions.get(secret)

    def remember(self, secret: ObjectKey, version: SecretVersion) -> None:
        """Record a version learnt by reading the Secret directly."""
        if secret in self._dependents:
            self._versions[secret] = version


@dataclass
class SidecarHealth:
    """Health of a sidecar: whether it responds, and when to try it again after a failure.

    While the sidecar is failing, SSOClients do not call it. The settings controller alone
    probes it with ``Ping`` after an exponential, jittered delay, so an outage costs one
    request per delay instead of one per client.
    """

    backoff: Backoff
    failures: int = 0
    next_probe_at: float = 0.0

    @property
    def healthy(self) -> bool:
        return self.failures == 0

    def record_success(self) -> bool:
        """Record a response; return whether the sidecar was failing before."""
        recovered = self.failures > 0
        self.failures = 0
        self.next_probe_at = 0.0
        return recovered

    def record_failure(self) -> float:
        """Record a failure; return the delay before the next probe."""
        self.failures += 1
        delay = self.backoff.delay(self.failures)
        self.next_probe_at = asyncio.get_running_loop().time() + delay
        return delay

    def probe_delay(self) -> float:
        """Return the seconds until the next probe is due (0 when due now)."""
        if self.healthy:
            return 0.0
        return max(0.0, self.next_probe_at - asyncio.get_running_loop().time())


@dataclass
class SidecarSession:
    """The sidecar of one namespace: its URL, integration key and state.

    ``outcome`` is the settings' last outcome; clients may use the sidecar only when it is
    Ready. The key outlives the settings object while SSOClients of the namespace still need
    it to delete their sidecar clients (a whole namespace deleted at once).
    """

    namespace: str
    settings_name: str
    url: str
    redirect_url: str
    key: SecretStr | None = None
    key_version: SecretVersion | None = None
    key_ref: tuple[str, str] | None = None
    verified_at: float | None = None
    outcome: Outcome | None = None
    health: SidecarHealth = field(default_factory=lambda: SidecarHealth(Backoff()))
    settings_deleted: bool = False

    @property
    def usable(self) -> bool:
        return (
            self.key is not None
            and self.outcome is not None
            and self.outcome.ready
            and self.health.healthy
            and not self.settings_deleted
        )

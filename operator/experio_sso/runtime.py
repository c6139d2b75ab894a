"""The running operator: stores, work queues, workers and the Secret watch, wired together.

kopf's event handlers call the ``on_*_event`` methods; those update the in-memory stores and
queue object keys. Workers take keys from the queues and run the controllers. Nothing here
talks to the sidecar; the controllers do.

Who queues whom:

- An SSOClient event queues that client; when its spec changed, also every client of the
  namespace whose conflict outcome changed, and the namespace's settings (routing table).
- A status change of an SSOClient queues the settings after a short delay, so that a burst of
  clients becoming Ready renders the ConfigMap once.
- A settings event queues the settings; a change of its sidecar session's usability or
  redirect URL queues every client of the namespace.
- A Secret event queues the objects that reference that Secret.
- A timer queues each client once per drift interval, offset by a stable fraction of the
  interval derived from its UID, so that checks spread evenly.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from experio_sso.backoff import Backoff
from experio_sso.conditions import Outcome, is_ready
from experio_sso.config import OperatorConfig
from experio_sso.constants import (
    CLIENT_KIND,
    CLIENT_PLURAL,
    GROUP,
    SETTINGS_KIND,
    SETTINGS_PLURAL,
    VERSION,
)
from experio_sso.controllers.clients import ClientController, customer_id_of
from experio_sso.controllers.settings import SettingsController
from experio_sso.events import EventRecorder
from experio_sso.kube import SECRETS, KubeClient, KubeError, MetadataEvent, ResourceKind
from experio_sso.peering import PeeringGate
from experio_sso.resources import (
    ClientSpec,
    SettingsSpec,
    SidecarSpec,
    SpecError,
    parse_client_spec,
)
from experio_sso.routing import (
    ClientRoute,
    Conflict,
    ConflictIndex,
    RoutingTable,
    build_routing_table,
    route_of,
)
from experio_sso.sidecar import (
    CommandNotAllowedError,
    SidecarClient,
    SidecarClients,
    SidecarError,
    UnauthorizedError,
)
from experio_sso.store import (
    Body,
    ObjectKey,
    ObjectStore,
    SecretTracker,
    SecretVersion,
    SidecarHealth,
    SidecarSession,
    key_of,
)
from experio_sso.workqueue import WorkQueue

logger = logging.getLogger(__name__)

SETTINGS_KIND_REF = ResourceKind(GROUP, VERSION, SETTINGS_PLURAL, SETTINGS_KIND)
CLIENT_KIND_REF = ResourceKind(GROUP, VERSION, CLIENT_PLURAL, CLIENT_KIND)
ROUTING_DEBOUNCE_SECONDS = 0.3
CONFLICT_DEBOUNCE_SECONDS = 0.1
DEFAULT_API_KEY_SECRET = SidecarSpec().api_key_secret_ref.name


def age_key(body: Mapping[str, Any]) -> tuple[str, str]:
    metadata = body["metadata"]
    return (str(metadata.get("creationTimestamp") or ""), str(metadata["name"]))


class Runtime:
    """State and workers of one operator process."""

    settings_kind = SETTINGS_KIND_REF
    client_kind = CLIENT_KIND_REF

    def __init__(
        self,
        config: OperatorConfig,
        kube: KubeClient,
        sidecars: SidecarClients,
        instance: str,
    ) -> None:
        self.config = config
        self.kube = kube
        self.sidecars = sidecars
        self.backoff = Backoff(config.retry_initial_seconds, config.retry_maximum_seconds)
        self.settings = ObjectStore()
        self.clients = ObjectStore()
        self.secrets = SecretTracker()
        self.sessions: dict[str, SidecarSession] = {}
        self.settings_queue: WorkQueue[ObjectKey] = WorkQueue(self.backoff)
        self.client_queue: WorkQueue[ObjectKey] = WorkQueue(self.backoff)
        self.events = EventRecorder(kube, instance)
        self.settings_controller = SettingsController(self)
        self.client_controller = ClientController(self)
        self._conflicts: dict[str, ConflictIndex] = {}
        self._stale_conflicts: set[str] = set()
        self._customer_id_owners: dict[str, dict[str, str]] = {}
        self._parsed_specs: dict[ObjectKey, tuple[str, int, ClientSpec | None]] = {}
        self._drift_due_at: dict[ObjectKey, float] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.active = asyncio.Event()
        self.secrets_listed = asyncio.Event()
        """Set once the Secret watch has listed every Secret, so their versions are known."""

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self, gate: PeeringGate | None = None) -> None:
        """Load the current objects, then start the workers and the Secret watch.

        With a peering ``gate``, the workers run only while it is open. The gate reloads the
        objects whenever it opens, because kopf delivered no events while this replica waited.
        """
        await self.load()
        for index in range(self.config.workers):
            self._spawn(
                self._work(self.settings_queue, self.settings_controller.reconcile),
                f"settings-worker-{index}",
            )
            self._spawn(
                self._work(self.client_queue, self.client_controller.reconcile),
                f"client-worker-{index}",
            )
        self._spawn(self._watch_secrets(), "secret-watch")
        self._spawn(self.events.run(), "event-poster")
        if gate is None:
            self.active.set()
        else:
            self.active = gate.active
            self._spawn(gate.run(), "peering-gate")

    async def load(self) -> None:
        """List both kinds and bring the stores in line with the API server."""
        namespace = self.config.namespace
        for kind, store, intake in (
            (self.settings_kind, self.settings, self.on_settings_event),
            (self.client_kind, self.clients, self.on_client_event),
        ):
            bodies = await self.kube.list(kind, namespace)
            listed = {key_of(body) for body in bodies}
            for key in [k for ns in store.namespaces() for k in store.keys_in_namespace(ns)]:
                if key not in listed:
                    body = store.get(key)
                    if body is not None:
                        intake("DELETED", body)
            for body in bodies:
                intake("ADDED", _with_kind(body, kind))
        for key in [
            k for ns in self.settings.namespaces() for k in self.settings.keys_in_namespace(ns)
        ]:
            self.settings_queue.add(key)
        self._queue_all_clients()
        logger.info(
            "Loaded %d ExperioAuthSettings and %d SSOClients; %d workers per kind.",
            len(self.settings),
            len(self.clients),
            self.config.workers,
        )

    async def stop(self) -> None:
        self.settings_queue.close()
        self.client_queue.close()
        await self.events.flush()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.sidecars.aclose()

    def _spawn(self, coroutine: Awaitable[None], name: str) -> None:
        self._tasks.append(asyncio.ensure_future(coroutine))
        self._tasks[-1].set_name(name)

    async def _work(
        self, queue: WorkQueue[ObjectKey], reconcile: Callable[[ObjectKey], Awaitable[None]]
    ) -> None:
        while True:
            await self.active.wait()
            key = await queue.get()
            if not self.active.is_set():
                # Paused while waiting for a key: hand it back for the active replica's turn.
                queue.done(key)
                queue.add(key)
                continue
            try:
                await reconcile(key)
            except asyncio.CancelledError:
                raise
            except KubeError as exc:
                # The API server refused or failed a write or read (for example in a namespace
                # being deleted, or a missing permission): retry without a stack trace.
                delay = queue.retry(key)
                logger.warning(
                    "Kubernetes API request for %s/%s failed: %s; retrying in %.1f s.",
                    *key,
                    exc,
                    delay,
                )
            except Exception:
                delay = queue.retry(key)
                logger.exception(
                    "Unexpected error while reconciling %s/%s; retrying in %.1f s.", *key, delay
                )
            finally:
                queue.done(key)

    async def _watch_secrets(self) -> None:
        events = self.kube.watch_metadata(
            SECRETS, self.config.namespace, on_listed=self.secrets_listed.set
        )
        async for event in events:
            self.on_secret_event(event)

    # --- intake ------------------------------------------------------------------------------

    def on_settings_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        key = key_of(body)
        before = self.settings_winner(key[0])
        if event_type == "DELETED":
            self.settings.remove(key)
            self.secrets.set_references(SETTINGS_KIND, key, ())
            self.settings_queue.add(key)
        else:
            previous = self.settings.upsert(body)
            self.secrets.set_references(SETTINGS_KIND, key, _settings_secrets(body))
            if reconcile_needed(previous, body):
                self.settings_queue.add(key)
        if self.settings_winner(key[0]) != before:
            for other in self.settings.keys_in_namespace(key[0]):
                self.settings_queue.add(other)

    def on_client_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        key = key_of(body)
        namespace = key[0]
        if event_type == "DELETED":
            previous = self.clients.remove(key)
            self.secrets.set_references(CLIENT_KIND, key, ())
            self.client_queue.discard(key)
            self._drift_due_at.pop(key, None)
            self._parsed_specs.pop(key, None)
            self._customer_id_owners.pop(namespace, None)
            self.client_controller.forget(key)
            self._refresh_conflicts(namespace)
            if previous is not None:
                self.routing_changed(namespace)
            return

        previous = self.clients.upsert(body)
        self.secrets.set_references(CLIENT_KIND, key, _client_secrets(body))
        if previous is None or _customer_id_view(previous) != _customer_id_view(body):
            self._customer_id_owners.pop(namespace, None)
        stored = self.clients.get(key)
        if previous is None and stored is not None and self._add_youngest_client(namespace, stored):
            # A client younger than all others changes no other client's conflicts.
            self.routing_changed(namespace)
        elif (
            previous is None
            or previous.get("spec") != body.get("spec")
            or previous["metadata"].get("deletionTimestamp")
            != body["metadata"].get("deletionTimestamp")
        ):
            self._refresh_conflicts(namespace)
            self.routing_changed(namespace)
        elif _routing_view(previous) != _routing_view(body):
            self.routing_changed(namespace)
        if reconcile_needed(previous, body):
            self.client_queue.add(key)

    def on_secret_event(self, event: MetadataEvent) -> None:
        secret = (event.namespace, event.name)
        version = (
            None
            if event.type == "DELETED"
            else SecretVersion(uid=event.uid, resource_version=event.resource_version)
        )
        for kind, key in self.secrets.observe(secret, version):
            if kind == SETTINGS_KIND:
                self.settings_queue.add(key)
            else:
                self.client_queue.add(key)

    # --- sessions and settings -----------------------------------------------------------------

    def settings_winner(self, namespace: str) -> str | None:
        """Return the name of the oldest live ExperioAuthSettings of a namespace."""
        live = [
            body
            for body in self.settings.in_namespace(namespace)
            if not body["metadata"].get("deletionTimestamp")
        ]
        if not live:
            return None
        return str(min(live, key=age_key)["metadata"]["name"])

    def session_for(self, namespace: str, name: str, spec: SettingsSpec) -> SidecarSession:
        """Return the namespace's session, updated to the settings' URL and redirect URL."""
        session = self.sessions.get(namespace)
        if session is None or session.settings_name != name or session.url != spec.sidecar.url:
            session = SidecarSession(
                namespace=namespace,
                settings_name=name,
                url=spec.sidecar.url,
                redirect_url=spec.redirect_url,
                health=SidecarHealth(self.backoff),
            )
            self.sessions[namespace] = session
            self.queue_clients(namespace)
        elif session.redirect_url != spec.redirect_url or session.settings_deleted:
            session.redirect_url = spec.redirect_url
            session.settings_deleted = False
            self.queue_clients(namespace)
        return session

    def session_outcome(
        self, session: SidecarSession, outcome: Outcome, *, key_changed: bool = False
    ) -> None:
        """Record the settings' outcome; queue the clients when the session's usability flips.

        A new integration key queues them too: a client stalled on a key that the sidecar
        rejected retries with the new one, although the settings were Ready all along.
        """
        was_usable = session.usable
        first = session.outcome is None
        session.outcome = outcome
        if first or key_changed or was_usable != session.usable:
            self.queue_clients(session.namespace)

    def settings_gone(self, key: ObjectKey) -> None:
        """Handle deleted settings: keep the key for the clients' deletion, stop routing."""
        namespace, name = key
        session = self.sessions.get(namespace)
        if session is not None and session.settings_name == name:
            session.settings_deleted = True
            self.queue_clients(namespace)
        self.settings_controller.forget_configmap(namespace)
        winner = self.settings_winner(namespace)
        if winner is not None:
            self.settings_queue.add((namespace, winner))
        elif not self.clients.keys_in_namespace(namespace):
            self.sessions.pop(namespace, None)

    def sidecar(self, session: SidecarSession) -> SidecarClient:
        return self.sidecars.get(session.url)

    def sidecar_call_failed(self, session: SidecarSession, error: SidecarError) -> None:
        """Note a client's failed sidecar call that concerns the whole namespace.

        An unreachable sidecar is then probed by the settings alone, after a backoff. A
        rejected key makes the settings verify it again at once, so that they report it too.
        """
        settings_key = (session.namespace, session.settings_name)
        if error.retryable:
            if session.health.healthy:
                delay = session.health.record_failure()
                logger.warning(
                    "The sidecar of namespace %s is not responding; probing it again in %.1f s.",
                    session.namespace,
                    delay,
                )
                self.settings_queue.add_after(settings_key, delay)
        elif isinstance(error, (UnauthorizedError, CommandNotAllowedError)):
            session.verified_at = None
            self.settings_queue.add(settings_key)

    def settings_deferred(self, namespace: str) -> bool:
        """Tell whether clients should wait: settings exist but their first pass is not done."""
        if self.settings_winner(namespace) is None:
            return False
        session = self.sessions.get(namespace)
        return session is None or session.outcome is None

    # --- routing -------------------------------------------------------------------------------

    def client_spec(self, body: Body) -> ClientSpec | None:
        """Return the parsed spec of an SSOClient, or None when it does not parse.

        Parsing is cached per object and generation: routing and conflict checks read every
        client of a namespace, and most passes find nothing changed.
        """
        metadata = body["metadata"]
        key = (str(metadata["namespace"]), str(metadata["name"]))
        uid, generation = str(metadata.get("uid")), int(metadata.get("generation") or 0)
        cached = self._parsed_specs.get(key)
        if cached is not None and cached[0] == uid and cached[1] == generation:
            return cached[2]
        try:
            spec: ClientSpec | None = parse_client_spec(body.get("spec"))
        except SpecError:
            spec = None
        self._parsed_specs[key] = (uid, generation, spec)
        return spec

    def _client_routes(self, namespace: str) -> list[ClientRoute]:
        routes = (
            route_of(body, self.client_spec(body)) for body in self.clients.in_namespace(namespace)
        )
        return [route for route in routes if route is not None]

    def conflicts(self, namespace: str) -> dict[str, Conflict]:
        """Return the namespace's losing clients, recomputed first when they may be stale."""
        if namespace in self._stale_conflicts or namespace not in self._conflicts:
            self._recompute_conflicts(namespace)
        return self._conflicts[namespace].conflicts

    def _add_youngest_client(self, namespace: str, body: Body) -> bool:
        """Add a new client to the namespace's conflicts without a full pass.

        Return False when the client is not the youngest, because a full recomputation is
        needed then.
        """
        index = self._conflicts.get(namespace)
        if index is None or namespace in self._stale_conflicts:
            return False
        route = route_of(body, self.client_spec(body))
        return route is None or index.add_youngest(route)

    def _refresh_conflicts(self, namespace: str) -> None:
        """Mark a namespace's conflicts stale and recompute them soon, once for a burst.

        A burst of N new or deleted clients would otherwise cost N passes over N clients.
        A reconcile that needs the conflicts meanwhile recomputes them at once.
        """
        if namespace in self._stale_conflicts:
            return
        self._stale_conflicts.add(namespace)
        asyncio.get_running_loop().call_later(
            CONFLICT_DEBOUNCE_SECONDS, self._recompute_if_stale, namespace
        )

    def _recompute_if_stale(self, namespace: str) -> None:
        if namespace in self._stale_conflicts:
            self._recompute_conflicts(namespace)

    def _recompute_conflicts(self, namespace: str) -> None:
        """Recompute a namespace's conflicts and queue the clients whose outcome changed."""
        self._stale_conflicts.discard(namespace)
        previous = self._conflicts.get(namespace)
        index = ConflictIndex(self._client_routes(namespace))
        self._conflicts[namespace] = index
        if previous is None:
            return
        before, after = previous.conflicts, index.conflicts
        for name in set(before) | set(after):
            if before.get(name) != after.get(name):
                self.client_queue.add((namespace, name))

    def routing_summary(self, namespace: str) -> tuple[int, RoutingTable]:
        """Return the number of active, routed, Ready clients and the routing table."""
        routes = self._client_routes(namespace)
        conflicts = self.conflicts(namespace)
        ready = sum(1 for r in routes if r.active and r.ready and r.name not in conflicts)
        return ready, build_routing_table(routes)

    def routing_changed(self, namespace: str) -> None:
        """Queue the namespace's settings to render the routing table again, once per burst."""
        winner = self.settings_winner(namespace)
        if winner is not None:
            self.settings_queue.add_after((namespace, winner), ROUTING_DEBOUNCE_SECONDS)

    def customer_id_owner(self, namespace: str, name: str, customer_id: str) -> str | None:
        """Return the older SSOClient that manages ``customer_id``, if another one does."""
        owners = self._customer_id_owners.get(namespace)
        if owners is None:
            owners = {}
            for body in sorted(self.clients.in_namespace(namespace), key=age_key):
                owned = customer_id_of(body, self.client_spec(body))
                owners.setdefault(owned, str(body["metadata"]["name"]))
            self._customer_id_owners[namespace] = owners
        owner = owners.get(customer_id)
        return owner if owner is not None and owner != name else None

    def _queue_all_clients(self) -> None:
        for namespace in self.clients.namespaces():
            self.queue_clients(namespace)

    def queue_clients(self, namespace: str) -> None:
        for key in self.clients.keys_in_namespace(namespace):
            self.client_queue.add(key)

    # --- drift schedule ------------------------------------------------------------------------

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def schedule_drift_check(self, key: ObjectKey) -> None:
        """Queue the client's next drift check; the first one at a stable offset."""
        due = self._drift_due_at.get(key)
        if due is None:
            body = self.clients.get(key)
            uid = str(body["metadata"].get("uid")) if body else f"{key[0]}/{key[1]}"
            fraction = int(hashlib.sha256(uid.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
            due = self._now() + fraction * self.config.drift_interval_seconds
            self._drift_due_at[key] = due
        now = self._now()
        if due <= now:
            # The check was due, but this pass could not make it (no usable sidecar, a Secret
            # problem). Queueing the key at once would spin the worker: wait one interval.
            due = now + self.config.drift_interval_seconds
            self._drift_due_at[key] = due
        self.client_queue.add_after(key, due - now)

    def drift_check_due(self, key: ObjectKey) -> bool:
        due = self._drift_due_at.get(key)
        return due is not None and self._now() >= due

    def drift_checked(self, key: ObjectKey) -> None:
        self._drift_due_at[key] = self._now() + self.config.drift_interval_seconds


def _with_kind(body: dict[str, Any], kind: ResourceKind) -> dict[str, Any]:
    body.setdefault("apiVersion", f"{kind.group}/{kind.version}")
    body.setdefault("kind", kind.kind)
    return body


def _settings_secrets(body: Mapping[str, Any]) -> list[ObjectKey]:
    namespace = str(body["metadata"]["namespace"])
    sidecar = (body.get("spec") or {}).get("sidecar") or {}
    names = [
        (sidecar.get("apiKeySecretRef") or {}).get("name") or DEFAULT_API_KEY_SECRET,
        (sidecar.get("setupSecretRef") or {}).get("name"),
    ]
    return [(namespace, name) for name in names if name]


def _client_secrets(body: Mapping[str, Any]) -> list[ObjectKey]:
    namespace = str(body["metadata"]["namespace"])
    ref = ((body.get("spec") or {}).get("identityProvider") or {}).get("clientSecretRef") or {}
    return [(namespace, ref["name"])] if ref.get("name") else []


def reconcile_needed(previous: Mapping[str, Any] | None, body: Mapping[str, Any]) -> bool:
    """Tell whether a watch event changed what a reconcile reads from the object itself.

    Status-only events (most of them echoes of the operator's own status writes) and label or
    annotation edits (as GitOps tools make) change nothing that a reconcile decides on.
    Skipping them keeps a failing object from calling the sidecar again after its own status
    write.
    """
    if previous is None:
        return True
    before, after = previous["metadata"], body["metadata"]
    return previous.get("spec") != body.get("spec") or any(
        before.get(f) != after.get(f)
        for f in ("uid", "generation", "deletionTimestamp", "finalizers")
    )


def _customer_id_view(body: Mapping[str, Any]) -> tuple[Any, ...]:
    """Return the parts of a client that decide its customer ID."""
    return (
        (body.get("spec") or {}).get("customerId"),
        (body.get("status") or {}).get("customerId"),
    )


def _routing_view(body: Mapping[str, Any]) -> tuple[Any, ...]:
    """Return the parts of a client, beyond its spec, that the routing table depends on."""
    status = body.get("status") or {}
    return (status.get("customerId"), is_ready(status, body["metadata"].get("generation")))

"""kopf handler registration, and nothing else.

kopf watches both kinds (with reconnection, peering and the liveness endpoint). Every watch
event, including the initial listing after a start, hands the object to the runtime, which
queues it for the one idempotent reconcile of its controller. This replaces kopf's create,
update and resume handlers, whose progress and diff-base annotations would cost a write per
object, with one code path for every cause. kopf's own storage is still configured under the
project's prefix, so nothing it might write lands under kopf's defaults; with event handlers
only, it writes nothing to our objects.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import kopf

from experio_sso.config import OperatorConfig
from experio_sso.constants import CLIENT_PLURAL, GROUP, KOPF_FINALIZER, SETTINGS_PLURAL, VERSION
from experio_sso.kube import KubeClient
from experio_sso.peering import PeeringGate
from experio_sso.runtime import Runtime
from experio_sso.sidecar import SidecarClients, SidecarClientSettings

logger = logging.getLogger(__name__)


@kopf.on.startup()
async def start_runtime(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    config: OperatorConfig = memo["config"]

    # The controllers own FINALIZER. kopf removes its configured finalizer from objects that
    # no kopf handler requires it for, so it gets a name of its own under our prefix.
    settings.persistence.finalizer = KOPF_FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    # The controllers post their own events; kopf would post one per handler outcome.
    settings.posting.enabled = False
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.watching.reconnect_backoff = 1.0
    settings.networking.request_timeout = 60
    # A namespaced install may not list namespaces or watch CRDs (both cluster-scoped). Without
    # this, kopf retries both for about a minute at each start before it watches anything.
    settings.scanning.disabled = config.namespace is not None
    settings.peering.standalone = config.peering is None
    if config.peering is not None:
        settings.peering.name = config.peering
        settings.peering.mandatory = True
        settings.peering.clusterwide = config.namespace is None
        settings.peering.priority = memo["peering_priority"]
        settings.peering.lifetime = config.peering_lifetime_seconds

    kube = await KubeClient.connect(memo.get("kubeconfig"))
    sidecars = SidecarClients(
        SidecarClientSettings(
            connect_timeout=config.sidecar_connect_timeout_seconds,
            read_timeout=config.sidecar_read_timeout_seconds,
            max_concurrent_requests=config.sidecar_max_concurrency,
        )
    )
    runtime = Runtime(config, kube, sidecars, instance=socket.gethostname())
    gate = None
    if config.peering is not None:
        gate = PeeringGate(
            kube,
            config.peering,
            config.namespace,
            identity=memo["identity"],
            priority=memo["peering_priority"],
            on_activated=runtime.load,
        )
    await runtime.start(gate)
    memo["runtime"] = runtime
    memo["kube"] = kube


@kopf.on.cleanup()
async def stop_runtime(memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime | None = memo.get("runtime")
    if runtime is not None:
        await runtime.stop()
    kube: KubeClient | None = memo.get("kube")
    if kube is not None:
        await kube.aclose()


@kopf.on.event(GROUP, VERSION, SETTINGS_PLURAL)
async def settings_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo["runtime"].on_settings_event(event.get("type"), event["object"])


@kopf.on.event(GROUP, VERSION, CLIENT_PLURAL)
async def client_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo["runtime"].on_client_event(event.get("type"), event["object"])

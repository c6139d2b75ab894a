"""GitOps steadiness: re-applied manifests and tool metadata cause no sidecar or status write.

Argo CD and Flux re-apply the same manifests again and again and add their own labels and
annotations. The operator must treat both as no change: no Create, Patch or Delete in the
sidecar, no status write, and no resourceVersion change beyond the edits the test makes itself.

"Nothing happened" is only checked after a positive signal that the operator processed the
edits: a sentinel object created after them, whose own status appears later.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.faults.helpers import (
    CLIENTS,
    SETTINGS,
    client_with_secret,
    list_items,
    write_counts,
)
from tests.fixtures.operator import OperatorEnv, wait_for

REAPPLY_COUNT = 10
CLIENT_NAMES = ("gitops-a", "gitops-b", "gitops-c")
GITOPS_LABELS = (
    "app.kubernetes.io/instance=experio-sso",
    "kustomize.toolkit.fluxcd.io/name=experio-sso",
    "kustomize.toolkit.fluxcd.io/namespace=flux-system",
)
GITOPS_ANNOTATIONS = (
    "argocd.argoproj.io/tracking-id=experio-sso:auth.experio.cloud/SSOClient:ns/name",
    "argocd.argoproj.io/sync-wave=1",
    "argocd.argoproj.io/compare-options=IgnoreExtraneous",
    "kustomize.toolkit.fluxcd.io/reconcile=enabled",
)


async def _snapshot(env: OperatorEnv, kind: str) -> dict[str, dict[str, Any]]:
    """Return resourceVersion, status and status-subresource managedFields by object name."""
    snapshot = {}
    for item in await list_items(env, kind):
        metadata = item["metadata"]
        snapshot[metadata["name"]] = {
            "resourceVersion": metadata["resourceVersion"],
            "status": item.get("status"),
            "statusManagedFields": [
                entry
                for entry in metadata.get("managedFields") or []
                if entry.get("subresource") == "status"
            ],
        }
    return snapshot


def _resource_versions(snapshot: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: entry["resourceVersion"] for name, entry in snapshot.items()}


async def _ready_namespace(env: OperatorEnv) -> list[dict[str, Any]]:
    """Apply settings and three clients, wait until all of it settled; return the manifests."""
    await env.ready_settings()
    manifests: list[dict[str, Any]] = [env.settings_manifest()]
    for name in CLIENT_NAMES:
        manifests += client_with_secret(env, name, f"{name}-secret", domains=[f"{name}.com"])
    await env.apply(*manifests)
    for name in CLIENT_NAMES:
        await env.wait_condition("ssoclient", name)

    async def settings_settled() -> bool:
        body = await env.get("experioauthsettings", "experio")
        table = await env.routing_table()
        return bool(
            body is not None
            and (body.get("status") or {}).get("readyClients") == len(CLIENT_NAMES)
            and table is not None
        )

    await wait_for(settings_settled, description="settings to count every Ready client")
    return manifests


async def test_reapply_and_gitops_metadata_write_nothing(
    operator_env: OperatorEnv, record_property: pytest.RecordProperty
) -> None:
    env = operator_env
    await env.start_operator()
    manifests = await _ready_namespace(env)
    writes = write_counts(env.emulator)
    clients = await _snapshot(env, CLIENTS)
    settings = await _snapshot(env, SETTINGS)
    configmaps = await _snapshot(env, "configmaps")
    secrets = await _snapshot(env, "secrets")

    # The same manifests, ten times: nothing may change at all.
    for _ in range(REAPPLY_COUNT):
        await env.apply(*manifests)

    # GitOps metadata on every settings and client object.
    for kind in (SETTINGS, CLIENTS):
        await env.kubectl("label", kind, "--all", *GITOPS_LABELS)
        await env.kubectl("annotate", kind, "--all", *GITOPS_ANNOTATIONS)
    edited_clients = _resource_versions(await _snapshot(env, CLIENTS))
    edited_settings = _resource_versions(await _snapshot(env, SETTINGS))

    # Positive signals, one per work queue: a second settings object reports SettingsConflict,
    # and a client whose Secret does not exist reports SecretNotFound. Neither calls the sidecar.
    await env.apply(env.settings_manifest("sentinel"))
    await env.wait_condition(
        "experioauthsettings", "sentinel", status="False", reason="SettingsConflict"
    )
    settings_after = await _snapshot(env, SETTINGS)
    configmaps_after = await _snapshot(env, "configmaps")
    await env.apply(env.client_manifest("sentinel", domains=["sentinel.com"]))
    await env.wait_condition("ssoclient", "sentinel", status="False", reason="SecretNotFound")
    clients_after = await _snapshot(env, CLIENTS)
    secrets_after = await _snapshot(env, "secrets")

    writes_after = write_counts(env.emulator)
    print(
        f"\ngitops: {REAPPLY_COUNT} re-applies and {len(GITOPS_LABELS)} labels plus "
        f"{len(GITOPS_ANNOTATIONS)} annotations on {len(CLIENT_NAMES) + 1} objects; sidecar "
        f"writes before {writes}, after {writes_after}"
    )
    record_property("sidecar_writes", sum(writes_after.values()) - sum(writes.values()))
    assert writes_after == writes
    assert _resource_versions(secrets_after) == _resource_versions(secrets)
    assert _resource_versions(configmaps_after) == _resource_versions(configmaps)
    assert configmaps_after == configmaps
    del settings_after["sentinel"]
    del clients_after["sentinel"]
    assert _resource_versions(settings_after) == edited_settings
    assert _resource_versions(clients_after) == edited_clients
    for name, before in {**settings, **clients}.items():
        after = settings_after.get(name) or clients_after[name]
        assert after["status"] == before["status"], name
        assert after["statusManagedFields"] == before["statusManagedFields"], name


async def test_gitops_label_on_secret_writes_nothing(operator_env: OperatorEnv) -> None:
    env = operator_env
    await env.start_operator()
    await env.ready_settings()
    for name in CLIENT_NAMES[:2]:
        await env.ready_client(name, domains=[f"{name}.com"])
    writes = write_counts(env.emulator)

    await env.kubectl("label", "secrets", "--all", *GITOPS_LABELS)
    # A new client, created after the labels, is the positive signal; it causes one Create.
    await env.ready_client("sentinel", domains=["sentinel.com"])

    writes_after = write_counts(env.emulator)
    assert writes_after["PatchOidcClient"] == writes["PatchOidcClient"]
    assert writes_after["DeleteOidcClient"] == writes["DeleteOidcClient"]
    assert writes_after["CreateOidcClient"] == writes["CreateOidcClient"] + 1

"""Create, read, list, patch and delete through KubeClient, and how failures are mapped."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from experio_sso.kube import (
    CONFIGMAPS,
    SECRETS,
    AlreadyExists,
    Conflict,
    Forbidden,
    Invalid,
    KubeClient,
    KubeError,
    NotFound,
    ResourceKind,
    Unavailable,
    load_connection,
)
from tests.kube.conftest import RecordingTransport
from tests.support.control_plane import ControlPlane, free_port


def configmap(
    name: str, data: dict[str, str] | None = None, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels or {}},
        "data": data or {},
    }


async def test_configmap_round_trip(kube: KubeClient, namespace: str) -> None:
    created = await kube.create(CONFIGMAPS, namespace, configmap("a", {"colour": "blue"}))
    assert created["metadata"]["uid"]

    fetched = await kube.get(CONFIGMAPS, namespace, "a")
    assert fetched is not None
    assert fetched["data"] == {"colour": "blue"}
    assert fetched["metadata"]["managedFields"][0]["manager"] == "experio-sso-operator"

    patched = await kube.patch(CONFIGMAPS, namespace, "a", {"data": {"colour": "green"}})
    assert patched["data"] == {"colour": "green"}

    assert await kube.delete(CONFIGMAPS, namespace, "a") is True
    assert await kube.get(CONFIGMAPS, namespace, "a") is None
    assert await kube.delete(CONFIGMAPS, namespace, "a") is False


async def test_list_pages_and_selects_labels(cluster: ControlPlane, namespace: str) -> None:
    connection = await load_connection(str(cluster.kubeconfig))
    transport = RecordingTransport(httpx.AsyncHTTPTransport(verify=connection.ssl_context))
    client = KubeClient(connection, page_size=2, transport=transport)
    try:
        for index in range(5):
            labels = {"parity": "even" if index % 2 == 0 else "odd"}
            await client.create(CONFIGMAPS, namespace, configmap(f"c{index}", labels=labels))
        transport.bodies.clear()

        everything = await client.list(CONFIGMAPS, namespace)
        even = await client.list(CONFIGMAPS, namespace, label_selector="parity=even")
    finally:
        await client.aclose()

    # kube-root-ca.crt appears only where a controller-manager runs.
    names = {item["metadata"]["name"] for item in everything} - {"kube-root-ca.crt"}
    assert names == {"c0", "c1", "c2", "c3", "c4"}
    assert sorted(item["metadata"]["name"] for item in even) == ["c0", "c2", "c4"]
    assert {item["kind"] for item in everything} == {"ConfigMap"}
    assert {item["apiVersion"] for item in everything} == {"v1"}
    assert len(transport.bodies) >= 3 + 2


async def test_get_in_missing_namespace_is_none(kube: KubeClient) -> None:
    assert await kube.get(CONFIGMAPS, "no-such-namespace", "a") is None


async def test_create_twice_raises_already_exists(kube: KubeClient, namespace: str) -> None:
    await kube.create(CONFIGMAPS, namespace, configmap("twice"))

    with pytest.raises(AlreadyExists) as caught:
        await kube.create(CONFIGMAPS, namespace, configmap("twice"))

    assert caught.value.status == 409
    assert 'configmaps "twice"' in str(caught.value)


async def test_patch_missing_raises_not_found(kube: KubeClient, namespace: str) -> None:
    with pytest.raises(NotFound) as caught:
        await kube.patch(CONFIGMAPS, namespace, "absent", {"data": {"a": "b"}})

    assert caught.value.status == 404


async def test_stale_resource_version_raises_conflict(kube: KubeClient, namespace: str) -> None:
    created = await kube.create(CONFIGMAPS, namespace, configmap("stale", {"a": "1"}))
    await kube.patch(CONFIGMAPS, namespace, "stale", {"data": {"a": "2"}})

    stale = {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}}
    with pytest.raises(Conflict) as caught:
        await kube.patch(CONFIGMAPS, namespace, "stale", stale)

    assert caught.value.status == 409


async def test_json_patch_test_operation(kube: KubeClient, namespace: str) -> None:
    await kube.create(CONFIGMAPS, namespace, configmap("guarded", {"owner": "alpha"}))

    applied = await kube.patch(
        CONFIGMAPS,
        namespace,
        "guarded",
        [
            {"op": "test", "path": "/data/owner", "value": "alpha"},
            {"op": "replace", "path": "/data/owner", "value": "beta"},
        ],
        patch_type="json",
    )
    assert applied["data"]["owner"] == "beta"

    with pytest.raises(Conflict) as caught:
        await kube.patch(
            CONFIGMAPS,
            namespace,
            "guarded",
            [
                {"op": "test", "path": "/data/owner", "value": "alpha"},
                {"op": "replace", "path": "/data/owner", "value": "gamma"},
            ],
            patch_type="json",
        )
    assert caught.value.status == 422
    assert "test operation failed" in str(caught.value)
    current = await kube.get(CONFIGMAPS, namespace, "guarded")
    assert current is not None
    assert current["data"]["owner"] == "beta"


async def test_finalizer_added_and_removed(kube: KubeClient, namespace: str) -> None:
    created = await kube.create(CONFIGMAPS, namespace, configmap("held"))
    version = created["metadata"]["resourceVersion"]

    held = await kube.patch(
        CONFIGMAPS,
        namespace,
        "held",
        [
            {"op": "test", "path": "/metadata/resourceVersion", "value": version},
            {"op": "add", "path": "/metadata/finalizers", "value": ["example.com/hold"]},
        ],
        patch_type="json",
    )
    assert held["metadata"]["finalizers"] == ["example.com/hold"]

    assert await kube.delete(CONFIGMAPS, namespace, "held") is True
    terminating = await kube.get(CONFIGMAPS, namespace, "held")
    assert terminating is not None
    assert terminating["metadata"]["deletionTimestamp"]

    await kube.patch(CONFIGMAPS, namespace, "held", {"metadata": {"finalizers": None}})
    assert await kube.get(CONFIGMAPS, namespace, "held") is None


async def test_invalid_object_raises_invalid(kube: KubeClient, namespace: str) -> None:
    with pytest.raises(Invalid) as caught:
        await kube.create(CONFIGMAPS, namespace, configmap("bad", {"bad key": "x"}))

    assert caught.value.status == 422
    assert caught.value.fields == ("data[bad key]",)
    assert "a valid config key must consist of alphanumeric characters" in str(caught.value)


async def test_unknown_field_raises_invalid(kube: KubeClient, namespace: str) -> None:
    body = configmap("typo")
    body["dta"] = {"a": "b"}

    with pytest.raises(Invalid) as caught:
        await kube.create(CONFIGMAPS, namespace, body)

    assert 'unknown field "dta"' in str(caught.value)


async def test_status_subresource_patch(
    kube: KubeClient, namespace: str, gadget_crd: ResourceKind
) -> None:
    gadget = {
        "apiVersion": gadget_crd.api_version,
        "kind": gadget_crd.kind,
        "metadata": {"name": "g"},
        "spec": {"size": 2},
    }
    await kube.create(gadget_crd, namespace, gadget)

    # The main resource ignores status changes when the status subresource is enabled.
    ignored = await kube.patch(gadget_crd, namespace, "g", {"status": {"phase": "Ignored"}})
    assert "status" not in ignored

    patched = await kube.patch(
        gadget_crd, namespace, "g", {"status": {"phase": "Ready"}}, subresource="status"
    )
    assert patched["status"] == {"phase": "Ready"}
    assert patched["metadata"]["generation"] == 1

    with pytest.raises(Invalid) as caught:
        await kube.patch(gadget_crd, namespace, "g", {"spec": {"size": 0}})
    assert caught.value.fields == ("spec.size",)


async def test_service_account_without_rbac_is_forbidden(
    cluster: ControlPlane, namespace: str
) -> None:
    cluster.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    cluster.kubectl(
        "create", "role", "configmap-reader", "-n", namespace, "--verb=get", "--resource=configmaps"
    )
    cluster.kubectl(
        "create",
        "rolebinding",
        "reader",
        "-n",
        namespace,
        "--role=configmap-reader",
        f"--serviceaccount={namespace}:reader",
    )
    cluster.kubectl("create", "configmap", "visible", "-n", namespace, "--from-literal=a=b")
    kubeconfig = cluster.service_account_kubeconfig(namespace, "reader")

    client = await KubeClient.connect(str(kubeconfig))
    try:
        visible = await client.get(CONFIGMAPS, namespace, "visible")
        assert visible is not None
        assert visible["data"] == {"a": "b"}

        with pytest.raises(Forbidden) as listing:
            await client.list(CONFIGMAPS, namespace)
        with pytest.raises(Forbidden) as reading:
            await client.read_secret_key(namespace, "anything", "key")
    finally:
        await client.aclose()

    assert listing.value.status == 403
    assert f'list configmaps in namespace "{namespace}"' in str(listing.value)
    assert 'cannot list resource "configmaps"' in str(listing.value)
    assert f"system:serviceaccount:{namespace}:reader" in str(listing.value)
    assert 'cannot get resource "secrets"' in str(reading.value)


async def test_token_kubeconfig_sends_token(cluster: ControlPlane, namespace: str) -> None:
    cluster.kubectl("create", "serviceaccount", "editor", "-n", namespace)
    cluster.kubectl(
        "create",
        "role",
        "configmap-editor",
        "-n",
        namespace,
        "--verb=create,list",
        "--resource=configmaps",
    )
    cluster.kubectl(
        "create",
        "rolebinding",
        "editor",
        "-n",
        namespace,
        "--role=configmap-editor",
        f"--serviceaccount={namespace}:editor",
    )
    kubeconfig = cluster.service_account_kubeconfig(namespace, "editor")
    assert "token" in yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]

    client = await KubeClient.connect(str(kubeconfig))
    try:
        await client.create(CONFIGMAPS, namespace, configmap("by-token"))
        listed = await client.list(CONFIGMAPS, namespace)
    finally:
        await client.aclose()

    assert "by-token" in {item["metadata"]["name"] for item in listed}
    assert "token=set" in repr(client.connection.credentials)


async def test_rejected_token_raises_unauthorized(cluster: ControlPlane, tmp_path: Path) -> None:
    kubeconfig = cluster.write_kubeconfig(
        tmp_path / "bad-token.kubeconfig", user_name="nobody", user={"token": "not-a-token"}
    )
    client = await KubeClient.connect(str(kubeconfig))
    try:
        with pytest.raises(Forbidden) as caught:
            await client.get(CONFIGMAPS, "default", "a")
    finally:
        await client.aclose()

    assert caught.value.status == 401
    assert "not-a-token" not in str(caught.value)


async def test_unreachable_server_raises_unavailable(cluster: ControlPlane, tmp_path: Path) -> None:
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{free_port()}"
    kubeconfig = tmp_path / "closed-port.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))

    client = await KubeClient.connect(str(kubeconfig), timeout=2.0)
    try:
        calls = [
            client.get(CONFIGMAPS, "default", "a"),
            client.list(CONFIGMAPS, None),
            client.create(CONFIGMAPS, "default", configmap("a")),
            client.patch(CONFIGMAPS, "default", "a", {"data": {}}),
            client.delete(CONFIGMAPS, "default", "a"),
            client.read_secret_key("default", "a", "b"),
        ]
        for call in calls:
            with pytest.raises(Unavailable) as caught:
                await call
            assert caught.value.retryable
            assert "ConnectError" in str(caught.value)
    finally:
        await client.aclose()


async def test_missing_kubeconfig_raises_kube_error(tmp_path: Path) -> None:
    with pytest.raises(KubeError) as caught:
        await KubeClient.connect(str(tmp_path / "absent"))

    assert "Loading the Kubernetes configuration failed" in str(caught.value)


async def test_unknown_kind_raises_not_found(kube: KubeClient, namespace: str) -> None:
    unknown = ResourceKind("kube.test.experio.cloud", "v1", "nothings", "Nothing")

    with pytest.raises(NotFound):
        await kube.list(unknown, namespace)
    assert SECRETS.resource == "secrets"
    assert unknown.resource == "nothings.kube.test.experio.cloud"


EXEC_PLUGIN = """
import datetime, json, pathlib, sys
counter = pathlib.Path(sys.argv[1])
calls = int(counter.read_text()) if counter.exists() else 0
counter.write_text(str(calls + 1))
# The first token is rejected; the expiry is within the loader's skew, so it re-runs the plugin.
expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=1)
print(json.dumps({
    "apiVersion": "client.authentication.k8s.io/v1",
    "kind": "ExecCredential",
    "status": {
        "token": "rejected-token" if calls == 0 else sys.argv[2],
        "expirationTimestamp": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
    },
}))
"""


async def test_exec_plugin_token_refreshed_after_401(
    cluster: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    cluster.kubectl("create", "serviceaccount", "plugin", "-n", namespace)
    cluster.kubectl(
        "create", "role", "configmap-reader", "-n", namespace, "--verb=get", "--resource=configmaps"
    )
    cluster.kubectl(
        "create",
        "rolebinding",
        "plugin",
        "-n",
        namespace,
        "--role=configmap-reader",
        f"--serviceaccount={namespace}:plugin",
    )
    cluster.kubectl("create", "configmap", "visible", "-n", namespace, "--from-literal=a=b")
    token = cluster.kubectl("create", "token", "plugin", "-n", namespace).stdout.strip()
    script = tmp_path / "plugin.py"
    script.write_text(EXEC_PLUGIN)
    counter = tmp_path / "calls"
    kubeconfig = cluster.write_kubeconfig(
        tmp_path / "exec.kubeconfig",
        user_name="plugin",
        user={
            "exec": {  # type: ignore[dict-item]
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": sys.executable,
                "args": [str(script), str(counter), token],
                "interactiveMode": "Never",
            }
        },
    )

    client = await KubeClient.connect(str(kubeconfig))
    try:
        visible = await client.get(CONFIGMAPS, namespace, "visible")
    finally:
        await client.aclose()

    assert visible is not None
    assert visible["data"] == {"a": "b"}
    assert int(counter.read_text()) >= 2

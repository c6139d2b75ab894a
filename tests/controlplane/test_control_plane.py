"""The local control plane is a real one: CRDs are served, watches stream, RBAC is enforced."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from kubernetes import client, config, watch

from tests.support.control_plane import ControlPlane

WIDGET_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.controlplane.test.experio.cloud
spec:
  group: controlplane.test.experio.cloud
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: {type: integer, minimum: 1}
"""
GROUP = "controlplane.test.experio.cloud"


@pytest.fixture(scope="module")
def widget_crd(cluster: ControlPlane) -> None:
    cluster.kubectl("apply", "-f", "-", input=WIDGET_CRD)
    cluster.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        f"crd/widgets.{GROUP}",
    )


def api_client(kubeconfig: Path) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(kubeconfig))


def test_custom_object_created_read_and_watched(
    cluster: ControlPlane, widget_crd: None, namespace: str
) -> None:
    objects = client.CustomObjectsApi(api_client(cluster.kubeconfig))
    seen: list[tuple[str, str]] = []
    watching = threading.Event()

    def watch_widgets() -> None:
        stream = watch.Watch()
        watching.set()
        for event in stream.stream(
            objects.list_namespaced_custom_object,
            GROUP,
            "v1",
            namespace,
            "widgets",
            timeout_seconds=20,
        ):
            seen.append((event["type"], event["object"]["metadata"]["name"]))
            if event["type"] == "MODIFIED":
                stream.stop()

    watcher = threading.Thread(target=watch_widgets)
    watcher.start()
    watching.wait(5)

    body = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": "first"},
        "spec": {"size": 3},
    }
    objects.create_namespaced_custom_object(GROUP, "v1", namespace, "widgets", body)
    read = objects.get_namespaced_custom_object(GROUP, "v1", namespace, "widgets", "first")
    assert read["spec"] == {"size": 3}
    objects.patch_namespaced_custom_object(
        GROUP, "v1", namespace, "widgets", "first", {"spec": {"size": 4}}
    )
    watcher.join(25)

    assert not watcher.is_alive()
    assert ("ADDED", "first") in seen
    assert ("MODIFIED", "first") in seen


def test_schema_rejects_invalid_object(
    cluster: ControlPlane, widget_crd: None, namespace: str
) -> None:
    manifest = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": "too-small", "namespace": namespace},
        "spec": {"size": 0},
    }
    result = cluster.kubectl("create", "-f", "-", input=json.dumps(manifest), check=False)

    assert result.returncode != 0
    assert "spec.size" in result.stderr


def test_service_account_without_binding_is_forbidden(
    cluster: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    cluster.kubectl("create", "serviceaccount", "nobody", "-n", namespace)
    kubeconfig = cluster.service_account_kubeconfig(
        namespace, "nobody", path=tmp_path / "nobody.kubeconfig"
    )

    result = cluster.kubectl(
        "get", "configmaps", "-n", namespace, kubeconfig=kubeconfig, check=False
    )

    assert result.returncode != 0
    assert "Forbidden" in result.stderr
    assert f"system:serviceaccount:{namespace}:nobody" in result.stderr


def test_service_account_with_binding_is_allowed(
    cluster: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    cluster.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    cluster.kubectl(
        "create", "role", "read-configmaps", "--verb=list", "--resource=configmaps", "-n", namespace
    )
    cluster.kubectl(
        "create",
        "rolebinding",
        "reader",
        "--role=read-configmaps",
        f"--serviceaccount={namespace}:reader",
        "-n",
        namespace,
    )
    kubeconfig = cluster.service_account_kubeconfig(
        namespace, "reader", path=tmp_path / "reader.kubeconfig"
    )

    allowed = cluster.kubectl("get", "configmaps", "-n", namespace, kubeconfig=kubeconfig)
    denied = cluster.kubectl("get", "secrets", "-n", namespace, kubeconfig=kubeconfig, check=False)

    assert allowed.returncode == 0
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr


def test_apiserver_restarts_on_same_port(cluster: ControlPlane, namespace: str) -> None:
    cluster.kubectl("create", "configmap", "survivor", "-n", namespace)
    port = cluster.apiserver_port

    started = time.monotonic()
    cluster.stop_apiserver()
    cluster.start_apiserver()
    restart_seconds = time.monotonic() - started

    assert cluster.apiserver_port == port
    read = cluster.kubectl("get", "configmap", "survivor", "-n", namespace, "-o", "name")
    assert read.stdout.strip() == "configmap/survivor"
    assert restart_seconds < 60
